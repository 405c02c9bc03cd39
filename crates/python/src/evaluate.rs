//! `cellshift.evaluate`: predicted against real cells, both AnnData in memory, scored exactly as
//! `cellshift evaluate --pred P.h5ad --real R.h5ad` scores the same data written to files: the real
//! control cells of the context are the observational set, and every perturbation of the real data must
//! have predicted cells.

use anyhow::Context;
use cellshift_data::preprocess::check_same_genes;
use cellshift_data::seed::subsample_rows;
use cellshift_data::{ExpressionScale, PerturbationData};
use cellshift_metrics::{evaluate, EvalCase, EvalOptions, MetricGroups, SetRows};
use ndarray::Array2;

/// Scores `pred` against `real` in `context` (optional with one context) with the metric groups of
/// `metrics`; the report in the command line's JSON schema.
pub fn evaluate_json(
    pred: &PerturbationData,
    real: &PerturbationData,
    context: Option<&str>,
    metrics: &str,
    allow_scale_mismatch: bool,
    max_set_cells: usize,
    subsample_seed: u64,
) -> anyhow::Result<String> {
    let groups = MetricGroups::parse(metrics)?;
    check_same_genes(pred, real).context("pred and real")?;
    if !allow_scale_mismatch {
        check_same_scale(pred, real)?;
    }
    let context = pick_context(real, context)?;
    let case = paired_case(pred, real, &context)?;
    // The command line's cap on the sets the distribution metrics see (0: every cell).
    let distribution_rows = (max_set_cells > 0)
        .then(|| {
            SetRows::capped(&case, max_set_cells, &|n, cap, stream| {
                subsample_rows(n, cap, subsample_seed, stream)
            })
        })
        .flatten();
    let options = EvalOptions {
        gene_names: Some(real.genes.clone()),
        distribution_rows,
        ..EvalOptions::default()
    };
    Ok(evaluate(&case, &groups, &options)?.to_json())
}

/// The evaluation case: the real control cells, then per non-control perturbation of `real` (in its
/// order) the real and the predicted cells, the perturbation's name and its target gene's column.
fn paired_case(
    pred: &PerturbationData,
    real: &PerturbationData,
    context: &str,
) -> anyhow::Result<EvalCase> {
    let real_control = control_cells(real, context)?;
    let mut trues = Vec::new();
    let mut preds = Vec::new();
    let mut names = Vec::new();
    let mut targets = Vec::new();
    for condition in real.conditions() {
        let treatment = &real.treatments[condition.treatment];
        if treatment.is_control() || real.contexts[condition.context] != context {
            continue;
        }
        let label = treatment.label(&real.control_label);
        let pred_condition = pred
            .context_index(context)
            .ok()
            .and_then(|c| {
                pred.treatment_index(&label)
                    .ok()
                    .and_then(|t| pred.condition(c, t))
            })
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "perturbation `{label}` (context {context}) is in real but has no cells in pred; \
                     predict every perturbation of the real data"
                )
            })?;
        trues.push(real.cells_of(condition).mapv(f64::from));
        preds.push(pred.cells_of(pred_condition).mapv(f64::from));
        targets.push(real.gene_index(&label).map(|g| g as i64).unwrap_or(-1));
        names.push(label);
    }
    if names.is_empty() {
        anyhow::bail!("real has no perturbed cells in context {context}; nothing to evaluate");
    }
    Ok(EvalCase::new(
        real_control,
        trues,
        preds,
        Some(names),
        Some(targets),
    )?)
}

/// Refuses raw counts scored against log-normalised values (or the reverse) when their largest values
/// differ more than 4×: every distance metric would measure the scale, not the prediction.
fn check_same_scale(pred: &PerturbationData, real: &PerturbationData) -> anyhow::Result<()> {
    use ExpressionScale::{LogNormalized, RawCounts};
    let max = |d: &PerturbationData| d.x.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
    let (mp, mr) = (max(pred), max(real));
    let apart = mp.max(mr) > 4.0 * mp.min(mr).max(f32::MIN_POSITIVE);
    if apart
        && matches!(
            (pred.scale, real.scale),
            (RawCounts, LogNormalized) | (LogNormalized, RawCounts)
        )
    {
        anyhow::bail!(
            "pred holds {} (largest value {mp}) but real holds {} (largest value {mr}); the metrics would \
             measure the difference of scale. Bring both to the same scale (e.g. `cellshift.preprocess(adata, \
             normalize=\"median\", log1p=True)` on the raw data), or pass allow_scale_mismatch=True",
            pred.scale.describe(),
            real.scale.describe()
        );
    }
    Ok(())
}

fn pick_context(data: &PerturbationData, wanted: Option<&str>) -> anyhow::Result<String> {
    match wanted {
        Some(name) => Ok(data.contexts[data.context_index(name)?].clone()),
        None if data.contexts.len() == 1 => Ok(data.contexts[0].clone()),
        None => anyhow::bail!(
            "the data have {} contexts ({}); choose one with context=",
            data.contexts.len(),
            data.contexts.join(", ")
        ),
    }
}

fn control_cells(data: &PerturbationData, context: &str) -> anyhow::Result<Array2<f64>> {
    let c = data.context_index(context)?;
    let control = data
        .treatments
        .iter()
        .position(|t| t.is_control())
        .and_then(|t| data.condition(c, t))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "real has no control cells (label `{}`) in context {context}; pass the right label with control=",
                data.control_label
            )
        })?;
    Ok(data.cells_of(control).mapv(f64::from))
}
