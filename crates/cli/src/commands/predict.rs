//! `cellshift predict`: predict the cells of unmeasured (or held-back) perturbations in one context of a
//! screen with a checkpoint of any method (the bundled MapPFN by default), from the context's control
//! cells and K measured perturbations; writes the predicted cells as an `.h5ad` (one block of `--cells`
//! cells per query); a pseudo-bulk method (C3TL) writes one predicted profile per query instead — its
//! delta on top of the mean of all the context's control cells — and no cells are made up.

use crate::outputs::{check_outputs, Output};
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use cellshift_bench::inference::{inference_task, resolve_context};
use cellshift_bench::prediction_cells;
use cellshift_bench::prepare::prepare_for_model;
use cellshift_data::h5ad::{self, UnsValue, WriteOptions};
use cellshift_data::model::CellAnnotations;
use cellshift_data::{OutputKind, PerturbationData};
use ndarray::{concatenate, Axis};

use super::model::{check_k, load_model, model_dir, SamplerArgs};
use super::training::set_threads;
use super::DataArgs;

/// Queries predicted together between two moves of the progress bar.
const QUERIES_PER_GROUP: usize = 5;

/// Arguments of `cellshift predict`.
#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint (or run) directory written by `pretrain`, `train` or `finetune` (default: the bundled
    /// SERGIO-prior MapPFN, `checkpoints/mappfn-sergio-small`).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The screen (`.h5ad`; raw counts are normalised as the checkpoint records).
    #[arg(long)]
    pub data: PathBuf,
    /// Context (cell line, …) to predict in; optional when the file has one context.
    #[arg(long)]
    pub context: Option<String>,
    /// Perturbations to predict (repeat the option or separate with commas); a knock-out's label is its target gene.
    #[arg(long, required = true, value_delimiter = ',')]
    pub query: Vec<String>,
    /// Intervention value of the queries (1 for knock-outs).
    #[arg(long, default_value_t = 1.0)]
    pub value: f32,
    /// Measured perturbations of the context shown to the model as context experiments.
    #[arg(long, default_value_t = 8)]
    pub k: usize,
    /// Cells per set (control and context sets are subsampled to this; this many cells are predicted per query).
    #[arg(long, default_value_t = 200)]
    pub cells: usize,
    /// Seed of the cell subsets, context choice and sampling noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output `.h5ad` of predicted cells.
    #[arg(long)]
    pub out: PathBuf,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub sampler: SamplerArgs,
    #[command(flatten)]
    pub columns: DataArgs,
}

/// Runs `cellshift predict`.
pub fn run(args: Args) -> anyhow::Result<()> {
    set_threads(args.threads);
    let model_path = model_dir(args.model.as_deref())?;
    check_outputs(&[&args.data, &model_path], &[Output::File(&args.out)])?;
    let loaded = load_model(&model_path, &args.sampler)?;
    check_k(&loaded, args.k)?;
    let raw = args.columns.read(&args.data)?;
    let (data, report) = prepare_for_model(&raw, &loaded.preprocessing)
        .with_context(|| format!("preparing {} for the model", args.data.display()))?;
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    let context = resolve_context(&data, args.context.as_deref())?;
    let seeds: Vec<u64> = (0..args.query.len() as u64)
        .map(|i| cellshift_data::seed::query_seed(args.seed, i))
        .collect();
    let tasks = args
        .query
        .iter()
        .zip(&seeds)
        .map(|(query, &seed)| {
            inference_task(&data, context, query, args.value, args.k, args.cells, seed)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Queries in groups: methods that batch (MapPFN: one batched ODE solve) solve each group together,
    // and the progress bar moves between groups.
    let bar = crate::progress::bar(
        tasks.len() as u64,
        &format!("predicting with {}", loaded.method),
    );
    let mut predictions = Vec::with_capacity(tasks.len());
    for (group, group_seeds) in tasks
        .chunks(QUERIES_PER_GROUP)
        .zip(seeds.chunks(QUERIES_PER_GROUP))
    {
        predictions.extend(
            loaded
                .model
                .predict_many(group, args.cells, group_seeds)
                .map_err(|e| anyhow::anyhow!("{} failed: {e}", loaded.method))
                .context("predicting the queries")?,
        );
        bar.inc(group.len() as u64);
    }
    bar.finish();
    eprintln!(
        "predicted {} queries × {} cells in `{}` with {}",
        args.query.len(),
        args.cells,
        data.contexts[context],
        loaded.method
    );
    let pseudo_bulk = loaded.model.capabilities().output == OutputKind::PseudoBulk;
    let mut blocks = Vec::new();
    let mut labels = Vec::new();
    if pseudo_bulk {
        let control = data
            .conditions()
            .iter()
            .find(|c| c.context == context && data.treatments[c.treatment].is_control())
            .map(|c| data.cells_of(c))
            .and_then(|cells| cells.mean_axis(Axis(0)))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "context `{}` has no control cells to put the predicted deltas on",
                    data.contexts[context]
                )
            })?;
        for ((query, prediction), task) in args.query.iter().zip(&predictions).zip(&tasks) {
            let task_control = task
                .observational
                .mean_axis(Axis(0))
                .unwrap_or_else(|| control.clone());
            let profile = &control + &(prediction.mean_profile() - &task_control);
            blocks.push(profile.insert_axis(Axis(0)));
            labels.push(query.clone());
        }
    } else {
        for ((query, prediction), task) in args.query.iter().zip(&predictions).zip(&tasks) {
            blocks.push(prediction_cells(prediction, task));
            labels.extend(std::iter::repeat_n(query.clone(), args.cells));
        }
    }
    let views: Vec<_> = blocks.iter().map(|b| b.view()).collect();
    let x = concatenate(Axis(0), &views)?;
    let n = x.nrows();
    let row_prefix = if pseudo_bulk { "profile" } else { "pred" };
    let predicted = PerturbationData::new(
        data.genes.clone(),
        x,
        CellAnnotations {
            cell_names: (0..n).map(|i| format!("{row_prefix}_{i}")).collect(),
            contexts: vec![data.contexts[context].clone(); n],
            treatment_values: vec![args.value; n],
            treatment_labels: labels,
        },
        &data.control_label,
    )?;
    // Provenance in `uns["cellshift"]`: the model, the sampler and, per query, the context experiments.
    let mut adata = h5ad::perturbation_data_to_anndata(&predicted, &args.columns.columns());
    let mut meta = BTreeMap::new();
    let text = |v: String| UnsValue::Str(v);
    meta.insert("method".into(), text(loaded.method.into()));
    meta.insert("model".into(), text(model_path.display().to_string()));
    meta.insert("data".into(), text(args.data.display().to_string()));
    meta.insert("context".into(), text(data.contexts[context].clone()));
    meta.insert("k".into(), UnsValue::I64(args.k as i64));
    meta.insert("cells".into(), UnsValue::I64(args.cells as i64));
    meta.insert(
        "output".into(),
        text(if pseudo_bulk {
            "pseudo-bulk: one predicted mean profile per query (control mean + predicted delta)"
                .into()
        } else {
            "cells".into()
        }),
    );
    meta.insert("seed".into(), UnsValue::I64(args.seed as i64));
    meta.insert("sampler".into(), text(format!("{:?}", loaded.sampler)));
    let experiments: BTreeMap<String, UnsValue> = args
        .query
        .iter()
        .zip(&tasks)
        .map(|(q, t)| {
            let used = t.experiments.iter().map(|e| e.label.clone()).collect();
            (q.clone(), UnsValue::StrArray(used))
        })
        .collect();
    meta.insert("context_experiments".into(), UnsValue::Dict(experiments));
    adata.uns.insert("cellshift".into(), UnsValue::Dict(meta));
    h5ad::write_h5ad(&args.out, &adata, &WriteOptions::default())
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "wrote {} predicted {} ({} queries) to {}",
        n,
        if pseudo_bulk {
            "pseudo-bulk profiles"
        } else {
            "cells"
        },
        args.query.len(),
        args.out.display()
    );
    Ok(())
}
