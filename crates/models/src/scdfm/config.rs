//! scDFM configuration: named presets and the switches between the authors' code and the paper.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// How perturbations are turned into tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PerturbationMode {
    /// Genetic perturbations (their `crisper`): the perturbed genes' tokens go through the same masked gene
    /// encoder as the measured genes, and the two slots are averaged.
    Crispr,
    /// Drugs (their `BatchLabelEncoder`): a separate `perturbation_embedder` table + LayerNorm, averaged.
    Drug,
}

/// How the attention-mask rows of the gene encoder are chosen in a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskRows {
    /// The authors' code: the rows of batch element 0 are used for every cell (`mask_padded[x[0]]`).
    FirstCell,
    /// Each cell uses the mask rows of its own tokens (differs from the code only in mixed batches).
    PerCell,
}

/// The attention inside the PAD blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttentionKind {
    /// Differential attention `(A₁ − λA₂)V` (the method).
    Differential,
    /// Ablation: plain softmax attention `A₁V` (λ fixed at 0, second maps unused).
    Plain,
}

/// scDFM network and loss configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScdfmConfig {
    /// Preset name this configuration came from (informational).
    pub preset: String,
    /// Token-embedding rows (≥ vocabulary size; the authors' real model has 6000).
    pub ntoken: usize,
    /// Model width d.
    pub d_model: usize,
    /// Heads of the differential-attention blocks.
    pub nhead: usize,
    /// Heads of the gene encoder's masked cross-attention (hard-coded 8 in the authors' code).
    pub gene_encoder_nhead: usize,
    /// Number of PAD layers.
    pub nlayers: usize,
    /// Dropout during training (0.1 everywhere in the authors' runs).
    pub dropout: f64,
    /// Frequency-embedding size of the timestep embedder (256 → 128 frequencies).
    pub frequency_embedding_size: usize,
    /// Value-encoder input clamp (`max_value`).
    pub max_value: f64,
    /// Perturbation tokens: genetic or drug.
    pub perturbation: PerturbationMode,
    /// Gene-encoder mask rows: the code's batch-element-0 rule or per cell.
    pub mask_rows: MaskRows,
    /// Differential attention or the plain-attention ablation.
    pub attention: AttentionKind,
    /// Ablation: ignore the co-expression graph (every gene may attend to every vocabulary token).
    pub no_graph_mask: bool,
    /// Weight γ of the MMD term (0.5 in run.sh; 0 = the no-MMD ablation).
    pub gamma: f64,
    /// Kernel scales s of σ² = s·median (their `median_sigmas`).
    pub mmd_scales: Vec<f64>,
}

/// Named presets: a size (`tiny`, `small`, `paper`), optionally with one ablation suffix for the CPU sizes:
/// `-no-mmd` (γ = 0), `-no-graph` (no co-expression mask), `-plain-attention` (softmax instead of
/// differential attention).
pub const PRESETS: &[&str] = &[
    "tiny",
    "small",
    "paper",
    "tiny-no-mmd",
    "tiny-no-graph",
    "tiny-plain-attention",
    "small-no-mmd",
    "small-no-graph",
    "small-plain-attention",
];

/// Splits a preset name into its size and ablation suffix (`""` when none).
pub fn split_preset(name: &str) -> (&str, &str) {
    for suffix in ["-no-mmd", "-no-graph", "-plain-attention"] {
        if let Some(size) = name.strip_suffix(suffix) {
            return (size, suffix);
        }
    }
    (name, "")
}

impl ScdfmConfig {
    /// The authors' real model (effective d 512, 8 heads, 4 layers, 6000 tokens, dropout 0.1).
    pub fn paper() -> ScdfmConfig {
        ScdfmConfig {
            preset: "paper".into(),
            ntoken: 6000,
            d_model: 512,
            nhead: 8,
            gene_encoder_nhead: 8,
            nlayers: 4,
            dropout: 0.1,
            frequency_embedding_size: 256,
            max_value: 512.0,
            perturbation: PerturbationMode::Crispr,
            mask_rows: MaskRows::FirstCell,
            attention: AttentionKind::Differential,
            no_graph_mask: false,
            gamma: 0.5,
            mmd_scales: vec![0.5, 1.0, 2.0, 4.0],
        }
    }

    /// A CPU size: d 64, 4 heads, 2 layers.
    pub fn small() -> ScdfmConfig {
        ScdfmConfig {
            preset: "small".into(),
            d_model: 64,
            nhead: 4,
            nlayers: 2,
            ..ScdfmConfig::paper()
        }
    }

    /// The golden-file size: d 32, 4 heads, 2 layers, no dropout.
    pub fn tiny() -> ScdfmConfig {
        ScdfmConfig {
            preset: "tiny".into(),
            d_model: 32,
            nhead: 4,
            nlayers: 2,
            dropout: 0.0,
            ..ScdfmConfig::paper()
        }
    }

    /// A preset by name, with `ntoken` set to at least `vocab` rows.
    pub fn preset(name: &str, vocab: usize) -> Result<ScdfmConfig> {
        if !PRESETS.contains(&name) {
            return Err(ModelError::Config(format!(
                "scdfm has no size `{name}`; use one of {}",
                PRESETS.join(", ")
            )));
        }
        let (size, ablation) = split_preset(name);
        let mut c = match size {
            "tiny" => ScdfmConfig::tiny(),
            "small" => ScdfmConfig::small(),
            "paper" => ScdfmConfig::paper(),
            other => {
                return Err(ModelError::Config(format!(
                    "scdfm has no size `{other}`; use one of {}",
                    PRESETS.join(", ")
                )))
            }
        };
        if size != "paper" {
            c.ntoken = vocab;
        }
        c.ntoken = c.ntoken.max(vocab);
        c.preset = name.to_string();
        match ablation {
            "-no-mmd" => c.gamma = 0.0,
            "-no-graph" => c.no_graph_mask = true,
            "-plain-attention" => c.attention = AttentionKind::Plain,
            _ => {}
        }
        Ok(c)
    }

    /// Checks the shapes fit together, naming the problem.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::Config(m));
        if self.d_model == 0 || self.nlayers == 0 || self.ntoken == 0 {
            return bad("scdfm needs d_model, nlayers and ntoken ≥ 1".into());
        }
        for (what, h) in [
            ("nhead", self.nhead),
            ("gene_encoder_nhead", self.gene_encoder_nhead),
        ] {
            if h == 0 || self.d_model % h != 0 {
                return bad(format!(
                    "scdfm {what} = {h} must divide d_model = {}",
                    self.d_model
                ));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout {} must be in [0, 1)", self.dropout));
        }
        if self.frequency_embedding_size == 0 {
            return bad("frequency_embedding_size must be ≥ 1".into());
        }
        if !(self.gamma >= 0.0 && self.gamma.is_finite()) {
            return bad(format!("gamma {} must be ≥ 0", self.gamma));
        }
        if self.mmd_scales.is_empty() || self.mmd_scales.iter().any(|s| !(*s > 0.0)) {
            return bad("mmd_scales must be positive numbers, e.g. [0.5, 1, 2, 4]".into());
        }
        Ok(())
    }
}
