//! `cellshift finetune`: continue training a MapPFN checkpoint on the train conditions of a screen
//! (standard split), so the model adapts to the data set; resumes automatically from `--out`.

use std::path::PathBuf;

use anyhow::Context;
use cellshift_bench::prepare::prepare_for_model;
use cellshift_bench::sources::DataTasks;
use cellshift_data::SplitConfig;
use cellshift_models::mappfn::training::finetune;
use cellshift_models::MapPfn;

use super::training::{report_progress, set_threads, SchedulePreset, TrainingArgs};
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
    #[command(flatten)]
    pub training: TrainingArgs,
    #[command(flatten)]
    pub columns: DataArgs,
}

/// Runs `cellshift finetune`.
pub fn run(args: Args) -> anyhow::Result<()> {
    set_threads(args.training.threads);
    let pretrained = MapPfn::load(&args.model)
        .with_context(|| format!("loading the model {}", args.model.display()))?;
    let max_k = pretrained.net().config().max_context();
    if args.k > max_k {
        anyhow::bail!(
            "K = {} exceeds the model's {max_k} context slots; use --k {max_k} or less",
            args.k
        );
    }
    let raw = args.columns.read(&args.data)?;
    let (data, report) = prepare_for_model(&raw, pretrained.preprocessing())
        .with_context(|| format!("preparing {} for the model", args.data.display()))?;
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    let mut preprocessing = pretrained.preprocessing().clone();
    preprocessing.gene_names = data.genes.clone();
    let train = args
        .training
        .train_config_with(SchedulePreset::Finetune, 3000, preprocessing)?;
    let split = SplitConfig {
        seed: args.split_seed,
        ..SplitConfig::default()
    };
    let source = DataTasks::new(&data, &split, args.k, args.cells, args.training.seed)?;
    let budget = args.training.budget(train.total_steps)?;
    eprintln!(
        "fine-tuning {} on {} ({} train queries per epoch); {} micro-batches of {} tasks; run directory {}",
        args.model.display(),
        args.data.display(),
        source.epoch_len(),
        train.total_steps,
        train.batch_size,
        args.out.display()
    );
    let mut progress = report_progress(train.total_steps);
    let checkpoint = pretrained
        .checkpoint_dir()
        .map(PathBuf::from)
        .unwrap_or_else(|| args.model.clone());
    let summary = finetune(&checkpoint, &train, &source, &args.out, budget, |p| {
        progress(p)
    })
    .with_context(|| format!("fine-tuning into {}", args.out.display()))?;
    eprintln!(
        "stopped at micro-batch {} of {}{}",
        summary.step,
        train.total_steps,
        if summary.finished {
            ", run finished"
        } else {
            "; run the same command again to continue"
        }
    );
    Ok(())
}
