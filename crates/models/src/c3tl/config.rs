//! Configuration of C3TL: the vocabulary (genes, perturbations, contexts), the network sizes and the
//! training hyper-parameters, with the named presets `tiny` (tests), `small` (CPU: one hidden layer of
//! 128 in the encoders and the decoder, latent 64) and `paper` (the
//! spec's suggested start, peers.md §1.4; the paper does not give its sizes).

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// The named sizes of [`C3tlConfig::preset`].
pub const PRESETS: &[&str] = &["tiny", "small", "paper"];

/// Everything that determines a C3TL model besides its weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// context-specific correction. Carries each perturbation's identity past the additive latent.
    #[serde(default)]
    pub perturbation_skip: bool,
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
