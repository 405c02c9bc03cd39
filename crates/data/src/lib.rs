//! cellshift data layer: the perturbation data model, AnnData (`.h5ad`) I/O, preprocessing, condition-level
//! splits and the task sampler. Everything downstream (priors, methods, metrics) speaks these types.

pub mod atomic;
pub mod error;
pub mod h5ad;
pub mod model;
pub mod predictor;
pub mod preprocess;
pub mod sampler;
pub mod split;
pub mod task;

pub use error::{DataError, Result};
pub use model::{
    encode_treatment, CellAnnotations, Condition, ExpressionScale, PerturbationData, Treatment,
};
pub use predictor::{PredictError, Prediction, Predictor};
pub use sampler::{CellReplacement, SamplerConfig, TaskSampler};
pub use split::{Split, SplitConfig, SplitMode, SplitRole};
pub use task::Task;
