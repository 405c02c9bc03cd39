//! Configuration of the toy per-perturbation Gaussian.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// The genes it models and the perturbations it has parameters for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToyConfig {
    /// Gene names, in column order.
    pub genes: Vec<String>,
    /// Perturbation labels with learned parameters.
    pub perturbations: Vec<String>,
    /// Weight of the L2 penalty on the shifts (the loss's second named component).
    pub shift_penalty: f64,
}

impl ToyConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        if self.genes.is_empty() || self.perturbations.is_empty() {
            return Err(ModelError::Config(
                "the toy model needs at least one gene and one perturbation".into(),
            ));
        }
        if !(self.shift_penalty >= 0.0 && self.shift_penalty.is_finite()) {
            return Err(ModelError::Config(format!(
                "shift_penalty {} must be a finite number ≥ 0",
                self.shift_penalty
            )));
        }
        Ok(())
    }
}
