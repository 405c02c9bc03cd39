//! A learned method as a correction to a baseline (`--model-option residual=BASELINE`): the method is
//! trained on what the baseline leaves unexplained and predicts it back on top of the baseline.
//!
//! * **Cross-fitted residual targets.** The training perturbations are dealt into folds; each fold's
//!   baseline shift (prediction − control mean) comes from the baseline fitted without that fold, so a
//!   perturbation never explains itself (a `perturbation_mean` fitted on a perturbation would leave it no
//!   residual at all). The method is fitted on the data with each training perturbation's cells moved by
//!   minus that shift; controls are untouched.
//! * **A gate that starts at zero.** The prediction is the baseline's prediction plus γ times the method's
//!   predicted residual shift, γ ∈ [0, 1]. Before fitting γ = 0 and the prediction *is* the baseline's
//!   (the same cells). `fit` holds out a share of the training perturbations (calibration), fits the method
//!   on the rest, predicts the held-out ones and sets γ to the least-squares scale of its residual shifts
//!   against the measured residuals, clipped to [0, 1]: a method whose corrections do not help is gated
//!   off, one whose corrections are right is let through.
//! * At prediction the task's context experiments are moved by their own cross-fitted shifts, like the
//!   training cells, and the method's cells are shifted back by the baseline shift of the query: cells
//!   = method cells − (1 − γ) · (method's residual shift) + baseline shift.

use std::collections::HashMap;

use cellshift_data::seed::{derive_seed, rng_from_parts};
use cellshift_data::task_builder::{Query, TaskBuilder};
use cellshift_data::{
    Capabilities, FitContext, PerturbationData, PredictError, Prediction, Predictor, Task,
    Treatment,
};
use ndarray::{Array1, Array2, Array3, Axis};
use rand::seq::SliceRandom;

use crate::registry::baseline_by_name;

/// Baselines a method can be made a residual of.
pub const RESIDUAL_BASELINES: &[&str] = &["additive", "context_mean", "perturbation_mean"];

/// Share of the training perturbations held out to calibrate the gate γ.
pub const CALIBRATION_SHARE: f64 = 0.2;

/// Folds of the cross-fitted baseline shifts.
const CROSS_FIT_FOLDS: usize = 5;

/// Context experiments per calibration task (fewer when the context has fewer; within the method's K).
const CALIBRATION_K: usize = 8;

/// Cells per calibration set.
const CALIBRATION_CELLS: usize = 64;

const CALIBRATION_SALT: u64 = 0x7e51_d0a1_ca11_b8a7;

/// A baseline predictor as built for a fit.
type Baseline = Box<dyn Predictor + Send + Sync>;

/// A method fitted on the residuals of a baseline, gated by a calibrated γ (see the module docs).
pub struct Residual {
    name: String,
    inner: Box<dyn Predictor>,
    baseline_name: String,
    baseline: Option<Baseline>,
    /// Cross-fitted baseline shift of each training perturbation: (context index, label) → shift.
    shifts: HashMap<(usize, String), Array1<f32>>,
    gate: f64,
    calibration: Option<Calibration>,
}

/// What the gate was calibrated on.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// Held-out training perturbations predicted.
    pub perturbations: usize,
    /// The fitted γ.
    pub gate: f64,
    /// Mean over them of ‖measured residual‖² (what the baseline leaves).
    pub baseline_error: f64,
    /// Mean of ‖measured residual − γ · predicted residual‖² (what is left with the gated method).
    pub gated_error: f64,
}

impl Residual {
    /// `inner` made a residual of the baseline `baseline` (one of [`RESIDUAL_BASELINES`]); errors name the
    /// choices.
    pub fn new(inner: Box<dyn Predictor>, baseline: &str) -> Result<Residual, PredictError> {
        if !RESIDUAL_BASELINES.contains(&baseline) {
            return Err(format!(
                "residual={baseline} is not a residual baseline; use one of {}",
                RESIDUAL_BASELINES.join(", ")
            )
            .into());
        }
        Ok(Residual {
            name: format!("{}+residual={baseline}", inner.name()),
            inner,
            baseline_name: baseline.to_string(),
            baseline: None,
            shifts: HashMap::new(),
            gate: 0.0,
            calibration: None,
        })
    }

    /// The gate γ (0 until fitted).
    pub fn gate(&self) -> f64 {
        self.gate
    }

    /// What the gate was calibrated on (after `fit`, when enough perturbations were held out).
    pub fn calibration(&self) -> Option<&Calibration> {
        self.calibration.as_ref()
    }

    fn fitted_baseline(
        &self,
        data: &PerturbationData,
        train: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> Result<Baseline, PredictError> {
        let mut b = baseline_by_name(&self.baseline_name)?;
        let mut quiet = FitContext {
            seed: ctx.seed,
            ..FitContext::default()
        };
        b.fit(data, train, &mut quiet)?;
        Ok(b)
    }
}

/// The baseline's shift for `label` in `context` (prediction − control mean), exactly: the task's
/// observational set is the one control-mean row, predicted as one cell.
fn baseline_shift(
    baseline: &dyn Predictor,
    builder: &TaskBuilder<'_>,
    context: usize,
    query: &cellshift_data::TaskTreatment,
) -> Result<Array1<f32>, PredictError> {
    let data = builder.data();
    let control = builder
        .control_of(context)
        .ok_or_else(|| format!("context {} has no control cells", data.contexts[context]))?;
    let mean = data
        .x
        .select_rows(&data.conditions()[control].cells)
        .mean_axis(Axis(0))
        .ok_or("empty control")?;
    let task = Task {
        context: data.contexts[context].clone(),
        context_index: context,
        genes: std::sync::Arc::new(data.genes.clone()),
        observational: mean.clone().insert_axis(Axis(0)),
        experiments: Vec::new(),
        context_cells: Array3::zeros((0, 1, data.n_genes())),
        query: query.clone(),
        target: None,
    };
    let predicted = baseline.predict(&task, 1, 0)?.mean_profile();
    Ok(predicted - mean)
}

/// Moves the cells of each perturbation in `shifts` by minus its shift.
fn residual_data(
    data: &PerturbationData,
    conditions: &[usize],
    shifts: &HashMap<(usize, String), Array1<f32>>,
    builder: &TaskBuilder<'_>,
) -> PerturbationData {
    let mut out = data.clone();
    for &c in conditions {
        let cond = &data.conditions()[c];
        let key = (cond.context, builder.treatment_of(c).label);
        if let Some(shift) = shifts.get(&key) {
            for &r in &cond.cells {
                let mut row = out.x.dense_mut().row_mut(r);
                row -= shift;
            }
        }
    }
    out
}

/// The task as the method sees it: its context experiments moved by their cross-fitted shifts.
fn residual_task(task: &Task, shifts: &HashMap<(usize, String), Array1<f32>>) -> Task {
    let mut t = task.clone();
    for (slot, exp) in task.experiments.iter().enumerate() {
        if let Some(shift) = shifts.get(&(task.context_index, exp.label.clone())) {
            let mut cells = t.context_cells.index_axis_mut(Axis(0), slot);
            for mut row in cells.axis_iter_mut(Axis(0)) {
                row -= shift;
            }
        }
    }
    t
}

fn mean_rows(x: &Array2<f32>) -> Array1<f32> {
    x.mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(x.ncols()))
}

impl Predictor for Residual {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn fit(
        &mut self,
        data: &PerturbationData,
        train_conditions: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> Result<(), PredictError> {
        let builder = TaskBuilder::new(data, CALIBRATION_CELLS)?;
        let is_control = |c: usize| data.treatments[data.conditions()[c].treatment].is_control();
        let controls: Vec<usize> = train_conditions
            .iter()
            .copied()
            .filter(|&c| is_control(c))
            .collect();
        let mut perts: Vec<usize> = train_conditions
            .iter()
            .copied()
            .filter(|&c| !is_control(c))
            .collect();
        perts.shuffle(&mut rng_from_parts(&[ctx.seed, CALIBRATION_SALT]));
        // Calibration perturbations are drawn from those no other training perturbation is built from
        // (a single knock-out that is part of a trained double stays in fitting).
        let parts: std::collections::HashSet<(usize, &str)> = perts
            .iter()
            .filter_map(
                |&c| match &data.treatments[data.conditions()[c].treatment] {
                    Treatment::Combination { genes } => Some((data.conditions()[c].context, genes)),
                    _ => None,
                },
            )
            .flat_map(|(context, genes)| genes.iter().map(move |g| (context, g.as_str())))
            .collect();
        let is_part = |c: usize| match &data.treatments[data.conditions()[c].treatment] {
            Treatment::Knockout { gene } => {
                parts.contains(&(data.conditions()[c].context, gene.as_str()))
            }
            _ => false,
        };
        let (candidates, building_blocks): (Vec<usize>, Vec<usize>) =
            perts.iter().partition(|&&c| !is_part(c));
        let n_cal = if candidates.len() >= 5 {
            ((candidates.len() as f64 * CALIBRATION_SHARE).round() as usize).max(1)
        } else {
            0
        };
        let calibration = &candidates[..n_cal];
        let fitting: Vec<usize> = candidates[n_cal..]
            .iter()
            .chain(&building_blocks)
            .copied()
            .collect();
        let fitting = &fitting[..];
        // Cross-fitted shifts of the fitting perturbations. Where the baseline fitted without a fold cannot
        // predict one of its perturbations (an additive double whose single is in the same fold, a
        // perturbation measured nowhere else), the shift of the baseline fitted on every fitting
        // perturbation is used. The calibration perturbations get the latter too (they are not in it).
        let fitting_train: Vec<usize> = controls.iter().chain(fitting).copied().collect();
        let on_fitting = self.fitted_baseline(data, &fitting_train, ctx)?;
        let folds = CROSS_FIT_FOLDS.min(fitting.len()).max(1);
        self.shifts.clear();
        for f in 0..folds {
            let held: Vec<usize> = fitting.iter().skip(f).step_by(folds).copied().collect();
            let rest: Vec<usize> = controls
                .iter()
                .chain(fitting.iter().filter(|c| !held.contains(c)))
                .copied()
                .collect();
            let out_of_fold = self.fitted_baseline(data, &rest, ctx).ok();
            for &c in &held {
                let context = data.conditions()[c].context;
                let query = builder.treatment_of(c);
                // A perturbation no baseline fit can predict keeps its cells: its residual is its effect.
                let shift = out_of_fold
                    .as_ref()
                    .and_then(|b| baseline_shift(b.as_ref(), &builder, context, &query).ok())
                    .or_else(|| {
                        baseline_shift(on_fitting.as_ref(), &builder, context, &query).ok()
                    });
                if let Some(shift) = shift {
                    self.shifts.insert((context, query.label), shift);
                }
            }
        }
        // A calibration perturbation the baseline cannot predict from the fitting ones is left out.
        let calibration: Vec<usize> = calibration
            .iter()
            .copied()
            .filter(|&c| {
                let context = data.conditions()[c].context;
                let query = builder.treatment_of(c);
                match baseline_shift(on_fitting.as_ref(), &builder, context, &query) {
                    Ok(shift) => {
                        self.shifts.insert((context, query.label), shift);
                        true
                    }
                    Err(_) => false,
                }
            })
            .collect();
        let residual = residual_data(data, &perts, &self.shifts, &builder);
        self.inner.fit(&residual, &fitting_train, ctx)?;
        self.gate = 0.0;
        self.calibration = None;
        if !calibration.is_empty() {
            let cal = self.calibrate(&residual, &builder, fitting, &calibration, ctx.seed)?;
            self.gate = cal.gate;
            self.calibration = Some(cal);
        }
        self.baseline = Some(self.fitted_baseline(data, train_conditions, ctx)?);
        Ok(())
    }

    fn predict(&self, task: &Task, n_cells: usize, seed: u64) -> Result<Prediction, PredictError> {
        let baseline = self.baseline.as_ref().ok_or_else(|| {
            format!(
                "{} is not fitted; call fit on training conditions first",
                self.name
            )
        })?;
        let base = baseline.predict(task, n_cells, seed)?;
        if self.gate == 0.0 {
            return Ok(base);
        }
        let observed = mean_rows(&task.observational);
        let shift = query_shift(baseline.as_ref(), task, &observed)?;
        let predicted = self
            .inner
            .predict(&residual_task(task, &self.shifts), n_cells, seed)?;
        let gate = self.gate as f32;
        Ok(match predicted {
            Prediction::Cells(mut cells) => {
                let residual_shift = mean_rows(&cells) - &observed;
                let mv = &shift - &(residual_shift * (1.0 - gate));
                for mut row in cells.axis_iter_mut(Axis(0)) {
                    row += &mv;
                }
                Prediction::Cells(cells)
            }
            Prediction::PseudoBulk(profile) => {
                let residual_shift = &profile - &observed;
                Prediction::PseudoBulk(&observed + &shift + &(residual_shift * gate))
            }
        })
    }
}

/// The baseline's shift for the task's query, exactly: the same task with its observational set reduced to
/// the one row of its mean, predicted as one cell (baselines add a shift to resampled control cells).
fn query_shift(
    baseline: &dyn Predictor,
    task: &Task,
    observed: &Array1<f32>,
) -> Result<Array1<f32>, PredictError> {
    let one = Task {
        observational: observed.clone().insert_axis(Axis(0)),
        context_cells: Array3::zeros((0, 1, observed.len())),
        experiments: Vec::new(),
        target: None,
        ..task.clone()
    };
    Ok(baseline.predict(&one, 1, 0)?.mean_profile() - observed)
}

impl Residual {
    /// Predicts the calibration perturbations with the method fitted on the others and fits γ.
    fn calibrate(
        &self,
        residual: &PerturbationData,
        builder: &TaskBuilder<'_>,
        fitting: &[usize],
        calibration: &[usize],
        seed: u64,
    ) -> Result<Calibration, PredictError> {
        let caps = self.inner.capabilities();
        let (mut dot, mut norm, mut base_err) = (0.0f64, 0.0f64, 0.0f64);
        let mut pairs: Vec<(Array1<f32>, Array1<f32>)> = Vec::new();
        for (i, &c) in calibration.iter().enumerate() {
            let context = residual.conditions()[c].context;
            let available: Vec<usize> = fitting
                .iter()
                .copied()
                .filter(|&o| residual.conditions()[o].context == context)
                .collect();
            let k = CALIBRATION_K
                .min(available.len())
                .min(caps.k_max.unwrap_or(usize::MAX));
            if k < caps.k_min {
                continue;
            }
            let mut rng = rng_from_parts(&[seed, CALIBRATION_SALT, i as u64]);
            let mut experiments = available;
            experiments.shuffle(&mut rng);
            experiments.truncate(k);
            // The residual data hold the calibration cells already moved by their baseline shift, so
            // target − observational is the measured residual.
            let task = builder_on(residual, builder)?.assemble(
                context,
                &experiments,
                &Query::Condition(c),
                &mut rng,
            )?;
            let target = task
                .target
                .as_ref()
                .ok_or("calibration task without target")?;
            let observed = mean_rows(&task.observational);
            let measured = mean_rows(target) - &observed;
            let inner_task = Task {
                target: None,
                ..task.clone()
            };
            // A perturbation the method cannot predict (e.g. one it has no embedding for) is left out.
            let Ok(prediction) =
                self.inner
                    .predict(&inner_task, CALIBRATION_CELLS, derive_seed(seed, i as u64))
            else {
                continue;
            };
            let predicted = prediction.mean_profile() - &observed;
            dot += measured
                .iter()
                .zip(&predicted)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum::<f64>();
            norm += predicted.iter().map(|&b| (b as f64).powi(2)).sum::<f64>();
            base_err += measured.iter().map(|&a| (a as f64).powi(2)).sum::<f64>();
            pairs.push((measured, predicted));
        }
        let n = pairs.len().max(1) as f64;
        let gate = if norm > 0.0 {
            (dot / norm).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let gated_err: f64 = pairs
            .iter()
            .map(|(m, p)| {
                m.iter()
                    .zip(p)
                    .map(|(&a, &b)| (a as f64 - gate * b as f64).powi(2))
                    .sum::<f64>()
            })
            .sum();
        Ok(Calibration {
            perturbations: pairs.len(),
            gate,
            baseline_error: base_err / n,
            gated_error: gated_err / n,
        })
    }
}

/// A task builder over `data` with `like`'s cell count.
fn builder_on<'a>(
    data: &'a PerturbationData,
    like: &TaskBuilder<'_>,
) -> Result<TaskBuilder<'a>, PredictError> {
    Ok(TaskBuilder::new(data, like.n_cells())?)
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::{ContextMean, ContextMeanSource, ControlBaseline, PerturbationMean};

    /// Predicts the task's control cells themselves (they are as many as the cells asked for).
    struct NoChange;

    impl Predictor for NoChange {
        fn name(&self) -> &str {
            "no-change"
        }

        fn predict(&self, task: &Task, _: usize, _: u64) -> Result<Prediction, PredictError> {
            Ok(Prediction::Cells(task.observational.clone()))
        }
    }

    /// Two contexts × (control + 10 knock-outs) × 8 genes; knock-out effects shared by the contexts.
    fn screen() -> PerturbationData {
        cellshift_data::testing::shared_effect_screen(10, 8, 1)
    }

    /// Train: every condition of `x`, control and the first five knock-outs of `y`; test: the rest of `y`.
    fn split(data: &PerturbationData) -> (Vec<usize>, Vec<usize>) {
        let y = data.context_index("y").unwrap();
        let label = |c: usize| data.treatments[data.conditions()[c].treatment].label("ctrl");
        (0..data.conditions().len()).partition(|&c| {
            data.conditions()[c].context != y
                || ["ctrl", "G1", "G2", "G3", "G4", "G5"].contains(&label(c).as_str())
        })
    }

    fn test_tasks(data: &PerturbationData, test: &[usize]) -> Vec<Task> {
        let builder = TaskBuilder::new(data, 20).unwrap();
        test.iter()
            .map(|&q| {
                let context = data.conditions()[q].context;
                builder
                    .assemble(
                        context,
                        &[],
                        &Query::Condition(q),
                        &mut rng_from_parts(&[q as u64]),
                    )
                    .unwrap()
            })
            .collect()
    }

    fn error(p: &Prediction, task: &Task) -> f64 {
        let truth = mean_rows(task.target.as_ref().unwrap());
        (p.mean_profile() - truth)
            .mapv(|v| (v as f64).powi(2))
            .sum()
    }

    #[test]
    fn a_method_that_predicts_no_correction_is_the_baseline_exactly() {
        let data = screen();
        let (train, test) = split(&data);
        let mut baseline = ContextMean::new(ContextMeanSource::Training);
        baseline
            .fit(&data, &train, &mut FitContext::default())
            .unwrap();
        // A method that returns the task's control cells unchanged: no correction at all, what a
        // zero-initialised output layer of a method that maps control cells predicts.
        let mut residual = Residual::new(Box::new(NoChange), "context_mean").unwrap();
        residual
            .fit(&data, &train, &mut FitContext::default())
            .unwrap();
        assert_eq!(residual.gate(), 0.0);
        for task in test_tasks(&data, &test) {
            let (Prediction::Cells(a), Prediction::Cells(b)) = (
                residual.predict(&task, 20, 5).unwrap(),
                baseline.predict(&task, 20, 5).unwrap(),
            ) else {
                panic!("cells expected")
            };
            assert_eq!(a, b, "gate 0 must give the baseline's cells");
        }
    }

    #[test]
    fn a_useful_correction_is_let_through_and_beats_the_baseline() {
        let data = screen();
        let (train, test) = split(&data);
        let mut baseline = ContextMean::new(ContextMeanSource::Training);
        baseline
            .fit(&data, &train, &mut FitContext::default())
            .unwrap();
        let mut residual =
            Residual::new(Box::new(PerturbationMean::new()), "context_mean").unwrap();
        residual
            .fit(&data, &train, &mut FitContext::default())
            .unwrap();
        let cal = residual.calibration().unwrap();
        assert!(residual.gate() > 0.5, "{cal:?}");
        assert!(cal.gated_error < cal.baseline_error, "{cal:?}");
        let (mut ours, mut base) = (0.0, 0.0);
        for task in test_tasks(&data, &test) {
            ours += error(&residual.predict(&task, 20, 5).unwrap(), &task);
            base += error(&baseline.predict(&task, 20, 5).unwrap(), &task);
        }
        // What stays is the difference of the two contexts' mean shifts (the residuals were learned
        // against `x`'s context mean), not the perturbations' own effects.
        assert!(
            ours < 0.5 * base,
            "residual {ours} vs context_mean {base} {cal:?}"
        );
    }

    #[test]
    fn unknown_baselines_and_unfitted_use_are_refused() {
        let err = Residual::new(Box::new(ControlBaseline::new()), "oracle")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("additive, context_mean, perturbation_mean"),
            "{err}"
        );
        let data = screen();
        let (_, test) = split(&data);
        let residual = Residual::new(Box::new(ControlBaseline::new()), "additive").unwrap();
        let err = residual
            .predict(&test_tasks(&data, &test)[0], 4, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not fitted"), "{err}");
    }
}
