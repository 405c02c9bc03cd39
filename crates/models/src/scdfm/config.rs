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

/// How scDFM is trained and sampled (the defaults of each preset; run.sh's values in the `paper` preset).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScdfmTraining {
    /// Micro-batches (steps) of a run.
    pub steps: u64,
    /// Target cells per step (and as many control cells), all of one perturbation (48).
    pub cells_per_step: usize,
    /// Genes drawn per step (1,000; all genes when the panel is smaller).
    pub genes_per_step: usize,
    /// Adam learning rate at the start of the cosine schedule (5e-5).
    pub lr: f64,
    /// Learning rate at the end of the cosine schedule (1e-6).
    pub end_lr: f64,
    /// Checkpoint cadence in steps.
    pub checkpoint_every: u64,
    /// Top-k neighbours per gene of the co-expression graph (30).
    pub graph_topk: usize,
    /// Rank and keep edges by |correlation| (run.sh `use_negative_edge`).
    pub use_negative_edge: bool,
    /// Points of the RK4 time grid (20 → 19 steps, 76 evaluations).
    pub grid_points: usize,
    /// Cells per ODE solve at inference (their test batch, 48).
    pub predict_batch: usize,
    /// Clamp predictions at 0 (their sampler; on for non-negative data).
    pub clamp_output: bool,
    /// Genes per ODE solve at inference (`None`: all genes jointly, as their code). The CPU presets solve
    /// contiguous chunks of `genes_per_step` genes — the gene-set size seen in training — each from its own
    /// noise and the same control cell, so genes of different chunks are not jointly sampled.
    pub predict_gene_chunk: Option<usize>,
    /// Beyond the authors' code: keep only each PAD block's input during the forward pass and recompute
    /// the block in the backward pass ([`super::recompute`]). Same gradients, about one more forward of
    /// the blocks per step, a fraction of the memory: the paper shape at 1,000 genes needs it on a CPU.
    #[serde(default)]
    pub activation_checkpointing: bool,
}

impl ScdfmTraining {
    /// Defaults of a preset: `paper` = run.sh (lr 5e-5 → 1e-6, 200,000 steps); the CPU presets use a higher
    /// learning rate and a short run.
    pub fn preset(name: &str) -> ScdfmTraining {
        let name = split_preset(name).0;
        let paper = ScdfmTraining {
            steps: 200_000,
            cells_per_step: 48,
            genes_per_step: 1000,
            lr: 5e-5,
            end_lr: 1e-6,
            checkpoint_every: 5000,
            graph_topk: 30,
            use_negative_edge: true,
            grid_points: 20,
            predict_batch: 48,
            clamp_output: true,
            predict_gene_chunk: None,
            activation_checkpointing: false,
        };
        match name {
            "paper" => paper,
            "small" => ScdfmTraining {
                steps: 2000,
                genes_per_step: 128,
                lr: 5e-4,
                end_lr: 1e-5,
                checkpoint_every: 500,
                predict_gene_chunk: Some(128),
                ..paper
            },
            _ => ScdfmTraining {
                steps: 1000,
                genes_per_step: 128,
                lr: 1e-3,
                end_lr: 1e-5,
                checkpoint_every: 500,
                predict_gene_chunk: Some(128),
                ..paper
            },
        }
    }
}

/// Everything a checkpoint records about an scDFM model besides its weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScdfmSetup {
    /// The network.
    pub net: ScdfmConfig,
    /// The data's gene panel, in column order.
    pub genes: Vec<String>,
    /// Token strings: specials, then genes in code-point order.
    pub vocab: Vec<String>,
    /// Genes whose token was trained (measured genes and genes perturbed in training).
    pub trained_tokens: Vec<String>,
    /// Training and sampling settings.
    pub training: ScdfmTraining,
    /// Seed of the initial weights and of training.
    pub seed: u64,
    /// Drug mode: the compound tokens, the labels (`name@dose`) of the compounds of the training
    /// conditions in code-point order; `compounds[i]` is row `SPECIALS.len() + i` of the
    /// `perturbation_embedder` table and the empty second slot is `control` (row 3). Empty in genetic mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compounds: Vec<String>,
}
