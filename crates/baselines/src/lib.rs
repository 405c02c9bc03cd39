//! cellshift baselines: the reference points every method is compared against, each a
//! [`cellshift_data::Predictor`] fitted on the training conditions of a `PerturbationData` and predicting
//! the cells of a query from its `Task`. Host-side numerics only (no libtorch).
//!
//! | name | prediction |
//! |---|---|
//! | `control` | the task's control cells (identity / no change) |
//! | `oracle` | the query's real cells, resampled (reads `task.target`) |
//! | `perturbation_mean` | control + the perturbation's mean shift over training contexts |
//! | `context_mean` | control + the mean shift of the perturbations of the query's context |
//! | `additive` | control + the sum of the single-gene shifts (combinations) |
//! | `matching_mean` | control + the mean of the single-gene shifts (combinations, Systema) |
//! | `linear` | control + Ahlmann-Eltze et al.'s PCA/ridge linear model (ridge relative to the data's scale) |
//! | `closest_context` | control + the perturbation's shift in the most similar training context (C3TL) |
//!
//! Every baseline returns cells ([`cellshift_data::Prediction::Cells`]): the task's observational cells
//! resampled to `n` with the seed (without replacement when there are enough, as the task sampler) plus a
//! per-gene shift, so all metrics apply and baselines run with the same seed share their control cells.
//! Shifts are pseudo-bulk differences against the mean of *all* control cells of a context in the data.

#![deny(missing_docs)]

pub mod additive;
pub mod closest_context;
pub mod context_mean;
pub mod control;
pub mod error;
pub mod linear;
pub mod matching_mean;
pub mod oracle;
pub mod perturbation_mean;
pub mod registry;
pub mod residual;
pub mod shared;

pub use additive::Additive;
pub use closest_context::{ClosestContext, ContextSimilarity, SourceContext};
pub use context_mean::{ContextMean, ContextMeanSource};
pub use control::ControlBaseline;
pub use error::BaselineError;
pub use linear::{LinearModel, Ridge};
pub use matching_mean::MatchingMean;
pub use oracle::OracleBaseline;
pub use perturbation_mean::PerturbationMean;
pub use registry::{baseline_by_name, BASELINE_NAMES};
pub use residual::{Residual, RESIDUAL_BASELINES};
pub use shared::resample::resample_cells;
