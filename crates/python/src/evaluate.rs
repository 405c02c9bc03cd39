//! `cellshift.evaluate`: predicted against real cells, both AnnData in memory, scored exactly as
//! `cellshift evaluate --pred P.h5ad --real R.h5ad` scores the same data written to files: the real
//! control cells of the context are the observational set, and every perturbation of the real data must
//! have predicted cells.

use cellshift_bench::pairing::{paired_case, Names};
use cellshift_data::seed::subsample_rows;
use cellshift_data::PerturbationData;
use cellshift_metrics::{evaluate, EvalOptions, MetricGroups, SetRows};

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
    let (case, genes) = paired_case(
        pred,
        real,
        context,
        allow_scale_mismatch,
        &Names {
            pred: "pred",
            real: "real",
            real_source: "real",
            context_option: "context=",
            control_option: "control=",
            normalise_hint: "e.g. `cellshift.preprocess(adata, normalize=\"median\", log1p=True)` on the raw data",
            allow_option: "allow_scale_mismatch=True",
        },
    )?;
    // The command line's cap on the sets the distribution metrics see (0: every cell).
    let distribution_rows = (max_set_cells > 0)
        .then(|| {
            SetRows::capped(&case, max_set_cells, &|n, cap, stream| {
                subsample_rows(n, cap, subsample_seed, stream)
            })
        })
        .flatten();
    let options = EvalOptions {
        gene_names: Some(genes),
        distribution_rows,
        ..EvalOptions::default()
    };
    Ok(evaluate(&case, &groups, &options)?.to_json())
}
