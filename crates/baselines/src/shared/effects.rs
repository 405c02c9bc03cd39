//! Pseudo-bulk effects of the training conditions, the quantity every shift-based baseline is built from:
//! for each training condition (context c, perturbation p) the shift x_p^c = mean(X_p^c) − mean(X_0^c)
//! (peers.md §1.4), where X_0^c are *all* control cells of c in the data (control cells belong to every
//! split, MapPFN spec §1.3). Also resolves a task's query label to a [`Treatment`].

use std::collections::{BTreeMap, BTreeSet};

use cellshift_data::{PerturbationData, Task, Treatment};
use ndarray::Array1;

use crate::error::BaselineError;
use crate::shared::resample::mean_profile;

/// One training condition's pseudo-bulk.
#[derive(Clone, Debug)]
pub(crate) struct ConditionEffect {
    /// Mean expression of the condition's cells.
    pub mean: Array1<f64>,
    /// Number of cells.
    pub cells: usize,
    /// `mean` minus the context's control mean.
    pub shift: Array1<f64>,
}

/// Pseudo-bulk means and shifts of the training conditions, per context, with the per-perturbation and
/// global mean shifts precomputed.
#[derive(Clone, Debug)]
pub(crate) struct TrainingEffects {
    /// Gene names of the fitted data.
    pub genes: Vec<String>,
    /// Context names of the fitted data (sorted, as in [`PerturbationData::contexts`]).
    pub contexts: Vec<String>,
    /// Control label of the fitted data.
    pub control_label: String,
    /// Per context: mean of all its control cells, when it has any.
    control_means: Vec<Option<Array1<f64>>>,
    /// Per context: its non-control training conditions by treatment.
    per_context: Vec<BTreeMap<Treatment, ConditionEffect>>,
    /// Per perturbation: its mean shift over the contexts where it was trained, and those contexts.
    per_perturbation: BTreeMap<Treatment, (Array1<f64>, Vec<usize>)>,
    /// Mean over the distinct perturbations of their mean shifts.
    global_mean_shift: Array1<f64>,
}

impl TrainingEffects {
    /// Computes the effects of the non-control training conditions that have control cells in their
    /// context (others have no defined shift and are left out). Duplicate indices count once; an index
    /// out of range is an error, and so is a training set without any usable condition.
    pub fn from_training(
        baseline: &str,
        data: &PerturbationData,
        train_conditions: &[usize],
    ) -> Result<TrainingEffects, BaselineError> {
        let conditions = data.conditions();
        let indices: BTreeSet<usize> = train_conditions.iter().copied().collect();
        if let Some(&index) = indices.iter().find(|&&i| i >= conditions.len()) {
            return Err(BaselineError::ConditionOutOfRange {
                index,
                n_conditions: conditions.len(),
            });
        }
        let d = data.n_genes();
        let control = data.treatments.iter().position(Treatment::is_control);
        let control_means: Vec<Option<Array1<f64>>> = (0..data.contexts.len())
            .map(|c| {
                control
                    .and_then(|t| data.condition(c, t))
                    .and_then(|cond| mean_profile(data.x.select_rows(&cond.cells).view()))
            })
            .collect();
        let mut per_context: Vec<BTreeMap<Treatment, ConditionEffect>> =
            vec![BTreeMap::new(); data.contexts.len()];
        let mut without_control = BTreeSet::new();
        for &i in &indices {
            let cond = &conditions[i];
            let treatment = &data.treatments[cond.treatment];
            if treatment.is_control() {
                continue;
            }
            let Some(control_mean) = &control_means[cond.context] else {
                without_control.insert(data.contexts[cond.context].clone());
                continue;
            };
            let Some(mean) = mean_profile(data.cells_of(cond).view()) else {
                continue;
            };
            let shift = &mean - control_mean;
            per_context[cond.context].insert(
                treatment.clone(),
                ConditionEffect {
                    mean,
                    cells: cond.cells.len(),
                    shift,
                },
            );
        }
        if per_context.iter().all(BTreeMap::is_empty) {
            let reason = if indices.is_empty() {
                "no training conditions were given; pass the indices of the training conditions"
                    .to_string()
            } else if !without_control.is_empty() {
                format!(
                    "the training perturbations' contexts ({}) have no control cells (label `{}`), so no shift \
                     against control can be computed; include the control cells of every context",
                    without_control.into_iter().collect::<Vec<_>>().join(", "),
                    data.control_label
                )
            } else {
                "the training conditions are all control conditions; include perturbed conditions"
                    .to_string()
            };
            return Err(BaselineError::NoTrainingData {
                baseline: baseline.to_string(),
                reason,
            });
        }
        let mut sums: BTreeMap<Treatment, (Array1<f64>, Vec<usize>)> = BTreeMap::new();
        for (c, effects) in per_context.iter().enumerate() {
            for (t, e) in effects {
                let entry = sums
                    .entry(t.clone())
                    .or_insert_with(|| (Array1::zeros(d), Vec::new()));
                entry.0 += &e.shift;
                entry.1.push(c);
            }
        }
        let per_perturbation: BTreeMap<Treatment, (Array1<f64>, Vec<usize>)> = sums
            .into_iter()
            .map(|(t, (sum, contexts))| (t, (sum / contexts.len() as f64, contexts)))
            .collect();
        let global_mean_shift = average(per_perturbation.values().map(|(m, _)| m), d)
            .unwrap_or_else(|| Array1::zeros(d));
        Ok(TrainingEffects {
            genes: data.genes.clone(),
            contexts: data.contexts.clone(),
            control_label: data.control_label.clone(),
            control_means,
            per_context,
            per_perturbation,
            global_mean_shift,
        })
    }

    /// Number of genes d.
    pub fn n_genes(&self) -> usize {
        self.genes.len()
    }

    /// Errors unless the task's arrays have the fitted gene count.
    pub fn check_task(&self, task: &Task) -> Result<(), BaselineError> {
        check_task_shape(task, Some(self.n_genes()))
    }

    /// Index of a context of the fitted data by name.
    pub fn context_index(&self, name: &str) -> Option<usize> {
        self.contexts.iter().position(|c| c == name)
    }

    /// The query treatment of a task (structured in the task; never re-parsed from its label).
    pub fn query_treatment(&self, task: &Task) -> Result<Treatment, BaselineError> {
        Ok(task.query.treatment.clone())
    }

    /// The `obs` label of a treatment in the fitted data's convention.
    pub fn label(&self, treatment: &Treatment) -> String {
        treatment.label(&self.control_label)
    }

    /// Mean of all control cells of a context, if it has any.
    pub fn control_mean(&self, context: usize) -> Option<&Array1<f64>> {
        self.control_means.get(context).and_then(Option::as_ref)
    }

    /// Shift of a training condition against its context's control mean.
    pub fn shift(&self, context: usize, treatment: &Treatment) -> Option<&Array1<f64>> {
        self.per_context
            .get(context)
            .and_then(|m| m.get(treatment))
            .map(|e| &e.shift)
    }

    /// The training conditions of one context, in treatment order.
    pub fn in_context(
        &self,
        context: usize,
    ) -> impl Iterator<Item = (&Treatment, &ConditionEffect)> {
        self.per_context
            .get(context)
            .into_iter()
            .flat_map(|m| m.iter())
    }

    /// Contexts in which a perturbation was measured in training, in context order.
    pub fn contexts_with(&self, treatment: &Treatment) -> &[usize] {
        self.per_perturbation
            .get(treatment)
            .map_or(&[], |(_, contexts)| contexts.as_slice())
    }

    /// Mean of a perturbation's shifts over the training contexts where it was measured (each context
    /// weighted equally); `None` when it was never measured in training.
    pub fn perturbation_mean_shift(&self, treatment: &Treatment) -> Option<&Array1<f64>> {
        self.per_perturbation.get(treatment).map(|(mean, _)| mean)
    }

    /// Global mean shift: the mean over all distinct training perturbations of their
    /// [`Self::perturbation_mean_shift`] (each perturbation weighted equally, whatever the number of
    /// contexts or cells it has).
    pub fn global_mean_shift(&self) -> &Array1<f64> {
        &self.global_mean_shift
    }

    /// Mean shift of the perturbations measured in training in one context (each perturbation weighted
    /// equally); `None` when the context has none.
    pub fn context_mean_shift(&self, context: usize) -> Option<Array1<f64>> {
        average(
            self.in_context(context).map(|(_, e)| &e.shift),
            self.n_genes(),
        )
    }

    /// Shift of all perturbed training cells of a context pooled together (each cell weighted equally;
    /// Systema's "non-control mean" on the delta scale); `None` when the context has none.
    pub fn pooled_perturbed_shift(&self, context: usize) -> Option<Array1<f64>> {
        let control = self.control_mean(context)?;
        let mut sum = Array1::<f64>::zeros(self.n_genes());
        let mut cells = 0usize;
        for (_, e) in self.in_context(context) {
            sum.scaled_add(e.cells as f64, &e.mean);
            cells += e.cells;
        }
        (cells > 0).then(|| sum / cells as f64 - control)
    }
}

/// Errors unless the task's observational set, context sets, treatment rows and target agree on the gene
/// count (and on `expected`, when given).
pub(crate) fn check_task_shape(task: &Task, expected: Option<usize>) -> Result<(), BaselineError> {
    let d = task.n_genes();
    if let Some(expected) = expected {
        if d != expected {
            return Err(BaselineError::GeneCountMismatch {
                what: "the task's observational set".into(),
                got: d,
                expected,
            });
        }
    }
    let mut others = vec![("the task's gene names", task.genes.len())];
    if task.k() > 0 {
        others.push((
            "the task's context experiments",
            task.context_cells.shape()[2],
        ));
    }
    if let Some(target) = &task.target {
        others.push(("the task's target", target.ncols()));
    }
    for (what, got) in others {
        if got != d {
            return Err(BaselineError::GeneCountMismatch {
                what: what.into(),
                got,
                expected: d,
            });
        }
    }
    Ok(())
}

/// Mean of equally weighted vectors of length `d`; `None` when there are none.
pub(crate) fn average<'a>(
    vectors: impl Iterator<Item = &'a Array1<f64>>,
    d: usize,
) -> Option<Array1<f64>> {
    let mut sum = Array1::<f64>::zeros(d);
    let mut count = 0usize;
    for v in vectors {
        sum += v;
        count += 1;
    }
    (count > 0).then(|| sum / count as f64)
}

/// The fitted effects of a baseline, or [`BaselineError::NotFitted`].
pub(crate) fn fitted<'a>(
    state: &'a Option<TrainingEffects>,
    baseline: &str,
) -> Result<&'a TrainingEffects, BaselineError> {
    state.as_ref().ok_or_else(|| BaselineError::NotFitted {
        baseline: baseline.to_string(),
    })
}
