//! MapPFN (spec `mappfn.md`): a prior-data-fitted conditional flow-matching MMDiT that reads an
//! observational population and K measured perturbations of a context and generates the cells of an
//! unseen perturbation.

pub mod config;
pub mod method;
pub mod model;
pub mod predictor;
pub mod skip;
pub mod speed;
pub mod standardize;
pub mod train;

pub use config::{MapPfnConfig, SamplerConfig};
pub use method::METHOD;
pub use model::{forward_flops, ConditionedNet, EncodedCondition, MapPfnNet, TaskLayout};
pub use predictor::{MapPfn, Sample, WeightSet};
pub use train::{finetune, finetune_on, pretrain, pretrain_on};

/// MapPFN's optional commands: the solver speed benchmark.
pub const HOOKS: crate::hooks::MethodHooks = crate::hooks::MethodHooks {
    speed: Some(speed::speed),
    ..crate::hooks::MethodHooks::NONE
};
