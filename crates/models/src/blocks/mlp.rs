//! Two-layer perceptron `Linear → GELU(tanh) → Linear`.

use tch::Tensor;

use super::init::ParamBuilder;
use super::linear::{Linear, LinearInit};

/// `fc2(GELU_tanh(fc1(x)))`.
#[derive(Debug)]
pub struct Mlp {
    /// First layer `dim → hidden`.
    pub fc1: Linear,
    /// Second layer `hidden → out`.
    pub fc2: Linear,
}

impl Mlp {
    /// Creates `name.fc1` and `name.fc2`.
    pub fn new(pb: &ParamBuilder, name: &str, dim: usize, hidden: usize, out: usize) -> Mlp {
        let pb = pb.sub(name);
        Mlp {
            fc1: Linear::new(&pb, "fc1", dim, hidden, true, LinearInit::FanInUniform),
            fc2: Linear::new(&pb, "fc2", hidden, out, true, LinearInit::FanInUniform),
        }
    }

    /// Applies the MLP to the last dimension.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.fc2.forward(&self.fc1.forward(x).gelu("tanh"))
    }
}
