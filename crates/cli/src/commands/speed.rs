//! `cellshift bench speed --method M`: the speed benchmark of a method, through the `speed` hook of its
//! registry entry (MapPFN: its ODE solvers against the reference sampler on held-out tasks; C3TL: seconds
//! per training epoch; CellTarNet: KV-cached against uncached sampling; scDFM: training and RK4 steps,
//! against the authors' code with `--against-reference`). Prints the method's table and writes its JSON.

use crate::outputs::{check_outputs, given, given_files};
use std::path::{Path, PathBuf};

use cellshift_models::registry;

use super::hook_report::write_report;
use super::kit::CliKit;
use super::training::set_threads;
use super::DataArgs;

/// Arguments of `cellshift bench speed`.
#[derive(clap::Args)]
pub struct Args {
    /// Method whose speed benchmark runs (one with a speed benchmark: see the error listing them).
    #[arg(long)]
    pub method: String,
    /// Checkpoint (or run) directory to time (MapPFN).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Data set of new contexts (MapPFN: every context is a hold-out context; the first one is used).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Model sizes to time, comma-separated (default: the benchmark's; C3TL `small,paper`, CellTarNet `tiny`).
    #[arg(long, value_delimiter = ',')]
    pub preset: Vec<String>,
    /// Genes of the synthetic problem (C3TL: 2,000; CellTarNet: 1,000).
    #[arg(long)]
    pub genes: Option<usize>,
    /// Cells per set (MapPFN: 64, the reference timings use 200 at paper shapes; CellTarNet: 128 sampled at once).
    #[arg(long)]
    pub cells: Option<usize>,
    /// Seed of the weights, the noise and the synthetic data.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also time the reference implementation at the same shape and report the two side by side
    /// (scDFM: the authors' PyTorch code, with `--option reference=DIR --option python=PATH`; MapPFN and
    /// CellTarNet always include their reference sampler and decoding).
    #[arg(long)]
    pub against_reference: bool,
    /// The benchmark's own settings as KEY=VALUE (repeatable). MapPFN: `k=8`, `queries=4`,
    /// `fast_reference=true` (adaptive Dopri5 at 1e-6 instead of the 601-evaluation reference solve);
    /// C3TL: `contexts=4`, `perturbations=1677`, `precision=f32,bf16`, `epochs=10`; CellTarNet: `patch=1`,
    /// `modes=cached,uncached`.
    #[arg(long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub columns: DataArgs,
}

/// Runs `cellshift bench speed`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (_, speed) = registry::hook(&args.method, "speed benchmark", |h| h.speed)?;
    check_outputs(
        &given(&[&args.model, &args.data]),
        &given_files(&[&args.json]),
    )?;
    set_threads(args.threads);
    let data = match &args.data {
        Some(path) => Some((path.as_path(), args.columns.read(path)?)),
        None => None,
    };
    let request = cellshift_models::hooks::SpeedRequest {
        model: args.model.as_deref(),
        data: data.as_ref().map(|(p, d)| (*p as &Path, d)),
        presets: &args.preset,
        genes: args.genes,
        cells: args.cells,
        seed: args.seed,
        against_reference: args.against_reference,
        options: &args.options,
        kit: &CliKit,
    };
    let report = speed(&request)?;
    write_report(&report, None, args.json.as_deref())
}
