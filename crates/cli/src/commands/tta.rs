//! `cellshift bench tta`: DEG recovery on more genes than the model was trained on, by test-time
//! augmentation over random overlapping gene subsets (MapPFN paper §6); compares pooling over all subsets
//! with one subset alone and with the target-only reference, mean ± std over resampling seeds.

use crate::outputs::{check_outputs, given_files};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use cellshift_bench::tta::{tta_benchmark, TtaConfig, TtaSeedResult};
use cellshift_data::atomic::write_bytes_atomically;
use cellshift_data::SplitConfig;
use cellshift_models::prepare::prepare_for_model;

use super::model::{load_model, SamplerArgs};
use super::training::set_threads;
use super::DataArgs;

/// Arguments of `cellshift bench tta`.
#[derive(clap::Args)]
pub struct Args {
    /// MapPFN checkpoint (or run) directory; its genes are anonymous positions (a synthetic-prior model).
    #[arg(long)]
    pub model: PathBuf,
    /// Screen with more genes than the model (`.h5ad`; raw counts are normalised as the checkpoint records,
    /// over all of the file's genes).
    #[arg(long)]
    pub data: PathBuf,
    /// Random gene subsets per query.
    #[arg(long, default_value_t = 10)]
    pub subsets: usize,
    /// Context experiments per task.
    #[arg(long, default_value_t = 8)]
    pub k: usize,
    /// Cells per set (and predicted per subset).
    #[arg(long, default_value_t = 200)]
    pub cells: usize,
    /// Resampling seeds (0..N).
    #[arg(long, default_value_t = 10)]
    pub seeds: u64,
    /// Seed of the condition-level split.
    #[arg(long, default_value_t = 42)]
    pub split_seed: u64,
    /// Write the per-seed results and their summary here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub sampler: SamplerArgs,
    #[command(flatten)]
    pub columns: DataArgs,
}

/// Runs `cellshift bench tta`.
pub fn run(args: Args) -> anyhow::Result<()> {
    check_outputs(&[&args.model, &args.data], &given_files(&[&args.json]))?;
    set_threads(args.threads);
    let started = Instant::now();
    let loaded = load_model(&args.model, &args.sampler)?;
    let expected = &loaded.preprocessing;
    if !expected.gene_names.is_empty() {
        anyhow::bail!(
            "the model was trained on a named gene panel; test-time augmentation is for models whose genes are \
             anonymous positions (the synthetic-prior checkpoints)"
        );
    }
    let width = expected.n_genes;
    let raw = args.columns.read(&args.data)?;
    if raw.n_genes() <= width {
        anyhow::bail!(
            "the data have {} genes and the model {width}; augmentation needs more genes than the model \
             (use `bench` directly, or `cellshift preprocess --panel N` with N > {width})",
            raw.n_genes()
        );
    }
    let mut whole_panel = expected.clone();
    whole_panel.n_genes = raw.n_genes();
    let (data, report) = prepare_for_model(&raw, &whole_panel)
        .with_context(|| format!("preparing {}", args.data.display()))?;
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    let config = TtaConfig {
        subsets: args.subsets,
        subset_size: width,
        k: args.k,
        n_cells: args.cells,
        seeds: (0..args.seeds.max(1)).collect(),
        split: SplitConfig {
            seed: args.split_seed,
            ..SplitConfig::default()
        },
    };
    let spinner = crate::progress::spinner("predicting gene subsets");
    let results = tta_benchmark(&data, loaded.model.as_ref(), &config)?;
    spinner.finish();
    let summary = summarise(&results);
    println!(
        "DEG AUPRC on {} genes ({} subsets of {width}, K = {}, {} cells, {} seeds)",
        data.n_genes(),
        args.subsets,
        args.k,
        args.cells,
        results.len()
    );
    println!("| scoring | AUPRC |\n|---|---|");
    for (name, (mean, std)) in &summary {
        println!("| {name} | {mean:.4} ± {std:.4} |");
    }
    eprintln!("scored in {:.1} s", started.elapsed().as_secs_f64());
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "model": args.model.display().to_string(),
            "data": args.data.display().to_string(),
            "genes": data.n_genes(),
            "protocol": {
                "subsets": args.subsets, "subset_size": width, "k": args.k, "cells": args.cells,
                "split_seed": args.split_seed, "sampler": format!("{:?}", loaded.sampler),
            },
            "summary": summary.iter().map(|(name, (mean, std))| (name.to_string(), serde_json::json!({"mean": mean, "std": std}))).collect::<serde_json::Map<_, _>>(),
            "seeds": results,
        });
        write_bytes_atomically(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Mean and sample standard deviation over seeds of each AUPRC variant.
fn summarise(results: &[TtaSeedResult]) -> Vec<(&'static str, (f64, f64))> {
    let stat = |f: &dyn Fn(&TtaSeedResult) -> f64| {
        let values: Vec<f64> = results.iter().map(f).collect();
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = if values.len() > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        (mean, var.sqrt())
    };
    vec![
        ("pooled over subsets (TTA)", stat(&|r| r.auprc_tta)),
        ("one subset (no TTA)", stat(&|r| r.auprc_single_subset)),
        ("target only", stat(&|r| r.auprc_target_only)),
        ("random (positive fraction)", stat(&|r| r.positive_fraction)),
    ]
}
