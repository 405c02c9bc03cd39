//! The benchmark machinery lent to the method hooks (`cellshift_models::hooks::BenchKit`): the standard
//! protocol of `cellshift_bench` and this command line's progress bar.

use cellshift_bench::score::{score_on_split, shared_control_tasks};
use cellshift_bench::{MetricSummary, ScoreConfig};
use cellshift_data::sampler::TaskSampler;
use cellshift_data::{FitContext, PerturbationData, Predictor, Split, SplitConfig, Task};
use cellshift_models::hooks::{BenchKit, ScoreSetup};
use cellshift_models::Progress;

use super::training::report_progress;

/// The command line's [`BenchKit`].
pub struct CliKit;

impl BenchKit for CliKit {
    fn shared_control_tasks(
        &self,
        sampler: &TaskSampler<'_>,
        queries: &[usize],
        k: usize,
        seed: u64,
    ) -> anyhow::Result<Vec<Task>> {
        Ok(shared_control_tasks(sampler, queries, k, seed)?.tasks)
    }

    fn score(
        &self,
        data: &PerturbationData,
        predictor: &mut dyn Predictor,
        split: Split,
        setup: &ScoreSetup,
        fit: &mut FitContext<'_>,
    ) -> anyhow::Result<Vec<MetricSummary>> {
        let config = ScoreConfig {
            k: setup.k,
            n_cells: setup.cells,
            seeds: setup.seeds.clone(),
            groups: setup.groups,
            split: SplitConfig::default(),
        };
        Ok(score_on_split(data, predictor, split, &config, fit)?.summary)
    }

    fn progress(&self, steps: u64) -> Box<dyn FnMut(&Progress)> {
        Box::new(report_progress(steps))
    }
}
