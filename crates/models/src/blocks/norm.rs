//! Normalisation layers: LayerNorm, FiLM-modulated LayerNorm (scale and shift from a conditioning
//! vector, no gate) and RMSNorm with weight and bias (used as QK-norm).

use tch::Tensor;

use super::init::{Init, ParamBuilder};
use super::linear::{Linear, LinearInit};

/// LayerNorm over the last dimension with learnable elementwise weight (init 1) and bias (init 0).
#[derive(Debug)]
pub struct LayerNorm {
    /// Elementwise weight `[dim]`.
    pub weight: Tensor,
    /// Elementwise bias `[dim]`.
    pub bias: Tensor,
    dim: i64,
    eps: f64,
}

impl LayerNorm {
    /// Creates `name.weight` and `name.bias` of size `dim`.
    pub fn new(pb: &ParamBuilder, name: &str, dim: usize, eps: f64) -> LayerNorm {
        let pb = pb.sub(name);
        LayerNorm {
            weight: pb.param("weight", &[dim], Init::Ones),
            bias: pb.param("bias", &[dim], Init::Zeros),
            dim: dim as i64,
            eps,
        }
    }

    /// Normalises the last dimension of `x`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.layer_norm(
            [self.dim],
            Some(&self.weight),
            Some(&self.bias),
            self.eps,
            true,
        )
    }
}

/// Per-example FiLM modulation `(γ, β)`, each `[B, 1, dim]` so it broadcasts over tokens.
#[derive(Debug)]
pub struct Modulation {
    /// Scale offset γ (the input is multiplied by `1 + γ`).
    pub scale: Tensor,
    /// Shift β.
    pub shift: Tensor,
}

/// LayerNorm followed by FiLM: `LN(x) ⊙ (1 + γ) + β` with `(γ, β) = split(F e)`; `F` is zero-initialised,
/// so at initialisation the layer is a plain LayerNorm (spec §2.5 steps 1–2).
#[derive(Debug)]
pub struct FilmLayerNorm {
    /// The LayerNorm.
    pub norm: LayerNorm,
    /// The projection of the conditioning vector to `[γ | β]`.
    pub film: Linear,
}

impl FilmLayerNorm {
    /// Creates `{name}` (the LayerNorm) and `{film_name}` (the projection `cond_dim → 2·dim`).
    pub fn new(
        pb: &ParamBuilder,
        name: &str,
        film_name: &str,
        dim: usize,
        cond_dim: usize,
        eps: f64,
    ) -> FilmLayerNorm {
        FilmLayerNorm {
            norm: LayerNorm::new(pb, name, dim, eps),
            film: Linear::new(pb, film_name, cond_dim, 2 * dim, true, LinearInit::Zero),
        }
    }

    /// The modulation for conditioning vectors `e: [B, cond_dim]` (computed once per forward, not per token).
    pub fn modulation(&self, e: &Tensor) -> Modulation {
        let gb = self.film.forward(e).unsqueeze(1);
        let parts = gb.chunk(2, -1);
        Modulation {
            scale: parts[0].shallow_clone(),
            shift: parts[1].shallow_clone(),
        }
    }

    /// Applies LayerNorm and the modulation to `x: [B, L, dim]`.
    pub fn forward(&self, x: &Tensor, m: &Modulation) -> Tensor {
        self.norm.forward(x) * (m.scale.shallow_clone() + 1.0) + &m.shift
    }
}

/// RMSNorm with weight (init 1) and bias (init 0): `z / sqrt(eps + mean(z²)) ⊙ w + b` over the last dimension.
#[derive(Debug)]
pub struct RmsNorm {
    /// Elementwise weight.
    pub weight: Tensor,
    /// Elementwise bias.
    pub bias: Tensor,
    dim: i64,
    eps: f64,
}

impl RmsNorm {
    /// Creates `name.weight` and `name.bias` of size `dim`.
    pub fn new(pb: &ParamBuilder, name: &str, dim: usize, eps: f64) -> RmsNorm {
        let pb = pb.sub(name);
        RmsNorm {
            weight: pb.param("weight", &[dim], Init::Ones),
            bias: pb.param("bias", &[dim], Init::Zeros),
            dim: dim as i64,
            eps,
        }
    }

    /// Normalises the last dimension of `x`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.rms_norm([self.dim], Some(&self.weight), self.eps) + &self.bias
    }
}
