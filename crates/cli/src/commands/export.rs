//! `cellshift export`: write an inference-only copy of a checkpoint (EMA weights, no optimiser state), in
//! half precision by default — the form in which checkpoints are shipped in the repository — optionally
//! with the sampler settings chosen for it on validation data.

use super::model::{SamplerArgs, SolverKind};
use crate::outputs::{check_outputs, Output};
use std::path::PathBuf;

use anyhow::Context;
use cellshift_models::train::checkpoint::{
    export_inference, set_recommended_sampler, RecommendedSampler,
};

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
    /// Record a guidance weight ω as the checkpoint's recommended sampler setting (used by `predict`,
    /// `bench`, `demo` and `bench tta` unless `--guidance` or `--reference-sampler` is given).
    #[arg(long, requires = "recommend_chosen_on")]
    pub recommend_guidance: Option<f64>,
    /// Record a number of pooled populations as the recommended setting.
    #[arg(long, requires = "recommend_chosen_on")]
    pub recommend_populations: Option<usize>,
    /// Record a source-noise temperature as the recommended setting.
    #[arg(long, requires = "recommend_chosen_on")]
    pub recommend_temperature: Option<f64>,
    /// Record clamping at zero (true or false) as the recommended setting.
    #[arg(long, requires = "recommend_chosen_on")]
    pub recommend_nonnegative: Option<bool>,
    /// Record an ODE solver as the recommended setting, with `--recommend-solver-steps` (Euler, RK4),
    /// `--recommend-dt` (fixed-step Dopri5) or `--recommend-rtol`/`--recommend-atol` (adaptive Dopri5).
    #[arg(long, value_enum, requires = "recommend_chosen_on")]
    pub recommend_solver: Option<SolverKind>,
    /// Steps of the recommended Euler or RK4 solver.
    #[arg(long, default_value_t = 20)]
    pub recommend_solver_steps: usize,
    /// Step of the recommended fixed-step Dopri5 solver.
    #[arg(long, default_value_t = 0.01)]
    pub recommend_dt: f64,
    /// Relative tolerance of the recommended adaptive solver.
    #[arg(long, default_value_t = 1e-3)]
    pub recommend_rtol: f64,
    /// Absolute tolerance of the recommended adaptive solver.
    #[arg(long, default_value_t = 1e-3)]
    pub recommend_atol: f64,
    /// Where the recommended settings were chosen (data that neither trained nor tests the model), kept in
    /// the checkpoint and printed whenever they are used.
    #[arg(long)]
    pub recommend_chosen_on: Option<String>,
}

/// Runs `cellshift export`.
pub fn run(args: Args) -> anyhow::Result<()> {
    check_outputs(&[&args.model], &[Output::NewFolder(&args.out)])?;
    let kind = if args.f32 {
        tch::Kind::Float
    } else {
        tch::Kind::Half
    };
    let recommended = args
        .recommend_chosen_on
        .as_ref()
        .map(|chosen_on| RecommendedSampler {
            guidance: args.recommend_guidance,
            populations: args.recommend_populations,
            temperature: args.recommend_temperature,
            nonnegative: args.recommend_nonnegative,
            solver: args.recommend_solver.map(|kind| {
                SamplerArgs {
                    solver_steps: args.recommend_solver_steps,
                    dt: args.recommend_dt,
                    rtol: args.recommend_rtol,
                    atol: args.recommend_atol,
                    ..SamplerArgs::default_sampler()
                }
                .solver_of(kind)
            }),
            chosen_on: chosen_on.clone(),
        });
    if let Some(r) = &recommended {
        r.validate()?;
    }
    let dir = export_inference(&args.model, &args.out, kind)
        .with_context(|| format!("exporting {}", args.model.display()))?;
    if let Some(r) = recommended {
        let described = r.describe();
        set_recommended_sampler(&dir, Some(r))
            .with_context(|| format!("recording the recommended sampler in {}", dir.display()))?;
        println!("recommended sampler: {described}");
    }
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
