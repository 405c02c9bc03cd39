//! Early stopping for the shared training loop ([`super::trainer::Trainer::run`]): after every micro-batch
//! a criterion is measured (a validation loss, or the training loss when a method has no validation set);
//! the weights of the best micro-batch are kept, and the run ends after `patience` micro-batches without
//! improvement, on the best weights. The state and the best weights are part of every checkpoint, so a
//! resumed run stops where the uninterrupted one would, with the same weights.

use serde::{Deserialize, Serialize};

use super::trainer::StepReport;
use crate::error::Result;

/// The criterion of a micro-batch (lower is better) and the named values to report beside the loss
/// (e.g. `("val_mse", …)`).
pub type Criterion<'a> = dyn Fn(&StepReport) -> Result<(f64, Vec<(String, f64)>)> + 'a;

/// How a run stops early.
pub struct EarlyStopping<'a> {
    /// Measured after every micro-batch, on the weights that micro-batch produced.
    pub criterion: &'a Criterion<'a>,
    /// Micro-batches without improvement after which the run stops.
    pub patience: u64,
}

/// Where early stopping stands (kept in checkpoints).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EarlyStoppingState {
    /// The best criterion so far.
    pub best: Option<f64>,
    /// The micro-batch (1-based count) whose weights were best.
    pub best_step: u64,
    /// Micro-batches since the best.
    pub since_best: u64,
    /// The run stopped early: it is over, on the best weights.
    pub stopped: bool,
}

impl EarlyStoppingState {
    /// Records the criterion of micro-batch `step`; true when it is a new best.
    pub fn record(&mut self, step: u64, criterion: f64) -> bool {
        let better = self.best.is_none_or(|b| criterion < b);
        if better {
            self.best = Some(criterion);
            self.best_step = step;
            self.since_best = 0;
        } else {
            self.since_best += 1;
        }
        better
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_is_the_lowest_and_the_count_restarts_there() {
        let mut s = EarlyStoppingState::default();
        assert!(s.record(1, 3.0));
        assert!(!s.record(2, 3.5));
        assert!(s.record(3, 2.0));
        assert!(!s.record(4, 2.0), "a tie is not an improvement");
        assert_eq!((s.best, s.best_step, s.since_best), (Some(2.0), 3, 1));
    }
}
