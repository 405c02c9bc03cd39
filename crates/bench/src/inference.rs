//! Builds the task of a true prediction from a user's screen: the control cells of a context, K of the
//! perturbations measured there (never the query itself), and the query's treatment encoding.

use cellshift_data::model::{encode_treatment, Treatment};
use cellshift_data::{PerturbationData, Task};
use ndarray::{Array2, Array3, Axis};
use rand::seq::index::sample;
use rand::SeedableRng;

use crate::sources::draw_cells;
use rand_pcg::Pcg64;

/// The context to predict in: the one named, or the only one of the file.
pub fn resolve_context(data: &PerturbationData, context: Option<&str>) -> anyhow::Result<usize> {
    match context {
        Some(name) => data.context_index(name).map_err(|_| {
            anyhow::anyhow!(
                "context `{name}` is not in the data; it has {}",
                list(&data.contexts)
            )
        }),
        None if data.contexts.len() == 1 => Ok(0),
        None => anyhow::bail!(
            "the data have {} contexts; choose one with --context ({})",
            data.contexts.len(),
            list(&data.contexts)
        ),
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
/// from those other than the query) and `n_cells` cells per set; the target is `None`. The query is encoded
/// as `value` times the one-hot of its target gene(s) (1 for knock-outs; the intervention value for SCMs).
pub fn inference_task(
    data: &PerturbationData,
    context: usize,
    query: &str,
    value: f32,
    k: usize,
    n_cells: usize,
    seed: u64,
) -> anyhow::Result<Task> {
    if n_cells == 0 {
        anyhow::bail!("--cells must be at least 1");
    }
    let treatment = Treatment::from_label(query, &data.control_label);
    if treatment.is_control() {
        anyhow::bail!("the control `{query}` is observed, not predicted; query a perturbation");
    }
    let encoding = encode_treatment(&data.genes, &treatment, value)
        .map_err(|e| anyhow::anyhow!("cannot predict query `{query}`: {e}"))?;
    let conds = data.conditions();
    let in_context: Vec<usize> = (0..conds.len())
        .filter(|&i| conds[i].context == context)
        .collect();
    let control = in_context
        .iter()
        .copied()
        .find(|&i| data.treatments[conds[i].treatment].is_control())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "context `{}` has no control cells (label `{}`); MapPFN needs the observational cells of the context",
                data.contexts[context],
                data.control_label
            )
        })?;
    let candidates: Vec<usize> = in_context
        .iter()
        .copied()
        .filter(|&i| i != control && data.treatments[conds[i].treatment] != treatment)
        .collect();
    if k > candidates.len() {
        anyhow::bail!(
            "K = {k} context experiments requested but context `{}` has only {} measured perturbations besides the query; use --k {} or less",
            data.contexts[context],
            candidates.len(),
            candidates.len()
        );
    }
    let mut rng = Pcg64::seed_from_u64(seed);
    let chosen: Vec<usize> = sample(&mut rng, candidates.len(), k)
        .into_iter()
        .map(|i| candidates[i])
        .collect();
    let d = data.n_genes();
    let draw = |cond: usize, rng: &mut Pcg64| draw_cells(data, &conds[cond].cells, n_cells, rng);
    let mut context_cells = Array3::<f32>::zeros((k, n_cells, d));
    let mut treatments = Array2::<f32>::zeros((k + 1, d));
    let mut labels = Vec::with_capacity(k + 1);
    for (slot, &c) in chosen.iter().enumerate() {
        context_cells
            .index_axis_mut(Axis(0), slot)
            .assign(&draw(c, &mut rng));
        treatments
            .row_mut(slot)
            .assign(&data.treatment_vector(&conds[c])?);
        labels.push(data.treatments[conds[c].treatment].label(&data.control_label));
    }
    treatments.row_mut(k).assign(&encoding);
    labels.push(query.to_string());
    Ok(Task {
        context: data.contexts[context].clone(),
        observational: draw(control, &mut rng),
        context_cells,
        treatments,
        treatment_labels: labels,
        target: None,
    })
}
