//! The splits hook: named splits of a method's paper (any method may train and be scored on them).

use cellshift_data::{PerturbationData, Split};

/// Settings of the named splits (`--unseen-genes`, `--held-out-doubles`, `--scdfm-or-bug`).
#[derive(Clone, Copy, Debug)]
pub struct SplitParams {
    /// Single genes held out (with every double containing one) by an unseen-genes split.
    pub unseen_genes: usize,
    /// Doubles held out (with the singles of their genes) by a combinations split.
    pub held_out_doubles: usize,
    /// Reproduce the authors' always-true split test (every split becomes their additive one).
    pub reproduce_or_bug: bool,
}

/// Computes the split `name` (one of [`Splits::names`]) of `data` with `seed`.
pub type SplitFn = fn(&PerturbationData, &str, u64, &SplitParams) -> anyhow::Result<Split>;

/// A method's named splits.
#[derive(Clone, Copy)]
pub struct Splits {
    /// The split names it computes.
    pub names: &'static [&'static str],
    /// The function computing them.
    pub split: SplitFn,
}
