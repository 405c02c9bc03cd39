//! `cellshift bench`: score a MapPFN checkpoint or a baseline on a data file with the standard protocol
//! (condition-level split, K context experiments from the train half of the query's context, several
//! resampling seeds), print the main metrics and write the full metric JSON (mean ± std over seeds).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use cellshift_baselines::{baseline_by_name, BASELINE_NAMES};
use cellshift_bench::prepare::prepare_for_model;
use cellshift_bench::score::all_holdout_split;
use cellshift_bench::{markdown_table, score_predictor, ScoreConfig, ScoreResult};
use cellshift_data::atomic::write_bytes_atomically;
use cellshift_data::{PerturbationData, Predictor, SplitConfig};
use cellshift_metrics::MetricGroups;

use super::model::{load_mappfn, SamplerArgs};
use super::training::set_threads;
use super::DataArgs;

/// How test conditions are chosen.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SplitChoice {
    /// The reference split (seed `--split-seed`): one hold-out context, in-distribution conditions elsewhere.
    Standard,
    /// Every context is a hold-out context (files of entirely new contexts, e.g. another generator's networks):
    /// half of each context's perturbations are context experiments, the other half are queried.
    Holdout,
}

/// Arguments of `cellshift bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Score this checkpoint (or run) directory.
    #[arg(long, conflicts_with = "baseline")]
    pub model: Option<PathBuf>,
    /// Score this baseline instead (control, oracle, perturbation_mean, context_mean, additive, matching_mean,
    /// linear, closest_context).
    #[arg(long)]
    pub baseline: Option<String>,
    /// Data set (`.h5ad`). With --model it is brought to the checkpoint's genes and normalisation.
    #[arg(long)]
    pub data: PathBuf,
    /// Write the metric JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Test-condition choice.
    #[arg(long, value_enum, default_value = "standard")]
    pub split: SplitChoice,
    /// Seed of the split.
    #[arg(long, default_value_t = 42)]
    pub split_seed: u64,
    /// Context experiments per task.
    #[arg(long, default_value_t = 8)]
    pub k: usize,
    /// Cells per set.
    #[arg(long, default_value_t = 200)]
    pub cells: usize,
    /// Resampling seeds (0..N): each redraws cells, context experiments and sampling noise.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Metric groups: mappfn, celleval, de, perturbench, systema, distribution, or all.
    #[arg(long, default_value = "all")]
    pub metrics: String,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub sampler: SamplerArgs,
    #[command(flatten)]
    pub columns: DataArgs,
}

/// The metrics printed as a table (all are in the JSON).
pub const TABLE_METRICS: [&str; 7] = [
    "w2",
    "mmd",
    "mean_rmse",
    "pds",
    "mag_ratio",
    "deg_auprc",
    "pearson_delta",
];

/// Runs `cellshift bench`.
pub fn run(args: Args) -> anyhow::Result<()> {
    set_threads(args.threads);
    let groups = MetricGroups::parse(&args.metrics)?;
    let raw = args.columns.read(&args.data)?;
    let config = ScoreConfig {
        k: args.k,
        n_cells: args.cells,
        seeds: (0..args.seeds.max(1)).collect(),
        groups,
        split: match args.split {
            SplitChoice::Standard => SplitConfig {
                seed: args.split_seed,
                ..SplitConfig::default()
            },
            SplitChoice::Holdout => all_holdout_split(args.split_seed),
        },
    };
    let started = Instant::now();
    let result = match (&args.model, &args.baseline) {
        (Some(dir), None) => {
            let mut model = load_mappfn(dir, &args.sampler)?;
            let max_k = model.net().config().max_context();
            if args.k > max_k {
                anyhow::bail!(
                    "K = {} exceeds the model's {max_k} context slots; use --k {max_k} or less",
                    args.k
                );
            }
            let (data, report) = prepare_for_model(&raw, model.preprocessing())
                .with_context(|| format!("preparing {} for the model", args.data.display()))?;
            for note in &report.notes {
                eprintln!("note: {note}");
            }
            score(&data, &mut model, &config)?
        }
        (None, Some(name)) => {
            let mut baseline = baseline_by_name(name).map_err(|e| {
                anyhow::anyhow!("{e} (valid names: {})", BASELINE_NAMES.join(", "))
            })?;
            score(&raw, baseline.as_mut(), &config)?
        }
        _ => anyhow::bail!("give --model DIR or --baseline NAME"),
    };
    print!(
        "{}",
        markdown_table(
            &[(result.method.clone(), result.summary.clone())],
            &TABLE_METRICS
        )
    );
    eprintln!(
        "scored in {:.1} s ({} seeds × {} test contexts)",
        started.elapsed().as_secs_f64(),
        config.seeds.len(),
        result.reports.len() / config.seeds.len().max(1)
    );
    if let Some(path) = &args.json {
        write_json(path, &result, &args, &config)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn score(
    data: &PerturbationData,
    predictor: &mut dyn Predictor,
    config: &ScoreConfig,
) -> anyhow::Result<ScoreResult> {
    let spinner = crate::progress::spinner(&format!("scoring {}", predictor.name()));
    let result = score_predictor(data, predictor, config);
    spinner.finish_and_clear();
    result
}

fn write_json(
    path: &Path,
    result: &ScoreResult,
    args: &Args,
    config: &ScoreConfig,
) -> anyhow::Result<()> {
    let json = serde_json::json!({
        "method": result.method,
        "model": args.model.as_ref().map(|p| p.display().to_string()),
        "data": args.data.display().to_string(),
        "protocol": {
            "k": config.k,
            "cells": config.n_cells,
            "seeds": config.seeds,
            "split": format!("{:?}", args.split).to_lowercase(),
            "split_seed": args.split_seed,
            "sampler": args.model.as_ref().map(|_| format!("{:?}", args.sampler.config())),
        },
        "summary": result.summary,
        "reports": result.reports.iter().map(|(seed, context, report)| serde_json::json!({
            "seed": seed,
            "context": context,
            "report": serde_json::from_str::<serde_json::Value>(&report.to_json()).unwrap_or_default(),
        })).collect::<Vec<_>>(),
    });
    write_bytes_atomically(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
    Ok(())
}
