//! `cellshift bench c3tl` and `cellshift bench c3tl-speed`: the C3TL benchmark (leave-one-context-out with
//! the paper's 8 % / 2 % / 90 % split, against pseudo-bulk readings of the baselines; optionally the
//! data-efficiency sweep with a heat map) and the epoch-time benchmark on a synthetic table.

use crate::outputs::{check_outputs, given_files};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use cellshift_bench::c3tl::{
    summarise_folds, summary_table, sweep, sweep_matrix, sweep_table, transfer_benchmark,
    TransferConfig, C3TL,
};
use cellshift_bench::plots::heatmap_png;
use cellshift_data::atomic::write_bytes_atomically;
use cellshift_data::PerturbationData;
use cellshift_models::c3tl::config::MatmulPrecision;
use cellshift_models::c3tl::synthetic::additive_table;
use cellshift_models::c3tl::table::{duplicate_perturbations, DuplicatePerturbation};
use cellshift_models::c3tl::{C3tl, C3tlConfig, TransferFractions};
use cellshift_models::train::Preprocessing;

use super::training::set_threads;
use super::DataArgs;

/// Arguments of `cellshift bench c3tl`.
#[derive(clap::Args)]
pub struct Args {
    /// Data set (`.h5ad`) with a context column (log-normalised expression, as C3TL's deltas are on it).
    #[arg(long)]
    pub data: PathBuf,
    /// Keep only these contexts (comma-separated), e.g. the cell lines of one study in a mixed file.
    #[arg(long, value_delimiter = ',')]
    pub contexts: Vec<String>,
    /// Methods: c3tl and baselines (perturbation_mean, closest_context, context_mean, linear, control, …).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "c3tl,perturbation_mean,closest_context,context_mean,linear,control"
    )]
    pub methods: Vec<String>,
    /// C3TL size (tiny, small, paper).
    #[arg(long, default_value = "small")]
    pub preset: String,
    /// Override C3TL's maximum epochs.
    #[arg(long)]
    pub max_epochs: Option<u64>,
    /// Override C3TL's early-stopping patience (epochs without a lower validation MSE before stopping).
    #[arg(long)]
    pub patience: Option<u64>,
    /// Beyond the paper: C3TL adds each perturbation's mean observed delta (over its other contexts) to
    /// the decoder's output, which then learns only the context-specific correction.
    #[arg(long)]
    pub perturbation_skip: bool,
    /// Beyond the paper: in each training epoch C3TL averages every context latent over a random subset
    /// of this many of the context's entries, as few as the held-out context has (0 = off, the paper).
    #[arg(long, default_value_t = 0)]
    pub context_subsample: usize,
    /// Element type of C3TL's matrix products: `f32` (default) or `bf16` (beyond the paper: bfloat16
    /// operands, float32 accumulation, weights and loss; ≈ 3× faster on CPUs with AVX-512 BF16).
    #[arg(long, default_value = "f32")]
    pub precision: String,
    /// Keep perturbations whose deltas repeat another's in every context (by default they are pruned
    /// before the splits, as in the paper, so that a test entry cannot leak through its twin).
    #[arg(long)]
    pub keep_duplicates: bool,
    /// Adaptation share of the held-out context's perturbations.
    #[arg(long, default_value_t = 0.08)]
    pub adaptation: f64,
    /// Validation share of the held-out context's perturbations.
    #[arg(long, default_value_t = 0.02)]
    pub validation: f64,
    /// Seed of the splits and C3TL's initial weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Beyond the paper: average the predictions of this many C3TL models fitted from different initial
    /// weights (1 = one model, the paper)
    #[arg(long, default_value_t = 1)]
    pub ensemble: usize,
    /// Data-efficiency sweep: numbers of training contexts (e.g. `1,2`); with --sweep-adaptation.
    #[arg(long, value_delimiter = ',')]
    pub sweep_contexts: Vec<usize>,
    /// Data-efficiency sweep: adaptation shares (e.g. `0.1,0.3,0.5,0.8`).
    #[arg(long, value_delimiter = ',')]
    pub sweep_adaptation: Vec<f64>,
    /// With the sweep: write a PNG heat map of C3TL's per-perturbation Pearson correlation.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub columns: DataArgs,
}

/// Arguments of `cellshift bench c3tl-speed`.
#[derive(clap::Args)]
pub struct SpeedArgs {
    /// Contexts of the synthetic table (Replogle/Nadig: 4).
    #[arg(long, default_value_t = 4)]
    pub contexts: usize,
    /// Perturbations per context (Replogle/Nadig: 1,677).
    #[arg(long, default_value_t = 1677)]
    pub perturbations: usize,
    /// Genes (the paper's 2,000 HVGs).
    #[arg(long, default_value_t = 2000)]
    pub genes: usize,
    /// C3TL sizes to time (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "small,paper")]
    pub presets: Vec<String>,
    /// Element types of the matrix products to time (comma-separated): `f32`, `bf16`.
    #[arg(long, value_delimiter = ',', default_value = "f32")]
    pub precision: Vec<String>,
    /// Timed epochs (after one warm-up epoch).
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Seed of the table and the weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the timings as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

fn restrict(data: PerturbationData, contexts: &[String]) -> anyhow::Result<PerturbationData> {
    if contexts.is_empty() {
        return Ok(data);
    }
    let mut keep = Vec::new();
    for name in contexts {
        keep.push(data.context_index(name).with_context(|| {
            format!(
                "--contexts names `{name}`; the file's contexts are {}",
                data.contexts.join(", ")
            )
        })?);
    }
    let cells: Vec<usize> = (0..data.n_cells())
        .filter(|&i| keep.contains(&data.cell_context[i]))
        .collect();
    Ok(data.select_cells(&cells)?)
}

/// Tolerance of [`duplicate_perturbations`]: deltas equal up to float rounding of the means.
const DUPLICATE_TOLERANCE: f32 = 1e-6;

/// Drops perturbations whose deltas repeat an earlier perturbation's in every context, saying which.
fn prune_duplicates(
    data: PerturbationData,
) -> anyhow::Result<(PerturbationData, Vec<DuplicatePerturbation>)> {
    let pruned = duplicate_perturbations(&data, DUPLICATE_TOLERANCE)?;
    if pruned.is_empty() {
        return Ok((data, pruned));
    }
    for d in &pruned {
        eprintln!(
            "pruned perturbation `{}`: its deltas repeat `{}` in every context (--keep-duplicates keeps it)",
            d.duplicate, d.kept
        );
    }
    let dropped: Vec<usize> = pruned
        .iter()
        .map(|d| data.treatment_index(&d.duplicate))
        .collect::<Result<_, _>>()?;
    let cells: Vec<usize> = (0..data.n_cells())
        .filter(|&i| !dropped.contains(&data.cell_treatment[i]))
        .collect();
    Ok((data.select_cells(&cells)?, pruned))
}

/// Runs `cellshift bench c3tl`.
pub fn run(args: Args) -> anyhow::Result<()> {
    check_outputs(&[&args.data], &given_files(&[&args.json, &args.plot]))?;
    set_threads(args.threads);
    let data = restrict(args.columns.read(&args.data)?, &args.contexts)?;
    let (data, pruned) = if args.keep_duplicates {
        (data, Vec::new())
    } else {
        prune_duplicates(data)?
    };
    eprintln!(
        "{}: {} cells, {} genes, {} contexts ({}), {} treatments; expression {}",
        args.data.display(),
        data.n_cells(),
        data.n_genes(),
        data.contexts.len(),
        data.contexts.join(", "),
        data.treatments.len(),
        data.scale.describe()
    );
    let config = TransferConfig {
        methods: args.methods.clone(),
        preset: args.preset.clone(),
        max_epochs: args.max_epochs,
        patience: args.patience,
        perturbation_skip: args.perturbation_skip,
        context_subsample: args.context_subsample,
        matmul_precision: MatmulPrecision::parse(&args.precision)?,
        fractions: TransferFractions {
            adaptation: args.adaptation,
            validation: args.validation,
        },
        seed: args.seed,
        ensemble: args.ensemble,
    };
    let started = Instant::now();
    if !args.sweep_contexts.is_empty() || !args.sweep_adaptation.is_empty() {
        return run_sweep(&args, &data, &config, &pruned, started);
    }
    let folds = transfer_benchmark(&data, &config, |fold| {
        let parts: Vec<String> = fold
            .methods
            .iter()
            .map(|m| match (&m.scores, &m.error) {
                (Some(s), _) => format!(
                    "{} r_pert {:.3} r_gene {:.3} mse {:.2e}",
                    m.method, s.pearson_per_perturbation, s.pearson_per_gene, s.mse
                ),
                (None, Some(e)) => format!("{} n/a ({e})", m.method),
                _ => format!("{} n/a", m.method),
            })
            .collect();
        eprintln!(
            "fold `{}` (adaptation {:?}, validation {:?}, {} test): {}",
            fold.test_context,
            fold.adaptation,
            fold.validation,
            fold.n_test,
            parts.join("; ")
        );
    })?;
    let summary = summarise_folds(&folds, &config.methods);
    print!("{}", summary_table(&summary, &config.methods));
    println!(
        "(mean ± sd over folds (folds); deltas vs the context's control mean; cell-level metrics: not \
         applicable, C3TL predicts pseudo-bulk profiles)"
    );
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "data": args.data.display().to_string(),
            "contexts": data.contexts,
            "pruned_duplicates": pruned,
            "config": config,
            "summary": summary,
            "folds": folds,
            "cell_level_metrics": "not applicable: C3TL predicts pseudo-bulk profiles",
        });
        write_bytes_atomically(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn run_sweep(
    args: &Args,
    data: &PerturbationData,
    config: &TransferConfig,
    pruned: &[DuplicatePerturbation],
    started: Instant,
) -> anyhow::Result<()> {
    if args.sweep_contexts.is_empty() || args.sweep_adaptation.is_empty() {
        anyhow::bail!("the sweep needs both --sweep-contexts and --sweep-adaptation");
    }
    let cells = sweep(
        data,
        &args.sweep_contexts,
        &args.sweep_adaptation,
        config,
        |cell| {
            eprintln!(
                "sweep: {} training contexts, adaptation {:.0} % done ({:.0} s)",
                cell.training_contexts,
                cell.adaptation * 100.0,
                started.elapsed().as_secs_f64()
            );
        },
    )?;
    for metric in cellshift_bench::c3tl::METRICS {
        println!("\n{metric} (mean over folds):\n");
        print!("{}", sweep_table(&cells, &config.methods, metric));
    }
    if let Some(path) = &args.plot {
        let method = if config.methods.iter().any(|m| m == C3TL) {
            C3TL
        } else {
            config.methods[0].as_str()
        };
        let values = sweep_matrix(
            &cells,
            &args.sweep_contexts,
            &args.sweep_adaptation,
            method,
            "pearson_per_perturbation",
        );
        heatmap_png(
            path,
            &values,
            &args
                .sweep_contexts
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>(),
            &args
                .sweep_adaptation
                .iter()
                .map(|a| format!("{:.0} %", a * 100.0))
                .collect::<Vec<_>>(),
            ("adaptation share", "training contexts"),
            &format!("{method}: Pearson per perturbation (mean over folds)"),
            false,
        )?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "data": args.data.display().to_string(),
            "config": config,
            "pruned_duplicates": pruned,
            "sweep_contexts": args.sweep_contexts,
            "sweep_adaptation": args.sweep_adaptation,
            "cells": cells,
        });
        write_bytes_atomically(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Runs `cellshift bench c3tl-speed`.
pub fn run_speed(args: SpeedArgs) -> anyhow::Result<()> {
    check_outputs(&[], &given_files(&[&args.json]))?;
    set_threads(args.threads);
    let threads = tch::get_num_threads();
    let made = Instant::now();
    let syn = additive_table(args.contexts, args.perturbations, args.genes, args.seed);
    eprintln!(
        "synthetic table: {} contexts × {} perturbations × {} genes ({} entries) in {:.1} s; {threads} threads",
        args.contexts,
        args.perturbations,
        args.genes,
        syn.table.len(),
        made.elapsed().as_secs_f64()
    );
    let mut rows = Vec::new();
    println!(
        "| preset | precision | parameters | wall s/epoch (median) | min | max | CPU s/epoch (mean, all threads) |\n|---|---|---|---|---|---|---|"
    );
    let precisions: Vec<MatmulPrecision> = args
        .precision
        .iter()
        .map(|p| MatmulPrecision::parse(p))
        .collect::<Result<_, _>>()?;
    let runs = args
        .presets
        .iter()
        .flat_map(|preset| precisions.iter().map(move |&p| (preset, p)));
    for (preset, precision) in runs {
        let mut config = C3tlConfig::preset(
            preset,
            syn.genes.clone(),
            syn.perturbations.clone(),
            syn.contexts.clone(),
        )?;
        config.matmul_precision = precision;
        let params = parameter_estimate(&config);
        let model = C3tl::new(
            config,
            Preprocessing::identity(args.genes),
            tch::Device::Cpu,
        )?;
        let times = model.time_epochs(
            &syn.table,
            args.epochs.max(1),
            args.seed,
            &process_cpu_seconds,
        )?;
        let mut wall: Vec<f64> = times.iter().map(|t| t.wall).collect();
        wall.sort_by(f64::total_cmp);
        let median = wall[wall.len() / 2];
        let cpu: Option<f64> = times
            .iter()
            .map(|t| t.cpu)
            .sum::<Option<f64>>()
            .map(|s| s / times.len() as f64);
        println!(
            "| {preset} | {} | {params} | {median:.3} | {:.3} | {:.3} | {} |",
            precision.name(),
            wall[0],
            wall[wall.len() - 1],
            cpu.map_or("n/a".into(), |c| format!("{c:.3}"))
        );
        rows.push(serde_json::json!({
            "preset": preset, "precision": precision.name(), "parameters": params, "epochs": times, "median_wall": median,
            "mean_cpu": cpu,
        }));
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "contexts": args.contexts, "perturbations": args.perturbations, "genes": args.genes,
            "threads": threads, "epochs": args.epochs, "results": rows,
        });
        write_bytes_atomically(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Trainable parameters of a configuration.
fn parameter_estimate(c: &C3tlConfig) -> usize {
    let d = c.n_genes();
    let encoder = |ids: usize| {
        let widths: Vec<usize> = c.encoder_hidden.iter().copied().chain([c.latent]).collect();
        (d + ids + 1) * widths[0] + widths.windows(2).map(|w| (w[0] + 1) * w[1]).sum::<usize>()
    };
    let widths: Vec<usize> = [c.latent]
        .into_iter()
        .chain(c.decoder_hidden.iter().copied())
        .chain([d])
        .collect();
    let decoder: usize = widths.windows(2).map(|w| (w[0] + 1) * w[1]).sum();
    encoder(c.contexts.len()) + encoder(c.perturbations.len()) + decoder
}

/// CPU time (user + system, all threads) of this process in seconds, from `/proc/self/stat` (Linux; `None`
/// elsewhere). Resolution: one clock tick (10 ms).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (1-based).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
