//! Training configuration, budgets, progress reports and the description of the preprocessing a model
//! expects (stored in every checkpoint).

use serde::{Deserialize, Serialize};

use super::ema::{EmaConfig, EmaInit};
use super::optim::AdamWConfig;
use super::schedule::{LrSchedule, ScheduleSizing};
use crate::error::{ModelError, Result};

/// Everything that determines a training run besides the model and the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Master seed: task indices and every random draw of the loss (noise, times, dropout) are pure functions of it and the
    /// micro-batch index.
    pub seed: u64,
    /// Tasks per micro-batch (32 in the reference).
    pub batch_size: usize,
    /// Micro-batches whose clipped gradients are averaged per optimiser update (8 in the reference).
    pub accumulation: usize,
    /// Length of the run in micro-batches (sizes the schedule; a budget may stop earlier).
    pub total_steps: u64,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
    /// AdamW hyper-parameters.
    pub adamw: AdamWConfig,
    /// Global-norm clipping of each micro-batch gradient (before accumulation); `None` disables it.
    pub clip_norm: Option<f64>,
    /// EMA of the weights used for inference.
    pub ema: EmaConfig,
    /// Write a checkpoint every this many micro-batches (and at the end of every invocation).
    pub checkpoint_every: u64,
    /// Checkpoints kept in the run directory (older ones are deleted); at least 1.
    pub keep_checkpoints: usize,
    /// The preprocessing the training data had, hence the one the model expects at inference.
    pub preprocessing: Preprocessing,
}

impl TrainConfig {
    /// The reference SERGIO pre-training run: 400k micro-batches of 32 tasks, accumulation 8, quirk schedule,
    /// reference EMA, CFG dropout 0.2.
    pub fn reference_pretraining(preprocessing: Preprocessing) -> TrainConfig {
        TrainConfig {
            seed: 0,
            batch_size: 32,
            accumulation: 8,
            total_steps: 400_000,
            schedule: LrSchedule::reference(),
            adamw: AdamWConfig::default(),
            clip_norm: Some(1.0),
            ema: EmaConfig::reference(),
            checkpoint_every: 1000,
            keep_checkpoints: 2,
            preprocessing,
        }
    }

    /// The paper's intended schedule for `total_steps` micro-batches (1% warmup, 20% sqrt decay over the updates).
    pub fn paper(preprocessing: Preprocessing, total_steps: u64) -> TrainConfig {
        TrainConfig {
            total_steps,
            schedule: LrSchedule::paper(),
            ..TrainConfig::reference_pretraining(preprocessing)
        }
    }

    /// Fine-tuning as recommended by the spec (§3.6): 3,000 micro-batches, fresh AdamW, linear warmup over the
    /// first 5% of updates to 5e-5, then constant; the EMA continues from the pre-trained EMA.
    pub fn finetune(preprocessing: Preprocessing) -> TrainConfig {
        TrainConfig {
            total_steps: 3000,
            schedule: LrSchedule {
                peak: 5e-5,
                end: 5e-5,
                warmup_fraction: 0.05,
                decay_fraction: 0.0,
                sizing: ScheduleSizing::Updates,
            },
            checkpoint_every: 500,
            ..TrainConfig::reference_pretraining(preprocessing)
        }
    }

    /// Pre-training sized for a few CPU hours: micro-batches of 8 tasks without accumulation, peak learning
    /// rate 4e-4 with 3% warmup and a 20% square-root cooldown over the updates, reference EMA decay 0.999
    /// (copy-initialised, since the run is short), guidance dropout 0.2, a checkpoint every 250 micro-batches.
    pub fn cpu_pretraining(preprocessing: Preprocessing, total_steps: u64) -> TrainConfig {
        TrainConfig {
            seed: 0,
            batch_size: 8,
            accumulation: 1,
            total_steps,
            schedule: LrSchedule {
                peak: 4e-4,
                end: 1e-5,
                warmup_fraction: 0.03,
                decay_fraction: 0.2,
                sizing: ScheduleSizing::Updates,
            },
            adamw: AdamWConfig::default(),
            clip_norm: Some(1.0),
            ema: EmaConfig {
                decay: 0.999,
                init: EmaInit::Copy,
                debias: false,
            },
            checkpoint_every: 250,
            keep_checkpoints: 2,
            preprocessing,
        }
    }

    /// A configuration for tests and demos: small batches, no accumulation, a copy-initialised EMA,
    /// learning rate 1e-3 with 5% warmup, for `total_steps` micro-batches.
    pub fn quick(preprocessing: Preprocessing, total_steps: u64) -> TrainConfig {
        TrainConfig {
            seed: 0,
            batch_size: 8,
            accumulation: 1,
            total_steps,
            schedule: LrSchedule {
                peak: 1e-3,
                end: 1e-4,
                warmup_fraction: 0.05,
                decay_fraction: 0.2,
                sizing: ScheduleSizing::Updates,
            },
            adamw: AdamWConfig::default(),
            clip_norm: Some(1.0),
            ema: EmaConfig {
                decay: 0.99,
                init: EmaInit::Copy,
                debias: false,
            },
            checkpoint_every: total_steps.max(1),
            keep_checkpoints: 2,
            preprocessing,
        }
    }

    /// The named schedule presets of [`TrainConfig::from_overrides`].
    pub const PRESETS: &'static [&'static str] = &["cpu", "reference", "paper", "finetune"];

    /// A configuration from a schedule preset (`overrides.schedule`, else `default_preset`) and the user's
    /// overrides; `default_steps` is the run length when neither the preset nor the overrides fix it.
    pub fn from_overrides(
        default_preset: &str,
        default_steps: u64,
        preprocessing: Preprocessing,
        overrides: &cellshift_data::TrainOverrides,
        seed: u64,
    ) -> Result<TrainConfig> {
        let preset = overrides.schedule.as_deref().unwrap_or(default_preset);
        let steps = overrides.steps;
        let mut config = match preset {
            "cpu" => TrainConfig::cpu_pretraining(preprocessing, steps.unwrap_or(default_steps)),
            "reference" => TrainConfig::reference_pretraining(preprocessing),
            "paper" => TrainConfig::paper(preprocessing, steps.unwrap_or(400_000)),
            "finetune" => TrainConfig::finetune(preprocessing),
            "quick" => TrainConfig::quick(preprocessing, steps.unwrap_or(default_steps)),
            other => {
                return Err(ModelError::Config(format!(
                    "unknown schedule `{other}`; use one of {}",
                    Self::PRESETS.join(", ")
                )))
            }
        };
        if let Some(steps) = steps {
            config.total_steps = steps;
        }
        if let Some(b) = overrides.batch_size {
            config.batch_size = b;
        }
        if let Some(a) = overrides.accumulation {
            config.accumulation = a;
        }
        if let Some(lr) = overrides.lr {
            if !(lr > 0.0 && lr.is_finite()) {
                return Err(ModelError::Config(format!(
                    "the learning rate must be a positive number, got {lr}"
                )));
            }
            config.schedule.peak = lr;
            config.schedule.end = config.schedule.end.min(lr);
        }
        if let Some(every) = overrides.checkpoint_every {
            config.checkpoint_every = every;
        }
        config.seed = seed;
        config.validate()?;
        Ok(config)
    }

    /// Checks the configuration, naming the problem.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::Config(m));
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1 task".into());
        }
        if self.accumulation == 0 {
            return bad("accumulation must be at least 1 micro-batch".into());
        }
        if self.total_steps == 0 {
            return bad("total_steps must be at least 1 micro-batch".into());
        }
        if self.checkpoint_every == 0 {
            return bad("checkpoint_every must be at least 1 micro-batch".into());
        }
        if self.keep_checkpoints == 0 {
            return bad("keep_checkpoints must be at least 1".into());
        }
        if let Some(c) = self.clip_norm {
            if !(c > 0.0 && c.is_finite()) {
                return bad(format!(
                    "clip_norm {c} must be a positive number (or null to disable clipping)"
                ));
            }
        }
        if !(0.0..1.0).contains(&self.ema.decay) {
            return bad(format!("EMA decay {} must lie in [0, 1)", self.ema.decay));
        }
        let a = self.adamw;
        if !(0.0..1.0).contains(&a.beta1)
            || !(0.0..1.0).contains(&a.beta2)
            || a.eps.is_nan()
            || a.eps <= 0.0
            || a.weight_decay.is_nan()
            || a.weight_decay < 0.0
        {
            return bad(format!(
                "AdamW needs β1, β2 in [0, 1), ε > 0 and weight decay ≥ 0 (got {a:?})"
            ));
        }
        self.schedule.validate().map_err(ModelError::Config)?;
        self.preprocessing.validate()
    }
}

/// How the expression values were transformed before the model saw them. Inputs at inference must be
/// transformed the same way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    /// Per-cell total-count normalisation target (`None`: not normalised).
    pub normalize_total: Option<NormalizeTarget>,
    /// Natural `ln(1 + x)` applied after normalisation.
    pub log1p: bool,
    /// Any per-condition scaling applied on top (free text, e.g. `"none"` or `"standardise per condition"`).
    pub per_condition_scaling: Option<String>,
    /// Number of genes (model input width).
    pub n_genes: usize,
    /// Gene names in column order (may be empty for synthetic priors with anonymous genes).
    pub gene_names: Vec<String>,
}

/// The total-count normalisation of a preprocessing record (the workspace's one normalisation type).
pub use cellshift_data::preprocess::NormalizeTarget;

impl Preprocessing {
    /// The spec's normalisation (median total, natural log1p) for named genes.
    pub fn median_log1p(gene_names: Vec<String>) -> Preprocessing {
        Preprocessing {
            normalize_total: Some(NormalizeTarget::MedianOfTotals),
            log1p: true,
            per_condition_scaling: None,
            n_genes: gene_names.len(),
            gene_names,
        }
    }

    /// Untransformed values on `n_genes` anonymous genes (synthetic Gaussian tasks, linear SCMs).
    pub fn identity(n_genes: usize) -> Preprocessing {
        Preprocessing {
            normalize_total: None,
            log1p: false,
            per_condition_scaling: None,
            n_genes,
            gene_names: vec![],
        }
    }

    /// Checks that the gene names, when given, match the gene count.
    pub fn validate(&self) -> Result<()> {
        if !self.gene_names.is_empty() && self.gene_names.len() != self.n_genes {
            return Err(ModelError::Config(format!(
                "preprocessing lists {} gene names but n_genes = {}; give one name per gene or none",
                self.gene_names.len(),
                self.n_genes
            )));
        }
        Ok(())
    }
}

pub use cellshift_data::fit::{Budget, Progress};
