//! `cellshift train`: train a method from scratch on the train conditions of a screen (standard split),
//! into a run directory; repeating the command resumes the run. The method is looked up in the registry;
//! methods pre-trained on synthetic priors (MapPFN) use `pretrain` and `finetune` instead.

use std::path::PathBuf;

use anyhow::Context;
use cellshift_bench::prepare::data_preprocessing;
use cellshift_models::registry::{self, CreateRequest, InferenceOptions};

use super::training::{fit_into_run, set_threads, TrainingArgs};
use super::{standard_train_conditions, DataArgs};

/// Arguments of `cellshift train`.
#[derive(clap::Args)]
pub struct Args {
    /// Method to train (see `cellshift methods`).
    #[arg(long)]
    pub method: String,
    /// Named size of the model.
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Screen to train on (`.h5ad`), used as given (preprocess it first with `cellshift preprocess`).
    #[arg(long)]
    pub data: PathBuf,
    /// Run directory (checkpoints; an existing run of the same configuration is resumed).
    #[arg(long)]
    pub out: PathBuf,
    /// Cells per set of training tasks (the method's default when absent).
    #[arg(long)]
    pub cells: Option<usize>,
    /// Seed of the split (the test conditions of `bench --split-seed` with the same value are never trained on).
    #[arg(long, default_value_t = 42)]
    pub split_seed: u64,
    /// Set an option of the method's configuration, `KEY=VALUE` (repeatable; `a.b=…` reaches a nested
    /// field), e.g. `prior.enabled=false` for CellTarNet's no-prior ablation or
    /// `matmul_precision=bf16` for C3TL.
    #[arg(long)]
    pub model_option: Vec<String>,
    #[command(flatten)]
    pub training: TrainingArgs,
    #[command(flatten)]
    pub columns: DataArgs,
}

/// Runs `cellshift train`.
pub fn run(args: Args) -> anyhow::Result<()> {
    set_threads(args.training.threads);
    let data = args.columns.read(&args.data)?;
    let train = standard_train_conditions(&data, args.split_seed)?;
    let mut model = registry::create(
        &args.method,
        &CreateRequest {
            preset: &args.preset,
            data: &data,
            preprocessing: data_preprocessing(&data),
            inference: InferenceOptions::default(),
            seed: args.training.seed,
            model_options: &args.model_option,
        },
    )?;
    let overrides = args.training.overrides(None, args.cells);
    eprintln!(
        "training {} `{}` on {} ({} train conditions); run directory {}",
        args.method,
        args.preset,
        args.data.display(),
        train.len(),
        args.out.display()
    );
    fit_into_run(
        model.as_mut(),
        &data,
        &train,
        &args.training,
        overrides,
        &args.out,
    )
    .with_context(|| format!("training into {}", args.out.display()))
}
