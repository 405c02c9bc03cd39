//! Training infrastructure shared by the neural methods: AdamW, the warmup–stable–decay schedule, EMA,
//! checkpoints (safetensors + JSON sidecar, atomic), index-addressed task sources and the resumable
//! training loop.

pub mod checkpoint;
pub mod config;
pub mod early_stop;
pub mod ema;
pub mod flat;
pub mod optim;
pub mod schedule;
pub mod source;
pub mod trainer;

pub use checkpoint::{Counters, LoadedCheckpoint};
pub use config::{Budget, NormalizeTarget, Preprocessing, Progress, TrainConfig};
pub use early_stop::{EarlyStopping, EarlyStoppingState};
pub use ema::{Ema, EmaConfig, EmaInit};
pub use optim::{AdamW, AdamWConfig};
pub use schedule::{LrSchedule, ScheduleSizing};
pub use source::{BatchSource, TaskSource};
pub use trainer::{
    train, train_in_dir, LossTerms, RunSummary, Start, StepReport, Trainable, Trainer,
};
