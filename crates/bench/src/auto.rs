//! `auto`: chooses, per screen, the candidate (baselines, learned methods, residual variants) that predicts
//! best by cross-validation on the training perturbations alone, then refits it on all of them.
//!
//! The inner folds are dealt from the training perturbations of the kinds the queries have (the query's
//! context and treatment kind, e.g. doubles of the screen's context, or knock-outs of the held-out cell
//! line) by the same fold rule as the leaderboard's cross-validation (`Split::cross_validation_folds`).
//! Each candidate is fitted on every inner fold's training part and scored on its held-out part with the
//! leaderboard's protocol; the candidate with the lowest mean RMSE over the held-out training
//! perturbations wins (ties go to the earlier candidate, baselines are listed first). The test
//! perturbations are never read: `fit` receives only the training conditions, and the query kinds are
//! (context, treatment kind) pairs.

use std::sync::{Arc, Mutex};

use cellshift_data::split::{Split, SplitRole};
use cellshift_data::{FitContext, PerturbationData, PredictError, Prediction, Predictor, Task};
use cellshift_metrics::MetricGroups;

use crate::cross_validation::{fold_scores, summarise_folds};
use crate::score::{score_on_split, ScoreConfig};

/// Inner folds unless configured otherwise.
pub const DEFAULT_INNER_FOLDS: usize = 3;

/// The metric `auto` chooses by.
pub const CHOICE_METRIC: &str = "mean_rmse";

/// One candidate: a fresh predictor per inner fold and one for the final refit.
pub struct Candidate {
    /// Its leaderboard name.
    pub name: String,
    /// Predictors for the inner folds, in fold order, with their run directories.
    pub per_fold: Vec<(Box<dyn Predictor>, Option<std::path::PathBuf>)>,
    /// The predictor refitted on every training condition when this candidate wins (or, for a baseline,
    /// when it is the fallback).
    pub refit: (Box<dyn Predictor>, Option<std::path::PathBuf>),
    /// A baseline: the best-scoring baseline is refitted as the fallback of a winner that cannot predict a
    /// query.
    pub baseline: bool,
}

/// What `auto` chose and why.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct AutoReport {
    /// The winner's name.
    pub chosen: String,
    /// Per candidate: (name, inner mean RMSE, held-out training perturbations scored), or the reason it
    /// could not be scored.
    pub inner: Vec<InnerScore>,
    /// Inner folds used.
    pub folds: usize,
    /// The baseline that predicts a query the winner cannot (the best-scoring baseline), if the winner is
    /// not a baseline itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// One candidate's inner score.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InnerScore {
    /// Candidate name.
    pub name: String,
    /// Mean RMSE over the held-out training perturbations (`None`: not scored).
    pub mean_rmse: Option<f64>,
    /// Held-out training perturbations scored.
    pub n: usize,
    /// Why it was not scored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The `auto` predictor (see the module docs).
pub struct Auto {
    candidates: Vec<Candidate>,
    query_kinds: Vec<(usize, &'static str)>,
    config: ScoreConfig,
    inner_folds: usize,
    chosen: Option<Box<dyn Predictor>>,
    fallback: Option<Box<dyn Predictor>>,
    report: Arc<Mutex<AutoReport>>,
}

impl Auto {
    /// `auto` over `candidates` for queries of the given (context index, treatment kind) pairs (see
    /// [`Split::query_kinds`]), scoring inner folds with `config` (its seeds, cells, K; the metric groups
    /// are reduced to the one that holds [`CHOICE_METRIC`]). `report` receives the choice after `fit`.
    pub fn new(
        candidates: Vec<Candidate>,
        query_kinds: Vec<(usize, &'static str)>,
        config: &ScoreConfig,
        inner_folds: usize,
        report: Arc<Mutex<AutoReport>>,
    ) -> Auto {
        Auto {
            candidates,
            query_kinds,
            config: ScoreConfig {
                groups: MetricGroups {
                    mappfn: true,
                    ..MetricGroups::none()
                },
                ..config.clone()
            },
            inner_folds,
            chosen: None,
            fallback: None,
            report,
        }
    }

    /// The inner folds of the training conditions: the training perturbations of the query kinds dealt
    /// into folds; everything else trains in every fold.
    fn inner_folds(
        &self,
        data: &PerturbationData,
        train: &[usize],
        seed: u64,
    ) -> Result<Vec<Split>, PredictError> {
        let mut base = Split::from_train_conditions(data, train)?;
        let conds = data.conditions();
        let mut marked = false;
        for &(context, kind) in &self.query_kinds {
            if let Some(&c) = train.iter().find(|&&c| {
                conds[c].context == context
                    && Split::treatment_kind(&data.treatments[conds[c].treatment]) == kind
                    && base.role[c] == SplitRole::Train
                    && Split::could_be_tested(data, c)
            }) {
                base.role[c] = SplitRole::Test;
                marked = true;
            }
        }
        if !marked {
            return Err(
                "auto found no training perturbation like the queries (same context and kind) \
                        to choose on; give the screen some, or name a method"
                    .into(),
            );
        }
        Ok(base.cross_validation_folds(data, self.inner_folds, seed)?)
    }
}

impl Predictor for Auto {
    fn name(&self) -> &str {
        "auto"
    }

    fn fit(
        &mut self,
        data: &PerturbationData,
        train_conditions: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> Result<(), PredictError> {
        let folds = self.inner_folds(data, train_conditions, ctx.seed)?;
        let mut inner = Vec::with_capacity(self.candidates.len());
        let mut best: Option<(usize, f64)> = None;
        let mut best_baseline: Option<(usize, f64)> = None;
        for (i, candidate) in self.candidates.iter_mut().enumerate() {
            let mut scores = Vec::with_capacity(folds.len());
            let mut failure = None;
            for (fold, (predictor, run_dir)) in folds.iter().zip(candidate.per_fold.iter_mut()) {
                let mut fit = FitContext {
                    run_dir: run_dir.clone(),
                    seed: ctx.seed,
                    ..FitContext::default()
                };
                match score_on_split(
                    data,
                    predictor.as_mut(),
                    fold.clone(),
                    &self.config,
                    &mut fit,
                ) {
                    Ok(result) => scores.push(fold_scores(&result, &self.config.seeds)),
                    Err(e) => {
                        failure = Some(format!("{e:#}"));
                        break;
                    }
                }
            }
            let score = match failure {
                Some(reason) => InnerScore {
                    name: candidate.name.clone(),
                    mean_rmse: None,
                    n: 0,
                    reason: Some(reason),
                },
                None => {
                    let (summary, _) = summarise_folds(&scores, 0, 0);
                    let m = summary.iter().find(|m| m.metric == CHOICE_METRIC);
                    InnerScore {
                        name: candidate.name.clone(),
                        mean_rmse: m.map(|m| m.mean).filter(|v| v.is_finite()),
                        n: m.map_or(0, |m| m.n),
                        reason: None,
                    }
                }
            };
            if let Some(v) = score.mean_rmse {
                if best.is_none_or(|(_, b)| v < b) {
                    best = Some((i, v));
                }
                if candidate.baseline && best_baseline.is_none_or(|(_, b)| v < b) {
                    best_baseline = Some((i, v));
                }
            }
            inner.push(score);
        }
        let (winner, _) = best.ok_or_else(|| {
            format!(
                "auto could score no candidate on the training perturbations: {}",
                inner
                    .iter()
                    .map(|s| format!("{}: {}", s.name, s.reason.as_deref().unwrap_or("no value")))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
        let fit_refit = |refit: &mut (Box<dyn Predictor>, Option<std::path::PathBuf>)| {
            let mut fit = FitContext {
                run_dir: refit.1.clone(),
                seed: ctx.seed,
                ..FitContext::default()
            };
            refit.0.fit(data, train_conditions, &mut fit)
        };
        let mut fallback_name = None;
        self.fallback = None;
        if let Some((b, _)) = best_baseline.filter(|(b, _)| *b != winner) {
            let candidate = &mut self.candidates[b];
            fit_refit(&mut candidate.refit)?;
            fallback_name = Some(candidate.name.clone());
            let placeholder: Box<dyn Predictor> = Box::new(Unfitted);
            self.fallback = Some(std::mem::replace(&mut candidate.refit.0, placeholder));
        }
        let mut candidate = self.candidates.swap_remove(winner);
        fit_refit(&mut candidate.refit)?;
        self.chosen = Some(candidate.refit.0);
        *self
            .report
            .lock()
            .map_err(|_| "auto's report lock was poisoned")? = AutoReport {
            chosen: candidate.name,
            inner,
            folds: folds.len(),
            fallback: fallback_name,
        };
        self.candidates.clear();
        Ok(())
    }

    fn predict(&self, task: &Task, n_cells: usize, seed: u64) -> Result<Prediction, PredictError> {
        let chosen = self
            .chosen
            .as_ref()
            .ok_or("auto is not fitted; call fit on training conditions first")?;
        match (chosen.predict(task, n_cells, seed), &self.fallback) {
            (Err(_), Some(fallback)) => fallback.predict(task, n_cells, seed),
            (result, _) => result,
        }
    }

    fn predict_many(
        &self,
        tasks: &[Task],
        n_cells: usize,
        seeds: &[u64],
    ) -> Result<Vec<Prediction>, PredictError> {
        let chosen = self
            .chosen
            .as_ref()
            .ok_or("auto is not fitted; call fit on training conditions first")?;
        match chosen.predict_many(tasks, n_cells, seeds) {
            Ok(p) => Ok(p),
            // Some query the winner cannot predict: one by one, with the fallback where needed.
            Err(_) if self.fallback.is_some() => tasks
                .iter()
                .zip(seeds)
                .map(|(t, &s)| self.predict(t, n_cells, s))
                .collect(),
            Err(e) => Err(e),
        }
    }
}

/// Stands in for a refitted predictor moved out of its candidate.
struct Unfitted;

impl Predictor for Unfitted {
    fn name(&self) -> &str {
        "unfitted"
    }

    fn predict(&self, _: &Task, _: usize, _: u64) -> Result<Prediction, PredictError> {
        Err("this candidate's refit was moved out".into())
    }
}

#[cfg(test)]
mod tests {
    use cellshift_baselines::baseline_by_name;

    use super::*;

    /// Two contexts × (control + 12 knock-outs) × 8 genes; knock-out effects shared by the contexts.
    fn screen() -> PerturbationData {
        cellshift_data::testing::shared_effect_screen(12, 8, 4)
    }

    fn candidates(folds: usize) -> Vec<Candidate> {
        ["control", "context_mean", "perturbation_mean"]
            .iter()
            .map(|name| Candidate {
                name: name.to_string(),
                per_fold: (0..folds)
                    .map(|_| (baseline_by_name(name).unwrap() as Box<dyn Predictor>, None))
                    .collect(),
                refit: (baseline_by_name(name).unwrap(), None),
                baseline: true,
            })
            .collect()
    }

    /// Fits auto on the train conditions of a hold-out split of `data` and returns its report.
    fn choose(data: &PerturbationData, split: &Split) -> AutoReport {
        let report = Arc::new(Mutex::new(AutoReport::default()));
        let config = ScoreConfig {
            k: 3,
            n_cells: 16,
            seeds: vec![0],
            groups: MetricGroups::none(),
            split: Default::default(),
        };
        let mut auto = Auto::new(
            candidates(3),
            split.query_kinds(data),
            &config,
            3,
            report.clone(),
        );
        auto.fit(data, &split.train_conditions(), &mut FitContext::default())
            .unwrap();
        let out = report.lock().unwrap().clone();
        out
    }

    #[test]
    fn auto_chooses_on_training_perturbations_and_never_reads_the_test_ones() {
        let data = screen();
        let split = Split::new(&data, &Default::default()).unwrap();
        let first = choose(&data, &split);
        assert_eq!(first.chosen, "perturbation_mean", "{first:?}");
        assert_eq!(first.inner.len(), 3);
        let held_out_context = split.holdout_context.clone().unwrap();
        let train_in_holdout = split
            .train_conditions()
            .iter()
            .filter(|&&c| data.contexts[data.conditions()[c].context] == held_out_context)
            .count();
        assert!(
            first.inner.iter().all(|s| s.n == train_in_holdout),
            "{first:?}"
        );
        // Scramble every test perturbation's cells: the choice and every inner score stay the same.
        let mut scrambled = data.clone();
        for c in split.test_conditions() {
            for &r in &data.conditions()[c].cells {
                scrambled
                    .x
                    .dense_mut()
                    .row_mut(r)
                    .mapv_inplace(|v| v * 100.0 - 7.0);
            }
        }
        let second = choose(&scrambled, &split);
        assert_eq!(second.chosen, first.chosen);
        for (a, b) in first.inner.iter().zip(&second.inner) {
            assert_eq!((a.mean_rmse, a.n), (b.mean_rmse, b.n), "{}", a.name);
        }
    }
}
