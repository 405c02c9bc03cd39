//! Linear structural causal model prior (MapPFN spec §5): random Erdős–Rényi DAGs with signed weights,
//! one-pass variance normalisation, observational data and hard interventions `do(x_j := c)`, each
//! condition standardised (no centring) and clipped separately.

use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::StandardNormal;

use cellshift_data::{CellAnnotations, PerturbationData};

use crate::error::{check_positive, check_range, PriorError};
use crate::linalg::Lu;
use crate::rng::{derive_seed, rng_from_seed, uniform_f64};

/// Label of the observational (control) condition in every data set this crate produces.
pub const CONTROL_LABEL: &str = "control";

/// Ridge added to the diagonal of `I − W` before solving for the samples (spec §5.4).
const SOLVE_RIDGE: f64 = 1e-8;
/// Raw samples are clipped to ±this before standardisation.
const RAW_CLIP: f64 = 1e6;
/// Columns with a smaller population standard deviation are not rescaled.
const MIN_STD: f64 = 1e-8;

/// Parameters of the linear-SCM prior. `Default` gives the reference configuration (d = 20, n = 500,
/// unpaired as in the authors' data config).
#[derive(Clone, Debug, PartialEq)]
pub struct LinearScmConfig {
    /// Number of variables (genes) `d`.
    pub n_nodes: usize,
    /// Probability of each upper-triangle edge of the permuted DAG.
    pub edge_prob: f64,
    /// Range of the edge-weight magnitudes before normalisation (`|w| ~ U(low, high)`).
    pub weight_range: (f64, f64),
    /// Standard deviation of the exogenous Gaussian noise.
    pub noise_std: f64,
    /// Samples (cells) per condition.
    pub n_samples: usize,
    /// Range of the intervention value `c ~ U(low, high)`.
    pub intervention_range: (f64, f64),
    /// Number of single-node interventions per SCM; `None` = one per node (reference).
    pub n_interventions: Option<usize>,
    /// Paired ("counterfactual") mode: all interventional sets reuse one noise draw. The reference data
    /// config uses unpaired data (`false`).
    pub paired: bool,
    /// Standardised values are clipped to `[−clip, clip]`.
    pub clip: f64,
}

impl Default for LinearScmConfig {
    fn default() -> Self {
        LinearScmConfig {
            n_nodes: 20,
            edge_prob: 0.5,
            weight_range: (0.5, 2.0),
            noise_std: 1.0,
            n_samples: 500,
            intervention_range: (0.5, 1.5),
            n_interventions: None,
            paired: false,
            clip: 10.0,
        }
    }
}

impl LinearScmConfig {
    /// Checks every parameter; errors name the parameter and the fix.
    pub fn validate(&self) -> Result<(), PriorError> {
        if self.n_nodes == 0 {
            return Err(PriorError::invalid(
                "n_nodes",
                0,
                "an SCM needs at least one variable",
                "use n_nodes ≥ 1",
            ));
        }
        if !(0.0..=1.0).contains(&self.edge_prob) {
            return Err(PriorError::invalid(
                "edge_prob",
                self.edge_prob,
                "is a probability",
                "use a value in [0, 1] (reference 0.5)",
            ));
        }
        check_range(
            "weight_range",
            self.weight_range,
            "give [low, high] with low ≤ high (reference [0.5, 2.0])",
        )?;
        check_positive(
            "noise_std",
            self.noise_std,
            "use a positive noise standard deviation (reference 1.0)",
        )?;
        if self.n_samples < 2 {
            return Err(PriorError::invalid(
                "n_samples",
                self.n_samples,
                "standardisation needs at least 2 samples per condition",
                "use n_samples ≥ 2 (reference 500)",
            ));
        }
        check_range(
            "intervention_range",
            self.intervention_range,
            "give [low, high] (reference [0.5, 1.5])",
        )?;
        check_positive(
            "clip",
            self.clip,
            "use a positive clipping bound (reference 10)",
        )?;
        if let Some(k) = self.n_interventions {
            if k > self.n_nodes {
                return Err(PriorError::TooManyExperiments {
                    requested: k,
                    genes: self.n_nodes,
                });
            }
        }
        Ok(())
    }

    /// Gene (variable) names `X00`, `X01`, … padded to the width of `n_nodes − 1`.
    pub fn gene_names(&self) -> Vec<String> {
        let width = format!("{}", self.n_nodes.saturating_sub(1)).len().max(2);
        (0..self.n_nodes).map(|j| format!("X{j:0width$}")).collect()
    }
}

/// One sampled linear SCM `x = W x + ε` (`W[a, b] ≠ 0` ⇔ `b` is a parent of `a`), after normalisation.
#[derive(Clone, Debug)]
pub struct LinearScm {
    /// Number of variables.
    pub d: usize,
    /// Row-major `d × d` weight matrix after the `D^{-1/2}` normalisation.
    pub weights: Vec<f64>,
    /// Row-major weight matrix before normalisation.
    pub raw_weights: Vec<f64>,
    /// Adjacency `A[a, b] = 1` ⇔ `b → a`, row-major.
    pub adjacency: Vec<u8>,
}

impl LinearScm {
    /// Samples a DAG and its weights from `rng` (spec §5.2): a random node permutation, upper-triangle
    /// edges with probability `edge_prob`, magnitudes `U(weight_range)` with random signs, then each row
    /// `a` divided by `sqrt((T Tᵀ)_aa)`, `T = (I − W)⁻¹`.
    pub fn sample<R: Rng>(cfg: &LinearScmConfig, rng: &mut R) -> LinearScm {
        let d = cfg.n_nodes;
        let mut perm: Vec<usize> = (0..d).collect();
        perm.shuffle(rng);
        let mut adjacency = vec![0u8; d * d];
        for i in 0..d {
            for j in i + 1..d {
                if rng.gen::<f64>() < cfg.edge_prob {
                    adjacency[perm[i] * d + perm[j]] = 1;
                }
            }
        }
        let magnitudes: Vec<f64> = (0..d * d)
            .map(|_| uniform_f64(rng, cfg.weight_range.0, cfg.weight_range.1))
            .collect();
        let signs: Vec<f64> = (0..d * d)
            .map(|_| if rng.gen::<bool>() { 1.0 } else { -1.0 })
            .collect();
        let raw_weights: Vec<f64> = (0..d * d)
            .map(|k| magnitudes[k] * signs[k] * f64::from(adjacency[k]))
            .collect();
        Self::from_raw_weights(d, raw_weights)
    }

    /// Builds an SCM from a row-major DAG weight matrix (`W[a, b] ≠ 0` ⇔ `b → a`) and applies the
    /// single-pass normalisation `W ← D^{-1/2} W`, `D = diag(T Tᵀ)`, `T = (I − W)⁻¹`: row `a` is divided
    /// by the standard deviation `x_a` has before normalisation (unit noise).
    pub fn from_raw_weights(d: usize, raw_weights: Vec<f64>) -> LinearScm {
        assert_eq!(raw_weights.len(), d * d, "weight matrix must be d × d");
        let adjacency: Vec<u8> = raw_weights.iter().map(|&w| u8::from(w != 0.0)).collect();
        let transfer = transfer_matrix(&raw_weights, d);
        let mut weights = raw_weights.clone();
        for a in 0..d {
            let var: f64 = (0..d).map(|b| transfer[a * d + b].powi(2)).sum();
            let inv_std = 1.0 / var.sqrt();
            for b in 0..d {
                weights[a * d + b] *= inv_std;
            }
        }
        LinearScm {
            d,
            weights,
            raw_weights,
            adjacency,
        }
    }

    /// Covariance `T Tᵀ` (unit noise) of the observational distribution of the normalised SCM.
    pub fn observational_covariance(&self) -> Vec<f64> {
        let d = self.d;
        let t = transfer_matrix(&self.weights, d);
        let mut cov = vec![0.0; d * d];
        for a in 0..d {
            for b in 0..d {
                cov[a * d + b] = (0..d).map(|k| t[a * d + k] * t[b * d + k]).sum();
            }
        }
        cov
    }

    /// Draws `n` samples (row-major `n × d`, not yet standardised): `E ~ N(0, σ²)`, column `target` of
    /// `E` replaced by `value` and row `target` of `W` zeroed when intervening, then
    /// `(I − W + 1e-8 I) x = e` solved per sample and clipped to ±1e6.
    pub fn sample_condition<R: Rng>(
        &self,
        n: usize,
        noise_std: f64,
        intervention: Option<(usize, f64)>,
        rng: &mut R,
    ) -> Vec<f64> {
        let d = self.d;
        let mut system = vec![0.0; d * d];
        for a in 0..d {
            for b in 0..d {
                let w = match intervention {
                    Some((j, _)) if j == a => 0.0,
                    _ => self.weights[a * d + b],
                };
                system[a * d + b] = if a == b { 1.0 + SOLVE_RIDGE } else { 0.0 } - w;
            }
        }
        let lu = Lu::new(&system, d).expect("I − W of a DAG is unit triangular up to permutation");
        let mut out = vec![0.0; n * d];
        let mut work = vec![0.0; d];
        for row in out.chunks_exact_mut(d) {
            for v in row.iter_mut() {
                *v = noise_std * rng.sample::<f64, _>(StandardNormal);
            }
            if let Some((j, c)) = intervention {
                row[j] = c;
            }
            lu.solve_in_place(row, &mut work);
            for v in row.iter_mut() {
                *v = v.clamp(-RAW_CLIP, RAW_CLIP);
            }
        }
        out
    }
}

/// `(I − W)⁻¹` for a DAG weight matrix.
fn transfer_matrix(weights: &[f64], d: usize) -> Vec<f64> {
    let mut m = vec![0.0; d * d];
    for a in 0..d {
        for b in 0..d {
            m[a * d + b] = if a == b { 1.0 } else { 0.0 } - weights[a * d + b];
        }
    }
    Lu::new(&m, d)
        .expect("I − W of a DAG is invertible")
        .inverse()
}

/// Per-condition standardisation (spec §5.6): each column divided by its population standard deviation
/// (no centring; std < 1e-8 → 1), then clipped to `[−clip, clip]`. `x` is row-major `n × d`.
pub fn standardize_condition(x: &mut [f64], d: usize, clip: f64) {
    let n = x.len() / d;
    for j in 0..d {
        let mean = (0..n).map(|i| x[i * d + j]).sum::<f64>() / n as f64;
        let var = (0..n).map(|i| (x[i * d + j] - mean).powi(2)).sum::<f64>() / n as f64;
        let std = var.sqrt();
        let scale = if std < MIN_STD { 1.0 } else { 1.0 / std };
        for i in 0..n {
            x[i * d + j] = (x[i * d + j] * scale).clamp(-clip, clip);
        }
    }
}

/// The linear-SCM prior: one SCM per data set.
#[derive(Clone, Debug, Default)]
pub struct LinearScmPrior {
    /// The configuration used by [`crate::stream::DatasetSource::sample`].
    pub config: LinearScmConfig,
}

/// Sub-stream ids under a context seed.
const STREAM_GRAPH: u64 = 0;
const STREAM_SEEDS: u64 = 1;

impl LinearScmPrior {
    /// Samples one SCM from `seed` and returns its observational set (treatment `control`, value 0) and
    /// one interventional set per node (or `n_interventions` distinct random nodes), labelled with the
    /// node's name and carrying the intervention value `c`. The context is named `scm_<seed>`.
    pub fn sample_dataset(
        cfg: &LinearScmConfig,
        seed: u64,
    ) -> Result<PerturbationData, PriorError> {
        Self::sample_named(cfg, seed, &format!("scm_{seed}"))
    }

    /// As [`LinearScmPrior::sample_dataset`] with an explicit context name.
    pub fn sample_named(
        cfg: &LinearScmConfig,
        seed: u64,
        context: &str,
    ) -> Result<PerturbationData, PriorError> {
        cfg.validate()?;
        let d = cfg.n_nodes;
        let n = cfg.n_samples;
        let scm = LinearScm::sample(cfg, &mut rng_from_seed(derive_seed(seed, STREAM_GRAPH)));
        // Per-context seeds (reference: integers below 2^31 from a second generator).
        let mut seeds = rng_from_seed(derive_seed(seed, STREAM_SEEDS));
        let s_obs = u64::from(seeds.gen::<u32>() >> 1);
        let s_int = u64::from(seeds.gen::<u32>() >> 1);
        let s_trt = u64::from(seeds.gen::<u32>() >> 1);
        let targets: Vec<usize> = match cfg.n_interventions {
            None => (0..d).collect(),
            Some(k) => {
                let mut t = rand::seq::index::sample(&mut seeds, d, k).into_vec();
                t.sort_unstable();
                t
            }
        };
        let genes = cfg.gene_names();
        let n_conditions = 1 + targets.len();
        let mut x = Array2::<f32>::zeros((n_conditions * n, d));
        let mut labels = Vec::with_capacity(n_conditions * n);
        let mut values = Vec::with_capacity(n_conditions * n);
        let mut names = Vec::with_capacity(n_conditions * n);
        let mut write = |cond: usize, label: &str, value: f32, data: &[f64]| {
            for i in 0..n {
                for j in 0..d {
                    x[[cond * n + i, j]] = data[i * d + j] as f32;
                }
                labels.push(label.to_string());
                values.push(value);
                names.push(format!("{context}:{label}:{i}"));
            }
        };
        let mut obs = scm.sample_condition(n, cfg.noise_std, None, &mut rng_from_seed(s_obs));
        standardize_condition(&mut obs, d, cfg.clip);
        write(0, CONTROL_LABEL, 0.0, &obs);
        for (k, &j) in targets.iter().enumerate() {
            let c = uniform_f64(
                &mut rng_from_seed(s_trt + j as u64 + 1),
                cfg.intervention_range.0,
                cfg.intervention_range.1,
            );
            let noise_seed = if cfg.paired {
                s_int
            } else {
                s_int + j as u64 + 1
            };
            let mut data = scm.sample_condition(
                n,
                cfg.noise_std,
                Some((j, c)),
                &mut rng_from_seed(noise_seed),
            );
            standardize_condition(&mut data, d, cfg.clip);
            write(k + 1, &genes[j], c as f32, &data);
        }
        let annotations = CellAnnotations {
            cell_names: names,
            contexts: vec![context.to_string(); n_conditions * n],
            treatment_labels: labels,
            treatment_values: values,
        };
        Ok(PerturbationData::new(genes, x, annotations, CONTROL_LABEL)?)
    }
}
