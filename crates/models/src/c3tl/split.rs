//! The splits of the C3TL paper (peers.md §1.4): leave one context out; of the held-out context's
//! perturbations a seeded 8 % are adaptation entries (trained on), 2 % validation entries (early stopping)
//! and 90 % test entries. The data-efficiency sweep varies the number of training contexts (nested sets)
//! and the adaptation share (nested adaptation sets, split 75/25 into training and validation, against one
//! fixed test set per fold).
//!
//! Counts are rounded, with at least one adaptation entry, at least one validation entry when its share is
//! positive, and at least one test entry; a context with too few perturbations for that is refused.

use rand::seq::SliceRandom;

use cellshift_data::PerturbationData;

use crate::error::{ModelError, Result};
use crate::rng;

/// Shares of the held-out context's perturbations.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct TransferFractions {
    /// Adaptation (training) share; the paper's 8 %.
    pub adaptation: f64,
    /// Validation share; the paper's 2 %.
    pub validation: f64,
}

impl Default for TransferFractions {
    /// The paper's 8 % / 2 % (the remaining 90 % are tested).
    fn default() -> Self {
        TransferFractions {
            adaptation: 0.08,
            validation: 0.02,
        }
    }
}

/// One fold: the held-out context, the training contexts and the held-out context's conditions by role
/// (indices into `data.conditions()`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ContextTransferSplit {
    /// The held-out context.
    pub test_context: usize,
    /// Contexts whose every condition is observed.
    pub training_contexts: Vec<usize>,
    /// Held-out context's conditions used for training.
    pub adaptation: Vec<usize>,
    /// Held-out context's conditions used for early stopping.
    pub validation: Vec<usize>,
    /// Held-out context's conditions scored.
    pub test: Vec<usize>,
}

/// Non-control conditions of a context, in condition order.
fn perturbed_conditions(data: &PerturbationData, context: usize) -> Vec<usize> {
    data.conditions()
        .iter()
        .enumerate()
        .filter(|(_, c)| c.context == context && !data.treatments[c.treatment].is_control())
        .map(|(i, _)| i)
        .collect()
}

fn check_fraction(name: &str, f: f64) -> Result<()> {
    if (0.0..1.0).contains(&f) {
        Ok(())
    } else {
        Err(ModelError::Config(format!(
            "the {name} share must lie in [0, 1), got {f}"
        )))
    }
}

impl ContextTransferSplit {
    /// The paper's fold holding out `test_context`: every other context is a training context.
    pub fn leave_one_context_out(
        data: &PerturbationData,
        test_context: usize,
        fractions: TransferFractions,
        seed: u64,
    ) -> Result<ContextTransferSplit> {
        check_fraction("adaptation", fractions.adaptation)?;
        check_fraction("validation", fractions.validation)?;
        let mut perts = perturbed_conditions(data, test_context);
        let n = perts.len();
        let n_adapt = ((fractions.adaptation * n as f64).round() as usize).max(1);
        let n_val = if fractions.validation > 0.0 {
            ((fractions.validation * n as f64).round() as usize).max(1)
        } else {
            0
        };
        if n_adapt + n_val >= n {
            return Err(ModelError::Input(format!(
                "context `{}` has {n} perturbations, too few for {n_adapt} adaptation, {n_val} validation and at \
                 least one test perturbation; hold out a context with more perturbations",
                data.contexts[test_context]
            )));
        }
        perts.shuffle(&mut rng::stream(seed, "c3tl-split", test_context as u64));
        let mut adaptation = perts[..n_adapt].to_vec();
        let mut validation = perts[n_adapt..n_adapt + n_val].to_vec();
        let mut test = perts[n_adapt + n_val..].to_vec();
        for v in [&mut adaptation, &mut validation, &mut test] {
            v.sort_unstable();
        }
        Ok(ContextTransferSplit {
            test_context,
            training_contexts: (0..data.contexts.len())
                .filter(|&c| c != test_context)
                .collect(),
            adaptation,
            validation,
            test,
        })
    }

    /// A fold of the data-efficiency sweep: `n_training` training contexts (the first of a seeded order of
    /// the other contexts, so smaller sets are nested in larger ones), an adaptation share `adaptation`
    /// of the held-out context's perturbations (nested across shares, split 75/25 into adaptation and
    /// validation) and one test set per fold (the perturbations outside the largest adaptation share
    /// `max_adaptation`).
    pub fn sweep(
        data: &PerturbationData,
        test_context: usize,
        n_training: usize,
        adaptation: f64,
        max_adaptation: f64,
        seed: u64,
    ) -> Result<ContextTransferSplit> {
        check_fraction("adaptation", adaptation)?;
        check_fraction("largest adaptation", max_adaptation)?;
        if adaptation > max_adaptation {
            return Err(ModelError::Config(format!(
                "adaptation share {adaptation} exceeds the largest share {max_adaptation} of the sweep"
            )));
        }
        let mut others: Vec<usize> = (0..data.contexts.len())
            .filter(|&c| c != test_context)
            .collect();
        if n_training == 0 || n_training > others.len() {
            return Err(ModelError::Config(format!(
                "{n_training} training contexts requested but {} are available besides `{}`",
                others.len(),
                data.contexts[test_context]
            )));
        }
        others.shuffle(&mut rng::stream(
            seed,
            "c3tl-sweep-contexts",
            test_context as u64,
        ));
        let mut training_contexts = others[..n_training].to_vec();
        training_contexts.sort_unstable();
        let mut perts = perturbed_conditions(data, test_context);
        let n = perts.len();
        perts.shuffle(&mut rng::stream(seed, "c3tl-split", test_context as u64));
        let pool = ((max_adaptation * n as f64).round() as usize).max(1);
        let n_adapt = ((adaptation * n as f64).round() as usize).clamp(1, pool);
        if pool >= n {
            return Err(ModelError::Input(format!(
                "context `{}` has {n} perturbations, too few to keep test perturbations outside an adaptation \
                 share of {max_adaptation}",
                data.contexts[test_context]
            )));
        }
        let n_val = if n_adapt >= 2 {
            ((0.25 * n_adapt as f64).round() as usize).max(1)
        } else {
            0
        };
        let mut adapt = perts[..n_adapt - n_val].to_vec();
        let mut validation = perts[n_adapt - n_val..n_adapt].to_vec();
        let mut test = perts[pool..].to_vec();
        for v in [&mut adapt, &mut validation, &mut test] {
            v.sort_unstable();
        }
        Ok(ContextTransferSplit {
            test_context,
            training_contexts,
            adaptation: adapt,
            validation,
            test,
        })
    }

    /// Conditions a method trains on: every condition of the training contexts, the held-out context's
    /// control and its adaptation conditions.
    pub fn train_conditions(&self, data: &PerturbationData) -> Vec<usize> {
        data.conditions()
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                self.training_contexts.contains(&c.context)
                    || (c.context == self.test_context
                        && (data.treatments[c.treatment].is_control()
                            || self.adaptation.contains(i)))
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Everything observed in this fold: [`Self::train_conditions`] plus the validation conditions (what
    /// methods without early stopping are fitted on).
    pub fn observed_conditions(&self, data: &PerturbationData) -> Vec<usize> {
        let mut all = self.train_conditions(data);
        all.extend(&self.validation);
        all.sort_unstable();
        all
    }
}
