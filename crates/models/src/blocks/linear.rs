//! Affine layer `y = x Wᵀ + b` with `W: [out, in]`.

use tch::Tensor;

use super::init::{Init, ParamBuilder};

/// How a linear layer's parameters start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearInit {
    /// Weight and bias i.i.d. `U(±1/√fan_in)` (equinox/PyTorch default, spec §2.8).
    FanInUniform,
    /// Weight and bias zero (FiLM projections, spec §2.8).
    Zero,
}

/// A linear layer with an optional bias.
#[derive(Debug)]
pub struct Linear {
    /// Weight `[out, in]`.
    pub weight: Tensor,
    /// Bias `[out]`, if any.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// Creates `name.weight` (and `name.bias` when `bias`) under `pb`.
    pub fn new(
        pb: &ParamBuilder,
        name: &str,
        fan_in: usize,
        fan_out: usize,
        bias: bool,
        init: LinearInit,
    ) -> Linear {
        let pb = pb.sub(name);
        let make = || match init {
            LinearInit::FanInUniform => Init::fan_in_uniform(fan_in),
            LinearInit::Zero => Init::Zeros,
        };
        let weight = pb.param("weight", &[fan_out, fan_in], make());
        let bias = bias.then(|| pb.param("bias", &[fan_out], make()));
        Linear { weight, bias }
    }

    /// Applies the layer to the last dimension of `x`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, self.bias.as_ref())
    }

    /// Number of parameters.
    pub fn numel(&self) -> usize {
        self.weight.numel() + self.bias.as_ref().map_or(0, Tensor::numel)
    }
}
