//! A deliberately small method that exercises the whole method-neutral core: a per-perturbation Gaussian
//! (each perturbation shifts every gene's mean by a learned amount and has a learned per-gene spread).
//! It trains through the shared loop with a two-term loss, checkpoints, resumes, loads through the
//! registry, predicts cells and is timed by the shared fit-and-predict speed benchmark. Its files are the
//! skeleton every method folder follows: `config.rs` (configuration), `model.rs` (network and forward),
//! `train.rs` (`Trainable` and the fit), `method.rs` (registry entry and `MethodSpec`). It is a test
//! fixture for the infrastructure, not a method to use.

pub mod config;
pub mod method;
pub mod model;
pub mod train;

pub use config::ToyConfig;
pub use method::{ToyGaussian, ToySpec, METHOD};
