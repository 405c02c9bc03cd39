//! `cellshift bench sweep --method M`: a method's own benchmark and sweeps, through the `sweep` hook of its
//! registry entry, on a data file (`--data`) or benchmark suites (`--suites`). C3TL: leave one context out
//! (8 % adaptation, 2 % validation, 90 % test of its perturbations) against baselines on pseudo-bulk deltas,
//! optionally the data-efficiency sweep with a heat map; CellTarNet: held-out doubles against baselines
//! with its held-out log-likelihood, optionally a guidance sweep.

use crate::outputs::{check_outputs, given, given_files};
use std::path::PathBuf;

use anyhow::Context;
use cellshift_bench::suites::{load_suite, parse_suites, SuiteLoad, SuiteSettings};
use cellshift_data::{PerturbationData, TrainOverrides};
use cellshift_models::hooks::{SweepInput, SweepRequest};
use cellshift_models::registry;
use cellshift_prior::SuiteScale;

use super::hook_report::write_report;
use super::kit::CliKit;
use super::training::set_threads;
use super::DataArgs;

/// Arguments of `cellshift bench sweep`.
#[derive(clap::Args)]
pub struct Args {
    /// Method whose benchmark runs (one with a sweep hook: see the error listing them).
    #[arg(long)]
    pub method: String,
    /// Data set (`.h5ad`) with a context column (log-normalised expression).
    #[arg(long, conflicts_with = "suites")]
    pub data: Option<PathBuf>,
    /// With --data: keep only these contexts (comma-separated), e.g. the cell lines of one study.
    #[arg(long, value_delimiter = ',')]
    pub contexts: Vec<String>,
    /// Benchmark suites instead of --data, comma-separated (e.g. combinatorial, perturbench-norman).
    #[arg(long)]
    pub suites: Option<String>,
    /// Size of the synthetic suites: tiny or small.
    #[arg(long, default_value = "tiny")]
    pub scale: String,
    /// The shared reference folder holding `data/perturbench`.
    #[arg(long, default_value = "../shared")]
    pub shared: PathBuf,
    /// Model size (default: the benchmark's; C3TL `small`, CellTarNet `tiny`).
    #[arg(long)]
    pub preset: Option<String>,
    /// Baselines scored beside the method, comma-separated (default: the benchmark's).
    #[arg(long, value_delimiter = ',')]
    pub baselines: Option<Vec<String>>,
    /// Seed of the suites, the splits and the model's weights and training draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Resampling seeds 0..N (default: the benchmark's).
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Cells per set (default: the suite scale's).
    #[arg(long)]
    pub cells: Option<usize>,
    /// Training micro-batches (default: the preset's).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Examples per micro-batch (default: the preset's).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate (default: the preset's).
    #[arg(long)]
    pub lr: Option<f64>,
    /// A field of the method's configuration as KEY=VALUE (repeatable), e.g. CellTarNet's
    /// `prior.enabled=false` (no-prior ablation), `patch=10`, `guidance=1`; C3TL's `max_epochs=20`,
    /// `patience=5`, `perturbation_skip=true`, `context_subsample=8`, `matmul_precision=bf16`.
    #[arg(long = "model-option", value_name = "KEY=VALUE")]
    pub model_options: Vec<String>,
    /// The benchmark's own settings as KEY=VALUE (repeatable). C3TL: `adaptation=0.08`,
    /// `validation=0.02`, `ensemble=N`, `keep_duplicates=true`, `sweep_contexts=1,2`,
    /// `sweep_adaptation=0.1,0.3`; CellTarNet: `guidance_sweep=1,2`.
    #[arg(long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// With a sweep that draws one (C3TL's data-efficiency sweep): write its PNG heat map here.
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

/// Runs `cellshift bench sweep`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (_, sweep) = registry::hook(&args.method, "sweep benchmark", |h| h.sweep)?;
    let shared = Some(args.shared.clone());
    check_outputs(
        &given(&[&args.data, &shared]),
        &given_files(&[&args.json, &args.plot]),
    )?;
    set_threads(args.threads);
    let inputs = inputs(&args)?;
    let request = SweepRequest {
        inputs: &inputs,
        preset: args.preset.as_deref(),
        baselines: args.baselines.as_deref(),
        seed: args.seed,
        seeds: args.seeds,
        cells: args.cells,
        train: TrainOverrides {
            steps: args.steps,
            batch_size: args.batch_size,
            lr: args.lr,
            ..TrainOverrides::default()
        },
        model_options: &args.model_options,
        options: &args.options,
        kit: &CliKit,
    };
    let report = sweep(&request)?;
    write_report(&report, args.plot.as_deref(), args.json.as_deref())
}

/// The data sets: the file of --data (restricted to --contexts) or the suites of --suites.
fn inputs(args: &Args) -> anyhow::Result<Vec<SweepInput>> {
    if let Some(path) = &args.data {
        let data = restrict(args.columns.read(path)?, &args.contexts)?;
        return Ok(vec![SweepInput {
            name: path.display().to_string(),
            description: String::new(),
            data,
            split: None,
            k: None,
            cells: None,
        }]);
    }
    let names = args
        .suites
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("give --data FILE.h5ad or --suites NAMES"))?;
    let scale = SuiteScale::parse(&args.scale)?;
    let settings = SuiteSettings {
        scale,
        seed: args.seed,
        shared: args.shared.clone(),
    };
    let mut inputs = Vec::new();
    for name in parse_suites(names)? {
        match load_suite(&name, &settings)? {
            SuiteLoad::Ready(s) => inputs.push(SweepInput {
                name: s.name,
                description: s.description,
                data: s.data,
                split: Some((s.split, s.split_description)),
                k: Some(s.k),
                cells: Some(scale.set_cells()),
            }),
            SuiteLoad::Skipped(reason) => eprintln!("{reason}"),
        }
    }
    Ok(inputs)
}

/// `data` restricted to the cells of `contexts` (all when empty).
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
