//! cellshift models: neural building blocks, flow matching and ODE samplers, the shared training loop
//! (AdamW, warmup–stable–decay schedule, EMA, resumable checkpoints), and the neural methods.
//!
//! Layout (a model zoo): [`blocks`] holds reusable layers, [`flow`] the flow-matching path, guidance and
//! solvers, [`train`] the optimiser, schedule, EMA, checkpoints and training loop, [`method`] the registry
//! entry types, [`data_method`] the skeleton shared by the methods trained on a data set (configuration,
//! preprocessing, device, fitted state, refit rule, `create`/`load`, the fit-and-predict speed benchmark),
//! and [`registry`] the table of methods. Each method is one folder ([`mappfn`], [`scdfm`],
//! [`celltarnet`], [`c3tl`]) with `config.rs` (presets), `model.rs` (network and forward), `train.rs`
//! (`Trainable`, batches, the fit) and `method.rs` (registry entry and its part of the skeleton); MapPFN,
//! pre-trained on priors and adapted in context, keeps its own predictor (`mappfn/predictor.rs`).

#![deny(missing_docs)]

pub mod blocks;
pub mod c3tl;
pub mod celltarnet;
pub mod data_method;
pub mod encoding;
pub mod error;
pub mod flow;
pub mod hooks;
pub mod mappfn;
pub mod method;
pub mod model_options;
pub mod prepare;
pub mod registry;
pub mod rng;
pub mod scdfm;
pub mod sources;
pub mod synthetic;
#[cfg(any(test, feature = "test-methods"))]
pub mod toy;
pub mod train;

pub use error::{ModelError, Result};
pub use mappfn::{MapPfn, MapPfnConfig, MapPfnNet, SamplerConfig};
pub use synthetic::GaussianShiftSource;
pub use train::{Budget, Preprocessing, Progress, TaskSource, TrainConfig};
