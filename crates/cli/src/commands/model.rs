//! Loading a checkpoint of any registered method for the model commands (`predict`, `bench`, `finetune`,
//! `demo`), with the sampler options; the bundled checkpoint when none is given.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cellshift_models::flow::OdeSolver;
use cellshift_models::registry::{self, InferenceOptions, MethodModel};
use cellshift_models::train::checkpoint::{self, RecommendedSampler};
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
    /// The sampler it predicts with (the options, the checkpoint's recommendation, the reference).
    pub sampler: SamplerConfig,
}

/// Loads the checkpoint at `dir` through the method registry (the checkpoint names its method), sampling
/// with `sampler`'s options over the checkpoint's recommended settings (see [`SamplerArgs::resolve`]).
pub fn load_model(dir: &Path, sampler: &SamplerArgs) -> anyhow::Result<LoadedModel> {
    let load = || -> anyhow::Result<LoadedModel> {
        let (entry, preprocessing) = registry::checkpoint_method(dir)?;
        let (_, meta) = checkpoint::read_meta(dir)?;
        let recommended = meta.recommended_sampler.as_ref();
        if let Some(r) = recommended {
            if sampler.reference_sampler {
                eprintln!(
                    "note: ignoring the checkpoint's recommended sampler (--reference-sampler)"
                );
            } else {
                eprintln!(
                    "note: sampling with the checkpoint's recommended settings where no option is given: {} \
                     (chosen on {}); --reference-sampler for the reference",
                    r.describe(),
                    r.chosen_on
                );
            }
        }
        let options = InferenceOptions {
            sampler: sampler.resolve(recommended),
            ..InferenceOptions::default()
        };
        Ok(LoadedModel {
            model: (entry.load)(dir, &options)?,
            method: entry.name,
            preprocessing,
            sampler: options.sampler,
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
    /// ODE solver (default: the checkpoint's recommended solver, else adaptive Dopri5 at rtol = atol =
    /// 1e-3, which matches the reference's 601-evaluation fixed-step sampler with about 25 evaluations;
    /// `dopri5-fixed` is the reference).
    #[arg(long, value_enum)]
    pub solver: Option<SolverKind>,
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
    /// Classifier-free guidance weight ω (1 = no guidance; default 2, the reference, unless the checkpoint
    /// recommends another).
    #[arg(long)]
    pub guidance: Option<f64>,
    /// Pool every P-th cell of P populations sampled from independent noise into each prediction (MapPFN;
    /// default 1, the reference, unless the checkpoint recommends another). MapPFN draws a query's cells
    /// jointly, so one sampled set carries one set-level offset; pooling averages it out. Costs P times
    /// the sampling.
    #[arg(long)]
    pub populations: Option<usize>,
    /// Clamp predicted values at zero (MapPFN; `--nonnegative` or `--nonnegative false`; default off, the
    /// reference, unless the checkpoint recommends it), for non-negative data such as log1p counts.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub nonnegative: Option<bool>,
    /// Standard deviation of the source noise (MapPFN; default 1, the reference, unless the checkpoint
    /// recommends another); below 1 the generated cells are less spread, as a temperature in
    /// normalizing-flow sampling.
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Ignore the sampler settings a checkpoint recommends (`cellshift export --recommend-…`) and use the
    /// reference defaults for every option not given.
    #[arg(long)]
    pub reference_sampler: bool,
}

impl SamplerArgs {
    /// The defaults of the options (for commands that do not sample).
    pub fn default_sampler() -> SamplerArgs {
        SamplerArgs {
            solver: None,
            dt: 0.01,
            solver_steps: 20,
            rtol: 1e-3,
            atol: 1e-3,
            guidance: None,
            populations: None,
            nonnegative: None,
            temperature: None,
            reference_sampler: false,
        }
    }

    /// The solver of `kind` with this command line's step, step count and tolerances.
    pub fn solver_of(&self, kind: SolverKind) -> OdeSolver {
        match kind {
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
        }
    }

    /// The sampler configuration these options describe, with the reference default for every option
    /// not given.
    pub fn config(&self) -> SamplerConfig {
        self.resolve(None)
    }

    /// The sampler configuration: each option given wins, then the checkpoint's `recommended` setting
    /// (ignored with `--reference-sampler`), then the reference default.
    pub fn resolve(&self, recommended: Option<&RecommendedSampler>) -> SamplerConfig {
        let recommended = if self.reference_sampler {
            None
        } else {
            recommended
        };
        let reference = SamplerConfig::default();
        let solver = match self.solver {
            Some(kind) => self.solver_of(kind),
            None => recommended
                .and_then(|r| r.solver)
                .unwrap_or_else(|| self.solver_of(SolverKind::Dopri5)),
        };
        SamplerConfig {
            solver,
            guidance: first_set(
                self.guidance,
                recommended.and_then(|r| r.guidance),
                reference.guidance,
            ),
            populations: first_set(
                self.populations,
                recommended.and_then(|r| r.populations),
                reference.populations,
            ),
            nonnegative: first_set(
                self.nonnegative,
                recommended.and_then(|r| r.nonnegative),
                reference.nonnegative,
            ),
            temperature: first_set(
                self.temperature,
                recommended.and_then(|r| r.temperature),
                reference.temperature,
            ),
        }
    }
}

/// The option given on the command line, else the checkpoint's recommendation, else the reference.
fn first_set<T>(given: Option<T>, recommended: Option<T>, reference: T) -> T {
    given.or(recommended).unwrap_or(reference)
}
