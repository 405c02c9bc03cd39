//! Loading a checkpoint of any registered method for the model commands (`predict`, `bench`, `finetune`,
//! `demo`), with the sampler options; the bundled checkpoint when none is given.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cellshift_models::flow::OdeSolver;
use cellshift_models::registry::{self, InferenceOptions, MethodModel};
use cellshift_models::train::Preprocessing;
use cellshift_models::SamplerConfig;

/// The checkpoint shipped with the repository (the SERGIO-prior MapPFN), used when `--model` is absent.
pub const BUNDLED_CHECKPOINT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../checkpoints/mappfn-sergio-small"
);

/// `--model` or, when absent, the bundled checkpoint (with a note on stderr).
pub fn model_dir(model: Option<&Path>) -> anyhow::Result<PathBuf> {
    match model {
        Some(dir) => Ok(dir.to_path_buf()),
        None => {
            let dir = PathBuf::from(BUNDLED_CHECKPOINT);
            if !dir.exists() {
                anyhow::bail!(
                    "no --model given and the bundled checkpoint {} is missing; give --model DIR",
                    dir.display()
                );
            }
            eprintln!(
                "note: no --model given; using the bundled checkpoint {}",
                dir.display()
            );
            Ok(dir)
        }
    }
}

/// A loaded model with what the commands need besides predicting.
pub struct LoadedModel {
    /// The method's model.
    pub model: MethodModel,
    /// The method's name.
    pub method: &'static str,
    /// The preprocessing its inputs must have.
    pub preprocessing: Preprocessing,
}

/// Loads the checkpoint at `dir` through the method registry (the checkpoint names its method).
pub fn load_model(dir: &Path, sampler: &SamplerArgs) -> anyhow::Result<LoadedModel> {
    let load = || -> anyhow::Result<LoadedModel> {
        let (entry, preprocessing) = registry::checkpoint_method(dir)?;
        let options = InferenceOptions {
            sampler: sampler.config(),
            ..InferenceOptions::default()
        };
        Ok(LoadedModel {
            model: (entry.load)(dir, &options)?,
            method: entry.name,
            preprocessing,
        })
    };
    load().with_context(|| format!("loading the model {}", dir.display()))
}

/// Errors unless the model accepts `k` context experiments.
pub fn check_k(model: &LoadedModel, k: usize) -> anyhow::Result<()> {
    let caps = model.model.capabilities();
    if !caps.supports_k(k) {
        let max = caps.k_max.map_or("any".to_string(), |m| m.to_string());
        anyhow::bail!(
            "K = {k} is outside what {} accepts ({}..={max}); use --k {} or less",
            model.method,
            caps.k_min,
            caps.k_max.unwrap_or(k)
        );
    }
    Ok(())
}

/// ODE solvers selectable on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SolverKind {
    /// The reference: Dormand–Prince 5(4) with a constant step `--dt` (0.01 ⇒ 601 velocity evaluations).
    Dopri5Fixed,
    /// Adaptive Dormand–Prince 5(4) with `--rtol`/`--atol` error control.
    Dopri5,
    /// Euler with `--solver-steps` equal steps.
    Euler,
    /// Classic Runge–Kutta 4 with `--solver-steps` equal steps.
    Rk4,
}

/// Sampler options of the model commands.
#[derive(clap::Args, Clone, Debug)]
pub struct SamplerArgs {
    /// ODE solver (default: adaptive Dopri5 at rtol = atol = 1e-3, which matches the reference's
    /// 601-evaluation fixed-step sampler with about 25 evaluations; `dopri5-fixed` is the reference).
    #[arg(long, value_enum, default_value = "dopri5")]
    pub solver: SolverKind,
    /// Step of the fixed-step Dopri5 solver.
    #[arg(long, default_value_t = 0.01)]
    pub dt: f64,
    /// Steps of the Euler and RK4 solvers.
    #[arg(long, default_value_t = 20)]
    pub solver_steps: usize,
    /// Relative tolerance of the adaptive solver.
    #[arg(long, default_value_t = 1e-3)]
    pub rtol: f64,
    /// Absolute tolerance of the adaptive solver.
    #[arg(long, default_value_t = 1e-3)]
    pub atol: f64,
    /// Classifier-free guidance weight ω (1 = no guidance).
    #[arg(long, default_value_t = 2.0)]
    pub guidance: f64,
    /// Pool every P-th cell of P populations sampled from independent noise into each prediction (MapPFN;
    /// default 1, the reference). MapPFN draws a query's cells jointly, so one sampled set carries one
    /// set-level offset; pooling averages it out. Costs P times the sampling.
    #[arg(long, default_value_t = 1)]
    pub populations: usize,
    /// Clamp predicted values at zero (MapPFN; default off, the reference), for non-negative data such as
    /// log1p counts.
    #[arg(long)]
    pub nonnegative: bool,
    /// Standard deviation of the source noise (MapPFN; default 1, the reference); below 1 the generated
    /// cells are less spread, as a temperature in normalizing-flow sampling.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
}

impl SamplerArgs {
    /// The defaults of the options (for commands that do not sample).
    pub fn default_sampler() -> SamplerArgs {
        SamplerArgs {
            solver: SolverKind::Dopri5,
            dt: 0.01,
            solver_steps: 20,
            rtol: 1e-3,
            atol: 1e-3,
            guidance: 2.0,
            populations: 1,
            nonnegative: false,
            temperature: 1.0,
        }
    }

    /// The sampler configuration these options describe.
    pub fn config(&self) -> SamplerConfig {
        let solver = match self.solver {
            SolverKind::Dopri5Fixed => OdeSolver::Dopri5Fixed { dt: self.dt },
            SolverKind::Dopri5 => OdeSolver::Dopri5Adaptive {
                rtol: self.rtol,
                atol: self.atol,
                dt0: 0.05,
                max_steps: 10_000,
            },
            SolverKind::Euler => OdeSolver::Euler {
                steps: self.solver_steps,
            },
            SolverKind::Rk4 => OdeSolver::Rk4 {
                steps: self.solver_steps,
            },
        };
        SamplerConfig {
            solver,
            guidance: self.guidance,
            populations: self.populations,
            nonnegative: self.nonnegative,
            temperature: self.temperature,
        }
    }
}
