//! `cellshift train`: train a method from scratch on the train conditions of a screen (the standard split
//! or the one `--split` chooses), into a run directory; repeating the command resumes the run. The method
//! is looked up in the registry; methods pre-trained on synthetic priors (MapPFN) use `pretrain` and
//! `finetune` instead.

use crate::outputs::{check_outputs, Output};
use std::path::PathBuf;

use anyhow::Context;
use cellshift_models::prepare::data_preprocessing;
use cellshift_models::registry::{self, CreateRequest, InferenceOptions};

use cellshift_data::atomic::write_bytes_atomically;
use cellshift_data::{PerturbationData, Split, SplitRole};

use super::bench::condition_names;
use super::split::{check_name, split, SplitArgs, STANDARD};
use super::training::{fit_into_run, set_threads, TrainingArgs};
use super::DataArgs;

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
    /// Which conditions are held out (the same choice as `bench --split`; the held-out conditions are
    /// written to `split.json` in the run directory).
    #[arg(long, default_value = STANDARD)]
    pub split: String,
    #[command(flatten)]
    pub split_params: SplitArgs,
    #[command(flatten)]
    pub training: TrainingArgs,
    #[command(flatten)]
    pub columns: DataArgs,
}

/// Runs `cellshift train`.
pub fn run(args: Args) -> anyhow::Result<()> {
    check_outputs(&[&args.data], &[Output::Folder(&args.out)])?;
    set_threads(args.training.threads);
    check_name(&args.split)?;
    let data = args.columns.read(&args.data)?;
    let split = split(
        &args.split,
        &data,
        args.split_seed,
        &args.split_params,
        Some(args.method.as_str()),
    )?;
    let train = split.train_conditions();
    record_split(&args, &data, &split)?;
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

/// Name of the file in a run directory that records the split the run trains on.
pub const SPLIT_FILE: &str = "split.json";

/// Writes the split (choice, seed, train and held-out conditions) to `split.json` in the run directory;
/// an error when the run was started with another split (resuming must not change the training data).
fn record_split(args: &Args, data: &PerturbationData, split: &Split) -> anyhow::Result<()> {
    let json = serde_json::json!({
        "split": args.split,
        "split_seed": args.split_seed,
        "train_conditions": condition_names(data, split, SplitRole::Train),
        "test_conditions": condition_names(data, split, SplitRole::Test),
    });
    let path = args.out.join(SPLIT_FILE);
    if path.is_file() {
        let before: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path)?).unwrap_or_default();
        if before != json {
            anyhow::bail!(
                "the run in {} was started with another split ({} seed {}); resume it with the same --split and \
                 --split-seed, or train into a new --out",
                args.out.display(),
                before["split"],
                before["split_seed"]
            );
        }
        return Ok(());
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating the run directory {}", args.out.display()))?;
    write_bytes_atomically(&path, serde_json::to_string_pretty(&json)?.as_bytes())?;
    Ok(())
}
