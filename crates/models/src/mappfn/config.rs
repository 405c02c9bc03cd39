//! MapPFN model and sampler configuration with the named sizes `tiny`, `small` and `paper`.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// Architecture of a MapPFN velocity network (spec §2) for `n_genes` genes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapPfnConfig {
    /// Number of genes d (input and output width of the cells).
    pub n_genes: usize,
    /// Model width (256 in the paper); also the width of the wrapper embeddings and the time embedding.
    pub width: usize,
    /// Number of MMDiT blocks (8 in the paper).
    pub depth: usize,
    /// Attention heads (4 in the paper); `width` must be a multiple.
    pub heads: usize,
    /// MLP hidden size as a multiple of `width` (4 in the reference code, 2 in the paper's text).
    pub mlp_ratio: usize,
    /// Hidden size of the time-embedding MLP as a multiple of `width` (4 in the code).
    pub time_mlp_ratio: usize,
    /// Learned register tokens prepended to the noise stream (8 in the code).
    pub register_tokens: usize,
    /// Rows of the context-slot embedding table; K context experiments need `K + 1 ≤ max_slots` (10 ⇒ K ≤ 9).
    pub max_slots: usize,
    /// Whether the sinusoid frequencies of the time embedding are trained (reference code: yes).
    pub trainable_time_frequencies: bool,
    /// Pad the joint key/value sequence with zero "null sinks" to a multiple of this (reference parity: 64).
    pub attention_pad_to_multiple: Option<usize>,
    /// Probability that a training task is unconditional (classifier-free guidance dropout; 0.2 in the
    /// reference). A training option of this method, kept out of the shared `TrainConfig`; omitted from
    /// the stored JSON at its default so earlier checkpoints keep their configuration.
    #[serde(
        default = "default_condition_dropout",
        skip_serializing_if = "is_default_condition_dropout"
    )]
    pub condition_dropout: f64,
    /// Standardise every task by its observational set (per gene: subtract the control mean, divide by
    /// the control standard deviation floored at [`STANDARDIZE_STD_FLOOR`]) before the network sees it,
    /// and map generated cells back. Not in the reference (off by default); see `standardize.rs`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub standardize_tasks: bool,
    /// Which cells [`MapPfnConfig::standardize_tasks`] takes the per-gene location and scale from:
    /// `"control"` (default: the observational set) or `"contexts"` (the pooled cells of the task's
    /// context experiments, falling back to the control when K = 0). With `"contexts"` a network that
    /// outputs standard noise predicts the context mean's distribution, the strongest baseline on
    /// SERGIO tasks, whose populations differ from their control by trajectory noise. Not in the reference.
    #[serde(
        default = "default_standardize_reference",
        skip_serializing_if = "is_default_standardize_reference"
    )]
    pub standardize_reference: String,
    /// Intervention skip (not in the reference; off by default): for the genes the query treatment
    /// targets, the velocity is blended (learned gate, starting near the plain head) with the straight
    /// path to a learned endpoint, `(b + c·τ_j − x_j) / (1 − t)`, which with `b = c = 0` sends a knocked-out
    /// gene to zero and with `b = 0, c = 1` sets `x_j := τ_j`. Gives the direct effect of an intervention
    /// a direct route to the output instead of through the attention stack; see `skip.rs`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub intervention_skip: bool,
}

/// Smallest per-gene scale used by [`MapPfnConfig::standardize_tasks`] (log1p units), so that genes that
/// are (almost) constant in the control are not blown up.
pub const STANDARDIZE_STD_FLOOR: f32 = 0.1;

fn default_standardize_reference() -> String {
    "control".into()
}

fn is_default_standardize_reference(s: &str) -> bool {
    s == "control"
}

/// The reference's guidance dropout.
pub const DEFAULT_CONDITION_DROPOUT: f64 = 0.2;

fn default_condition_dropout() -> f64 {
    DEFAULT_CONDITION_DROPOUT
}

fn is_default_condition_dropout(p: &f64) -> bool {
    *p == DEFAULT_CONDITION_DROPOUT
}

impl MapPfnConfig {
    /// For tests: width 32, 2 blocks, 2 heads, MLP ×2, 4 registers (84,216 parameters at d = 8).
    pub fn tiny(n_genes: usize) -> MapPfnConfig {
        MapPfnConfig {
            n_genes,
            width: 32,
            depth: 2,
            heads: 2,
            mlp_ratio: 2,
            time_mlp_ratio: 2,
            register_tokens: 4,
            max_slots: 10,
            trainable_time_frequencies: true,
            attention_pad_to_multiple: None,
            condition_dropout: DEFAULT_CONDITION_DROPOUT,
            standardize_tasks: false,
            standardize_reference: default_standardize_reference(),
            intervention_skip: false,
        }
    }

    /// CPU pre-training size: width 128, 4 blocks, 4 heads, MLP ×4, 8 registers (3,345,652 parameters at d = 20).
    /// Measured on the 2-core build machine (1 intra-op thread, other jobs running): one micro-batch of 8 tasks
    /// with K = 8 and n = 64 cells per set takes ≈1.2 s (forward, backward, AdamW, EMA), so about 3,000
    /// micro-batches (24k tasks) fit in an hour; see `benches/step.rs`.
    pub fn small(n_genes: usize) -> MapPfnConfig {
        MapPfnConfig {
            n_genes,
            width: 128,
            depth: 4,
            heads: 4,
            mlp_ratio: 4,
            time_mlp_ratio: 4,
            register_tokens: 8,
            max_slots: 10,
            trainable_time_frequencies: true,
            attention_pad_to_multiple: None,
            condition_dropout: DEFAULT_CONDITION_DROPOUT,
            standardize_tasks: false,
            standardize_reference: default_standardize_reference(),
            intervention_skip: false,
        }
    }

    /// The reference code's configuration: width 256, 8 blocks, 4 heads, MLP ×4, 8 registers
    /// (25,968,194 parameters at d = 50).
    pub fn paper(n_genes: usize) -> MapPfnConfig {
        MapPfnConfig {
            n_genes,
            width: 256,
            depth: 8,
            heads: 4,
            mlp_ratio: 4,
            time_mlp_ratio: 4,
            register_tokens: 8,
            max_slots: 10,
            trainable_time_frequencies: true,
            attention_pad_to_multiple: None,
            condition_dropout: DEFAULT_CONDITION_DROPOUT,
            standardize_tasks: false,
            standardize_reference: default_standardize_reference(),
            intervention_skip: false,
        }
    }

    /// The paper text's variant of [`MapPfnConfig::paper`] with an MLP expansion of 2.
    pub fn paper_text(n_genes: usize) -> MapPfnConfig {
        MapPfnConfig {
            mlp_ratio: 2,
            ..MapPfnConfig::paper(n_genes)
        }
    }

    /// A named preset: `tiny`, `small`, `paper` or `paper-text`.
    pub fn preset(name: &str, n_genes: usize) -> Result<MapPfnConfig> {
        match name {
            "tiny" => Ok(MapPfnConfig::tiny(n_genes)),
            "small" => Ok(MapPfnConfig::small(n_genes)),
            "paper" => Ok(MapPfnConfig::paper(n_genes)),
            "paper-text" | "paper_text" => Ok(MapPfnConfig::paper_text(n_genes)),
            other => Err(ModelError::Config(format!(
                "unknown MapPFN size `{other}`; use tiny, small, paper or paper-text"
            ))),
        }
    }

    /// Largest number of context experiments the slot table allows.
    pub fn max_context(&self) -> usize {
        self.max_slots.saturating_sub(1)
    }

    /// Checks the configuration, naming the problem.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::Config(m));
        if !["control", "contexts"].contains(&self.standardize_reference.as_str()) {
            return bad(format!(
                "standardize_reference `{}` is not `control` or `contexts`",
                self.standardize_reference
            ));
        }
        if self.n_genes == 0 {
            return bad("n_genes must be at least 1".into());
        }
        if self.width < 4 || self.width % 2 != 0 {
            return bad(format!("width {} must be even and at least 4", self.width));
        }
        if self.heads == 0 || self.width % self.heads != 0 {
            return bad(format!(
                "width {} must be a multiple of heads {}",
                self.width, self.heads
            ));
        }
        if self.depth == 0 || self.mlp_ratio == 0 || self.time_mlp_ratio == 0 {
            return bad("depth, mlp_ratio and time_mlp_ratio must be at least 1".into());
        }
        if self.max_slots == 0 {
            return bad(
                "max_slots must be at least 1 (it allows K = max_slots − 1 context experiments)"
                    .into(),
            );
        }
        if !(0.0..1.0).contains(&self.condition_dropout) {
            return bad(format!(
                "condition_dropout {} must lie in [0, 1)",
                self.condition_dropout
            ));
        }
        if self.attention_pad_to_multiple == Some(0) {
            return bad("attention_pad_to_multiple must be at least 1 (or null)".into());
        }
        Ok(())
    }
}

pub use crate::flow::SamplerConfig;
