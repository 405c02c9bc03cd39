//! C3TL (Scholkemper & Mukherjee 2026; peers.md §1.4): pseudo-bulk causal context transfer. Each observed
//! (perturbation, context) entry is a pseudo-bulk delta; a perturbation encoder averaged over the contexts
//! where the perturbation was measured and a context encoder averaged over the perturbations measured in
//! the context give two latents whose sum is decoded into the delta of any (perturbation, context) pair.
//! Training predicts every observed entry from the *other* entries (leave-one-out aggregation) in one
//! parallel pass per epoch, and stops early on validation entries.
//!
//! Layout: [`config`] (presets), [`table`] (pseudo-bulk deltas), [`aggregate`] (scatter means),
//! [`model`] (network and forward), [`fitted`] (the network with its stored table), [`train`] (the fit
//! with early stopping, epoch timing), [`method`] (registry entry, skeleton part, prediction), [`split`]
//! (the paper's leave-one-context-out split and the data-efficiency sweep's splits), [`synthetic`]
//! (additive-latent tables for tests and the speed benchmark), [`transfer`] (the leave-one-context-out
//! benchmark and the data-efficiency sweep) with its hooks [`sweep`] and [`speed`].

pub mod aggregate;
pub mod config;
pub mod fitted;
pub mod method;
pub mod model;
pub mod speed;
pub mod split;
pub mod sweep;
pub mod synthetic;
pub mod table;
pub mod train;
pub mod transfer;

#[cfg(test)]
mod tests;

pub use config::C3tlConfig;
pub use method::{load_c3tl, C3tl, C3tlSpec, METHOD};
pub use split::{ContextTransferSplit, TransferFractions};
pub use table::{DeltaTable, Entry, Vocabulary};
pub use train::{auto_validation, EpochTime, FitHistory};

/// C3TL's optional commands: the leave-one-context-out benchmark and sweeps, and the epoch-time benchmark.
pub const HOOKS: crate::hooks::MethodHooks = crate::hooks::MethodHooks {
    speed: Some(speed::speed),
    sweep: Some(sweep::sweep_hook),
    ..crate::hooks::MethodHooks::NONE
};
