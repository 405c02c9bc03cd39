//! Seeded parameter creation. Each parameter is initialised from its own random stream, keyed by the
//! model seed and the parameter's full name, so initial weights are reproducible, independent of the
//! order of construction and of other threads, and adding a parameter leaves the others unchanged.

use tch::{nn, Device, Kind, Tensor};

use crate::rng;

/// How a parameter is initialised.
#[allow(missing_docs)] // the fields are described in the variant docs
#[derive(Clone, Debug)]
pub enum Init {
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
    /// I.i.d. `U(−bound, +bound)`.
    Uniform { bound: f64 },
    /// I.i.d. `N(0, std²)`.
    Normal { std: f64 },
    /// Explicit values (row-major, must match the shape).
    Values(Vec<f32>),
}

impl Init {
    /// The default of linear layers (equinox/PyTorch style): `U(±1/√fan_in)`.
    pub fn fan_in_uniform(fan_in: usize) -> Init {
        Init::Uniform {
            bound: 1.0 / (fan_in.max(1) as f64).sqrt(),
        }
    }

    fn values(&self, name: &str, seed: u64, numel: usize) -> Vec<f32> {
        match self {
            Init::Zeros => vec![0.0; numel],
            Init::Ones => vec![1.0; numel],
            Init::Uniform { bound } => {
                if *bound <= 0.0 {
                    return vec![0.0; numel];
                }
                let mut r = rng::stream(seed, name, 0);
                rng::uniforms(&mut r, numel, -bound, *bound)
            }
            Init::Normal { std } => {
                let mut r = rng::stream(seed, name, 0);
                rng::normals(&mut r, numel)
                    .into_iter()
                    .map(|v| v * (*std as f32))
                    .collect()
            }
            Init::Values(v) => v.clone(),
        }
    }
}

/// Creates named parameters under a `VarStore` path with seeded initial values.
#[derive(Clone)]
pub struct ParamBuilder<'a> {
    path: nn::Path<'a>,
    seed: u64,
}

impl<'a> ParamBuilder<'a> {
    /// A builder at `path` whose parameters draw from `seed`.
    pub fn new(path: nn::Path<'a>, seed: u64) -> ParamBuilder<'a> {
        ParamBuilder { path, seed }
    }

    /// The builder of a sub-module called `name`.
    pub fn sub(&self, name: &str) -> ParamBuilder<'a> {
        ParamBuilder {
            path: self.path.sub(name),
            seed: self.seed,
        }
    }

    /// The device parameters are created on.
    pub fn device(&self) -> Device {
        self.path.device()
    }

    /// A trainable parameter.
    pub fn param(&self, name: &str, shape: &[usize], init: Init) -> Tensor {
        self.create(name, shape, init, true)
    }

    /// A parameter that is stored and checkpointed but not trained.
    pub fn frozen(&self, name: &str, shape: &[usize], init: Init) -> Tensor {
        self.create(name, shape, init, false)
    }

    fn create(&self, name: &str, shape: &[usize], init: Init, trainable: bool) -> Tensor {
        let full = self.path.path(name);
        let numel: usize = shape.iter().product();
        let values = init.values(&full, self.seed, numel);
        assert_eq!(
            values.len(),
            numel,
            "initial values of {full} do not match its shape {shape:?}"
        );
        let dims: Vec<i64> = shape.iter().map(|&s| s as i64).collect();
        let tensor = Tensor::from_slice(&values)
            .reshape(dims.as_slice())
            .to_kind(Kind::Float)
            .to_device(self.device());
        self.path.add(name, tensor, trainable)
    }
}
