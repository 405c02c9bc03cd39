//! Loading a MapPFN checkpoint for the model commands (`predict`, `bench`), with the sampler options.

use std::path::Path;

use anyhow::Context;
use cellshift_models::flow::OdeSolver;
use cellshift_models::{MapPfn, SamplerConfig};

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
    /// ODE solver.
    #[arg(long, value_enum, default_value = "dopri5-fixed")]
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
}

impl SamplerArgs {
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
        }
    }
}

/// Loads the EMA weights of the MapPFN checkpoint at `dir` (a checkpoint or a run directory) with the
/// sampler the options describe.
pub fn load_mappfn(dir: &Path, sampler: &SamplerArgs) -> anyhow::Result<MapPfn> {
    let model =
        MapPfn::load(dir).with_context(|| format!("loading the model {}", dir.display()))?;
    Ok(model.with_sampler(sampler.config())?)
}
