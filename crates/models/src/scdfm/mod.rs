//! scDFM (ICLR 2026; peers.md §1.1, corrected by `oracle/scdfm/README.md`): conditional flow matching from
//! Gaussian noise to perturbed cells, conditioned on a paired control cell and the perturbation, with gene
//! embeddings contextualised over a co-expression graph and perturbation-aware differential-attention (PAD)
//! blocks; trained with CFM + γ·MMD² and sampled with torchdiffeq's 3/8-rule RK4 on a 20-point grid.
//!
//! Layout: [`config`] (presets, code-vs-paper switches, ablations, training settings), [`vocab`] (tokens
//! of genes and perturbations), [`graph`] (co-expression mask), [`model`] (the network, authors' parameter
//! names), [`loss`] (CFM + MMD), [`recompute`] (activation checkpointing for training in less memory),
//! [`train`] (batches and the fit on the shared loop), [`method`] (registry entry, skeleton part,
//! sampling), [`reference`] and [`import`] (the authors' state_dicts), [`split`] (their additive / unseen /
//! combinations splits).

pub mod config;
pub mod graph;
pub mod import;
pub mod loss;
pub mod method;
pub mod model;
pub mod recompute;
pub mod reference;
pub mod speed;
pub mod split;
pub mod train;
pub mod vocab;

#[cfg(test)]
mod tests;

pub use config::{
    AttentionKind, MaskRows, PerturbationMode, ScdfmConfig, ScdfmSetup, ScdfmTraining,
};
pub use method::{load_scdfm, Scdfm, ScdfmSpec, METHOD};
pub use model::ScdfmNet;

/// scDFM's optional commands: the reference importer, the speed benchmark (against the authors' code with
/// `--against-reference`) and the paper's splits.
pub const HOOKS: crate::hooks::MethodHooks = crate::hooks::MethodHooks {
    import: Some(import::import),
    speed: Some(speed::speed),
    splits: Some(split::SPLITS),
    ..crate::hooks::MethodHooks::NONE
};
