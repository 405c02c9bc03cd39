//! Configuration of CellTarNet (peers.md §1.3): the gene panel and perturbation vocabulary, the sizes of the
//! context encoder and of the autoregressive flow, the loss weights and the training and sampling
//! settings, with the named presets `tiny` (tests, seconds), `small` (2-core CPU) and `paper` (the spec's
//! suggested start on a GPU; the paper does not give its sizes).
//!
//! Choices the paper leaves open are fields with documented defaults: gene patches (`patch`), blocks N,
//! layers K, width, heads, the loss weights λ_denoise / λ_cont, the InfoNCE temperature and number of
//! negatives, the prior's k / k′ / rank, the flow's noise augmentation σ and the guidance scale.

use serde::{Deserialize, Serialize};

use super::flow::Decoding;

use crate::error::{ModelError, Result};

/// The named sizes of [`CellTarNetConfig::preset`].
pub const PRESETS: &[&str] = &["tiny", "small", "paper"];

/// The gene-network attention prior ("L+S", peers.md §1.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorConfig {
    /// Whether the flow's causal self-attention is restricted by the prior (`false`: plain causal
    /// attention, the `--no-prior` ablation).
    pub enabled: bool,
    /// S part: the k genes of largest |Pearson correlation| per gene (default 20, as GEARS).
    pub top_k: usize,
    /// L part: the k′ genes of largest |C_r| per gene, C_r the rank-r approximation of the correlation
    /// matrix (default 10).
    pub top_k_low_rank: usize,
    /// Rank r of the low-rank approximation (default 10; the eigenvalues of largest magnitude).
    pub rank: usize,
}

impl Default for PriorConfig {
    fn default() -> Self {
        PriorConfig {
            enabled: true,
            top_k: 20,
            top_k_low_rank: 10,
            rank: 10,
        }
    }
}

/// Everything that determines a CellTarNet model besides its weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellTarNetConfig {
    /// Name of the size preset it was built from.
    pub preset: String,
    /// Gene names: the modelled dimensions, in order.
    pub genes: Vec<String>,
    /// Single-gene perturbation targets with a slot of the multi-hot perturbation vector (a double is
    /// the 2-hot of its two targets).
    pub perturbations: Vec<String>,
    /// Genes per flow token (1: one token per gene, as the paper; larger: gene patches, far fewer
    /// sequential sampling steps). Default 1 (`tiny`), 4 (`small`), 8 (`paper`).
    pub patch: usize,
    /// Model width d of the context encoder and the flow.
    pub width: usize,
    /// Attention heads (width must be a multiple).
    pub heads: usize,
    /// Flow blocks N (permutations alternate identity / reversal).
    pub blocks: usize,
    /// Transformer layers K per flow block (cross-attention, prior-masked causal self-attention, MLP).
    pub layers_per_block: usize,
    /// Layers of the context encoder (full self-attention over CLS, control-cell and perturbation tokens).
    pub context_layers: usize,
    /// MLP expansion factor.
    pub mlp_ratio: usize,
    /// The gene-network attention prior.
    pub prior: PriorConfig,
    /// Scale of the control-cell noise augmentation: x̃_pre = x_pre + s·ε, ε ~ N(0, diag(Σ)), Σ the
    /// per-gene variance of the training expression (the paper: s = 1).
    pub control_noise: f64,
    /// Whether the control cell is noise-augmented at inference too (default true: as in training).
    pub control_noise_at_inference: bool,
    /// TARFlow noise augmentation σ of the modelled cells, in units of each gene's standard deviation
    /// (default 0.05); it also sets the Tweedie denoising step of samples.
    pub flow_noise: f64,
    /// Whether samples get the one-step Tweedie denoising x ← x + σ²∇ₓ log p(x) (TARFlow's post-hoc
    /// score step, η = batch·D·σ² on the per-dimension-mean loss).
    pub tweedie: bool,
    /// Weight λ_denoise of the auxiliary NLL of the clean control cell (default 0.5).
    pub lambda_denoise: f64,
    /// Weight λ_cont of the InfoNCE loss (default 0.1; 0 disables it and its extra flow passes).
    pub lambda_cont: f64,
    /// InfoNCE temperature τ (default 0.1).
    pub temperature: f64,
    /// Negatives of each type per anchor (other contexts; other post cells).
    pub negatives: usize,
    /// Output width of the projection head g_ψ (2-layer MLP over the flattened latent code).
    pub projection_dim: usize,
    /// Probability that a training example's perturbation vector is dropped (zeroed) for classifier-free
    /// guidance (default 0.1).
    pub label_dropout: f64,
    /// Classifier-free guidance scale g on (a, b): a ← a + g(a − a_uncond) (0: no guidance, one pass).
    pub guidance: f64,
    /// Examples (perturbed cells with a control cell) per micro-batch.
    pub batch_size: usize,
    /// Default length of a fit in micro-batches (when the caller gives no budget).
    pub train_steps: u64,
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Seed of the initial weights.
    pub seed: u64,
    /// How sampling decodes the flow (cached by default): an inference choice, not recorded in
    /// checkpoints.
    #[serde(skip)]
    pub decoding: Decoding,
}

impl CellTarNetConfig {
    /// The preset `name` for the given genes and single-gene perturbation targets.
    pub fn preset(
        name: &str,
        genes: Vec<String>,
        perturbations: Vec<String>,
    ) -> Result<CellTarNetConfig> {
        // (patch, width, heads, blocks, layers, ctx layers, negatives, proj, batch, steps, lr)
        let p = match name {
            "tiny" => (1, 32, 2, 2, 1, 1, 2, 16, 16, 300, 2e-3),
            "small" => (4, 64, 4, 4, 2, 2, 4, 64, 32, 1500, 1e-3),
            "paper" => (8, 512, 8, 8, 4, 4, 16, 128, 64, 100_000, 1e-4),
            other => {
                return Err(ModelError::Config(format!(
                    "CellTarNet has no size `{other}`; use one of {}",
                    PRESETS.join(", ")
                )))
            }
        };
        let config = CellTarNetConfig {
            preset: name.to_string(),
            genes,
            perturbations,
            patch: p.0,
            width: p.1,
            heads: p.2,
            blocks: p.3,
            layers_per_block: p.4,
            context_layers: p.5,
            mlp_ratio: 4,
            prior: PriorConfig::default(),
            control_noise: 1.0,
            control_noise_at_inference: true,
            flow_noise: 0.05,
            tweedie: true,
            lambda_denoise: 0.5,
            lambda_cont: 0.1,
            temperature: 0.1,
            negatives: p.6,
            projection_dim: p.7,
            label_dropout: 0.1,
            guidance: 0.0,
            batch_size: p.8,
            train_steps: p.9,
            lr: p.10,
            weight_decay: 1e-4,
            seed: 0,
            decoding: Decoding::Cached,
        };
        config.validate()?;
        Ok(config)
    }

    /// Number of genes G.
    pub fn n_genes(&self) -> usize {
        self.genes.len()
    }

    /// Number of flow tokens T = ⌈G / patch⌉ (the last patch is zero-padded).
    pub fn n_tokens(&self) -> usize {
        self.n_genes().div_ceil(self.patch.max(1))
    }

    /// Checks the configuration, naming the problem.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::Config(m));
        if self.genes.is_empty() {
            return bad("CellTarNet needs at least one gene".into());
        }
        if self.patch == 0 || self.width == 0 || self.heads == 0 || self.blocks == 0 {
            return bad("patch, width, heads and blocks must be at least 1".into());
        }
        if self.width % self.heads != 0 {
            return bad(format!(
                "width {} is not a multiple of heads {}",
                self.width, self.heads
            ));
        }
        if self.layers_per_block == 0 || self.mlp_ratio == 0 || self.projection_dim == 0 {
            return bad("layers_per_block, mlp_ratio and projection_dim must be at least 1".into());
        }
        if self.n_tokens() < 2 {
            return bad(format!(
                "{} genes in patches of {} make one token; an autoregressive flow needs at least two \
                 (use a smaller patch)",
                self.n_genes(),
                self.patch
            ));
        }
        let nonneg = [
            ("control_noise", self.control_noise),
            ("flow_noise", self.flow_noise),
            ("lambda_denoise", self.lambda_denoise),
            ("lambda_cont", self.lambda_cont),
            ("weight_decay", self.weight_decay),
        ];
        for (name, v) in nonneg {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(format!("{name} must be a finite number ≥ 0, got {v}"));
            }
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return bad(format!("temperature must be > 0, got {}", self.temperature));
        }
        if !(0.0..1.0).contains(&self.label_dropout) {
            return bad(format!(
                "label_dropout must lie in [0, 1), got {}",
                self.label_dropout
            ));
        }
        if !self.guidance.is_finite() {
            return bad(format!("guidance must be finite, got {}", self.guidance));
        }
        if self.batch_size < 2 {
            return bad("batch_size must be at least 2 (InfoNCE needs other examples)".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("the learning rate must be > 0, got {}", self.lr));
        }
        if self.prior.enabled && (self.prior.top_k == 0 && self.prior.top_k_low_rank == 0) {
            return bad(
                "the prior needs top_k or top_k_low_rank ≥ 1 (or prior.enabled = false)".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    #[test]
    fn presets_grow_and_bad_settings_are_refused() {
        let make = |p| CellTarNetConfig::preset(p, names("g", 40), names("p", 3));
        let (tiny, small, paper) = (
            make("tiny").unwrap(),
            make("small").unwrap(),
            make("paper").unwrap(),
        );
        assert!(tiny.width < small.width && small.width < paper.width);
        assert_eq!(small.n_tokens(), 10);
        let err = make("huge").unwrap_err().to_string();
        assert!(err.contains("tiny, small, paper"), "{err}");
        let mut c = tiny.clone();
        c.heads = 3;
        assert!(c.validate().unwrap_err().to_string().contains("multiple"));
        let mut c = tiny.clone();
        c.patch = 40;
        assert!(c.validate().unwrap_err().to_string().contains("two"));
        let mut c = tiny;
        c.label_dropout = 1.0;
        assert!(c.validate().is_err());
    }
}
