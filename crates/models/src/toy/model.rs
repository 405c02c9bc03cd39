//! The toy network: `x_g ~ N(mean_control_g + δ_{p,g}, exp(s_{p,g})²)`, a learned shift δ and log-spread s
//! per perturbation and gene.

use cellshift_data::Task;
use ndarray::Axis;
use tch::{nn, Device, Kind, Tensor};

use super::config::ToyConfig;
use super::method::NAME;
use crate::error::{ModelError, Result};

/// The parameters with their variables.
pub struct ToyNet {
    /// The configuration the parameters were made for.
    pub config: ToyConfig,
    pub(super) vs: nn::VarStore,
    shift: Tensor,
    log_scale: Tensor,
}

impl ToyNet {
    /// Zero shifts and unit spreads.
    pub fn new(config: ToyConfig, device: Device) -> Result<ToyNet> {
        config.validate()?;
        let vs = nn::VarStore::new(device);
        let (p, d) = (config.perturbations.len() as i64, config.genes.len() as i64);
        let root = vs.root();
        let shift = root.zeros("shift", &[p, d]);
        let log_scale = root.zeros("log_scale", &[p, d]);
        Ok(ToyNet {
            config,
            vs,
            shift,
            log_scale,
        })
    }

    fn index_of(&self, label: &str) -> Result<i64> {
        self.config
            .perturbations
            .iter()
            .position(|p| p == label)
            .map(|i| i as i64)
            .ok_or_else(|| {
                ModelError::Input(format!(
                    "{NAME} has no parameters for perturbation `{label}`; it only predicts perturbations it was trained on"
                ))
            })
    }

    /// Forward: the mean shift and log-spread of a perturbation, `[d]` each.
    pub fn forward(&self, label: &str) -> Result<(Tensor, Tensor)> {
        let i = self.index_of(label)?;
        Ok((self.shift.get(i), self.log_scale.get(i)))
    }

    /// The L2 penalty on the shifts (the loss's second term).
    pub fn shift_penalty(&self) -> Tensor {
        self.shift.square().mean(Kind::Float) * self.config.shift_penalty
    }

    /// Mean Gaussian negative log-likelihood per value (nats) of a task's target cells.
    pub fn nll(&self, task: &Task) -> Result<Tensor> {
        let target = task
            .target
            .as_ref()
            .ok_or_else(|| ModelError::Input("the task has no target cells".into()))?;
        let (shift, log_scale) = self.forward(task.query_label())?;
        let dev = self.vs.device();
        let control = task
            .observational
            .mean_axis(Axis(0))
            .ok_or_else(|| ModelError::Input("the task has no control cells".into()))?;
        let mean = Tensor::from_slice(control.as_slice().unwrap_or(&control.to_vec()))
            .to_device(dev)
            + shift;
        let x = Tensor::from_slice(&target.iter().copied().collect::<Vec<f32>>())
            .reshape([target.nrows() as i64, target.ncols() as i64])
            .to_device(dev);
        let z = (x - mean.unsqueeze(0)) * (-&log_scale).exp().unsqueeze(0);
        let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        Ok((z.square() * 0.5 + log_scale.unsqueeze(0) + half_log_2pi).mean(Kind::Float))
    }
}
