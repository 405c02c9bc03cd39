//! `cellshift pretrain`: pre-train MapPFN on tasks streamed from a synthetic prior (linear SCM or SERGIO),
//! with a live progress bar, a step or wall-time budget, and automatic resumption from the output directory.

use crate::outputs::{check_outputs, Output};
use std::path::PathBuf;

use anyhow::{bail, Context};
use cellshift_data::DeviceSpec;
use cellshift_models::registry::PretrainRequest;
use cellshift_models::sources::{LinearScmTasks, SergioTasks};
use cellshift_models::train::NormalizeTarget;
use cellshift_models::{Preprocessing, TaskSource, TrainConfig};
use cellshift_prior::{LinearScmConfig, SergioPriorConfig};

use super::simulate::PriorKind;
use super::training::{report_progress, set_threads, TrainingArgs};

/// Arguments of `cellshift pretrain`.
#[derive(clap::Args)]
pub struct Args {
    /// Method to pre-train (one that pre-trains on synthetic priors).
    #[arg(long, default_value = cellshift_models::registry::DEFAULT_PRETRAINED)]
    pub method: String,
    /// Prior the tasks are drawn from.
    #[arg(long, value_enum, default_value = "linear")]
    pub prior: PriorKind,
    /// Model size: tiny, small, paper or paper-text.
    #[arg(long, default_value = "small")]
    pub config: String,
    /// Run directory (checkpoints; an existing run of the same configuration is resumed).
    #[arg(long)]
    pub out: PathBuf,
    /// Genes d (default: 20 for linear, 50 for SERGIO).
    #[arg(long)]
    pub genes: Option<usize>,
    /// Context experiments K per task.
    #[arg(long, default_value_t = 8)]
    pub k: usize,
    /// Draw K per task uniformly from `--k-min ..= --k`, so one model serves every K (default: always `--k`,
    /// as the reference).
    #[arg(long)]
    pub k_min: Option<usize>,
    /// Cells per set given to the model during training.
    #[arg(long, default_value_t = 64)]
    pub cells: usize,
    /// Paired ("counterfactual") prior (SERGIO default: paired; linear default: unpaired as in the reference).
    #[arg(long)]
    pub paired: bool,
    /// Unpaired prior (SERGIO).
    #[arg(long)]
    pub unpaired: bool,
    /// Linear SCM: cycle through this many training SCMs (default: a new SCM for every task).
    #[arg(long)]
    pub networks: Option<u64>,
    /// SERGIO: consecutive tasks drawn from one simulated network.
    #[arg(long, default_value_t = 8)]
    pub tasks_per_network: u64,
    /// Set an option of the method's model configuration, `KEY=VALUE` (repeatable), e.g.
    /// `standardize_tasks=true` for MapPFN.
    #[arg(long)]
    pub model_option: Vec<String>,
    #[command(flatten)]
    pub training: TrainingArgs,
}

/// Runs `cellshift pretrain`.
pub fn run(args: Args) -> anyhow::Result<()> {
    check_outputs(&[], &[Output::Folder(&args.out)])?;
    if args.training.restart {
        super::training::clear_run(&args.out)?;
    }
    if args.paired && args.unpaired {
        bail!("--paired and --unpaired contradict each other; give one");
    }
    let entry = cellshift_models::registry::method(&args.method)?;
    let Some(pretrain) = entry.pretrain else {
        bail!(
            "{} is trained on a data set, not pre-trained on a synthetic prior; use `cellshift train --method {}`",
            entry.name,
            entry.name
        );
    };
    set_threads(args.training.threads);
    let genes = args.genes.unwrap_or(match args.prior {
        PriorKind::Linear => 20,
        PriorKind::Sergio => 50,
    });
    if args.k_min.is_some_and(|lo| lo > args.k) {
        bail!("--k-min must not exceed --k");
    }
    if args.cells == 0 {
        bail!("--cells must be at least 1");
    }
    let source: Box<dyn TaskSource> = match args.prior {
        PriorKind::Linear => {
            let prior = LinearScmConfig {
                n_nodes: genes,
                paired: args.paired,
                ..LinearScmConfig::default()
            };
            prior.validate()?;
            if genes < args.k + 1 {
                bail!(
                    "a linear SCM with {genes} nodes has {genes} interventions, fewer than K + 1 = {}; lower --k",
                    args.k + 1
                );
            }
            Box::new(LinearScmTasks {
                prior,
                k: args.k,
                k_min: args.k_min,
                n_cells: args.cells,
                seed: args.training.seed,
                n_networks: args.networks,
            })
        }
        PriorKind::Sergio => {
            let prior = SergioPriorConfig {
                n_genes: genes,
                paired: !args.unpaired,
                ..SergioPriorConfig::default()
            };
            Box::new(SergioTasks {
                prior,
                k: args.k,
                k_min: args.k_min,
                n_cells: args.cells,
                seed: args.training.seed,
                tasks_per_network: args.tasks_per_network,
                normalization: Some(NormalizeTarget::MedianOfTotals),
                cache: Default::default(),
            })
        }
    };
    let preprocessing = match args.prior {
        PriorKind::Linear => Preprocessing {
            per_condition_scaling: Some(
                "linear SCM: each condition divided by its per-gene std (no centring), clipped to ±10"
                    .into(),
            ),
            ..Preprocessing::identity(genes)
        },
        PriorKind::Sergio => Preprocessing {
            normalize_total: Some(NormalizeTarget::MedianOfTotals),
            log1p: true,
            per_condition_scaling: None,
            n_genes: genes,
            gene_names: vec![],
        },
    };
    let train: TrainConfig = args.training.train_config(preprocessing)?;
    let budget = args.training.budget(train.total_steps)?;
    eprintln!(
        "pre-training {} `{}` (d = {genes}, K = {}, {} cells per set) on {}; {} micro-batches of {} tasks; run directory {}",
        entry.name,
        args.config,
        args.k,
        args.cells,
        source.describe(),
        train.total_steps,
        train.batch_size,
        args.out.display()
    );
    let mut progress = report_progress(train.total_steps);
    let request = PretrainRequest {
        preset: &args.config,
        genes,
        k: args.k,
        train: &train,
        source: source.as_ref(),
        out_dir: &args.out,
        budget,
        device: DeviceSpec::Cpu,
        model_options: &args.model_option,
    };
    let summary = pretrain(&request, &mut |p| progress(p))
        .with_context(|| format!("pre-training into {}", args.out.display()))?;
    eprintln!(
        "stopped at micro-batch {} of {} ({} updates, {:.1} min this invocation){}; checkpoint {}",
        summary.step,
        train.total_steps,
        summary.updates,
        summary.elapsed.as_secs_f64() / 60.0,
        if summary.finished {
            ", run finished"
        } else {
            "; run the same command again to continue"
        },
        summary
            .checkpoint
            .as_ref()
            .map_or("(none)".to_string(), |p| p.display().to_string())
    );
    Ok(())
}
