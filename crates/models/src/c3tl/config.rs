//! Configuration of C3TL: the vocabulary (genes, perturbations, contexts), the network sizes and the
//! training hyper-parameters, with the named presets `tiny` (tests), `small` (CPU: one hidden layer of
//! 128 in the encoders and the decoder, latent 64) and `paper` (the
//! spec's suggested start, peers.md §1.4; the paper does not give its sizes).

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// The named sizes of [`C3tlConfig::preset`].
pub const PRESETS: &[&str] = &["tiny", "small", "paper"];

/// Element type of the network's matrix products ([`C3tlConfig::matmul_precision`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatmulPrecision {
    /// float32 throughout (the default).
    #[default]
    F32,
    /// bfloat16 operands with float32 accumulation for every linear layer (weights, optimiser and loss
    /// stay float32): about 3× the throughput on CPUs with AVX-512 BF16, ≈ 3e-3 relative error per
    /// product.
    Bf16,
}

impl MatmulPrecision {
    /// Parses `f32` / `float32` or `bf16` / `bfloat16`.
    pub fn parse(s: &str) -> Result<MatmulPrecision> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "float32" | "fp32" => Ok(MatmulPrecision::F32),
            "bf16" | "bfloat16" => Ok(MatmulPrecision::Bf16),
            other => Err(ModelError::Config(format!(
                "unknown matrix-product precision `{other}`; use f32 or bf16"
            ))),
        }
    }

    /// The libtorch element type of the products.
    pub fn kind(self) -> tch::Kind {
        match self {
            MatmulPrecision::F32 => tch::Kind::Float,
            MatmulPrecision::Bf16 => tch::Kind::BFloat16,
        }
    }

    /// `f32` or `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            MatmulPrecision::F32 => "f32",
            MatmulPrecision::Bf16 => "bf16",
        }
    }
}

/// Everything that determines a C3TL model besides its weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct C3tlConfig {
    /// Name of the size preset it was built from.
    pub preset: String,
    /// Gene names, the columns of every delta.
    pub genes: Vec<String>,
    /// Perturbation labels with a one-hot slot (the perturbation identities z_p).
    pub perturbations: Vec<String>,
    /// Context names with a one-hot slot (the context identities ψ_c).
    pub contexts: Vec<String>,
    /// Hidden widths of both encoders Θ_z and Θ_ψ (input `d + one-hot` → hidden… → `latent`).
    pub encoder_hidden: Vec<usize>,
    /// Dimension q of the perturbation and context latents.
    pub latent: usize,
    /// Hidden widths of the decoder Γ (`latent` → hidden… → d).
    pub decoder_hidden: Vec<usize>,
    /// Adam learning rate (constant).
    pub lr: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Most epochs (full passes over the table) of one fit.
    pub max_epochs: u64,
    /// Stop after this many epochs without a lower validation MSE (the best epoch's weights are kept).
    pub patience: u64,
    /// Share of the training entries held out for early stopping when the caller gives no validation
    /// entries (`Predictor::fit`).
    pub auto_val_fraction: f64,
    /// Beyond the paper (off by default): add the perturbation's mean observed delta over its other
    /// contexts (leave-one-out, like ẑ_p) to the decoder's output, so Γ(ẑ_p + ψ̂_c) only learns the
    /// context-specific correction. Carries each perturbation's identity past the additive latent. The
    /// decoder's last layer then starts at zero, so training starts from the perturbation mean.
    #[serde(default)]
    pub perturbation_skip: bool,
    /// Beyond the paper (0 = off, the default): in each training epoch every context latent ψ̂_c is
    /// averaged over a random subset of this many of the context's other entries instead of all of them,
    /// so that training sees context latents as noisy as the held-out context's, which has only its few
    /// adaptation entries (the spec's "randomly mask entries", peers.md §1.4). Contexts with no more
    /// entries than this are averaged over all of them. Must be 0 or at least 2.
    #[serde(default)]
    pub context_subsample: usize,
    /// Beyond the paper: the element type of the matrix products (default float32; `bf16` trades
    /// ≈ 3e-3 relative error per product for speed, see [`MatmulPrecision::Bf16`]).
    #[serde(default)]
    pub matmul_precision: MatmulPrecision,
    /// Entries of the stored training table (0 before fitting); fixes the shapes of the stored table.
    pub table_entries: usize,
    /// Seed of the initial weights and of the automatic validation choice of the last fit.
    pub seed: u64,
}

impl C3tlConfig {
    /// The preset `name` for the given genes, perturbations and contexts.
    pub fn preset(
        name: &str,
        genes: Vec<String>,
        perturbations: Vec<String>,
        contexts: Vec<String>,
    ) -> Result<C3tlConfig> {
        let (encoder_hidden, latent, decoder_hidden, lr, max_epochs, patience) = match name {
            "tiny" => (vec![32], 16, vec![32], 3e-3, 400, 40),
            "small" => (vec![128], 64, vec![128], 1e-3, 2000, 50),
            "paper" => (vec![512, 256], 128, vec![256, 512], 1e-3, 2000, 50),
            other => {
                return Err(ModelError::Config(format!(
                    "C3TL has no size `{other}`; use one of {}",
                    PRESETS.join(", ")
                )))
            }
        };
        let config = C3tlConfig {
            preset: name.to_string(),
            genes,
            perturbations,
            contexts,
            encoder_hidden,
            latent,
            decoder_hidden,
            lr,
            weight_decay: 1e-5,
            max_epochs,
            patience,
            auto_val_fraction: 0.05,
            perturbation_skip: false,
            context_subsample: 0,
            matmul_precision: MatmulPrecision::F32,
            table_entries: 0,
            seed: 0,
        };
        config.validate()?;
        Ok(config)
    }

    /// Number of genes d.
    pub fn n_genes(&self) -> usize {
        self.genes.len()
    }

    /// Checks the configuration, naming the problem.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::Config(m));
        if self.genes.is_empty() {
            return bad("C3TL needs at least one gene".into());
        }
        if self.perturbations.is_empty() {
            return bad(
                "C3TL needs at least one perturbation besides control; the data has none".into(),
            );
        }
        if self.contexts.is_empty() {
            return bad("C3TL needs at least one context".into());
        }
        if self.latent == 0 || self.encoder_hidden.contains(&0) || self.decoder_hidden.contains(&0)
        {
            return bad("C3TL layer widths and the latent dimension must be at least 1".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!(
                "the learning rate must be a positive number, got {}",
                self.lr
            ));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad(format!(
                "the weight decay must be ≥ 0, got {}",
                self.weight_decay
            ));
        }
        if self.max_epochs == 0 || self.patience == 0 {
            return bad("max_epochs and patience must be at least 1".into());
        }
        if self.context_subsample == 1 {
            return bad(
                "context_subsample must be 0 (off) or at least 2: a context latent averaged over one \
                 entry leaves no other entry for that entry's own leave-one-out prediction"
                    .into(),
            );
        }
        if !(0.0..0.5).contains(&self.auto_val_fraction) {
            return bad(format!(
                "auto_val_fraction {} must lie in [0, 0.5)",
                self.auto_val_fraction
            ));
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
    fn presets_grow_and_unknown_names_are_refused() {
        let make = |p| C3tlConfig::preset(p, names("g", 5), names("p", 3), names("c", 2));
        let (tiny, small, paper) = (
            make("tiny").unwrap(),
            make("small").unwrap(),
            make("paper").unwrap(),
        );
        assert!(tiny.latent < small.latent && small.latent < paper.latent);
        assert_eq!(paper.encoder_hidden, vec![512, 256]);
        let err = make("huge").unwrap_err().to_string();
        assert!(err.contains("tiny, small, paper"), "{err}");
        let empty = C3tlConfig::preset("tiny", names("g", 5), vec![], names("c", 2));
        assert!(empty.is_err());
    }
}
