//! The multi-context suite: one random GRN (or several), each simulated in C cell types as SERGIO defines
//! them — the same network with a distinct master-regulator production profile per cell type — with the
//! control and every single knock-out in every cell type, technical noise and raw counts. Contexts are
//! `grn<i>/ct<c>`. The statistics say how different the cell types' knock-out effects are, against the
//! difference that sampling noise alone would give.

use cellshift_data::PerturbationData;

use crate::error::PriorError;
use crate::rng::derive_seed;
use crate::sergio::knockout::{assemble, simulate_conditions, KnockoutReport};
use crate::sergio::prior::{SergioPrior, SergioPriorConfig};
use crate::spec_json::GrnSpec;
use crate::suites::effects::SuiteMoments;
use crate::suites::{descendants, targets, SuiteScale, SUITE_GENES, SUITE_SCALE_ITER};

/// Settings of [`multi_context_suite`].
#[derive(Clone, Debug, PartialEq)]
pub struct MultiContextConfig {
    /// Random networks (each gets its own C cell types).
    pub n_grns: usize,
    /// Cell types per network (≥ 2).
    pub n_cell_types: usize,
    /// Genes per network.
    pub n_genes: usize,
    /// Cells per condition and cell type.
    pub n_cells: usize,
    /// SERGIO steps between sampled cells ([`SUITE_SCALE_ITER`]).
    pub scale_iter: usize,
    /// Seed; network `i` is drawn from a seed derived from it.
    pub seed: u64,
}

impl MultiContextConfig {
    /// The suite at a named scale: one network, 3 (tiny) or 4 (small) cell types, 50 genes.
    pub fn at_scale(scale: SuiteScale, seed: u64) -> MultiContextConfig {
        MultiContextConfig {
            n_grns: 1,
            n_cell_types: match scale {
                SuiteScale::Tiny => 3,
                SuiteScale::Small => 4,
            },
            n_genes: SUITE_GENES,
            n_cells: scale.cells(),
            scale_iter: SUITE_SCALE_ITER,
            seed,
        }
    }

    fn validate(&self) -> Result<(), PriorError> {
        if self.n_grns == 0 {
            return Err(PriorError::invalid(
                "grns",
                self.n_grns,
                "the suite needs at least one network",
                "use --grns 1 or more",
            ));
        }
        if self.n_cell_types < 2 {
            return Err(PriorError::invalid(
                "cell_types",
                self.n_cell_types,
                "a multi-context suite needs at least two cell types to compare",
                "use --cell-types 2 or more",
            ));
        }
        Ok(())
    }
}

/// How different the knock-out effects of the cell types are (normalised log1p scale, the knocked-out gene
/// itself always excluded so that different control levels of the target do not count as a difference).
///
/// The ground truth is known, so the genes a knock-out acts on (its direct targets: with the reference
/// knock-out semantics the half-responses are recomputed after the knock-out, so its effect hardly
/// propagates further) are separated from the genes it cannot change (not downstream of it). On the
/// latter, the difference between cell types is what sampling noise (SERGIO's autocorrelated cells,
/// technical noise, total-count normalisation) alone produces in this design: the noise floor.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MultiContextStats {
    /// Contexts (networks × cell types).
    pub n_contexts: usize,
    /// Knock-outs present in every cell type of their network (summed over networks).
    pub n_knockouts: usize,
    /// Of these, knock-outs of genes that regulate at least one gene.
    pub n_regulator_knockouts: usize,
    /// Mean over knock-outs and contexts of the mean |Δ effect| over all other genes.
    pub mean_abs_effect: f64,
    /// The same over the knocked-out gene's direct targets only (regulator knock-outs).
    pub mean_abs_effect_downstream: f64,
    /// Mean over knock-outs and pairs of cell types of the same network of the mean over all other genes
    /// of |Δ_c − Δ_c'|: how different the cell types' effects are.
    pub mean_abs_between_contexts: f64,
    /// The same over the knocked-out gene's direct targets (regulator knock-outs).
    pub mean_abs_between_contexts_downstream: f64,
    /// The same over the genes not downstream of the knocked-out gene (regulator knock-outs): the noise
    /// floor.
    pub noise_floor: f64,
    /// `mean_abs_between_contexts_downstream / noise_floor`; above 1 means the cell types' responses
    /// really differ where the knock-out acts.
    pub ratio_to_noise: f64,
}

/// A simulated multi-context suite.
#[derive(Clone, Debug)]
pub struct MultiContextSuite {
    /// Raw counts; contexts `grn<i>/ct<c>`.
    pub data: PerturbationData,
    /// Knock-outs dropped because a simulated cell was all zero (reference behaviour), per network.
    pub discarded: Vec<String>,
    /// How different the contexts are.
    pub stats: MultiContextStats,
}

/// Simulates the multi-context suite of `cfg`.
pub fn multi_context_suite(cfg: &MultiContextConfig) -> Result<MultiContextSuite, PriorError> {
    cfg.validate()?;
    let prior = SergioPriorConfig {
        n_genes: cfg.n_genes,
        n_cells: cfg.n_cells,
        n_cell_types: cfg.n_cell_types,
        scale_iter: cfg.scale_iter,
        ..SergioPriorConfig::default()
    };
    let mut parts = Vec::with_capacity(cfg.n_grns);
    let mut downstream = Vec::with_capacity(cfg.n_grns);
    let mut discarded = Vec::new();
    for i in 0..cfg.n_grns {
        let seed = if i == 0 {
            cfg.seed
        } else {
            derive_seed(cfg.seed, i as u64)
        };
        let name = format!("grn{i}");
        let (report, spec) = simulate_network_suite(&prior, seed, &name)?;
        discarded.extend(report.discarded.iter().map(|g| format!("{name}:{g}")));
        downstream.push((targets(&spec), descendants(&spec)));
        parts.push(report.data);
    }
    let data = concat(parts)?;
    let stats = statistics(&data, cfg.n_cell_types, &downstream);
    Ok(MultiContextSuite {
        data,
        discarded,
        stats,
    })
}

/// One network in every cell type: the control and every knock-out (a new network from a derived seed,
/// at most 16 times, when the control is unusable — as the SERGIO prior does). Returns the data and the
/// spec.
fn simulate_network_suite(
    prior: &SergioPriorConfig,
    seed: u64,
    name: &str,
) -> Result<(KnockoutReport, GrnSpec), PriorError> {
    let mut last_err = None;
    for attempt in 0..16u64 {
        let grn_seed = if attempt == 0 {
            seed
        } else {
            derive_seed(seed, 1000 + attempt)
        };
        let sampled = SergioPrior::sample_grn(prior, grn_seed, name)?;
        let spec = sampled.spec;
        let noise_s = spec.noise_s;
        let knockouts: Vec<usize> = (0..prior.n_genes).collect();
        let conditions =
            simulate_conditions(&spec, &knockouts, sampled.sim_seed, true, &|_, _| noise_s)?;
        match assemble(&spec, name, conditions) {
            Ok(report) => return Ok((report, spec)),
            Err(e @ PriorError::SimulationFailed { .. }) => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.expect("at least one attempt"))
}

/// Stacks the networks' data sets (same genes) into one.
fn concat(parts: Vec<PerturbationData>) -> Result<PerturbationData, PriorError> {
    Ok(PerturbationData::stack(parts, false)?)
}

/// Per network: `(targets, descendants)`, where `targets[g][h]` says whether `g → h` is an edge and
/// `descendants[g][h]` whether a path leads from `g` to `h`.
type Downstream = (Vec<Vec<bool>>, Vec<Vec<bool>>);

/// The statistics of a simulated suite with contexts `grn<i>/ct<c>`.
fn statistics(
    data: &PerturbationData,
    n_cell_types: usize,
    downstream: &[Downstream],
) -> MultiContextStats {
    let moments = SuiteMoments::of_counts(data);
    let labels: Vec<String> = data
        .treatments
        .iter()
        .filter(|t| !t.is_control())
        .map(|t| t.label(&data.control_label))
        .collect();
    let d = data.n_genes();
    // (sum, count) accumulators.
    let mut effect = (0.0, 0usize);
    let mut effect_down = (0.0, 0usize);
    let (mut all, mut down, mut rest) = ((0.0, 0usize), (0.0, 0usize), (0.0, 0usize));
    let (mut n_knockouts, mut n_regulators) = (0, 0);
    let add = |acc: &mut (f64, usize), values: &[f64], keep: &dyn Fn(usize) -> bool| {
        let (s, n) = values
            .iter()
            .enumerate()
            .filter(|(h, _)| keep(*h))
            .fold((0.0, 0usize), |(s, n), (_, v)| (s + v.abs(), n + 1));
        if n > 0 {
            acc.0 += s / n as f64;
            acc.1 += 1;
        }
    };
    for (i, (children, below)) in downstream.iter().enumerate() {
        let contexts: Vec<String> = (0..n_cell_types).map(|c| format!("grn{i}/ct{c}")).collect();
        for label in &labels {
            let Some(g) = data.gene_index(label) else {
                continue;
            };
            let effects: Option<Vec<Vec<f64>>> =
                contexts.iter().map(|c| moments.effect(c, label)).collect();
            let Some(effects) = effects else { continue };
            n_knockouts += 1;
            let is_down = |h: usize| children[g][h];
            let is_rest = |h: usize| h != g && !below[g][h];
            let has_down = (0..d).any(is_down);
            n_regulators += usize::from(has_down);
            for e in &effects {
                add(&mut effect, e, &|h| h != g);
                add(&mut effect_down, e, &is_down);
            }
            for a in 0..contexts.len() {
                for b in a + 1..contexts.len() {
                    let diff: Vec<f64> = effects[a]
                        .iter()
                        .zip(&effects[b])
                        .map(|(x, y)| x - y)
                        .collect();
                    add(&mut all, &diff, &|h| h != g);
                    if has_down {
                        add(&mut down, &diff, &is_down);
                        add(&mut rest, &diff, &is_rest);
                    }
                }
            }
        }
    }
    let mean = |(s, n): (f64, usize)| if n > 0 { s / n as f64 } else { f64::NAN };
    MultiContextStats {
        n_contexts: data.contexts.len(),
        n_knockouts,
        n_regulator_knockouts: n_regulators,
        mean_abs_effect: mean(effect),
        mean_abs_effect_downstream: mean(effect_down),
        mean_abs_between_contexts: mean(all),
        mean_abs_between_contexts_downstream: mean(down),
        noise_floor: mean(rest),
        ratio_to_noise: mean(down) / mean(rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_types_differ_well_above_noise_and_the_seed_reproduces_the_suite() {
        let cfg = MultiContextConfig::at_scale(SuiteScale::Tiny, 6);
        let started = std::time::Instant::now();
        let suite = multi_context_suite(&cfg).unwrap();
        eprintln!(
            "tiny multi-context suite in {:.2} s: {:?}",
            started.elapsed().as_secs_f64(),
            suite.stats
        );
        let data = &suite.data;
        assert_eq!(data.contexts, vec!["grn0/ct0", "grn0/ct1", "grn0/ct2"]);
        assert_eq!(data.scale, cellshift_data::ExpressionScale::RawCounts);
        // Every knock-out of every cell type, minus the few the reference discards.
        assert!(suite.stats.n_knockouts + suite.discarded.len() >= 45);
        for c in 0..3 {
            let per_context = data.conditions().iter().filter(|k| k.context == c).count();
            assert_eq!(per_context, suite.stats.n_knockouts + 1);
        }
        // Non-trivial: where a knock-out acts, the cell types' effects differ clearly more than on the genes
        // it cannot change (the noise floor), and the effects there are larger than the noise.
        let s = &suite.stats;
        assert!(s.ratio_to_noise > 1.25, "{s:?}");
        assert!(s.mean_abs_effect_downstream > s.noise_floor, "{s:?}");
        assert!(s.n_regulator_knockouts >= 20, "{s:?}");
        let again = multi_context_suite(&cfg).unwrap();
        assert_eq!(again.data.x, data.x);
        assert_eq!(again.data.cell_names, data.cell_names);
        let other = multi_context_suite(&MultiContextConfig { seed: 8, ..cfg }).unwrap();
        assert_ne!(other.data.x, data.x);
    }

    #[test]
    fn several_networks_stack_and_one_cell_type_is_refused() {
        let cfg = MultiContextConfig {
            n_grns: 2,
            n_cell_types: 2,
            n_genes: 12,
            n_cells: 20,
            scale_iter: 10,
            seed: 3,
        };
        let suite = multi_context_suite(&cfg).unwrap();
        assert_eq!(
            suite.data.contexts,
            vec!["grn0/ct0", "grn0/ct1", "grn1/ct0", "grn1/ct1"]
        );
        let err = multi_context_suite(&MultiContextConfig {
            n_cell_types: 1,
            ..cfg
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("--cell-types 2"), "{err}");
    }
}
