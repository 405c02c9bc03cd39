//! Errors of the model crate. Every message names the problem and, where there is one, the fix.

use std::path::PathBuf;

/// Errors raised while building, training, checkpointing or running a model.
#[allow(missing_docs)] // the fields are described in the variant docs and messages
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A model or training configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An input (task, tensor, request) does not fit the model.
    #[error("invalid input: {0}")]
    Input(String),
    /// A task source failed to produce a task.
    #[error("task source failed at task index {index}: {message}")]
    TaskSource { index: u64, message: String },
    /// A checkpoint directory is missing files.
    #[error("no checkpoint at {path}: {reason}; pass a directory written by `pretrain`/`finetune` (it holds `checkpoint.json` and `checkpoint.safetensors`, or a `LATEST` file naming one)")]
    CheckpointMissing { path: PathBuf, reason: String },
    /// A checkpoint exists but cannot be used (truncated, corrupted, incompatible).
    #[error("checkpoint {path} is unusable: {reason}")]
    CheckpointCorrupt { path: PathBuf, reason: String },
    /// A run directory already holds a run with a different configuration.
    #[error("{path} already holds a run with a different configuration ({detail}); choose a new output directory, or give --restart to start the run over")]
    RunMismatch { path: PathBuf, detail: String },
    /// An I/O error.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A JSON (de)serialisation error.
    #[error("JSON error in {path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// An error reported by libtorch.
    #[error("libtorch error: {0}")]
    Torch(#[from] tch::TchError),
    /// Training produced a non-finite loss.
    #[error("training diverged: loss is {loss} at micro-batch {step}; lower the learning rate or check the inputs for extreme values")]
    NonFiniteLoss { step: u64, loss: f64 },
}

/// Result alias of the model crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

impl ModelError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> ModelError {
        ModelError::Io {
            path: path.into(),
            source,
        }
    }
}
