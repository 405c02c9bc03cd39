//! cellshift data layer: the perturbation data model, AnnData (`.h5ad`) I/O, preprocessing, condition-level
//! splits and the task sampler. Everything downstream (priors, methods, metrics) speaks these types.

#![deny(missing_docs)]

pub mod atomic;
pub mod control_label;
pub mod error;
pub mod expression;
pub mod fit;
pub mod h5ad;
pub mod inference;
pub mod model;
pub mod predictor;
pub mod preprocess;
pub mod sampler;
pub mod seed;
pub mod split;
pub mod task;
pub mod task_builder;
pub mod testing;

pub use error::{DataError, Result};
pub use expression::{Expression, RowEntries};
pub use fit::{Budget, Capabilities, DeviceSpec, FitContext, OutputKind, Progress, TrainOverrides};
pub use model::{
    encode_treatment, CellAnnotations, Condition, ExpressionScale, PerturbationData, Treatment,
};
pub use predictor::{PredictError, Prediction, Predictor};
pub use sampler::{CellReplacement, SamplerConfig, TaskSampler};
pub use split::{Split, SplitConfig, SplitMode, SplitRole};
pub use task::{Task, TaskTreatment};
pub use task_builder::{Query, TaskBuilder};
