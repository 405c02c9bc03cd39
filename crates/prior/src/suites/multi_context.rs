//! The multi-context suite: one random GRN (or several), each simulated in C cell types as SERGIO defines
//! them — the same network with a distinct master-regulator production profile per cell type — with the
//! control and every single knock-out in every cell type, technical noise and raw counts. Contexts are
//! `grn<i>/ct<c>`. The statistics say how different the cell types' knock-out effects are, against the
//! difference that sampling noise alone would give.

use cellshift_data::{CellAnnotations, PerturbationData};

use crate::error::PriorError;
use crate::rng::derive_seed;
use crate::sergio::prior::{SergioPrior, SergioPriorConfig};
use crate::suites::effects::{SuiteMoments, MEAN_ABS_STANDARD_NORMAL};
use crate::suites::{SuiteScale, SUITE_GENES};

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
/// itself excluded so that different control levels of the target do not count as a difference).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MultiContextStats {
    /// Contexts (networks × cell types).
    pub n_contexts: usize,
    /// Knock-outs present in every cell type of their network (summed over networks).
    pub n_knockouts: usize,
    /// Mean over knock-outs and contexts of the mean |Δ effect| over genes: how large the effects are.
    pub mean_abs_effect: f64,
    /// Mean over knock-outs and pairs of cell types of the same network of the mean over genes of
    /// |Δ_{c} − Δ_{c'}|: how different the cell types' effects are.
    pub mean_abs_between_contexts: f64,
    /// The value `mean_abs_between_contexts` would have from sampling noise alone (identical effects):
    /// the mean of `√(2/π)·√(se²_{KO,c} + se²_{ctrl,c} + se²_{KO,c'} + se²_{ctrl,c'})`, treating the
    /// four conditions as independent.
    pub noise_floor: f64,
    /// `mean_abs_between_contexts / noise_floor`; well above 1 means the contexts really differ.
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
        ..SergioPriorConfig::default()
    };
    let mut parts = Vec::with_capacity(cfg.n_grns);
    let mut discarded = Vec::new();
    for i in 0..cfg.n_grns {
        let seed = if i == 0 {
            cfg.seed
        } else {
            derive_seed(cfg.seed, i as u64)
        };
        let name = format!("grn{i}");
        let part = SergioPrior::sample_named(&prior, seed, &name)?;
        let present: Vec<String> = part
            .treatments
            .iter()
            .map(|t| t.label(&part.control_label))
            .collect();
        discarded.extend(
            part.genes
                .iter()
                .filter(|g| !present.contains(g))
                .map(|g| format!("{name}:{g}")),
        );
        parts.push(part);
    }
    let data = concat(parts)?;
    let stats = statistics(&data, cfg.n_grns, cfg.n_cell_types);
    Ok(MultiContextSuite {
        data,
        discarded,
        stats,
    })
}

/// Stacks the networks' data sets (same genes) into one.
fn concat(parts: Vec<PerturbationData>) -> Result<PerturbationData, PriorError> {
    if parts.len() == 1 {
        return Ok(parts.into_iter().next().expect("one part"));
    }
    let genes = parts[0].genes.clone();
    let control = parts[0].control_label.clone();
    let mut annotations = CellAnnotations::default();
    let mut views = Vec::with_capacity(parts.len());
    for part in &parts {
        let a = part.annotations();
        annotations.cell_names.extend(a.cell_names);
        annotations.contexts.extend(a.contexts);
        annotations.treatment_labels.extend(a.treatment_labels);
        annotations.treatment_values.extend(a.treatment_values);
        views.push(part.x.view());
    }
    let x = ndarray::concatenate(ndarray::Axis(0), &views).map_err(|e| {
        PriorError::SimulationFailed {
            context: "multi-context suite".into(),
            reason: format!("the networks' matrices do not stack: {e}"),
        }
    })?;
    Ok(PerturbationData::new(genes, x, annotations, &control)?)
}

/// The statistics of a simulated suite with contexts `grn<i>/ct<c>`.
fn statistics(data: &PerturbationData, n_grns: usize, n_cell_types: usize) -> MultiContextStats {
    let moments = SuiteMoments::of_counts(data);
    let labels: Vec<String> = data
        .treatments
        .iter()
        .filter(|t| !t.is_control())
        .map(|t| t.label(&data.control_label))
        .collect();
    let (mut effect_sum, mut effect_n) = (0.0, 0usize);
    let (mut between_sum, mut noise_sum, mut pair_n) = (0.0, 0.0, 0usize);
    let mut n_knockouts = 0;
    for i in 0..n_grns {
        let contexts: Vec<String> = (0..n_cell_types).map(|c| format!("grn{i}/ct{c}")).collect();
        for label in &labels {
            let Some(skip) = data.gene_index(label) else {
                continue;
            };
            let effects: Option<Vec<Vec<f64>>> =
                contexts.iter().map(|c| moments.effect(c, label)).collect();
            let Some(effects) = effects else { continue };
            n_knockouts += 1;
            for e in &effects {
                effect_sum += mean_abs_except(e.iter().copied(), skip);
                effect_n += 1;
            }
            for a in 0..contexts.len() {
                for b in a + 1..contexts.len() {
                    let diff = effects[a].iter().zip(&effects[b]).map(|(x, y)| x - y);
                    between_sum += mean_abs_except(diff, skip);
                    let se = |c: &str, l: &str| moments.get(c, l).map(|m| m.se.clone());
                    let parts = [
                        se(&contexts[a], label),
                        moments.control(&contexts[a]).map(|m| m.se.clone()),
                        se(&contexts[b], label),
                        moments.control(&contexts[b]).map(|m| m.se.clone()),
                    ];
                    let parts: Vec<Vec<f64>> = parts.into_iter().flatten().collect();
                    let noise = (0..data.n_genes()).map(|g| {
                        MEAN_ABS_STANDARD_NORMAL
                            * parts.iter().map(|p| p[g] * p[g]).sum::<f64>().sqrt()
                    });
                    noise_sum += mean_abs_except(noise, skip);
                    pair_n += 1;
                }
            }
        }
    }
    let mean = |s: f64, n: usize| if n > 0 { s / n as f64 } else { f64::NAN };
    let between = mean(between_sum, pair_n);
    let noise = mean(noise_sum, pair_n);
    MultiContextStats {
        n_contexts: data.contexts.len(),
        n_knockouts,
        mean_abs_effect: mean(effect_sum, effect_n),
        mean_abs_between_contexts: between,
        noise_floor: noise,
        ratio_to_noise: between / noise,
    }
}

/// Mean of |v| over the values except index `skip`.
pub(crate) fn mean_abs_except(values: impl Iterator<Item = f64>, skip: usize) -> f64 {
    let (sum, n) = values
        .enumerate()
        .filter(|(g, _)| *g != skip)
        .fold((0.0, 0usize), |(s, n), (_, v)| (s + v.abs(), n + 1));
    if n > 0 {
        sum / n as f64
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_types_differ_well_above_noise_and_the_seed_reproduces_the_suite() {
        let cfg = MultiContextConfig::at_scale(SuiteScale::Tiny, 7);
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
        // Non-trivial: the cell types' effects differ several times more than noise alone would make them.
        let s = &suite.stats;
        assert!(s.ratio_to_noise > 2.0, "{s:?}");
        assert!(
            s.mean_abs_between_contexts > 0.25 * s.mean_abs_effect,
            "{s:?}"
        );
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
