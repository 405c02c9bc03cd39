//! `cellshift bench`: score a MapPFN checkpoint or a baseline on a data file with the standard protocol
//! (condition-level split, K context experiments from the train half of the query's context, several
//! resampling seeds), print the main metrics and write the full metric JSON (mean ± std over seeds).

use crate::outputs::{check_outputs, given, given_files};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use cellshift_baselines::{baseline_by_name, BASELINE_NAMES};
use cellshift_bench::plots::{curves_png, Curve};
use cellshift_bench::score::all_holdout_split;
use cellshift_bench::score::score_on_split;
use cellshift_bench::{markdown_table, ScoreConfig, ScoreResult};
use cellshift_data::atomic::write_bytes_atomically;
use cellshift_data::{
    FitContext, OutputKind, PerturbationData, Predictor, Split, SplitConfig, SplitRole,
};
use cellshift_metrics::summary::find;
use cellshift_metrics::MetricGroups;
use cellshift_models::prepare::prepare_for_model;
use cellshift_models::SamplerConfig;

use super::model::{check_k, load_model, model_dir, SamplerArgs};
use super::split::{check_name, split, SplitArgs, HOLDOUT, STANDARD};
use super::training::set_threads;
use super::DataArgs;

/// The conditions of `split` with `role`, as `perturbation` (one context) or `context/perturbation`.
pub fn condition_names(data: &PerturbationData, split: &Split, role: SplitRole) -> Vec<String> {
    data.conditions()
        .iter()
        .zip(&split.role)
        .filter(|(_, r)| **r == role)
        .map(|(c, _)| {
            let label = data.treatments[c.treatment].label(&data.control_label);
            if data.contexts.len() == 1 {
                label
            } else {
                format!("{}/{label}", data.contexts[c.context])
            }
        })
        .collect()
}

/// Benchmarks other than scoring.
#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// A method's speed benchmark (`--method M`): MapPFN's ODE solvers against the reference sampler on
    /// held-out tasks, C3TL's seconds per training epoch, CellTarNet's cached against uncached sampling.
    Speed(super::speed::Args),
    /// DEG recovery on more genes than the model has, by test-time augmentation over gene subsets.
    Tta(super::tta::Args),
    /// Every method and baseline on the benchmark suites (synthetic with known truth, and real screens):
    /// one leaderboard (markdown, JSON, a PNG per suite).
    Suite(super::leaderboard::Args),
    /// A method's own benchmark and sweeps (`--method M`): C3TL leaves one context out against baselines
    /// on pseudo-bulk deltas (optionally the data-efficiency sweep); CellTarNet on held-out doubles with
    /// its held-out log-likelihood (optionally a guidance sweep).
    Sweep(super::sweep::Args),
}

/// Arguments of `cellshift bench`.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// Score this checkpoint (or run) directory, of any method (default when no --baseline is given: the
    /// bundled SERGIO-prior MapPFN).
    #[arg(long, conflicts_with = "baseline")]
    pub model: Option<PathBuf>,
    /// Score this baseline instead (control, oracle, perturbation_mean, context_mean, additive, matching_mean,
    /// linear, closest_context).
    #[arg(long)]
    pub baseline: Option<String>,
    /// Data set (`.h5ad`). With --model it is brought to the checkpoint's genes and normalisation.
    #[arg(long, required = true)]
    pub data: Option<PathBuf>,
    /// Write the metric JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Test-condition choice: standard, holdout, or a method's named split (additive, unseen,
    /// combinations: scDFM's, any model may be scored on them).
    #[arg(long, default_value = STANDARD)]
    pub split: String,
    /// Seed of the split.
    #[arg(long, default_value_t = 42)]
    pub split_seed: u64,
    #[command(flatten)]
    pub split_params: SplitArgs,
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
    /// Score at each of these K instead (e.g. `0,1,2,4,8`): the context-size curve.
    #[arg(long, value_delimiter = ',')]
    pub k_curve: Vec<usize>,
    /// With --k-curve: write a PNG of the main metrics against K.
    #[arg(long)]
    pub plot: Option<PathBuf>,
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
    match args.command {
        Some(BenchCommand::Speed(speed)) => return super::speed::run(speed),
        Some(BenchCommand::Tta(tta)) => return super::tta::run(tta),
        Some(BenchCommand::Suite(suite)) => return super::leaderboard::run(suite),
        Some(BenchCommand::Sweep(sweep)) => return super::sweep::run(sweep),
        None => {}
    }
    check_outputs(
        &given(&[&args.model, &args.data]),
        &given_files(&[&args.json, &args.plot]),
    )?;
    set_threads(args.threads);
    check_name(&args.split)?;
    let groups = MetricGroups::parse(&args.metrics)?;
    let data_path = args
        .data
        .clone()
        .ok_or_else(|| anyhow::anyhow!("give --data FILE.h5ad"))?;
    let raw = args.columns.read(&data_path)?;
    let config = ScoreConfig {
        k: args.k,
        n_cells: args.cells,
        seeds: (0..args.seeds.max(1)).collect(),
        groups,
        split: match args.split.as_str() {
            HOLDOUT => all_holdout_split(args.split_seed),
            _ => SplitConfig {
                seed: args.split_seed,
                ..SplitConfig::default()
            },
        },
    };
    let started = Instant::now();
    let (data, mut predictor, sampler): (
        PerturbationData,
        Box<dyn Predictor>,
        Option<SamplerConfig>,
    ) = match &args.baseline {
        None => {
            let dir = model_dir(args.model.as_deref())?;
            let loaded = load_model(&dir, &args.sampler)?;
            if loaded.model.capabilities().output == OutputKind::PseudoBulk {
                anyhow::bail!(
                    "{m} predicts pseudo-bulk profiles, so this protocol's cell-level metrics (W2, MMD, \
                     discrimination, DE) do not apply and would be computed on made-up cells; score it \
                     with its own benchmark (bench {m}: `cellshift bench sweep --method {m} --data \
                     FILE.h5ad`, pseudo-bulk Pearson and MSE)",
                    m = loaded.method
                );
            }
            for k in args.k_curve.iter().copied().chain([args.k]) {
                check_k(&loaded, k)?;
            }
            let (data, report) = prepare_for_model(&raw, &loaded.preprocessing)
                .with_context(|| format!("preparing {} for the model", data_path.display()))?;
            for note in &report.notes {
                eprintln!("note: {note}");
            }
            (data, loaded.model, Some(loaded.sampler))
        }
        Some(name) => {
            let baseline = baseline_by_name(name)
                .map_err(|e| anyhow::anyhow!("{e} (valid names: {})", BASELINE_NAMES.join(", ")))?;
            (raw, baseline, None)
        }
    };
    let split = split(
        &args.split,
        &data,
        args.split_seed,
        &args.split_params,
        Some(predictor.name()),
    )?;
    if !args.k_curve.is_empty() {
        return k_curve(
            &args,
            &data,
            &split,
            predictor.as_mut(),
            config,
            sampler.as_ref(),
            started,
        );
    }
    let result = score(&data, &split, predictor.as_mut(), &config)?;
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
        write_bytes_atomically(
            path,
            serde_json::to_string_pretty(&result_json(
                &result,
                &args,
                &config,
                &data,
                &split,
                sampler.as_ref(),
            ))?
            .as_bytes(),
        )?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Metrics of the context-size curve plot.
const CURVE_METRICS: [&str; 5] = ["w2", "mmd", "mean_rmse", "pds", "mag_ratio"];

fn k_curve(
    args: &Args,
    data: &PerturbationData,
    split: &Split,
    predictor: &mut dyn Predictor,
    mut config: ScoreConfig,
    sampler: Option<&SamplerConfig>,
    started: Instant,
) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    for &k in &args.k_curve {
        config.k = k;
        let result = score(data, split, predictor, &config)?;
        eprintln!(
            "K = {k} scored ({:.0} s so far)",
            started.elapsed().as_secs_f64()
        );
        json_rows.push(
            serde_json::json!({"k": k, "result": result_json(&result, args, &config, data, split, sampler)}),
        );
        rows.push((format!("{} K={k}", result.method), result.summary));
    }
    print!("{}", markdown_table(&rows, &TABLE_METRICS));
    if let Some(path) = &args.json {
        let json = serde_json::json!({ "k_curve": json_rows });
        write_bytes_atomically(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.plot {
        let name = predictor.name().to_string();
        let panels: Vec<(&str, Vec<Curve<'_>>)> = CURVE_METRICS
            .iter()
            .map(|&metric| {
                let points = args
                    .k_curve
                    .iter()
                    .zip(&rows)
                    .filter_map(|(&k, (_, summary))| {
                        find(summary, metric).map(|m| (k as f64, m.mean, m.std))
                    })
                    .collect();
                (metric, vec![(name.as_str(), points)])
            })
            .collect();
        curves_png(
            path,
            &panels,
            "context experiments K",
            &format!("{name}: metrics against the number of context experiments"),
        )?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn score(
    data: &PerturbationData,
    split: &Split,
    predictor: &mut dyn Predictor,
    config: &ScoreConfig,
) -> anyhow::Result<ScoreResult> {
    let spinner = crate::progress::spinner(&format!("scoring {}", predictor.name()));
    let result = score_on_split(
        data,
        predictor,
        split.clone(),
        config,
        &mut FitContext::default(),
    );
    spinner.finish();
    result
}

fn result_json(
    result: &ScoreResult,
    args: &Args,
    config: &ScoreConfig,
    data: &PerturbationData,
    split: &Split,
    sampler: Option<&SamplerConfig>,
) -> serde_json::Value {
    serde_json::json!({
        "method": result.method,
        "model": args.model.as_ref().map(|p| p.display().to_string()),
        "data": args.data.as_ref().map(|p| p.display().to_string()),
        "protocol": {
            "k": config.k,
            "cells": config.n_cells,
            "seeds": config.seeds,
            "split": args.split,
            "split_seed": args.split_seed,
            "test_conditions": condition_names(data, split, SplitRole::Test),
            "sampler": sampler.map(|s| format!("{s:?}")),
        },
        "summary": result.summary,
        "reports": result.reports.iter().map(|(seed, context, report)| serde_json::json!({
            "seed": seed,
            "context": context,
            "report": serde_json::from_str::<serde_json::Value>(&report.to_json()).unwrap_or_default(),
        })).collect::<Vec<_>>(),
    })
}
