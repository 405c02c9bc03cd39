//! The combinatorial suite: one random GRN with its control, every single knock-out and a seeded sample
//! of double knock-outs (both genes knocked out together with the spec's knock-out semantics, see
//! [`crate::Network::knockouts`]), technical noise and raw counts; doubles are labelled `A+B` as in
//! Norman et al. The statistics give the fraction of doubles whose effect is not the sum of the singles'.
//!
//! The sample is stratified: half the doubles (rounded up, as many as exist) are pairs that are all the
//! regulators of some gene, the others are drawn uniformly from the remaining pairs. With the reference
//! knock-out semantics a knock-out acts on its direct targets (half-responses are recomputed afterwards,
//! so its effect hardly propagates further) and SERGIO sums the regulators' Hill terms, so two knock-outs
//! can only interact on a common target — most clearly on one that loses all its regulators and becomes a
//! master regulator with its own reserve rate.
//!
//! **Non-additivity test.** On the normalised log1p scale, the interaction of a double A+B on gene g is
//! `I_g = Δ_AB − Δ_A − Δ_B = m_AB − m_A − m_B + m_ctrl` (m: condition means). Its sampling noise is
//! `SE_g = √(se²_AB + se²_A + se²_B + se²_ctrl)` from the standard errors of the four means, treating the
//! conditions as independent (the suite's conditions share their simulation seed, which correlates them
//! positively). SERGIO's cells are snapshots of one trajectory, so `se = sd/√n` understates the noise of
//! a mean: the suite also simulates [`PLACEBO_DOUBLES`] placebo doubles of genes that regulate nothing
//! (whose interaction is pure noise) and widens every SE by the square root of their mean `(I_g/SE_g)²`
//! (reported as `noise_inflation`). A double is non-additive when some gene other than A and B
//! has `|I_g| / SE_g > 4` ([`Z_THRESHOLD`]: two-sided p = 6.3·10⁻⁵ per gene, a family-wise error below
//! 0.4 % over 50 genes). A and B themselves are excluded: both are zero in the double, so `I` there only
//! restates how much each single changes the other gene.

use ndarray::Array2;
use rand::seq::index::sample;
use rayon::prelude::*;

use cellshift_data::PerturbationData;

use crate::error::PriorError;
use crate::rng::{derive_seed, rng_from_seed};
use crate::sergio::knockout::{
    assemble, condition_label, simulate_combination, simulate_conditions,
};
use crate::sergio::prior::{SergioPrior, SergioPriorConfig};
use crate::suites::effects::{ConditionMoments, SuiteMoments};
use crate::suites::{regulators, targets, SuiteScale, SUITE_GENES, SUITE_SCALE_ITER};

/// |I_g| / SE_g above which a double's interaction on a gene is more than sampling noise.
pub const Z_THRESHOLD: f64 = 4.0;

/// Sub-stream of the suite seed that chooses the doubles.
const STREAM_DOUBLES: u64 = 0xD0B1E;
/// Sub-stream of the suite seed that chooses the placebo doubles.
const STREAM_PLACEBO: u64 = 0x091A_CEB0;

/// A pair of gene indices (a double knock-out).
type Pair = (usize, usize);
/// Placebo doubles (pairs of genes that regulate nothing) simulated to calibrate the noise.
pub const PLACEBO_DOUBLES: usize = 12;
/// Attempts with derived seeds when a network's control condition is unusable.
const MAX_ATTEMPTS: u64 = 16;
/// Context (network) name of the suite.
pub const CONTEXT: &str = "grn0";

/// Settings of [`combinatorial_suite`].
#[derive(Clone, Debug, PartialEq)]
pub struct CombinatorialConfig {
    /// Genes of the network.
    pub n_genes: usize,
    /// Cells per condition.
    pub n_cells: usize,
    /// Double knock-outs to sample (all pairs of knocked-out-able genes when fewer exist).
    pub n_doubles: usize,
    /// SERGIO steps between sampled cells ([`SUITE_SCALE_ITER`]).
    pub scale_iter: usize,
    /// Seed of the network, the simulation and the choice of doubles.
    pub seed: u64,
}

impl CombinatorialConfig {
    /// The suite at a named scale: 50 genes, 30 (tiny) or 100 (small) doubles.
    pub fn at_scale(scale: SuiteScale, seed: u64) -> CombinatorialConfig {
        CombinatorialConfig {
            n_genes: SUITE_GENES,
            n_cells: scale.cells(),
            n_doubles: match scale {
                SuiteScale::Tiny => 30,
                SuiteScale::Small => 100,
            },
            scale_iter: SUITE_SCALE_ITER,
            seed,
        }
    }
}

/// The interaction test of one double.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DoubleStats {
    /// The `A+B` label.
    pub label: String,
    /// Largest |I_g| / SE_g over the genes other than A and B.
    pub max_z: f64,
    /// Mean |I_g| over the genes other than A and B.
    pub mean_abs_interaction: f64,
    /// Mean |Δ_AB| over the genes other than A and B.
    pub mean_abs_effect: f64,
    /// `max_z > Z_THRESHOLD`.
    pub non_additive: bool,
}

/// How combinatorial the suite is.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CombinatorialStats {
    /// Single knock-outs in the suite.
    pub n_singles: usize,
    /// Double knock-outs in the suite.
    pub n_doubles: usize,
    /// Doubles whose interaction exceeds the noise threshold.
    pub n_non_additive: usize,
    /// `n_non_additive / n_doubles`.
    pub non_additive_fraction: f64,
    /// The threshold on |I_g| / SE_g ([`Z_THRESHOLD`]).
    pub z_threshold: f64,
    /// Mean over doubles of the mean |Δ_AB| (genes other than A and B).
    pub mean_abs_double_effect: f64,
    /// Mean over doubles of the mean |I| (genes other than A and B).
    pub mean_abs_interaction: f64,
    /// Placebo doubles (two genes that regulate nothing) that calibrated the noise.
    pub n_placebo_doubles: usize,
    /// Mean `(I_g / SE_g)²` of the placebo doubles with the naive SE (at least 1): the factor by which the
    /// naive variance understates the noise; every SE of the test is multiplied by its square root.
    pub noise_inflation: f64,
    /// Per double.
    pub doubles: Vec<DoubleStats>,
}

/// A simulated combinatorial suite.
#[derive(Clone, Debug)]
pub struct CombinatorialSuite {
    /// Raw counts, one context; labels `control`, `GENE0003`, `GENE0003+GENE0017`.
    pub data: PerturbationData,
    /// Conditions dropped because a simulated cell was all zero (reference behaviour).
    pub discarded: Vec<String>,
    /// How combinatorial the suite is.
    pub stats: CombinatorialStats,
}

/// Simulates the combinatorial suite of `cfg`.
pub fn combinatorial_suite(cfg: &CombinatorialConfig) -> Result<CombinatorialSuite, PriorError> {
    if cfg.n_doubles == 0 {
        return Err(PriorError::invalid(
            "doubles",
            cfg.n_doubles,
            "a combinatorial suite needs double knock-outs",
            "use --doubles 1 or more",
        ));
    }
    let prior = SergioPriorConfig {
        n_genes: cfg.n_genes,
        n_cells: cfg.n_cells,
        scale_iter: cfg.scale_iter,
        ..SergioPriorConfig::default()
    };
    let mut last_err = None;
    for attempt in 0..MAX_ATTEMPTS {
        let grn_seed = if attempt == 0 {
            cfg.seed
        } else {
            derive_seed(cfg.seed, 1000 + attempt)
        };
        match simulate(cfg, &prior, grn_seed) {
            Ok(suite) => return Ok(suite),
            Err(e @ PriorError::SimulationFailed { .. }) => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.expect("at least one attempt"))
}

fn simulate(
    cfg: &CombinatorialConfig,
    prior: &SergioPriorConfig,
    grn_seed: u64,
) -> Result<CombinatorialSuite, PriorError> {
    let sampled = SergioPrior::sample_grn(prior, grn_seed, CONTEXT)?;
    let spec = &sampled.spec;
    let noise_s = spec.noise_s;
    let singles: Vec<usize> = (0..cfg.n_genes).collect();
    let mut conditions =
        simulate_conditions(spec, &singles, sampled.sim_seed, true, &|_, _| noise_s)?;
    if conditions[0].discarded {
        return Err(PriorError::SimulationFailed {
            context: CONTEXT.into(),
            reason: "the control condition has a cell with zero total expression".into(),
        });
    }
    // Doubles among genes of the network whose single knock-out was kept.
    let in_network = spec.in_network();
    let usable: Vec<usize> = conditions[1..]
        .iter()
        .filter(|c| !c.discarded && in_network[c.knockouts[0]])
        .map(|c| c.knockouts[0])
        .collect();
    let pairs: Vec<(usize, usize)> = usable
        .iter()
        .enumerate()
        .flat_map(|(i, &a)| usable[i + 1..].iter().map(move |&b| (a, b)))
        .collect();
    // Half the doubles (rounded up) from pairs that are all the regulators of some gene, the rest
    // uniformly from the other pairs.
    let children = targets(spec);
    let n = spec.genes.len();
    let sole_pair = |a: usize, b: usize| {
        (0..n).any(|h| {
            children[a][h] && children[b][h] && (0..n).all(|r| !children[r][h] || r == a || r == b)
        })
    };
    let (related, unrelated): (Vec<Pair>, Vec<Pair>) =
        pairs.iter().partition(|&&(a, b)| sole_pair(a, b));
    let mut rng = rng_from_seed(derive_seed(cfg.seed, STREAM_DOUBLES));
    let n_related = cfg.n_doubles.div_ceil(2).min(related.len());
    let n_unrelated = (cfg.n_doubles - n_related).min(unrelated.len());
    let mut chosen: Vec<(usize, usize)> = sample(&mut rng, related.len(), n_related)
        .into_iter()
        .map(|i| related[i])
        .chain(
            sample(&mut rng, unrelated.len(), n_unrelated)
                .into_iter()
                .map(|i| unrelated[i]),
        )
        .collect();
    chosen.sort_unstable();
    let doubles: Vec<_> = chosen
        .par_iter()
        .map(|&(a, b)| simulate_combination(spec, &[a, b], noise_s, sampled.sim_seed))
        .collect::<Result<_, _>>()?;
    conditions.extend(doubles);
    let report = assemble(spec, CONTEXT, conditions)?;
    // Placebo doubles (two genes that regulate nothing) calibrate the noise of the interaction test.
    let regulates = regulators(spec);
    let leaves: Vec<usize> = usable.iter().copied().filter(|&g| !regulates[g]).collect();
    let leaf_pairs: Vec<(usize, usize)> = leaves
        .iter()
        .enumerate()
        .flat_map(|(i, &a)| leaves[i + 1..].iter().map(move |&b| (a, b)))
        .collect();
    let mut rng = rng_from_seed(derive_seed(cfg.seed, STREAM_PLACEBO));
    let placebo_pairs: Vec<(usize, usize)> = sample(
        &mut rng,
        leaf_pairs.len(),
        PLACEBO_DOUBLES.min(leaf_pairs.len()),
    )
    .into_iter()
    .map(|i| leaf_pairs[i])
    .collect();
    let placebos: Vec<(String, Array2<f32>)> = placebo_pairs
        .par_iter()
        .map(|&(a, b)| simulate_combination(spec, &[a, b], noise_s, sampled.sim_seed))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter_map(|c| {
            let label = condition_label(spec, &c.knockouts);
            c.counts.map(|x| (label, x.mapv(|v| v as f32)))
        })
        .collect();
    let stats = statistics(&report.data, &placebos);
    Ok(CombinatorialSuite {
        data: report.data,
        discarded: report.discarded,
        stats,
    })
}

/// The interaction test of one double from the moments of `[A+B, A, B, control]`, over the genes not in
/// `skip` (the knocked-out genes), with the variance of the interaction multiplied by `inflation`.
pub fn interaction_test(
    label: &str,
    [ab, a, b, ctrl]: [&ConditionMoments; 4],
    skip: &[usize],
    inflation: f64,
) -> DoubleStats {
    let (mut max_z, mut sum_i, mut sum_e, mut n) = (0.0f64, 0.0, 0.0, 0usize);
    for g in (0..ab.mean.len()).filter(|g| !skip.contains(g)) {
        let i = ab.mean[g] - a.mean[g] - b.mean[g] + ctrl.mean[g];
        let se2 = ab.se[g].powi(2) + a.se[g].powi(2) + b.se[g].powi(2) + ctrl.se[g].powi(2);
        let se = (inflation * se2).sqrt();
        let z = if se > 0.0 {
            i.abs() / se
        } else if i != 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        max_z = max_z.max(z);
        sum_i += i.abs();
        sum_e += (ab.mean[g] - ctrl.mean[g]).abs();
        n += 1;
    }
    let n = n.max(1) as f64;
    DoubleStats {
        label: label.to_string(),
        max_z,
        mean_abs_interaction: sum_i / n,
        mean_abs_effect: sum_e / n,
        non_additive: max_z > Z_THRESHOLD,
    }
}

/// The interaction test of every double of a combinatorial suite's data (one context). `placebos` are
/// raw counts of placebo doubles (two genes that regulate nothing, labelled `A+B`, not part of the data):
/// their interactions are pure noise, and the mean of `(I_g / SE_g)²` over them and their genes is the
/// factor by which the naive `SE²` understates that noise (SERGIO's cells are autocorrelated snapshots of
/// one trajectory); every SE is widened by its square root. Without placebos the naive SE is used.
pub fn statistics(
    data: &PerturbationData,
    placebos: &[(String, Array2<f32>)],
) -> CombinatorialStats {
    let mut moments = SuiteMoments::of_counts(data);
    let context = data.contexts.first().cloned().unwrap_or_default();
    let four = |m: &SuiteMoments, label: &str, double: &str| {
        let parts: Vec<&str> = label.split('+').collect();
        if parts.len() != 2 {
            return None;
        }
        Some([
            m.get(&context, double)?.clone(),
            m.get(&context, parts[0])?.clone(),
            m.get(&context, parts[1])?.clone(),
            m.control(&context)?.clone(),
        ])
    };
    let skip_of = |label: &str| -> Vec<usize> {
        label
            .split('+')
            .filter_map(|g| data.gene_index(g))
            .collect()
    };
    // Calibration: mean z² of the placebo interactions with the naive SE.
    let (mut z2, mut nz) = (0.0, 0usize);
    let mut n_placebo = 0;
    for (label, counts) in placebos {
        let key = format!("placebo {label}");
        moments.add_condition(&context, &key, counts);
        let Some([ab, a, b, ctrl]) = four(&moments, label, &key) else {
            continue;
        };
        n_placebo += 1;
        let skip = skip_of(label);
        for g in (0..ab.mean.len()).filter(|g| !skip.contains(g)) {
            let i = ab.mean[g] - a.mean[g] - b.mean[g] + ctrl.mean[g];
            let se2 = ab.se[g].powi(2) + a.se[g].powi(2) + b.se[g].powi(2) + ctrl.se[g].powi(2);
            if se2 > 0.0 {
                z2 += i * i / se2;
                nz += 1;
            }
        }
    }
    let inflation = if nz > 0 {
        (z2 / nz as f64).max(1.0)
    } else {
        1.0
    };
    let mut doubles = Vec::new();
    for label in data
        .treatments
        .iter()
        .map(|t| t.label(&data.control_label))
        .filter(|l| l.contains('+'))
    {
        let Some([ab, a, b, ctrl]) = four(&moments, &label, &label) else {
            continue;
        };
        doubles.push(interaction_test(
            &label,
            [&ab, &a, &b, &ctrl],
            &skip_of(&label),
            inflation,
        ));
    }
    let n_singles = data
        .treatments
        .iter()
        .filter(|t| matches!(t, cellshift_data::Treatment::Knockout { .. }))
        .count();
    let n_doubles = doubles.len();
    let n_non_additive = doubles.iter().filter(|d| d.non_additive).count();
    let mean = |f: fn(&DoubleStats) -> f64| {
        if n_doubles > 0 {
            doubles.iter().map(f).sum::<f64>() / n_doubles as f64
        } else {
            f64::NAN
        }
    };
    CombinatorialStats {
        n_singles,
        n_doubles,
        n_non_additive,
        non_additive_fraction: if n_doubles > 0 {
            n_non_additive as f64 / n_doubles as f64
        } else {
            f64::NAN
        },
        z_threshold: Z_THRESHOLD,
        mean_abs_double_effect: mean(|d| d.mean_abs_effect),
        mean_abs_interaction: mean(|d| d.mean_abs_interaction),
        n_placebo_doubles: n_placebo,
        noise_inflation: inflation,
        doubles,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellshift_data::Treatment;

    #[test]
    fn doubles_knock_out_both_genes_parse_as_combinations_and_some_are_non_additive() {
        let cfg = CombinatorialConfig::at_scale(SuiteScale::Tiny, 11);
        let started = std::time::Instant::now();
        let suite = combinatorial_suite(&cfg).unwrap();
        let s = &suite.stats;
        eprintln!(
            "tiny combinatorial suite in {:.2} s: {} singles, {} doubles, non-additive fraction {:.3}, mean |I| {:.4}, mean |Δ_AB| {:.4}",
            started.elapsed().as_secs_f64(),
            s.n_singles,
            s.n_doubles,
            s.non_additive_fraction,
            s.mean_abs_interaction,
            s.mean_abs_double_effect
        );
        let data = &suite.data;
        assert_eq!(data.scale, cellshift_data::ExpressionScale::RawCounts);
        assert_eq!(
            s.n_doubles + suite.discarded.iter().filter(|d| d.contains('+')).count(),
            30
        );
        assert!(s.n_singles >= 45, "{}", s.n_singles);
        let mut n_doubles = 0;
        for cond in data.conditions() {
            let t = &data.treatments[cond.treatment];
            if let Treatment::Combination { genes } = t {
                n_doubles += 1;
                assert_eq!(genes.len(), 2);
                assert_eq!(Treatment::from_label(&t.label("control"), "control"), *t);
                // Both knocked-out genes have zero counts in every cell of the double.
                for gene in genes {
                    let g = data.gene_index(gene).unwrap();
                    assert!(cond.cells.iter().all(|&r| data.x[[r, g]] == 0.0), "{gene}");
                }
                // Both singles are in the suite.
                for gene in genes {
                    assert!(data.treatment_index(gene).is_ok(), "single {gene} missing");
                }
            }
        }
        assert_eq!(n_doubles, s.n_doubles);
        assert!(
            s.non_additive_fraction > 0.0 && s.non_additive_fraction < 1.0,
            "non-additive fraction {}",
            s.non_additive_fraction
        );
        let again = combinatorial_suite(&cfg).unwrap();
        assert_eq!(again.data.x, data.x);
        assert_eq!(again.stats, suite.stats);
    }

    #[test]
    fn the_interaction_test_flags_interactions_beyond_the_noise_only() {
        let m = |mean: [f64; 3], se: f64| ConditionMoments {
            mean: mean.to_vec(),
            se: vec![se; 3],
        };
        // Genes: A, B, C. Singles shift C by +1 and +2; an additive double shifts it by +3.
        let ctrl = m([5.0, 5.0, 4.0], 0.05);
        let a = m([0.0, 5.0, 5.0], 0.05);
        let b = m([5.0, 0.0, 6.0], 0.05);
        let additive = m([0.0, 0.0, 7.0], 0.05);
        let t = interaction_test("A+B", [&additive, &a, &b, &ctrl], &[0, 1], 1.0);
        assert!(!t.non_additive && t.max_z < 1e-9, "{t:?}");
        // 0.3 above additive with SE 0.1: z = 3, inside the noise; 0.5 above: z = 5, flagged.
        let near = m([0.0, 0.0, 7.3], 0.05);
        assert!(!interaction_test("A+B", [&near, &a, &b, &ctrl], &[0, 1], 1.0).non_additive);
        let synergy = m([0.0, 0.0, 7.5], 0.05);
        let t = interaction_test("A+B", [&synergy, &a, &b, &ctrl], &[0, 1], 1.0);
        assert!(t.non_additive && (t.max_z - 5.0).abs() < 1e-9, "{t:?}");
        // The knocked-out genes themselves never count.
        let odd_target = m([3.0, 0.0, 7.0], 0.05);
        assert!(!interaction_test("A+B", [&odd_target, &a, &b, &ctrl], &[0, 1], 1.0).non_additive);
    }
}
