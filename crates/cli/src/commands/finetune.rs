//! `cellshift finetune`: continue training a checkpoint of any method on the train conditions of a screen
//! (standard split, or the one `--split` chooses), so the model adapts to the data set; resumes automatically from `--out`. The method
//! is read from the checkpoint and fitted through its `Predictor::fit` with a run directory.

use crate::outputs::{check_outputs, Output};
use std::path::PathBuf;

use anyhow::Context;
use cellshift_models::prepare::prepare_for_model;

use super::model::{check_k, load_model, SamplerArgs};
use super::split::{check_name, split, SplitArgs, STANDARD};
use super::training::{fit_into_run, set_threads, TrainingArgs};
use super::DataArgs;

/// Arguments of `cellshift finetune`.
#[derive(clap::Args)]
pub struct Args {
    /// Pre-trained checkpoint (or run) directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Screen to fine-tune on (`.h5ad`; raw counts are normalised as the checkpoint records).
    #[arg(long)]
    pub data: PathBuf,
    /// Run directory of the fine-tuned model.
    #[arg(long)]
    pub out: PathBuf,
    /// Context experiments per task.
    #[arg(long, default_value_t = 8)]
    pub k: usize,
    /// Cells per set.
    #[arg(long, default_value_t = 64)]
    pub cells: usize,
    /// Seed of the split (the test conditions of `bench --split-seed` with the same value are never trained on).
    #[arg(long, default_value_t = 42)]
    pub split_seed: u64,
    /// Which conditions are held out (the same choice as `bench --split`).
    #[arg(long, default_value = STANDARD)]
    pub split: String,
    #[command(flatten)]
    pub split_params: SplitArgs,
    #[command(flatten)]
    pub training: TrainingArgs,
    #[command(flatten)]
    pub columns: DataArgs,
}

/// Runs `cellshift finetune`.
pub fn run(args: Args) -> anyhow::Result<()> {
    check_outputs(&[&args.model, &args.data], &[Output::Folder(&args.out)])?;
    set_threads(args.training.threads);
    check_name(&args.split)?;
    let mut loaded = load_model(&args.model, &SamplerArgs::default_sampler())?;
    check_k(&loaded, args.k)?;
    let raw = args.columns.read(&args.data)?;
    let (data, report) = prepare_for_model(&raw, &loaded.preprocessing)
        .with_context(|| format!("preparing {} for the model", args.data.display()))?;
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    let train = split(
        &args.split,
        &data,
        args.split_seed,
        &args.split_params,
        Some(loaded.method),
    )?
    .train_conditions();
    let overrides = args.training.overrides(Some(args.k), Some(args.cells));
    eprintln!(
        "fine-tuning {} ({}) on {} ({} train conditions); run directory {}",
        args.model.display(),
        loaded.method,
        args.data.display(),
        train.len(),
        args.out.display()
    );
    fit_into_run(
        loaded.model.as_mut(),
        &data,
        &train,
        &args.training,
        overrides,
        &args.out,
    )
    .with_context(|| format!("fine-tuning into {}", args.out.display()))
}
