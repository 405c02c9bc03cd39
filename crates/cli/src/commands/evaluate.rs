//! `cellshift evaluate`: score predicted against real cells (two `.h5ad` files in the cell-eval
//! convention, or one `.npz` case in the golden layout), or score a baseline on a data set.

use crate::outputs::{check_outputs, given, given_files};
use std::path::{Path, PathBuf};

use anyhow::Context;
use cellshift_baselines::{baseline_by_name, BASELINE_NAMES};
use cellshift_bench::pairing::{paired_case, Names};
use cellshift_bench::{markdown_table, score_predictor, ScoreConfig};
use cellshift_data::atomic::write_bytes_atomically;
use cellshift_data::seed::subsample_rows;
use cellshift_data::split::SplitConfig;
use cellshift_metrics::{
    evaluate, EvalCase, EvalOptions, EvalReport, MetricGroups, SetRows, DEFAULT_MAX_SET_CELLS,
};

use super::DataArgs;

/// Arguments of `cellshift evaluate`.
#[derive(clap::Args)]
pub struct Args {
    /// An `.npz` case in the golden layout (`obs`, `true_i`, `pred_i`, optional `names`, `targets`).
    pub case: Option<PathBuf>,
    /// Predicted cells (`.h5ad`): the same genes, labels and control cells as `--real`.
    #[arg(long, requires = "real")]
    pub pred: Option<PathBuf>,
    /// Real cells (`.h5ad`).
    #[arg(long, requires = "pred")]
    pub real: Option<PathBuf>,
    /// Score this baseline on `--data` with the standard split (one of: control, oracle,
    /// perturbation_mean, context_mean, additive, matching_mean, linear, closest_context).
    #[arg(long, requires = "data")]
    pub baseline: Option<String>,
    /// Data set for `--baseline` (log-normalised `.h5ad`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Only evaluate this context (files with several contexts).
    #[arg(long)]
    pub context: Option<String>,
    #[command(flatten)]
    pub columns: DataArgs,
    /// Metric groups: mappfn, celleval, de, perturbench, systema, distribution, or all.
    #[arg(long, default_value = "all")]
    pub metrics: String,
    /// Write the report as JSON (the golden files' schema).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write per-perturbation metrics as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Score --pred against --real even when one holds raw counts and the other log-normalised values.
    #[arg(long)]
    pub allow_scale_mismatch: bool,
    /// Context experiments per task for `--baseline` scoring.
    #[arg(long, default_value_t = 8)]
    pub k: usize,
    /// Cells per set for `--baseline` scoring.
    #[arg(long, default_value_t = 200)]
    pub cells: usize,
    /// Resampling seeds for `--baseline` scoring (mean ± std over seeds 0..N).
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Split seed.
    #[arg(long, default_value_t = 42)]
    pub split_seed: u64,
    /// Cells of each set (the controls, each perturbation's real and predicted cells) that the
    /// distribution metrics (W2, MMD, energy and E-distance) see: a larger set is subsampled, seeded and
    /// without replacement, as MapPFN scores 200-cell sets. Means, pseudo-bulk and DE metrics use every
    /// cell. 0 keeps every cell.
    #[arg(long, default_value_t = DEFAULT_MAX_SET_CELLS)]
    pub max_set_cells: usize,
    /// Seed of the subsampling under --max-set-cells.
    #[arg(long, default_value_t = 0)]
    pub subsample_seed: u64,
}

/// The rows of each set of `case` that the distribution metrics see under `--max-set-cells`.
fn distribution_rows(case: &EvalCase, args: &Args) -> Option<SetRows> {
    (args.max_set_cells > 0).then(|| {
        SetRows::capped(case, args.max_set_cells, &|n, cap, stream| {
            subsample_rows(n, cap, args.subsample_seed, stream)
        })
    })?
}

/// Runs `cellshift evaluate`.
pub fn run(args: Args) -> anyhow::Result<()> {
    check_outputs(
        &given(&[&args.case, &args.pred, &args.real, &args.data]),
        &given_files(&[&args.json, &args.csv]),
    )?;
    let groups = MetricGroups::parse(&args.metrics)?;
    if let Some(name) = &args.baseline {
        return run_baseline(&args, name, groups);
    }
    let (case, gene_names) = match (&args.case, &args.pred, &args.real) {
        (Some(path), None, None) => {
            (EvalCase::read_npz(path).with_context(|| format!("reading {}", path.display()))?, None)
        }
        (None, Some(pred), Some(real)) => {
            let (case, genes) = case_from_h5ad(pred, real, &args)?;
            (case, Some(genes))
        }
        _ => anyhow::bail!(
            "give either one .npz case, or --pred P.h5ad --real R.h5ad, or --baseline NAME --data D.h5ad"
        ),
    };
    let rows = distribution_rows(&case, &args);
    if let Some(r) = &rows {
        eprintln!(
            "note: the distribution metrics (W2, MMD, energy, E-distance) see a seeded subsample of {} cells \
             in {} of {} sets (--max-set-cells, --subsample-seed); means, pseudo-bulk and DE metrics use \
             every cell",
            args.max_set_cells,
            r.cut(),
            1 + 2 * case.n_perts()
        );
    }
    let options = EvalOptions {
        gene_names,
        distribution_rows: rows,
        ..EvalOptions::default()
    };
    let spinner = crate::progress::spinner("computing metrics");
    let report = evaluate(&case, &groups, &options)?;
    spinner.finish();
    print!("{}", report.to_table());
    write_outputs(&report, &args)
}

fn write_outputs(report: &EvalReport, args: &Args) -> anyhow::Result<()> {
    if let Some(path) = &args.json {
        write_bytes_atomically(path, report.to_json().as_bytes())?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.csv {
        write_bytes_atomically(path, report.to_csv().as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn case_from_h5ad(
    pred_path: &Path,
    real_path: &Path,
    args: &Args,
) -> anyhow::Result<(EvalCase, Vec<String>)> {
    let pred = args.columns.read(pred_path)?;
    let real = args.columns.read(real_path)?;
    let source = real_path.display().to_string();
    paired_case(
        &pred,
        &real,
        args.context.as_deref(),
        args.allow_scale_mismatch,
        &Names {
            pred: "--pred",
            real: "--real",
            real_source: &source,
            context_option: "--context",
            control_option: "--control",
            normalise_hint:
                "e.g. `cellshift preprocess --normalize median --log1p e` on the raw file",
            allow_option: "--allow-scale-mismatch",
        },
    )
}

fn run_baseline(args: &Args, name: &str, groups: MetricGroups) -> anyhow::Result<()> {
    let path = args
        .data
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("--baseline needs --data FILE.h5ad"))?;
    let data = args.columns.read(path)?;
    let mut baseline = baseline_by_name(name)
        .map_err(|e| anyhow::anyhow!("{e} (valid names: {})", BASELINE_NAMES.join(", ")))?;
    let config = ScoreConfig {
        k: args.k,
        n_cells: args.cells,
        seeds: (0..args.seeds).collect(),
        groups,
        split: SplitConfig {
            seed: args.split_seed,
            ..SplitConfig::default()
        },
    };
    let spinner = crate::progress::spinner(&format!("scoring {name}"));
    let result = score_predictor(&data, baseline.as_mut(), &config)?;
    spinner.finish();
    let metrics = [
        "w2",
        "mmd",
        "mean_rmse",
        "pds",
        "mag_ratio",
        "deg_auprc",
        "pearson_delta",
    ];
    print!(
        "{}",
        markdown_table(&[(result.method.clone(), result.summary.clone())], &metrics)
    );
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "method": result.method,
            "summary": result.summary,
            "reports": result.reports.iter().map(|(seed, context, report)| serde_json::json!({
                "seed": seed, "context": context,
                "report": serde_json::from_str::<serde_json::Value>(&report.to_json()).unwrap_or_default(),
            })).collect::<Vec<_>>(),
        });
        write_bytes_atomically(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
