//! cellshift data layer: the perturbation data model, AnnData (`.h5ad`) I/O, preprocessing, condition-level
//! splits and the task sampler. Everything downstream (priors, methods, metrics) speaks these types.

pub mod error;
pub mod h5ad;
pub mod model;
pub mod predictor;
pub mod task;

pub use error::{DataError, Result};
pub use model::{encode_treatment, CellAnnotations, Condition, ExpressionScale, PerturbationData, Treatment};
pub use predictor::{PredictError, Prediction, Predictor};
pub use task::Task;
