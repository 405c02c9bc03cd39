//! `cellshift export`: write an inference-only copy of a checkpoint (EMA weights, no optimiser state), in
//! half precision by default — the form in which checkpoints are shipped in the repository.

use std::path::PathBuf;

use anyhow::Context;
use cellshift_models::train::checkpoint::export_inference;

/// Arguments of `cellshift export`.
#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint or run directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Output run directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Keep float32 weights (default: float16, half the size).
    #[arg(long)]
    pub f32: bool,
}

/// Runs `cellshift export`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let kind = if args.f32 {
        tch::Kind::Float
    } else {
        tch::Kind::Half
    };
    let dir = export_inference(&args.model, &args.out, kind)
        .with_context(|| format!("exporting {}", args.model.display()))?;
    let bytes = std::fs::metadata(dir.join("checkpoint.safetensors"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "wrote {} ({:.1} MB of {:?} weights)",
        dir.display(),
        bytes as f64 / 1e6,
        kind
    );
    Ok(())
}
