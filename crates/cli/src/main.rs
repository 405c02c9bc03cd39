//! `cellshift`: predict how cell populations respond to genetic perturbations in contexts where only a few
//! perturbations were measured. One binary, one subcommand per job; every failure is a one-line message
//! naming the problem and the fix, with a non-zero exit status.

mod allocator;
mod commands;
mod memory;
mod outputs;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// cellshift — in-context perturbation-response prediction (MapPFN, scDFM, CellTarNet, C3TL) for AnnData screens.
#[derive(Parser)]
#[command(name = "cellshift", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Print debug logs (also settable with RUST_LOG).
    #[arg(long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Summarise an .h5ad screen: cells, genes, label column, control label, counts vs log, cells per condition.
    Inspect(commands::inspect::Args),
    /// Normalise, log1p, select a gene panel or highly variable genes, pseudo-bulk; writes an .h5ad.
    Preprocess(commands::preprocess::Args),
    /// Simulate a synthetic screen (linear SCM or SERGIO GRN with knock-outs) into an .h5ad.
    Simulate(commands::simulate::Args),
    /// Pre-train a prior-fitted method (MapPFN) on tasks streamed from a synthetic prior; resumes automatically.
    Pretrain(commands::pretrain::Args),
    /// Train a method from scratch on the train conditions of a screen (methods not pre-trained on priors).
    Train(commands::train::Args),
    /// Fine-tune a checkpoint of any method on the train conditions of a screen.
    Finetune(commands::finetune::Args),
    /// Predict perturbations in one context of a screen with a checkpoint (default: the bundled model).
    Predict(commands::predict::Args),
    /// Score a checkpoint (default: the bundled model) or a baseline on a data file (metric JSON, mean ± std).
    Bench(commands::bench::Args),
    /// Write an inference-only (EMA, half-precision) copy of a checkpoint, the form shipped in the repository.
    Export(commands::export::Args),
    /// Import a method's reference checkpoint (scDFM: the authors' weights) as a cellshift checkpoint.
    Import(commands::import::Args),
    /// Score predictions against real cells (two .h5ad files, or one .npz case) or score a baseline.
    Evaluate(commands::evaluate::Args),
    /// Run the main job end to end on synthetic data the project makes itself and write a small report.
    Demo(commands::demo::Args),
}

/// Turns off HDF5's advisory file locks unless the user set `HDF5_USE_FILE_LOCKING`. HDF5 opens files without
/// close-on-exec, so a lock taken by any process that another process forked from (a notebook, a test
/// harness, a pipeline runner) can outlive the file's close and make a plain read fail with "unable to lock
/// file". cellshift never writes a file in place (every output is written to a temporary file and renamed),
/// so the locks protect nothing here.
fn disable_hdf5_file_locking() {
    if std::env::var_os("HDF5_USE_FILE_LOCKING").is_none() {
        std::env::set_var("HDF5_USE_FILE_LOCKING", "FALSE");
    }
}

fn main() -> ExitCode {
    allocator::keep_medium_blocks_in_heap();
    disable_hdf5_file_locking();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    remove_partial_outputs_on_interrupt();
    let result = match cli.command {
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Preprocess(args) => commands::preprocess::run(args),
        Command::Simulate(args) => commands::simulate::run(args),
        Command::Evaluate(args) => commands::evaluate::run(args),
        Command::Pretrain(args) => commands::pretrain::run(args),
        Command::Train(args) => commands::train::run(args),
        Command::Finetune(args) => commands::finetune::run(args),
        Command::Predict(args) => commands::predict::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Export(args) => commands::export::run(args),
        Command::Import(args) => commands::import::run(args),
        Command::Demo(args) => commands::demo::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// On SIGINT, SIGTERM or SIGHUP: remove the outputs still being written (atomic writes' temporary files),
/// say so, and exit with 130, so an interrupted command leaves no partial file behind.
fn remove_partial_outputs_on_interrupt() {
    let _ = ctrlc::set_handler(|| {
        let removed = cellshift_data::atomic::remove_pending_outputs();
        eprintln!("interrupted: removed {removed} partial output(s); nothing was half-written");
        std::process::exit(130);
    });
}

/// Joins an error and its causes into one line ("outer: inner: root").
fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ").replace('\n', " ")
}

fn init_logging(verbose: bool) {
    let default = if verbose { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
