//! Builds the task of a true prediction from a user's screen: the control cells of a context, K of the
//! perturbations measured there (never the query itself), and the query's treatment encoding; and the
//! predicted screen that `predict` writes (cells, or one profile per query for pseudo-bulk methods).

use ndarray::{concatenate, Axis};

use crate::error::DataError;
use crate::model::{CellAnnotations, PerturbationData};
use crate::predictor::{prediction_cells, Prediction};
use crate::task::Task;
use crate::task_builder::{Query, TaskBuilder};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_pcg::Pcg64;

/// The context to predict in: the one named, or the only one of the file.
pub fn resolve_context(data: &PerturbationData, context: Option<&str>) -> Result<usize, DataError> {
    match context {
        Some(name) => data.context_index(name).map_err(|_| {
            DataError::Invalid(format!(
                "context `{name}` is not in the data; it has {}",
                list(&data.contexts)
            ))
        }),
        None if data.contexts.len() == 1 => Ok(0),
        None => Err(DataError::Invalid(format!(
            "the data have {} contexts; choose one with --context ({})",
            data.contexts.len(),
            list(&data.contexts)
        ))),
    }
}

fn list(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(10).map(String::as_str).collect();
    format!(
        "{}{}",
        shown.join(", "),
        if names.len() > shown.len() {
            ", …"
        } else {
            ""
        }
    )
}

/// A task predicting `query` in `context` from `k` measured perturbations of that context (chosen at random
/// from those other than the query) and `n_cells` cells per set; the target is `None`. The query carries
/// its intervention `value` (1 for knock-outs; the intervention value for SCMs).
pub fn inference_task(
    data: &PerturbationData,
    context: usize,
    query: &str,
    value: f32,
    k: usize,
    n_cells: usize,
    seed: u64,
) -> Result<Task, DataError> {
    if n_cells == 0 {
        return Err(DataError::Invalid("--cells must be at least 1".into()));
    }
    let builder = TaskBuilder::new(data, n_cells)?;
    let treatment = builder
        .unmeasured_query(query, value)
        .map_err(|e| DataError::Invalid(format!("cannot predict query `{query}`: {e}")))?;
    let conds = data.conditions();
    let control = builder.control_of(context).ok_or_else(|| {
        DataError::Invalid(format!(
            "context `{}` has no control cells (label `{}`); prediction needs the observational cells of the context",
            data.contexts[context],
            data.control_label
        ))
    })?;
    let candidates: Vec<usize> = (0..conds.len())
        .filter(|&i| {
            conds[i].context == context
                && i != control
                && data.treatments[conds[i].treatment] != treatment.treatment
        })
        .collect();
    if k > candidates.len() {
        return Err(DataError::Invalid(format!(
            "K = {k} context experiments requested but context `{}` has only {} measured perturbations besides the query; use --k {} or less",
            data.contexts[context],
            candidates.len(),
            candidates.len()
        )));
    }
    let mut rng = Pcg64::seed_from_u64(seed);
    let chosen: Vec<usize> = sample(&mut rng, candidates.len(), k)
        .into_iter()
        .map(|i| candidates[i])
        .collect();
    builder.assemble(context, &chosen, &Query::Unmeasured(treatment), &mut rng)
}

/// The predicted screen of `queries` in `context` (prediction `i` of query `i` on task `i`): `n_cells`
/// cells per query named `pred_<i>`, or, when `pseudo_bulk`, one profile per query named `profile_<i>`:
/// the context's control mean plus the predicted change against the task's control cells. Every row has
/// the context, the query as its treatment label and `value` as its treatment value.
#[allow(clippy::too_many_arguments)]
pub fn predicted_screen(
    data: &PerturbationData,
    context: usize,
    queries: &[String],
    predictions: &[Prediction],
    tasks: &[Task],
    n_cells: usize,
    value: f32,
    pseudo_bulk: bool,
) -> Result<PerturbationData, DataError> {
    let mut blocks = Vec::with_capacity(queries.len());
    let mut labels = Vec::new();
    let control = if pseudo_bulk {
        let control = data
            .conditions()
            .iter()
            .find(|c| c.context == context && data.treatments[c.treatment].is_control())
            .and_then(|c| data.cells_of(c).mean_axis(Axis(0)))
            .ok_or_else(|| {
                DataError::Invalid(format!(
                    "context `{}` has no control cells to put the predicted deltas on",
                    data.contexts[context]
                ))
            })?;
        Some(control)
    } else {
        None
    };
    for ((query, prediction), task) in queries.iter().zip(predictions).zip(tasks) {
        match &control {
            Some(control) => {
                let task_control = task
                    .observational
                    .mean_axis(Axis(0))
                    .unwrap_or_else(|| control.clone());
                let profile = control + &(prediction.mean_profile() - &task_control);
                blocks.push(profile.insert_axis(Axis(0)));
                labels.push(query.clone());
            }
            None => {
                blocks.push(prediction_cells(prediction, task));
                labels.extend(std::iter::repeat_n(query.clone(), n_cells));
            }
        }
    }
    let views: Vec<_> = blocks.iter().map(|b| b.view()).collect();
    let x = concatenate(Axis(0), &views)
        .map_err(|e| DataError::Invalid(format!("the predictions differ in genes: {e}")))?;
    let n = x.nrows();
    let prefix = if pseudo_bulk { "profile" } else { "pred" };
    PerturbationData::new(
        data.genes.clone(),
        x,
        CellAnnotations {
            cell_names: (0..n).map(|i| format!("{prefix}_{i}")).collect(),
            contexts: vec![data.contexts[context].clone(); n],
            treatment_values: vec![value; n],
            treatment_labels: labels,
        },
        &data.control_label,
    )
}
