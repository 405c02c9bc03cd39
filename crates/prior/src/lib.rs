//! cellshift synthetic priors (MapPFN spec §5–§6): the linear-SCM prior, the random GRN generator, a
//! SERGIO steady-state simulator with knock-outs (sergio-rs semantics), 10x-like technical noise, the
//! dataset-level normalisation, and a background stream of data sets for training. Every simulated
//! data set is a [`cellshift_data::PerturbationData`]: contexts = SCM/GRN ids, treatments = `control`
//! or the intervened gene, treatment values = the intervention value.

#![deny(missing_docs)]

pub mod error;
pub mod grn;
pub mod linalg;
pub mod noise;
pub mod normalize;
pub mod rng;
pub mod scm;
pub mod sergio;
pub mod spec_json;
pub mod stream;
pub mod suites;

pub use error::PriorError;
pub use grn::{GrnHyperParams, MasterRegulatorForcing, RandomGrn};
pub use noise::{TechnicalNoiseParams, TechnicalNoiseRanges};
pub use normalize::{normalize_dataset, normalize_total_log1p};
pub use scm::{LinearScm, LinearScmConfig, LinearScmPrior, CONTROL_LABEL};
pub use sergio::knockout::{
    simulate_knockouts, simulate_knockouts_detailed, KnockoutReport, KnockoutSelection,
};
pub use sergio::network::Network;
pub use sergio::prior::{HillCoefficients, SergioPrior, SergioPriorConfig};
pub use spec_json::{GrnDefaults, GrnSpec, KnockoutMode, RandomProfileRecipe};
pub use stream::{DatasetSource, Normalized, PriorStream, StreamConfig};
pub use suites::{
    combinatorial_suite, multi_context_suite, CombinatorialConfig, CombinatorialStats,
    MultiContextConfig, MultiContextStats, SuiteScale,
};
