//! The context-mean baseline (STATE `context_mean` on the delta scale): the mean shift of the
//! perturbations measured in the query's context, added to the query context's control cells. It says
//! "this context responds to perturbations like this on average", whatever the perturbation.
//!
//! Two sources for the shifts, chosen at construction ([`ContextMeanSource`]):
//! * [`ContextMeanSource::Training`] (the registry's `context_mean`): the training conditions of the
//!   query's context; shift = mean over those perturbations p (each weighted equally) of
//!   pseudo-bulk(p, c) − pseudo-bulk(control, c), with all of c's control cells. Needs `fit`, and errors
//!   for a context without training perturbations.
//! * [`ContextMeanSource::TaskContext`]: the task's K context experiments against its own observational
//!   set; shift = mean over the K experiments of mean(experiment) − mean(observational). Needs no `fit`
//!   (usable at inference on a new context) and errors when K = 0.
//!
//! With the training source a control query gets a zero shift; the task source does not interpret the
//! query label (the context mean is the same for every query).

use cellshift_data::FitContext;
use cellshift_data::{PerturbationData, PredictError, Prediction, Predictor, Task, Treatment};
use ndarray::{Array1, Axis};

use crate::error::BaselineError;
use crate::shared::effects::{check_task_shape, fitted, TrainingEffects};
use crate::shared::resample::{mean_profile, shifted_control_cells};

/// Where [`ContextMean`] takes the context's perturbation shifts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContextMeanSource {
    /// The training conditions of the query's context (needs `fit`).
    #[default]
    Training,
    /// The task's K context experiments versus its observational set (no `fit` needed).
    TaskContext,
}

/// Control cells plus the mean shift of the perturbations measured in the query's context.
#[derive(Clone, Debug, Default)]
pub struct ContextMean {
    source: ContextMeanSource,
    effects: Option<TrainingEffects>,
}

impl ContextMean {
    /// Registry name of this baseline.
    pub const NAME: &'static str = "context_mean";

    /// A new, unfitted baseline reading its shifts from `source`.
    pub fn new(source: ContextMeanSource) -> Self {
        ContextMean {
            source,
            effects: None,
        }
    }

    /// The source of the shifts.
    pub fn source(&self) -> ContextMeanSource {
        self.source
    }

    fn training_shift(&self, task: &Task) -> Result<Array1<f64>, BaselineError> {
        let effects = fitted(&self.effects, Self::NAME)?;
        effects.check_task(task)?;
        if matches!(effects.query_treatment(task)?, Treatment::Control) {
            return Ok(Array1::zeros(effects.n_genes()));
        }
        let not_trained = |reason: &str| BaselineError::ContextNotTrained {
            baseline: Self::NAME.into(),
            context: task.context.clone(),
            reason: reason.to_string(),
        };
        let context = effects.context_index(&task.context).ok_or_else(|| {
            not_trained(&format!(
                "it is not one of the fitted data's contexts ({}); use ContextMeanSource::TaskContext with K > 0 \
                 context experiments for a new context",
                effects.contexts.join(", ")
            ))
        })?;
        effects.context_mean_shift(context).ok_or_else(|| {
            not_trained(
                "no perturbation of this context is among the training conditions; put some in training or use \
                 ContextMeanSource::TaskContext with K > 0 context experiments",
            )
        })
    }

    fn task_shift(task: &Task) -> Result<Array1<f64>, BaselineError> {
        check_task_shape(task, None)?;
        if task.k() == 0 {
            return Err(BaselineError::ContextNotTrained {
                baseline: Self::NAME.into(),
                context: task.context.clone(),
                reason: "the task has no context experiments (K = 0), so the context's mean shift is unknown; \
                         build tasks with K > 0 or use ContextMeanSource::Training after `fit`"
                    .into(),
            });
        }
        let control =
            mean_profile(task.observational.view()).ok_or_else(|| BaselineError::EmptyCells {
                what: "the task's observational (control) set".into(),
            })?;
        let mut sum = Array1::<f64>::zeros(task.n_genes());
        for (k, set) in task.context_cells.axis_iter(Axis(0)).enumerate() {
            let mean = mean_profile(set).ok_or_else(|| BaselineError::EmptyCells {
                what: format!("the task's context experiment {k}"),
            })?;
            sum += &(mean - &control);
        }
        Ok(sum / task.k() as f64)
    }
}

impl Predictor for ContextMean {
    fn name(&self) -> &str {
        Self::NAME
    }

    /// Computes the training shifts (also for [`ContextMeanSource::TaskContext`], where they are unused
    /// but a bad training set is still reported).
    fn fit(
        &mut self,
        data: &PerturbationData,
        train_conditions: &[usize],
        _ctx: &mut FitContext<'_>,
    ) -> Result<(), PredictError> {
        self.effects = Some(TrainingEffects::from_training(
            Self::NAME,
            data,
            train_conditions,
        )?);
        Ok(())
    }

    fn predict(&self, task: &Task, n_cells: usize, seed: u64) -> Result<Prediction, PredictError> {
        let shift = match self.source {
            ContextMeanSource::Training => self.training_shift(task)?,
            ContextMeanSource::TaskContext => Self::task_shift(task)?,
        };
        Ok(Prediction::Cells(shifted_control_cells(
            task.observational.view(),
            &shift,
            n_cells,
            seed,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::fixture;
    use ndarray::array;

    fn fitted_baseline(source: ContextMeanSource) -> (PerturbationData, ContextMean) {
        let data = fixture::data();
        let mut baseline = ContextMean::new(source);
        baseline
            .fit(
                &data,
                &fixture::train_conditions(&data),
                &mut FitContext::default(),
            )
            .unwrap();
        (data, baseline)
    }

    #[test]
    fn training_source_adds_the_contexts_mean_shift() {
        let (data, baseline) = fitted_baseline(ContextMeanSource::Training);
        // A's training shifts G1 (−1,0,1) and G2 (0,−1,0) → (−0.5,−0.5,0.5), whatever the query.
        for label in ["G3", "G1+G2", "G4"] {
            fixture::assert_mean(
                &baseline
                    .predict(&fixture::query_in_a(&data, label), 2, 1)
                    .unwrap(),
                &[1.5, 1.5, 2.5],
            );
        }
        // In B: G1 (−2,0,2) and G3 (0,0,−3) → (−1,0,−0.5) on B's control mean (5,5,5).
        let task = fixture::task(
            "B",
            fixture::cells(&data, "B", "control"),
            vec![],
            &["G2"],
            None,
        );
        fixture::assert_mean(&baseline.predict(&task, 2, 1).unwrap(), &[4.0, 5.0, 4.5]);
    }

    #[test]
    fn task_source_uses_the_context_experiments_without_fit() {
        let data = fixture::data();
        let g1 = fixture::cells(&data, "A", "G1");
        let g2_two = array![[2.0f32, 0.0, 2.0], [2.0, 1.0, 2.0]];
        let task = fixture::task(
            "A",
            fixture::cells(&data, "A", "control"),
            vec![g1, g2_two],
            &["G1", "G2", "G3"],
            None,
        );
        // Experiments' means (1,2,3) and (2,0.5,2) vs observational mean (2,2,2): shifts (−1,0,1) and
        // (0,−1.5,0) → mean (−0.5,−0.75,0.5).
        let baseline = ContextMean::new(ContextMeanSource::TaskContext);
        fixture::assert_mean(&baseline.predict(&task, 2, 3).unwrap(), &[1.5, 1.25, 2.5]);
        // Works on a context the training data never had.
        let mut unseen = task.clone();
        unseen.context = "new-line".into();
        fixture::assert_mean(&baseline.predict(&unseen, 2, 3).unwrap(), &[1.5, 1.25, 2.5]);
    }

    #[test]
    fn deterministic_under_a_seed() {
        let (data, baseline) = fitted_baseline(ContextMeanSource::Training);
        let task = fixture::query_in_a(&data, "G3");
        let cells = |seed| match baseline.predict(&task, 6, seed).unwrap() {
            Prediction::Cells(c) => c,
            Prediction::PseudoBulk(_) => panic!("cells expected"),
        };
        assert_eq!(cells(8), cells(8));
        assert_ne!(cells(8), cells(9));
    }

    #[test]
    fn errors_name_the_missing_piece() {
        let data = fixture::data();
        let task = fixture::query_in_a(&data, "G3");
        let err = ContextMean::new(ContextMeanSource::Training)
            .predict(&task, 2, 0)
            .unwrap_err();
        assert!(err.to_string().contains("before it was fitted"), "{err}");
        let err = ContextMean::new(ContextMeanSource::TaskContext)
            .predict(&task, 2, 0)
            .unwrap_err();
        assert!(err.to_string().contains("K = 0"), "{err}");
        let (_, baseline) = fitted_baseline(ContextMeanSource::Training);
        let unseen = fixture::task(
            "D",
            fixture::cells(&data, "A", "control"),
            vec![],
            &["G3"],
            None,
        );
        let err = baseline.predict(&unseen, 2, 0).unwrap_err();
        assert!(
            err.to_string()
                .contains("not one of the fitted data's contexts"),
            "{err}"
        );
        // Fit on B and C only: A has control cells but no training perturbation.
        let a = data.context_index("A").unwrap();
        let not_a: Vec<usize> = (0..data.conditions().len())
            .filter(|&i| data.conditions()[i].context != a)
            .collect();
        let mut baseline = ContextMean::new(ContextMeanSource::Training);
        baseline
            .fit(&data, &not_a, &mut FitContext::default())
            .unwrap();
        let err = baseline.predict(&task, 2, 0).unwrap_err();
        assert!(
            err.to_string().contains("no perturbation of this context"),
            "{err}"
        );
    }
}
