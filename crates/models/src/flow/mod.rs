//! Flow matching: the straight conditional path and its loss, ODE solvers for sampling, and
//! classifier-free guidance.

pub mod guidance;
pub mod path;
pub mod sampler;
pub mod solver;

pub use guidance::{combine as combine_guidance, guided_velocity, ConditionalVelocity};
pub use path::{flow_matching_loss, interpolate, sample_logit_normal_time, target_velocity};
pub use sampler::SamplerConfig;
pub use solver::{solve, OdeSolver, Solution};
