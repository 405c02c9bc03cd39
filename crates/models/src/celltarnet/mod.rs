//! CellTarNet (peers.md §1.2–1.3): a conditional transformer autoregressive normalizing flow (TARFlow)
//! over genes, conditioned by cross-attention on a context encoder over a control cell and the multi-hot
//! perturbation; trained by exact maximum likelihood with an auxiliary denoising NLL of the control cell
//! and InfoNCE on latent codes; its causal self-attention is restricted by an L+S gene-correlation prior
//! computed from training cells only. Sampling decodes the tokens sequentially with a key–value cache,
//! with classifier-free guidance on (a, b) and a Tweedie denoising step.
//!
//! Layout: [`config`] (presets and every open choice), [`prior`] (L+S adjacency), [`flow`] (the flow and
//! its attention blocks), [`context`] (the context encoder), [`model`] (network, losses, sampling),
//! [`train`] (statistics, prior and examples of a fit, the shared loop), [`method`] (registry entry,
//! skeleton part, sampling, log-likelihood), and the hooks [`sweep`]
//! (benchmark on held-out doubles, guidance sweep) and [`speed`] (cached against uncached sampling).

pub mod config;
pub mod context;
pub mod flow;
pub mod method;
pub mod model;
pub mod prior;
pub mod speed;
pub mod sweep;
pub mod train;

#[cfg(test)]
mod tests;

pub use config::{CellTarNetConfig, PriorConfig};
pub use flow::Decoding;
pub use method::{load_celltarnet, CellTarNet, CellTarNetSpec, METHOD};
pub use speed::{sampling_speed, SamplingTime};
pub use train::FitSummary;

/// CellTarNet's optional commands: the held-out-doubles benchmark with its guidance sweep, and the
/// sampling-speed benchmark.
pub const HOOKS: crate::hooks::MethodHooks = crate::hooks::MethodHooks {
    speed: Some(speed::speed),
    sweep: Some(sweep::sweep_hook),
    ..crate::hooks::MethodHooks::NONE
};
