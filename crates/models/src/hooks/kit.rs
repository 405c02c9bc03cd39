//! The scoring machinery the commands lend to the hooks ([`BenchKit`]): the benchmark crate depends on
//! this one, so hooks reach its protocol through this trait.

use cellshift_data::sampler::TaskSampler;
use cellshift_data::{FitContext, PerturbationData, Predictor, Split, Task};
use cellshift_metrics::summary::MetricSummary;
use cellshift_metrics::MetricGroups;

use crate::train::Progress;

/// The standard protocol's settings for [`BenchKit::score`].
#[derive(Clone, Debug)]
pub struct ScoreSetup {
    /// Context experiments per task.
    pub k: usize,
    /// Cells per set.
    pub cells: usize,
    /// Resampling seeds.
    pub seeds: Vec<u64>,
    /// Metric groups.
    pub groups: MetricGroups,
}

/// Benchmark machinery a hook may call.
pub trait BenchKit {
    /// The tasks of `queries` sharing one control set (the standard protocol with `seed`).
    fn shared_control_tasks(
        &self,
        sampler: &TaskSampler<'_>,
        queries: &[usize],
        k: usize,
        seed: u64,
    ) -> anyhow::Result<Vec<Task>>;
    /// Fits `predictor` on the train conditions of `split` (unless fitted) and scores it on the test
    /// conditions: mean ± std over seeds per metric.
    fn score(
        &self,
        data: &PerturbationData,
        predictor: &mut dyn Predictor,
        split: Split,
        setup: &ScoreSetup,
        fit: &mut FitContext<'_>,
    ) -> anyhow::Result<Vec<MetricSummary>>;
    /// A progress reporter for a fit of `steps` micro-batches.
    fn progress(&self, steps: u64) -> Box<dyn FnMut(&Progress)>;
}
