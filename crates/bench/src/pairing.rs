//! Predicted cells paired with real cells for scoring (`cellshift evaluate --pred --real` and the Python
//! `cellshift.evaluate`): one context, the real control cells as the observational set, and per
//! perturbation of the real data its real and predicted cells, with the checks that keep the scores
//! meaningful (same scale).

use anyhow::Context;
use cellshift_data::preprocess::check_same_genes;
use cellshift_data::{ExpressionScale, PerturbationData};
use cellshift_metrics::EvalCase;
use ndarray::Array2;

/// How the caller's interface names its inputs and options, for the error messages.
#[derive(Clone, Copy, Debug)]
pub struct Names<'a> {
    /// The predicted input (`--pred`, `pred`).
    pub pred: &'a str,
    /// The real input (`--real`, `real`).
    pub real: &'a str,
    /// Where the real cells come from (a file's path, or the same as `real`).
    pub real_source: &'a str,
    /// The option choosing the context (`--context`, `context=`).
    pub context_option: &'a str,
    /// The option naming the control label (`--control`, `control=`).
    pub control_option: &'a str,
    /// How to log-normalise raw counts in that interface.
    pub normalise_hint: &'a str,
    /// The option that scores across scales anyway.
    pub allow_option: &'a str,
}

/// The case `pred` against `real`: same genes, same scale (unless `allow_scale_mismatch`), the context
/// `wanted` (optional when `real` has one), every real perturbation of that context predicted; the case
/// and the gene names.
pub fn paired_case(
    pred: &PerturbationData,
    real: &PerturbationData,
    wanted: Option<&str>,
    allow_scale_mismatch: bool,
    names: &Names<'_>,
) -> anyhow::Result<(EvalCase, Vec<String>)> {
    check_same_genes(pred, real).with_context(|| format!("{} and {}", names.pred, names.real))?;
    if !allow_scale_mismatch {
        check_same_scale(pred, real, names)?;
    }
    let context = pick_context(real, wanted, names)?;
    let real_control = control_cells(real, &context, names)?;
    let (mut trues, mut preds, mut labels, mut targets) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for condition in real.conditions() {
        let treatment = &real.treatments[condition.treatment];
        if treatment.is_control() || real.contexts[condition.context] != context {
            continue;
        }
        let label = treatment.label(&real.control_label);
        let pred_condition = pred
            .context_index(&context)
            .ok()
            .and_then(|c| pred.treatment_index(&label).ok().and_then(|t| pred.condition(c, t)))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "perturbation `{label}` (context {context}) is in {} but has no cells in {}; predict \
                     every perturbation of the real data",
                    names.real,
                    names.pred
                )
            })?;
        trues.push(real.cells_of(condition).mapv(f64::from));
        preds.push(pred.cells_of(pred_condition).mapv(f64::from));
        targets.push(real.gene_index(&label).map(|g| g as i64).unwrap_or(-1));
        labels.push(label);
    }
    if labels.is_empty() {
        anyhow::bail!(
            "{} has no perturbed cells in context {context}; nothing to evaluate",
            names.real_source
        );
    }
    let case = EvalCase::new(real_control, trues, preds, Some(labels), Some(targets))?;
    Ok((case, real.genes.clone()))
}

/// Refuses to score raw counts against log-normalised values (or the reverse): every distance metric
/// would measure the scale difference, not the prediction. Flagged when one side is raw counts, the other
/// log-normalised, and their largest values differ more than 4×.
pub fn check_same_scale(
    pred: &PerturbationData,
    real: &PerturbationData,
    names: &Names<'_>,
) -> anyhow::Result<()> {
    use ExpressionScale::{LogNormalized, RawCounts};
    let max = |d: &PerturbationData| {
        d.x.stored_values()
            .iter()
            .fold(0.0f32, |m, &v| m.max(v.abs()))
    };
    let (mp, mr) = (max(pred), max(real));
    let apart = mp.max(mr) > 4.0 * mp.min(mr).max(f32::MIN_POSITIVE);
    if apart
        && matches!(
            (pred.scale, real.scale),
            (RawCounts, LogNormalized) | (LogNormalized, RawCounts)
        )
    {
        anyhow::bail!(
            "{} holds {} (largest value {mp}) but {} holds {} (largest value {mr}); the metrics would \
             measure the difference of scale. Bring both to the same scale ({}), or give {}",
            names.pred,
            pred.scale.describe(),
            names.real,
            real.scale.describe(),
            names.normalise_hint,
            names.allow_option
        );
    }
    Ok(())
}

/// The context to score: `wanted`, or the only one.
fn pick_context(
    data: &PerturbationData,
    wanted: Option<&str>,
    names: &Names<'_>,
) -> anyhow::Result<String> {
    match wanted {
        Some(name) => Ok(data.contexts[data.context_index(name)?].clone()),
        None if data.contexts.len() == 1 => Ok(data.contexts[0].clone()),
        None => anyhow::bail!(
            "the data have {} contexts ({}); choose one with {}",
            data.contexts.len(),
            data.contexts.join(", "),
            names.context_option
        ),
    }
}

/// The real control cells of `context`.
fn control_cells(
    data: &PerturbationData,
    context: &str,
    names: &Names<'_>,
) -> anyhow::Result<Array2<f64>> {
    let c = data.context_index(context)?;
    let control = data
        .treatments
        .iter()
        .position(|t| t.is_control())
        .and_then(|t| data.condition(c, t))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} has no control cells (label `{}`) in context {context}; pass the right label with {}",
                names.real_source,
                data.control_label,
                names.control_option
            )
        })?;
    Ok(data.cells_of(control).mapv(f64::from))
}
