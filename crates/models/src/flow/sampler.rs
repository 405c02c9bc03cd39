//! Sampler settings of flow-matching methods: the ODE solver, the classifier-free guidance weight and how
//! many independently sampled populations a prediction pools.

use serde::{Deserialize, Serialize};

use super::OdeSolver;
use crate::error::{ModelError, Result};

/// How predictions are sampled: ODE solver and classifier-free guidance weight ω.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplerConfig {
    /// ODE solver (default: the reference's fixed-step Dopri5, dt = 0.01).
    pub solver: OdeSolver,
    /// Guidance weight ω in `ω·v_cond − (ω − 1)·v_uncond` (default 2; 1 = no guidance).
    pub guidance: f64,
    /// Populations pooled into one prediction (default 1, the reference). A set generator such as MapPFN
    /// draws a query's cells jointly, so one sampled set carries one draw of a set-level offset (a SERGIO
    /// trajectory, a batch); with `P > 1` the prediction takes every P-th cell of P sets sampled from
    /// independent noise, a Monte-Carlo estimate of the population marginalised over that offset.
    /// Costs P times the sampling.
    #[serde(default = "one_population")]
    pub populations: usize,
    /// Clamp predicted values at zero (default off, the reference). For non-negative data such as log1p
    /// counts, where a flow smears a gene's zeros into small negative and positive values.
    #[serde(default)]
    pub nonnegative: bool,
    /// Standard deviation of the source noise (default 1, the reference). Below 1 the flow starts from a
    /// narrower Gaussian, as a temperature in normalizing-flow sampling: generated cells are less spread
    /// around the population's centre.
    #[serde(default = "unit_temperature")]
    pub temperature: f64,
}

fn unit_temperature() -> f64 {
    1.0
}

fn one_population() -> usize {
    1
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            solver: OdeSolver::default(),
            guidance: 2.0,
            populations: 1,
            nonnegative: false,
            temperature: 1.0,
        }
    }
}

impl SamplerConfig {
    /// Checks the configuration, naming the problem.
    pub fn validate(&self) -> Result<()> {
        if !self.guidance.is_finite() || self.guidance < 0.0 {
            return Err(ModelError::Config(format!(
                "guidance weight {} must be a finite number ≥ 0 (default 2)",
                self.guidance
            )));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(ModelError::Config(format!(
                "temperature {} must be a finite number > 0 (1 = the reference's standard noise)",
                self.temperature
            )));
        }
        if self.populations == 0 {
            return Err(ModelError::Config(
                "populations must be at least 1 (1 = one sampled set, the reference)".into(),
            ));
        }
        self.solver.validate()
    }
}
