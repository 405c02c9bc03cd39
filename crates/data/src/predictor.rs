//! The interface every method and baseline implements: fit on training conditions, then predict the
//! cells (or a pseudo-bulk profile) of a query condition from its task.

use ndarray::{Array1, Array2};

use crate::fit::{Capabilities, FitContext};
use crate::model::PerturbationData;
use crate::task::Task;

/// Error type of predictors: any error with a message that names the problem.
pub type PredictError = Box<dyn std::error::Error + Send + Sync>;

/// A prediction for one query condition.
#[derive(Clone, Debug)]
pub enum Prediction {
    /// Predicted cells, `n × d`.
    Cells(Array2<f32>),
    /// A predicted mean profile over the d genes (methods that only model pseudo-bulk).
    PseudoBulk(Array1<f32>),
}

impl Prediction {
    /// The predicted mean profile (mean over cells for a cell-level prediction).
    pub fn mean_profile(&self) -> Array1<f32> {
        match self {
            Prediction::Cells(cells) => cells
                .mean_axis(ndarray::Axis(0))
                .unwrap_or_else(|| Array1::zeros(cells.ncols())),
            Prediction::PseudoBulk(profile) => profile.clone(),
        }
    }
}

/// Errors unless `seeds` holds one seed per task (the contract of [`Predictor::predict_many`]).
pub fn check_one_seed_per_task(tasks: &[Task], seeds: &[u64]) -> Result<(), PredictError> {
    if tasks.len() != seeds.len() {
        return Err(format!(
            "predict_many got {} tasks but {} seeds; give one seed per task",
            tasks.len(),
            seeds.len()
        )
        .into());
    }
    Ok(())
}

/// A perturbation-response predictor: a neural method or a baseline.
pub trait Predictor {
    /// Short name used in tables and on the command line.
    fn name(&self) -> &str;

    /// What the predictor can do (output kind, supported K, likelihood); the default is cells at any K.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Learns from the training conditions of `data` (indices into `data.conditions()`), with the device,
    /// budget, run directory, progress reporting and seed of `ctx`. Methods that need no training
    /// (identity, in-context models at zero-shot) keep the default, which does nothing.
    fn fit(
        &mut self,
        data: &PerturbationData,
        train_conditions: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> Result<(), PredictError> {
        let _ = (data, train_conditions, ctx);
        Ok(())
    }

    /// Predicts `n_cells` cells (or a pseudo-bulk profile) of the query of `task`. `task.target` is never
    /// read except by the oracle baseline. Stochastic predictors draw from `seed`.
    fn predict(&self, task: &Task, n_cells: usize, seed: u64) -> Result<Prediction, PredictError>;

    /// The exact log-likelihood of `cells` (held-out cells of the task's query, `n × d`) in nats per gene,
    /// averaged over cells, for predictors whose [`Capabilities::exact_log_likelihood`] is set (drawing any
    /// randomness from `seed`); `None` for the others (the default).
    fn log_likelihood(
        &self,
        task: &Task,
        cells: &Array2<f32>,
        seed: u64,
    ) -> Option<Result<f64, PredictError>> {
        let _ = (task, cells, seed);
        None
    }

    /// Predicts several queries, task `i` with `seeds[i]`; the result must equal calling
    /// [`Predictor::predict`] on each (up to floating-point reassociation). Methods that can solve several
    /// queries at once (one batched ODE solve) override it; the default predicts one by one.
    fn predict_many(
        &self,
        tasks: &[Task],
        n_cells: usize,
        seeds: &[u64],
    ) -> Result<Vec<Prediction>, PredictError> {
        check_one_seed_per_task(tasks, seeds)?;
        tasks
            .iter()
            .zip(seeds)
            .map(|(t, &s)| self.predict(t, n_cells, s))
            .collect()
    }
}

/// Cells of a prediction; a pseudo-bulk prediction becomes the observational cells shifted so their mean
/// equals the predicted profile (the convention for mean-only methods in distributional metrics).
pub fn prediction_cells(prediction: &Prediction, task: &Task) -> Array2<f32> {
    match prediction {
        Prediction::Cells(cells) => cells.clone(),
        Prediction::PseudoBulk(profile) => {
            let control_mean = task
                .observational
                .mean_axis(ndarray::Axis(0))
                .unwrap_or_else(|| profile.clone());
            let shift = profile - &control_mean;
            &task.observational + &shift.insert_axis(ndarray::Axis(0))
        }
    }
}
