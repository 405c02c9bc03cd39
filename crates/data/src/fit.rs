//! What a method is given when it learns: the [`FitContext`] (device, budget, run directory, progress
//! reporting, seed) and the [`Progress`] reports of its training loop, and what it declares it can do
//! ([`Capabilities`]).

use std::path::PathBuf;
use std::time::Duration;

/// How far one invocation of a training function may run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    /// Stop once this many micro-batches have been done in total (counting earlier invocations of the run).
    Steps(u64),
    /// Stop after this much wall time in this invocation (checked after each micro-batch).
    Minutes(f64),
}

/// A progress report, emitted after every micro-batch.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Micro-batches done in the run (including earlier invocations).
    pub step: u64,
    /// The micro-batch this invocation started from (0 for a new run, > 0 when it resumed one).
    pub start_step: u64,
    /// Micro-batches this invocation will stop at when the budget is in steps (else the run's total).
    pub target_step: u64,
    /// Length of the whole run in micro-batches.
    pub run_steps: u64,
    /// Optimiser updates done.
    pub updates: u64,
    /// Loss of the micro-batch just done (the total the optimiser minimises).
    pub loss: f64,
    /// The named components of the loss (e.g. `("cfm", …), ("mmd", …)`); empty when the loss has one term.
    pub components: Vec<(String, f64)>,
    /// Learning rate of the most recent (or, before any update, the next) update.
    pub lr: f64,
    /// Global gradient norm of the micro-batch before clipping.
    pub grad_norm: f64,
    /// Micro-batches per second in this invocation.
    pub steps_per_sec: f64,
    /// Estimated time to `target_step`.
    pub eta: Option<Duration>,
    /// Wall time of this invocation so far.
    pub elapsed: Duration,
}

impl Progress {
    /// The loss and its components as one short text: `loss 0.41 (cfm 0.39, mmd 0.02)`.
    pub fn loss_text(&self) -> String {
        if self.components.is_empty() {
            format!("loss {:.4}", self.loss)
        } else {
            let parts: Vec<String> = self
                .components
                .iter()
                .map(|(name, v)| format!("{name} {v:.4}"))
                .collect();
            format!("loss {:.4} ({})", self.loss, parts.join(", "))
        }
    }
}

/// Where a method computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// The CPU.
    #[default]
    Cpu,
    /// A CUDA device by ordinal.
    Cuda(usize),
}

/// Training knobs every neural method understands; each maps them onto its own defaults (`None`: the
/// method's default).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainOverrides {
    /// Schedule preset name (method-specific, e.g. `cpu`, `reference`, `paper`, `finetune`).
    pub schedule: Option<String>,
    /// Length of the run in micro-batches.
    pub steps: Option<u64>,
    /// Items (tasks, cells, entries) per micro-batch.
    pub batch_size: Option<usize>,
    /// Micro-batches per optimiser update.
    pub accumulation: Option<usize>,
    /// Peak learning rate.
    pub lr: Option<f64>,
    /// Checkpoint cadence in micro-batches.
    pub checkpoint_every: Option<u64>,
    /// Context experiments per training task (in-context methods).
    pub k: Option<usize>,
    /// Cells per set.
    pub cells: Option<usize>,
}

/// Everything a method's [`crate::Predictor::fit`] may use besides the data: the device, the budget,
/// where to write checkpoints (training resumes from there), where to report progress, and the seed.
pub struct FitContext<'a> {
    /// The device to train on.
    pub device: DeviceSpec,
    /// How far this invocation may train.
    pub budget: Option<Budget>,
    /// The run directory (checkpoints; an existing checkpoint of the same run is resumed); `None` trains in
    /// memory only.
    pub run_dir: Option<PathBuf>,
    /// The seed of every random draw of the fit.
    pub seed: u64,
    /// Called after every micro-batch.
    pub progress: Option<&'a mut dyn FnMut(&Progress)>,
    /// Training knobs given by the user.
    pub overrides: TrainOverrides,
}

impl Default for FitContext<'_> {
    fn default() -> Self {
        FitContext {
            device: DeviceSpec::Cpu,
            budget: None,
            run_dir: None,
            seed: 0,
            progress: None,
            overrides: TrainOverrides::default(),
        }
    }
}

impl std::fmt::Debug for FitContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FitContext")
            .field("device", &self.device)
            .field("budget", &self.budget)
            .field("run_dir", &self.run_dir)
            .field("seed", &self.seed)
            .field("overrides", &self.overrides)
            .finish_non_exhaustive()
    }
}

impl FitContext<'_> {
    /// Reports progress, if anyone listens.
    pub fn report(&mut self, progress: &Progress) {
        if let Some(f) = self.progress.as_mut() {
            f(progress);
        }
    }
}

/// What a method predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// Cells (a distribution): every metric applies.
    Cells,
    /// A mean profile only: cell-level metrics are not applicable.
    PseudoBulk,
}

/// What a predictor can do, so harnesses can tell "not applicable" from "failed".
#[derive(Clone, Debug, PartialEq)]
pub struct Capabilities {
    /// Cells or a pseudo-bulk profile.
    pub output: OutputKind,
    /// The smallest number of context experiments K it accepts.
    pub k_min: usize,
    /// The largest K it accepts (`None`: any).
    pub k_max: Option<usize>,
    /// Whether it has an exact log-likelihood of held-out cells.
    pub exact_log_likelihood: bool,
    /// Whether it encodes treatments as a one-hot over the measured genes (so a query's targets must be
    /// measured genes).
    pub needs_measured_targets: bool,
    /// Whether it reads the task's held-out target cells (the oracle: a ceiling to compare against, never
    /// a contender that a selection such as `auto` may choose).
    pub reads_target: bool,
}

impl Default for Capabilities {
    /// Cells, any K, no likelihood, any treatment the data knows.
    fn default() -> Self {
        Capabilities {
            output: OutputKind::Cells,
            k_min: 0,
            k_max: None,
            exact_log_likelihood: false,
            needs_measured_targets: false,
            reads_target: false,
        }
    }
}

impl Capabilities {
    /// True when `k` context experiments are accepted.
    pub fn supports_k(&self, k: usize) -> bool {
        k >= self.k_min && self.k_max.is_none_or(|m| k <= m)
    }
}
