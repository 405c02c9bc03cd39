//! A deliberately small method that exercises the whole method-neutral core: a per-perturbation Gaussian
//! (each perturbation shifts every gene's mean by a learned amount and has a learned per-gene spread).
//! It trains through the shared loop with a two-term loss, checkpoints, resumes, loads through the
//! registry and predicts cells — the pattern every method folder follows (config, module, forward,
//! registry entry). It is a test fixture for the infrastructure, not a method to use.

pub mod config;
pub mod model;

pub use config::ToyConfig;
pub use model::{ToyGaussian, METHOD};
