//! cellshift-metrics: the metric suite of cellshift, with numerical parity to the reference Python
//! stacks (MapPFN / ott-jax, scanpy, scikit-learn, cell-eval / pdex) and the definitions of PerturBench,
//! Systema and the energy distance. No libtorch.
//!
//! Entry points: [`EvalCase`] (data, `.npz` reader), [`evaluate`] with [`MetricGroups`] and
//! [`EvalOptions`], producing an [`EvalReport`] (JSON in the oracle's schema, text table, CSV). Every
//! metric is also available as a standalone function in its module (e.g.
//! [`sinkhorn::sinkhorn_divergence`], [`mmd::mmd_rbf`], [`deg::deg_auprc`]).

#![deny(missing_docs)]

pub mod ap;
pub mod bh;
pub mod case;
pub mod celleval;
pub mod de;
pub mod deg;
pub mod energy;
pub mod error;
pub mod evaluate;
pub mod kernels;
pub mod mmd;
pub mod moments;
mod pairwise;
pub mod pds;
pub mod perturbench;
pub mod report;
pub mod sinkhorn;
pub mod stats;
pub mod summary;
pub mod systema;

pub use case::EvalCase;
pub use deg::deg_auprc;
pub use energy::energy_distance;
pub use error::MetricsError;
pub use evaluate::{evaluate, EvalOptions, MetricGroups, SetRows, DEFAULT_MAX_SET_CELLS};
pub use mmd::{mmd_mappfn_f32, mmd_rbf, MAPPFN_GAMMAS};
pub use report::{EvalReport, MetricValue};
pub use sinkhorn::{sinkhorn_divergence, Precision, SinkhornDivergence, SinkhornOptions};
