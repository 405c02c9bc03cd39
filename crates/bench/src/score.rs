//! Scores a predictor on a data set with the standard protocol: condition-level split, K context
//! experiments from the train half of the query's context, n cells per set, metrics per context over all
//! its test perturbations, repeated over resampling seeds.

use std::collections::BTreeMap;

use cellshift_data::predictor::prediction_cells;
use cellshift_data::sampler::{CellReplacement, SamplerConfig, TaskSampler};
use cellshift_data::split::{Split, SplitConfig, SplitMode, SplitRole};
use cellshift_data::{FitContext, PerturbationData, Predictor, Task};
use cellshift_metrics::{evaluate, EvalCase, EvalOptions, EvalReport, MetricGroups};
use ndarray::Array2;
use rayon::prelude::*;

use cellshift_metrics::summary::{summarise, MetricSummary};

/// Salt of the seed of the independent resample of a query's cells handed to predictors.
const INDEPENDENT_RESAMPLE_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

/// How a predictor is scored.
#[derive(Clone, Debug)]
pub struct ScoreConfig {
    /// Context experiments per task (MapPFN: 8; baselines in the paper: 0).
    pub k: usize,
    /// Cells per set (MapPFN: 200).
    pub n_cells: usize,
    /// Resampling seeds; each draws new cells and context experiments.
    pub seeds: Vec<u64>,
    /// Metric families.
    pub groups: MetricGroups,
    /// The split. `SplitMode::AllContextsHoldout` treats every context as a hold-out context (files of entirely
    /// new contexts): half its treatments are context experiments, the other half are queried.
    pub split: SplitConfig,
}

impl ScoreConfig {
    /// The MapPFN protocol: K=8, 200 cells, seeds 0..n_seeds, every metric group, the standard split.
    pub fn mappfn(n_seeds: u64) -> Self {
        ScoreConfig {
            k: 8,
            n_cells: 200,
            seeds: (0..n_seeds).collect(),
            groups: MetricGroups::all(),
            split: SplitConfig::default(),
        }
    }
}

/// The scores of one predictor.
#[derive(Clone, Debug)]
pub struct ScoreResult {
    /// Predictor name.
    pub method: String,
    /// One report per (seed, context), in that order.
    pub reports: Vec<(u64, String, EvalReport)>,
    /// Mean ± std over seeds of each metric (per seed: averaged over contexts).
    pub summary: Vec<MetricSummary>,
    /// The queries of the first seed's first context with their cells, for plots and reports.
    pub examples: Vec<ScoredQuery>,
}

/// One scored query: the sets the metrics compared.
#[derive(Clone, Debug)]
pub struct ScoredQuery {
    /// Query label (the perturbation).
    pub label: String,
    /// The observational (control) cells the prediction started from.
    pub observational: Array2<f32>,
    /// The measured cells of the query.
    pub target: Array2<f32>,
    /// The predicted cells.
    pub predicted: Array2<f32>,
}

/// Fits `predictor` on the train conditions and scores it on the test conditions, per seed.
pub fn score_predictor(
    data: &PerturbationData,
    predictor: &mut dyn Predictor,
    config: &ScoreConfig,
) -> anyhow::Result<ScoreResult> {
    let split = Split::new(data, &config.split)?;
    score_on_split(data, predictor, split, config, &mut FitContext::default())
}

/// As [`score_predictor`] with a split built by the caller (e.g. a benchmark suite's own split, such as
/// doubles held out of a combinatorial screen; `config.split` is then not used) and the fit context
/// (run directory, budget, seed) the predictor is fitted with.
pub fn score_on_split(
    data: &PerturbationData,
    predictor: &mut dyn Predictor,
    split: Split,
    config: &ScoreConfig,
    fit: &mut FitContext<'_>,
) -> anyhow::Result<ScoreResult> {
    score_on_split_observed(data, predictor, split, config, fit, &|_, _| {})
}

/// Queries predicted together between two progress reports of [`score_on_split_observed`].
pub const QUERIES_PER_PROGRESS_STEP: usize = 5;

/// As [`score_predictor`], calling `predicted(done, total)` after each group of at most
/// [`QUERIES_PER_PROGRESS_STEP`] queries is predicted (over every seed and context), for progress bars.
pub fn score_predictor_observed(
    data: &PerturbationData,
    predictor: &mut dyn Predictor,
    config: &ScoreConfig,
    predicted: &dyn Fn(usize, usize),
) -> anyhow::Result<ScoreResult> {
    let split = Split::new(data, &config.split)?;
    score_on_split_observed(
        data,
        predictor,
        split,
        config,
        &mut FitContext::default(),
        predicted,
    )
}

/// As [`score_on_split`], reporting progress as [`score_predictor_observed`] does.
pub fn score_on_split_observed(
    data: &PerturbationData,
    predictor: &mut dyn Predictor,
    split: Split,
    config: &ScoreConfig,
    fit: &mut FitContext<'_>,
    predicted: &dyn Fn(usize, usize),
) -> anyhow::Result<ScoreResult> {
    predictor
        .fit(data, &split.train_conditions(), fit)
        .map_err(|e| anyhow::anyhow!("fitting {}: {e}", predictor.name()))?;
    let (sampler, by_context) = test_queries(
        data,
        split,
        config.k,
        config.n_cells,
        config.seeds.first().copied().unwrap_or(0),
    )?;
    let mut reports = Vec::new();
    let mut examples = Vec::new();
    let per_seed: usize = by_context.values().map(Vec::len).sum();
    let progress = Counter {
        done: std::cell::Cell::new(0),
        total: per_seed * config.seeds.len(),
        report: predicted,
    };
    for &seed in &config.seeds {
        for (&context, queries) in &by_context {
            let (report, scored) = score_context(
                data,
                &sampler,
                &*predictor,
                queries,
                seed,
                config,
                &progress,
                reports.is_empty(),
            )?;
            if reports.is_empty() {
                examples = scored;
            }
            reports.push((seed, data.contexts[context].clone(), report));
        }
    }
    let summary = summarise(&reports, &config.seeds);
    Ok(ScoreResult {
        method: predictor.name().to_string(),
        reports,
        summary,
        examples,
    })
}

/// The test-query sampler of a split (K context experiments from the train half, `n_cells` cells per set)
/// and its test queries grouped by context, in context order; an error when there is nothing to test.
pub fn test_queries<'a>(
    data: &'a PerturbationData,
    split: Split,
    k: usize,
    n_cells: usize,
    seed: u64,
) -> anyhow::Result<(TaskSampler<'a>, BTreeMap<usize, Vec<usize>>)> {
    let sampler = TaskSampler::new(
        data,
        split,
        SamplerConfig {
            k,
            n_cells,
            with_replacement_policy: CellReplacement::WhenTooFew,
            seed,
            query_role: SplitRole::Test,
            require_k_available: false,
        },
    )?;
    if sampler.is_empty() {
        anyhow::bail!(
            "the split has no test conditions with control cells in their context; give a data set with \
             control cells and several perturbations per context"
        );
    }
    let mut by_context: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &q in sampler.queries() {
        by_context
            .entry(data.conditions()[q].context)
            .or_default()
            .push(q);
    }
    Ok((sampler, by_context))
}

/// The tasks of one context's queries under the shared-control protocol: every query of the context is
/// predicted from, and scored against, the same observational (control) cells — those drawn for its first
/// query — so the identity prediction has magnitude ratio 0. Query `i` uses seed `seed·1000003 + i`.
#[derive(Clone, Debug)]
pub struct ContextTasks {
    /// One task per query, in query order, with the shared observational cells and the target.
    pub tasks: Vec<Task>,
    /// Each task's seed (also the seed its prediction should use).
    pub seeds: Vec<u64>,
    /// The shared observational cells.
    pub observational: Array2<f32>,
}

/// Builds the [`ContextTasks`] of `queries` (conditions of one context) with `k` context experiments.
pub fn shared_control_tasks(
    sampler: &TaskSampler<'_>,
    queries: &[usize],
    k: usize,
    seed: u64,
) -> anyhow::Result<ContextTasks> {
    let mut observational: Option<Array2<f32>> = None;
    let (mut tasks, mut seeds) = (Vec::with_capacity(queries.len()), Vec::new());
    for (i, &q) in queries.iter().enumerate() {
        let task_seed = cellshift_data::seed::query_seed(seed, i as u64);
        let mut task = sampler.task_for(q, k, task_seed)?;
        match &observational {
            None => observational = Some(task.observational.clone()),
            Some(o) => task.observational = o.clone(),
        }
        tasks.push(task);
        seeds.push(task_seed);
    }
    let observational =
        observational.ok_or_else(|| anyhow::anyhow!("no queries in the context to score"))?;
    Ok(ContextTasks {
        tasks,
        seeds,
        observational,
    })
}

/// Scores one context's queries with one seed. Tasks are built, predicted and reduced to the scored
/// sets a group of [`QUERIES_PER_PROGRESS_STEP`] at a time, so the K context experiments of only one
/// group are held at once (a 300-query context at K = 8, 200 cells and 2,000 genes would otherwise hold
/// ≈ 8 GB). `keep_examples` keeps the scored sets for plots (the first seed's).
fn score_context(
    data: &PerturbationData,
    sampler: &TaskSampler<'_>,
    predictor: &dyn Predictor,
    queries: &[usize],
    seed: u64,
    config: &ScoreConfig,
    progress: &Counter<'_>,
    keep_examples: bool,
) -> anyhow::Result<(EvalReport, Vec<ScoredQuery>)> {
    let mut observational: Option<Array2<f32>> = None;
    let (mut trues, mut preds, mut names, mut targets) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut scored = Vec::new();
    let mut log_likelihood = LogLikelihoods::default();
    for (g, group) in queries.chunks(QUERIES_PER_PROGRESS_STEP).enumerate() {
        // The group's tasks (and the independent resamples below) are drawn in parallel; each has its
        // own seed, so the result does not depend on scheduling.
        let drawn: Vec<(Task, Option<Array2<f32>>, u64)> = group
            .par_iter()
            .enumerate()
            .map(|(j, &q)| {
                let i = g * QUERIES_PER_PROGRESS_STEP + j;
                let task_seed = cellshift_data::seed::query_seed(seed, i as u64);
                let task = sampler.task_for(q, config.k, task_seed)?;
                // Predictors never see the scored target cells: the task they get carries an independent
                // resample of the query condition (read only by the oracle, whose score is then the
                // noise floor).
                let independent = sampler
                    .task_for(q, 0, task_seed ^ INDEPENDENT_RESAMPLE_SALT)?
                    .target;
                Ok((task, independent, task_seed))
            })
            .collect::<Result<_, cellshift_data::DataError>>()?;
        let mut tasks = Vec::with_capacity(group.len());
        let mut true_targets = Vec::with_capacity(group.len());
        let mut seeds = Vec::with_capacity(group.len());
        for (mut task, independent, task_seed) in drawn {
            // Every query of the context starts from the same control cells (the first query's draw).
            match &observational {
                None => observational = Some(task.observational.clone()),
                Some(o) => task.observational = o.clone(),
            }
            // The predictor sees the independent resample in the target slot; the true target is put
            // back after prediction (no copy of the task and its context experiments).
            true_targets.push(std::mem::replace(&mut task.target, independent));
            tasks.push(task);
            seeds.push(task_seed);
        }
        let predictions = predictor
            .predict_many(&tasks, config.n_cells, &seeds)
            .map_err(|e| anyhow::anyhow!("{} failed: {e}", predictor.name()))?;
        for (task, target) in tasks.iter_mut().zip(true_targets) {
            task.target = target;
        }
        progress.add(group.len());
        log_likelihood.add(predictor, &tasks, &seeds)?;
        let (mut group_trues, mut group_preds) = (Vec::new(), Vec::new());
        for (task, prediction) in tasks.iter().zip(&predictions) {
            let target = task
                .target
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("task without target cells"))?;
            let predicted = prediction_cells(prediction, task);
            let label = task.query_label().to_string();
            if keep_examples {
                scored.push(ScoredQuery {
                    label: label.clone(),
                    observational: task.observational.clone(),
                    target: target.clone(),
                    predicted: predicted.clone(),
                });
            }
            group_trues.push(target);
            group_preds.push(predicted);
            targets.push(data.gene_index(&label).map(|g| g as i64).unwrap_or(-1));
            names.push(label);
        }
        // The metric suite works in float64: the group's sets are converted in parallel.
        trues.extend(to_f64(group_trues));
        preds.extend(to_f64(group_preds));
    }
    let observational =
        observational.ok_or_else(|| anyhow::anyhow!("no queries in the context to score"))?;
    let obs = observational.mapv(f64::from);
    let case = EvalCase::new(obs, trues, preds, Some(names), Some(targets))?;
    let options = EvalOptions {
        gene_names: Some(data.genes.clone()),
        ..EvalOptions::default()
    };
    let mut report = evaluate(&case, &config.groups, &options)?;
    log_likelihood.report(&mut report);
    Ok((report, scored))
}

/// Float64 copies of float32 cell sets, converted in parallel.
fn to_f64<M: std::borrow::Borrow<Array2<f32>> + Send>(sets: Vec<M>) -> Vec<Array2<f64>> {
    sets.into_par_iter()
        .map(|m| m.borrow().mapv(f64::from))
        .collect()
}

/// Counts predicted queries and reports them to an observer.
struct Counter<'a> {
    done: std::cell::Cell<usize>,
    total: usize,
    report: &'a dyn Fn(usize, usize),
}

impl Counter<'_> {
    fn add(&self, n: usize) {
        self.done.set(self.done.get() + n);
        (self.report)(self.done.get(), self.total);
    }
}

/// Metric key of the held-out log-likelihood (nats per gene) of predictors with an exact likelihood.
pub const LOG_LIKELIHOOD_METRIC: &str = "heldout_log_likelihood_per_gene";

/// The predictor's exact log-likelihood of each query's scored target cells (nats per gene), collected
/// group by group; empty for predictors without one.
#[derive(Default)]
struct LogLikelihoods {
    values: Vec<f64>,
    unsupported: bool,
}

impl LogLikelihoods {
    /// Adds the values of a group of tasks (with their true targets).
    fn add(
        &mut self,
        predictor: &dyn Predictor,
        tasks: &[Task],
        seeds: &[u64],
    ) -> anyhow::Result<()> {
        if self.unsupported {
            return Ok(());
        }
        for (task, &seed) in tasks.iter().zip(seeds) {
            let Some(target) = task.target.as_ref() else {
                continue;
            };
            match predictor.log_likelihood(task, target, seed) {
                None => {
                    self.unsupported = true;
                    self.values.clear();
                    return Ok(());
                }
                Some(v) => self.values.push(v.map_err(|e| {
                    anyhow::anyhow!("{} log-likelihood failed: {e}", predictor.name())
                })?),
            }
        }
        Ok(())
    }

    /// Adds the mean over the context's queries to the report, when there is one.
    fn report(&self, report: &mut EvalReport) {
        if !self.unsupported && !self.values.is_empty() {
            let mean = self.values.iter().sum::<f64>() / self.values.len() as f64;
            report.mean.push(LOG_LIKELIHOOD_METRIC, mean);
            report.nanmean.push(LOG_LIKELIHOOD_METRIC, mean);
        }
    }
}

/// A split configuration that treats every context as a hold-out context.
pub fn all_holdout_split(seed: u64) -> SplitConfig {
    SplitConfig {
        seed,
        mode: SplitMode::AllContextsHoldout,
        ..SplitConfig::default()
    }
}
