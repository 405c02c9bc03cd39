//! Helpers shared by the baselines: training pseudo-bulk effects, seeded cell resampling, small dense
//! linear algebra, and (in tests) the hand-checkable fixture.

pub(crate) mod effects;
pub(crate) mod linalg;
pub mod resample;

#[cfg(test)]
pub(crate) mod fixture;
