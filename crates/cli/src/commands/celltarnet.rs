//! `cellshift bench celltarnet` and `cellshift bench celltarnet-speed`: CellTarNet on the combinatorial
//! suites (held-out doubles) against baselines, with its held-out log-likelihood and the `--no-prior`
//! ablation; and the sampling time of the KV-cached against the uncached decoding.

use crate::outputs::{check_outputs, given_files};
use std::path::PathBuf;
use std::time::Instant;

use cellshift_baselines::baseline_by_name;
use cellshift_bench::score::{score_on_split, LOG_LIKELIHOOD_METRIC};
use cellshift_bench::suites::{load_suite, parse_suites, SuiteLoad, SuiteSettings};
use cellshift_bench::{markdown_table, MetricSummary, ScoreConfig};
use cellshift_data::atomic::write_bytes_atomically;
use cellshift_data::{DeviceSpec, FitContext, SplitConfig, TrainOverrides};
use cellshift_metrics::MetricGroups;
use cellshift_models::celltarnet::{sampling_speed, CellTarNet, Decoding};
use cellshift_prior::SuiteScale;

use super::training::{report_progress, set_threads};

/// Arguments of `cellshift bench celltarnet`.
#[derive(clap::Args)]
pub struct Args {
    /// Suites with held-out doubles: combinatorial (SERGIO), perturbench-norman (Norman 2019 part of the
    /// PerturBench development file), comma-separated.
    #[arg(long, default_value = "combinatorial")]
    pub suites: String,
    /// Size of the synthetic suite: tiny or small.
    #[arg(long, default_value = "tiny")]
    pub scale: String,
    /// CellTarNet size (tiny, small, paper).
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Training micro-batches (default: the preset's).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Examples per micro-batch (default: the preset's).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate (default: the preset's).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Ablation: plain causal self-attention, no L+S gene prior.
    #[arg(long)]
    pub no_prior: bool,
    /// Genes per flow token (default: the preset's).
    #[arg(long)]
    pub patch: Option<usize>,
    /// Classifier-free guidance scale on (a, b) (default: the preset's, 0).
    #[arg(long)]
    pub guidance: Option<f64>,
    /// Also score the fitted model at these guidance scales (sampling only, no refit), e.g. `1,2`.
    #[arg(long, value_delimiter = ',')]
    pub guidance_sweep: Vec<f64>,
    /// Baselines scored on the same split.
    #[arg(long, value_delimiter = ',', default_value = "additive,linear,control")]
    pub baselines: Vec<String>,
    /// Resampling seeds (0..N).
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Cells per set (default: 64 at tiny scale, 128 at small).
    #[arg(long)]
    pub cells: Option<usize>,
    /// Seed of the synthetic suite, the splits and CellTarNet's weights and training draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The shared reference folder holding `data/perturbench`.
    #[arg(long, default_value = "../shared")]
    pub shared: PathBuf,
    /// Write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Metrics of the table (CellTarNet's paper table, plus the rank metric and the likelihood).
const TABLE: [&str; 8] = [
    "l2_means",
    "mse",
    "mae",
    "de_spearman_lfc_sig",
    "pearson_delta",
    "pds",
    "mean_rmse",
    LOG_LIKELIHOOD_METRIC,
];

/// Adds `l2_means` = ‖μ̂ − μ‖₂ = √(G·MSE of the means) (std by the delta method).
fn with_l2(mut summary: Vec<MetricSummary>, genes: usize) -> Vec<MetricSummary> {
    if let Some(mse) = summary.iter().find(|m| m.metric == "mse").cloned() {
        let l2 = (genes as f64 * mse.mean).sqrt();
        let std = if mse.mean > 0.0 {
            genes as f64 * mse.std / (2.0 * l2)
        } else {
            0.0
        };
        summary.push(MetricSummary {
            metric: "l2_means".into(),
            mean: l2,
            std,
            n: mse.n,
            ci_low: None,
            ci_high: None,
        });
    }
    summary
}

/// Runs `cellshift bench celltarnet`.
pub fn run(args: Args) -> anyhow::Result<()> {
    check_outputs(&[&args.shared], &given_files(&[&args.json]))?;
    set_threads(args.threads);
    let started = Instant::now();
    let scale = SuiteScale::parse(&args.scale)?;
    let settings = SuiteSettings {
        scale,
        seed: args.seed,
        shared: args.shared.clone(),
    };
    let groups = MetricGroups::parse("mappfn,celleval,de")?;
    let mut json_suites = Vec::new();
    for name in parse_suites(&args.suites)? {
        let suite = match load_suite(&name, &settings)? {
            SuiteLoad::Ready(s) => s,
            SuiteLoad::Skipped(reason) => {
                eprintln!("{reason}");
                continue;
            }
        };
        eprintln!(
            "{}: {} cells × {} genes; {}",
            suite.name,
            suite.data.n_cells(),
            suite.data.n_genes(),
            suite.split_description
        );
        let config = ScoreConfig {
            k: suite.k,
            n_cells: args.cells.unwrap_or_else(|| scale.set_cells()),
            seeds: (0..args.seeds.max(1)).collect(),
            groups,
            split: SplitConfig::default(),
        };
        let mut rows = Vec::new();
        let mut json_rows = Vec::new();
        // CellTarNet.
        let mut model = CellTarNet::for_data(&suite.data, &args.preset, DeviceSpec::Cpu)?;
        {
            let c = model.config_mut();
            if args.no_prior {
                c.prior.enabled = false;
            }
            if let Some(p) = args.patch {
                c.patch = p;
            }
            if let Some(g) = args.guidance {
                c.guidance = g;
            }
            c.validate()?;
        }
        let steps = args.steps.unwrap_or(model.config().train_steps);
        let mut progress = report_progress(steps);
        let mut fit = FitContext {
            seed: args.seed,
            progress: Some(&mut progress),
            overrides: TrainOverrides {
                steps: args.steps,
                batch_size: args.batch_size,
                lr: args.lr,
                ..TrainOverrides::default()
            },
            ..FitContext::default()
        };
        let t = Instant::now();
        let result = score_on_split(
            &suite.data,
            &mut model,
            suite.split.clone(),
            &config,
            &mut fit,
        )?;
        drop(fit);
        let label = if args.no_prior {
            "celltarnet (no prior)".to_string()
        } else {
            "celltarnet".to_string()
        };
        eprintln!(
            "  {label}: fitted and scored in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let summary = with_l2(result.summary, suite.data.n_genes());
        json_rows.push(serde_json::json!({
            "method": label,
            "config": model.config(),
            "fit": model.summary(),
            "seconds": t.elapsed().as_secs_f64(),
            "summary": summary,
        }));
        rows.push((label.clone(), summary));
        for &g in &args.guidance_sweep {
            model.config_mut().guidance = g;
            let t = Instant::now();
            // Already fitted and no run directory: score_on_split does not refit.
            let result = score_on_split(
                &suite.data,
                &mut model,
                suite.split.clone(),
                &config,
                &mut FitContext::default(),
            )?;
            let summary = with_l2(result.summary, suite.data.n_genes());
            let name = format!("{label} g={g}");
            json_rows.push(serde_json::json!({
                "method": name,
                "guidance": g,
                "seconds": t.elapsed().as_secs_f64(),
                "summary": summary,
            }));
            rows.push((name, summary));
        }
        for b in &args.baselines {
            let mut predictor = baseline_by_name(b)?;
            let t = Instant::now();
            let result = match score_on_split(
                &suite.data,
                predictor.as_mut(),
                suite.split.clone(),
                &config,
                &mut FitContext::default(),
            ) {
                Ok(r) => r,
                Err(e) => {
                    // E.g. `linear` embeds single genes only: not applicable to held-out doubles.
                    eprintln!("  {b}: n/a — {e:#}");
                    json_rows
                        .push(serde_json::json!({"method": b, "not_applicable": format!("{e:#}")}));
                    rows.push((format!("{b} (n/a)"), Vec::new()));
                    continue;
                }
            };
            let summary = with_l2(result.summary, suite.data.n_genes());
            json_rows.push(serde_json::json!({
                "method": predictor.name(),
                "seconds": t.elapsed().as_secs_f64(),
                "summary": summary,
            }));
            rows.push((predictor.name().to_string(), summary));
        }
        println!(
            "## {} ({} cells × {} genes; {})\n",
            suite.name,
            suite.data.n_cells(),
            suite.data.n_genes(),
            suite.split_description
        );
        print!("{}", markdown_table(&rows, &TABLE));
        json_suites.push(serde_json::json!({
            "suite": suite.name,
            "description": suite.description,
            "split": suite.split_description,
            "shape": [suite.data.n_cells(), suite.data.n_genes()],
            "k": suite.k,
            "cells": config.n_cells,
            "seeds": config.seeds,
            "rows": json_rows,
        }));
    }
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    if let Some(path) = &args.json {
        let command = std::iter::once("cellshift".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" ");
        let json = serde_json::json!({ "command": command, "suites": json_suites });
        write_bytes_atomically(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Arguments of `cellshift bench celltarnet-speed`.
#[derive(clap::Args)]
pub struct SpeedArgs {
    /// Genes G.
    #[arg(long, default_value_t = 1000)]
    pub genes: usize,
    /// Cells sampled at once.
    #[arg(long, default_value_t = 128)]
    pub cells: usize,
    /// CellTarNet size (tiny, small, paper).
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Genes per token (default: the preset's).
    #[arg(long)]
    pub patch: Option<usize>,
    /// Decoding modes timed, in order: cached, uncached.
    #[arg(long, value_delimiter = ',', default_value = "cached,uncached")]
    pub modes: Vec<String>,
    /// Seed of the weights and the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Runs `cellshift bench celltarnet-speed`.
pub fn run_speed(args: SpeedArgs) -> anyhow::Result<()> {
    check_outputs(&[], &given_files(&[&args.json]))?;
    set_threads(args.threads);
    let modes = args
        .modes
        .iter()
        .map(|m| match m.trim() {
            "cached" => Ok(Decoding::Cached),
            "uncached" => Ok(Decoding::Uncached),
            other => anyhow::bail!("unknown decoding `{other}`; use cached or uncached"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if modes.is_empty() {
        anyhow::bail!("give at least one decoding mode (--modes cached,uncached)");
    }
    let (times, max_diff) = sampling_speed(
        &args.preset,
        args.patch,
        args.genes,
        args.cells,
        &modes,
        args.seed,
    )?;
    println!("| decoding | genes | tokens | cells | sampling s | of which decoding s |");
    println!("|---|---|---|---|---|---|");
    for t in &times {
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.2} |",
            t.decoding, t.genes, t.tokens, t.cells, t.seconds, t.decode_seconds
        );
    }
    if times.len() > 1 {
        println!("largest difference between the modes' cells: {max_diff:.3e}");
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "preset": args.preset,
            "threads": tch::get_num_threads(),
            "times": times,
            "max_abs_difference": max_diff,
        });
        write_bytes_atomically(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
