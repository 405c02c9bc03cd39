//! 10x-Chromium-like technical noise (MapPFN spec §6.7, sergio-rs `add_technical_noise`): outlier genes,
//! library-size scaling, logistic dropout around a percentile of `ln(1 + x)`, and Poisson UMI counts.
//! Parameters are drawn per GRN; the noise itself is seeded per condition.

use ndarray::Array2;
use rand::Rng;
use rand_distr::{Distribution, LogNormal, Poisson};

use crate::error::{check_non_negative, check_positive, PriorError};
use crate::rng::{rng_from_seed, uniform_f64};

/// Parameters of the technical-noise model.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TechnicalNoiseParams {
    /// Probability that a gene is an outlier gene (fixed at 0.01 in sergio-rs).
    #[serde(default = "default_outlier_prob")]
    pub outlier_prob: f64,
    /// Log-mean `μ_out` of the outlier factor `LogNormal(μ_out, σ_out)`.
    pub outlier_mu: f64,
    /// Log-scale `σ_out` of the outlier factor (fixed at 1.0 in sergio-rs).
    #[serde(default = "default_outlier_sigma")]
    pub outlier_sigma: f64,
    /// Log-mean `μ_lib` of the per-cell library size.
    pub library_mu: f64,
    /// Log-scale `σ_lib` of the per-cell library size.
    pub library_sigma: f64,
    /// Steepness `k_d` of the logistic keep probability (the reference's "shape"; 8). Table 6 of the
    /// paper calls this the "dropout percentile" — the labels are swapped there.
    pub dropout_k: f64,
    /// Percentile `q` (0–100) of `ln(1 + x)` at which the keep probability is ½ (reference U(45, 82)).
    /// Table 6 of the paper calls this the "temperature".
    pub dropout_q: f64,
}

fn default_outlier_prob() -> f64 {
    0.01
}
fn default_outlier_sigma() -> f64 {
    1.0
}

/// Ranges of the per-GRN technical-noise parameters (reference values in `Default`).
#[derive(Clone, Debug, PartialEq)]
pub struct TechnicalNoiseRanges {
    /// `μ_out ~ U(…)`, reference (0.8, 5.0).
    pub outlier_mu: (f64, f64),
    /// `μ_lib ~ U(…)`, reference (4.5, 6.0).
    pub library_mu: (f64, f64),
    /// `σ_lib ~ U(…)`, reference (0.3, 0.7).
    pub library_sigma: (f64, f64),
    /// `k_d ~ U(…)`, reference (8, 8).
    pub dropout_k: (f64, f64),
    /// `q ~ U(…)`, reference (45, 82).
    pub dropout_q: (f64, f64),
}

impl Default for TechnicalNoiseRanges {
    fn default() -> Self {
        TechnicalNoiseRanges {
            outlier_mu: (0.8, 5.0),
            library_mu: (4.5, 6.0),
            library_sigma: (0.3, 0.7),
            dropout_k: (8.0, 8.0),
            dropout_q: (45.0, 82.0),
        }
    }
}

impl TechnicalNoiseParams {
    /// Draws one GRN's parameters from `ranges` (outlier probability 0.01 and σ_out 1 fixed).
    pub fn sample<R: Rng>(ranges: &TechnicalNoiseRanges, rng: &mut R) -> TechnicalNoiseParams {
        TechnicalNoiseParams {
            outlier_prob: default_outlier_prob(),
            outlier_mu: uniform_f64(rng, ranges.outlier_mu.0, ranges.outlier_mu.1),
            outlier_sigma: default_outlier_sigma(),
            library_mu: uniform_f64(rng, ranges.library_mu.0, ranges.library_mu.1),
            library_sigma: uniform_f64(rng, ranges.library_sigma.0, ranges.library_sigma.1),
            dropout_k: uniform_f64(rng, ranges.dropout_k.0, ranges.dropout_k.1),
            dropout_q: uniform_f64(rng, ranges.dropout_q.0, ranges.dropout_q.1),
        }
    }

    /// Checks every parameter; errors name the parameter and the fix.
    pub fn validate(&self) -> Result<(), PriorError> {
        if !(0.0..=1.0).contains(&self.outlier_prob) {
            return Err(PriorError::invalid(
                "technical_noise.outlier_prob",
                self.outlier_prob,
                "is a probability",
                "use a value in [0, 1] (reference 0.01)",
            ));
        }
        for (name, v) in [
            ("technical_noise.outlier_mu", self.outlier_mu),
            ("technical_noise.library_mu", self.library_mu),
        ] {
            if !v.is_finite() {
                return Err(PriorError::invalid(
                    name,
                    v,
                    "must be finite",
                    "give a finite log-mean",
                ));
            }
        }
        check_non_negative(
            "technical_noise.outlier_sigma",
            self.outlier_sigma,
            "use σ ≥ 0 (reference 1.0)",
        )?;
        check_non_negative(
            "technical_noise.library_sigma",
            self.library_sigma,
            "use σ ≥ 0 (reference 0.3–0.7)",
        )?;
        check_positive(
            "technical_noise.dropout_k",
            self.dropout_k,
            "use a positive logistic steepness (reference 8)",
        )?;
        if !(0.0..=100.0).contains(&self.dropout_q) {
            return Err(PriorError::invalid(
                "technical_noise.dropout_q",
                self.dropout_q,
                "is a percentile",
                "use a value in [0, 100] (reference 45–82)",
            ));
        }
        Ok(())
    }
}

/// The `q`-th percentile (0–100) of `values` with numpy's default linear interpolation. Reorders
/// `values`. Returns 0 for an empty slice.
pub fn percentile_linear(values: &mut [f64], q: f64) -> f64 {
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    let pos = (q / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let frac = pos - lo as f64;
    let (_, &mut lo_val, upper) = values.select_nth_unstable_by(lo, f64::total_cmp);
    if frac == 0.0 || upper.is_empty() {
        return lo_val;
    }
    let hi_val = upper.iter().copied().fold(f64::INFINITY, f64::min);
    // numpy's lerp: symmetric form for numerical stability.
    let diff = hi_val - lo_val;
    if frac >= 0.5 {
        hi_val - diff * (1.0 - frac)
    } else {
        lo_val + diff * frac
    }
}

/// Applies the noise model to a cells × genes matrix of clean expression, in place, seeded by `seed`:
/// (1) each gene is an outlier with probability `outlier_prob` and then multiplied by
/// `LogNormal(μ_out, σ_out)`; (2) each cell is rescaled to total `LogNormal(μ_lib, σ_lib)`;
/// (3) each entry is dropped with probability `1 − 1/(1 + exp(−k (ln(1+x) − m)))`, `m` the
/// `q`-th percentile of `ln(1+x)` over all entries; (4) `x ← Poisson(x)` for `x > 0`.
/// Expects every cell to have a positive total (see [`apply_condition_noise`]).
pub fn apply_noise_in_place(x: &mut Array2<f64>, params: &TechnicalNoiseParams, seed: u64) {
    let mut rng = rng_from_seed(seed);
    let (n_cells, n_genes) = x.dim();
    // 1. Outlier genes.
    let outlier = LogNormal::new(params.outlier_mu, params.outlier_sigma).expect("validated σ ≥ 0");
    for g in 0..n_genes {
        let is_outlier = rng.gen::<f64>() < params.outlier_prob;
        let factor = outlier.sample(&mut rng);
        if is_outlier {
            x.column_mut(g).mapv_inplace(|v| v * factor);
        }
    }
    // 2. Library size.
    let library = LogNormal::new(params.library_mu, params.library_sigma).expect("validated σ ≥ 0");
    for mut row in x.rows_mut() {
        let target = library.sample(&mut rng);
        let total: f64 = row.sum();
        if total > 0.0 {
            let s = target / total;
            row.mapv_inplace(|v| v * s);
        }
    }
    // 3. Dropout.
    let mut logs: Vec<f64> = x.iter().map(|&v| v.ln_1p()).collect();
    let midpoint = percentile_linear(&mut logs, params.dropout_q);
    for v in x.iter_mut() {
        let keep = 1.0 / (1.0 + (-params.dropout_k * (v.ln_1p() - midpoint)).exp());
        if rng.gen::<f64>() >= keep {
            *v = 0.0;
        }
    }
    // 4. UMI counts.
    for v in x.iter_mut() {
        if *v > 0.0 {
            *v = match Poisson::new(*v) {
                Ok(p) => p.sample(&mut rng),
                Err(_) => 0.0,
            };
        }
    }
    debug_assert_eq!(x.nrows(), n_cells);
}

/// The reference generator's wrapper around the noise model (MapPFN `_simulate_sergio`): genes whose
/// total over all cells is zero are removed before the noise and re-inserted as zeros afterwards; if
/// every gene is zero or **any cell has a zero total**, the condition is unusable and `None` is returned
/// (the reference silently drops such conditions). Input and output are cells × genes.
pub fn apply_condition_noise(
    clean: &Array2<f64>,
    params: &TechnicalNoiseParams,
    seed: u64,
) -> Option<Array2<f64>> {
    let (n_cells, n_genes) = clean.dim();
    let gene_nonzero: Vec<usize> = (0..n_genes)
        .filter(|&g| clean.column(g).sum() > 0.0)
        .collect();
    if gene_nonzero.is_empty() || n_cells == 0 || clean.rows().into_iter().any(|r| r.sum() <= 0.0) {
        return None;
    }
    let mut sub = clean.select(ndarray::Axis(1), &gene_nonzero);
    apply_noise_in_place(&mut sub, params, seed);
    let mut out = Array2::<f64>::zeros((n_cells, n_genes));
    for (k, &g) in gene_nonzero.iter().enumerate() {
        out.column_mut(g).assign(&sub.column(k));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy_linear_interpolation() {
        // numpy.percentile([1, 2, 3, 4, 10], q) for q = 0, 30, 60, 87.5, 100 (values from numpy 1.26).
        let data = [4.0, 1.0, 10.0, 3.0, 2.0];
        for (q, expected) in [
            (0.0, 1.0),
            (30.0, 2.2),
            (60.0, 3.4),
            (87.5, 7.0),
            (100.0, 10.0),
        ] {
            let got = percentile_linear(&mut data.clone(), q);
            assert!((got - expected).abs() < 1e-12, "q={q}: {got} vs {expected}");
        }
    }

    #[test]
    fn all_zero_cell_discards_the_condition_and_zero_genes_stay_zero() {
        let params = TechnicalNoiseParams {
            outlier_prob: 0.01,
            outlier_mu: 2.0,
            outlier_sigma: 1.0,
            library_mu: 5.0,
            library_sigma: 0.5,
            dropout_k: 8.0,
            dropout_q: 60.0,
        };
        let mut x = Array2::<f64>::from_elem((20, 4), 2.0);
        x.column_mut(2).fill(0.0);
        let y = apply_condition_noise(&x, &params, 1).expect("all cells have positive totals");
        assert!(y.column(2).iter().all(|&v| v == 0.0));
        assert!(
            y.iter().all(|&v| v >= 0.0 && v.fract() == 0.0),
            "counts are non-negative integers"
        );
        x.row_mut(7).fill(0.0);
        assert!(apply_condition_noise(&x, &params, 1).is_none());
    }

    #[test]
    fn library_size_sets_the_expected_count_depth() {
        // No outliers, (almost) no dropout (q = 0 and a very steep logistic keep everything above the minimum):
        // mean cell total ≈ E[LogNormal(μ, σ)] = exp(μ + σ²/2).
        let params = TechnicalNoiseParams {
            outlier_prob: 0.0,
            outlier_mu: 0.0,
            outlier_sigma: 1.0,
            library_mu: 4.0,
            library_sigma: 0.3,
            dropout_k: 50.0,
            dropout_q: 0.0,
        };
        let x =
            Array2::<f64>::from_shape_fn((4000, 5), |(i, g)| 1.0 + ((i * 7 + g * 3) % 5) as f64);
        let y = apply_condition_noise(&x, &params, 3).unwrap();
        let mean_total = y.sum() / 4000.0;
        let expected = (4.0f64 + 0.045).exp();
        assert!(
            (mean_total / expected - 1.0).abs() < 0.03,
            "{mean_total} vs {expected}"
        );
    }
}
