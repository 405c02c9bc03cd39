//! Warmup–stable–decay learning-rate schedule with a square-root cooldown (spec §3.3), evaluated on the
//! optimiser-update counter `c` (0 for the first update):
//! `lr(c) = peak·c/W` for `c < W`; `peak` for `W ≤ c < W + S`; `end + (peak − end)·(1 − √min((c − W − S)/D, 1))`
//! afterwards, with `W = ⌊warmup_fraction·T⌋`, `D = ⌊decay_fraction·T⌋`, `S = T − W − D`.
//!
//! The horizon `T` is either the number of optimiser updates of the run (the paper's intent) or — the
//! reference code's quirk — the number of micro-batches, which with gradient accumulation over 8
//! micro-batches makes the warmup last 8% of training and the decay never start (spec §9 #11).

use serde::{Deserialize, Serialize};

/// What the schedule's horizon `T` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleSizing {
    /// `T` = optimiser updates of the run (= micro-batches / accumulation): 1% warmup, 20% sqrt decay.
    Updates,
    /// `T` = micro-batches of the run while the schedule still advances once per update (reference quirk).
    MicroBatches,
    /// `T` = optimiser updates, and the shape is PyTorch's `CosineAnnealingLR` instead of warmup–stable–decay:
    /// `end + (peak − end)·(1 + cos(π·c/T))/2` (scDFM's run.sh); the warmup and decay fractions are ignored.
    CosineUpdates,
}

/// Warmup–stable–decay schedule parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// Learning rate of the stable phase.
    pub peak: f64,
    /// Learning rate at the end of the decay.
    pub end: f64,
    /// Share of `T` spent warming up linearly from 0.
    pub warmup_fraction: f64,
    /// Share of `T` spent in the square-root cooldown.
    pub decay_fraction: f64,
    /// What `T` counts.
    pub sizing: ScheduleSizing,
}

impl LrSchedule {
    /// The reference run's schedule: peak 1e-4, 1% warmup, 20% decay, sized in micro-batches (quirk).
    pub fn reference() -> LrSchedule {
        LrSchedule {
            peak: 1e-4,
            end: 0.0,
            warmup_fraction: 0.01,
            decay_fraction: 0.2,
            sizing: ScheduleSizing::MicroBatches,
        }
    }

    /// The paper's intended schedule: peak 1e-4, 1% warmup, 20% sqrt decay over the optimiser updates.
    pub fn paper() -> LrSchedule {
        LrSchedule {
            sizing: ScheduleSizing::Updates,
            ..LrSchedule::reference()
        }
    }

    /// The horizon `T` for a run of `total_micro_batches` micro-batches with `accumulation` micro-batches per update.
    pub fn horizon(&self, total_micro_batches: u64, accumulation: u64) -> u64 {
        match self.sizing {
            ScheduleSizing::Updates | ScheduleSizing::CosineUpdates => {
                total_micro_batches / accumulation.max(1)
            }
            ScheduleSizing::MicroBatches => total_micro_batches,
        }
    }

    /// The learning rate of update `c` (0-based) for horizon `t`.
    pub fn lr(&self, c: u64, horizon: u64) -> f64 {
        let t = horizon as f64;
        if self.sizing == ScheduleSizing::CosineUpdates {
            let progress = (c as f64 / t.max(1.0)).min(1.0);
            return self.end
                + (self.peak - self.end) * (1.0 + (std::f64::consts::PI * progress).cos()) / 2.0;
        }
        let w = (self.warmup_fraction * t).floor();
        let d = (self.decay_fraction * t).floor();
        let s = t - w - d;
        let c = c as f64;
        if c < w {
            self.peak * c / w
        } else if c < w + s {
            self.peak
        } else if d <= 0.0 {
            self.end
        } else {
            let progress = ((c - w - s) / d).min(1.0);
            self.end + (self.peak - self.end) * (1.0 - progress.sqrt())
        }
    }

    /// Checks the parameters, naming the problem.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.peak >= 0.0 && self.peak.is_finite() && self.end >= 0.0 && self.end.is_finite()) {
            return Err(format!(
                "learning rates must be finite and non-negative (peak {}, end {})",
                self.peak, self.end
            ));
        }
        let ok = |f: f64| (0.0..=1.0).contains(&f);
        if !ok(self.warmup_fraction)
            || !ok(self.decay_fraction)
            || self.warmup_fraction + self.decay_fraction > 1.0
        {
            return Err(format!(
                "warmup_fraction {} and decay_fraction {} must lie in [0, 1] and sum to at most 1",
                self.warmup_fraction, self.decay_fraction
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 + 1e-9 * b.abs()
    }

    #[test]
    fn cosine_schedule_follows_cosine_annealing() {
        let s = LrSchedule {
            peak: 5e-5,
            end: 1e-6,
            warmup_fraction: 0.0,
            decay_fraction: 0.0,
            sizing: ScheduleSizing::CosineUpdates,
        };
        let t = s.horizon(1000, 1);
        assert!(close(s.lr(0, t), 5e-5));
        assert!(close(s.lr(500, t), 1e-6 + (5e-5 - 1e-6) / 2.0));
        assert!(close(s.lr(1000, t), 1e-6));
        assert!(close(
            s.lr(250, t),
            1e-6 + (5e-5 - 1e-6) * (1.0 + (0.25 * std::f64::consts::PI).cos()) / 2.0
        ));
    }

    #[test]
    fn paper_schedule_values() {
        let s = LrSchedule::paper();
        // 8,000 micro-batches with accumulation 8 ⇒ T = 1,000 updates: W = 10, D = 200, S = 790.
        let t = s.horizon(8000, 8);
        assert_eq!(t, 1000);
        assert_eq!(s.lr(0, t), 0.0);
        assert!(close(s.lr(5, t), 5e-5));
        assert!(close(s.lr(10, t), 1e-4));
        assert!(close(s.lr(799, t), 1e-4));
        assert!(close(s.lr(800, t), 1e-4));
        assert!(close(s.lr(850, t), 1e-4 * (1.0 - 0.25f64.sqrt())));
        assert!(close(s.lr(968, t), 1e-4 * (1.0 - 0.84f64.sqrt())));
        assert!(close(s.lr(1000, t), 0.0));
        assert!(close(s.lr(5000, t), 0.0));
    }

    #[test]
    fn reference_quirk_warms_up_for_eight_percent_and_never_decays() {
        let s = LrSchedule::reference();
        let total = 400_000;
        let t = s.horizon(total, 8);
        assert_eq!(t, 400_000);
        // W = 4,000 updates = 32,000 micro-batches = 8% of the run.
        assert!(close(s.lr(2000, t), 5e-5));
        assert!(close(s.lr(3999, t), 1e-4 * 3999.0 / 4000.0));
        assert!(close(s.lr(4000, t), 1e-4));
        let last_update = total / 8 - 1;
        assert!(
            close(s.lr(last_update, t), 1e-4),
            "the decay phase is never reached"
        );
    }

    #[test]
    fn constant_after_warmup_without_decay() {
        let s = LrSchedule {
            peak: 5e-5,
            end: 5e-5,
            warmup_fraction: 0.05,
            decay_fraction: 0.0,
            sizing: ScheduleSizing::Updates,
        };
        let t = s.horizon(3000, 8);
        assert_eq!(t, 375);
        assert!(close(s.lr(9, t), 5e-5 * 9.0 / 18.0));
        assert!(close(s.lr(18, t), 5e-5));
        assert!(close(s.lr(374, t), 5e-5));
        assert!(LrSchedule {
            warmup_fraction: 0.9,
            decay_fraction: 0.2,
            ..s
        }
        .validate()
        .is_err());
    }
}
