//! Time embedding (spec §2.4): sinusoidal features of `t ∈ [0, 1]` with (optionally trainable)
//! frequencies `ω_i = exp(−i·ln(10000)/(h−1))`, `i < h = width/2`, followed by `Linear → GELU → Linear`.

use tch::Tensor;

use super::init::{Init, ParamBuilder};
use super::mlp::Mlp;

/// Maps times `t: [B]` to embeddings `[B, width]`.
#[derive(Debug)]
pub struct TimeEmbedding {
    /// The `width/2` frequencies.
    pub frequencies: Tensor,
    /// The MLP `width → hidden → width`.
    pub mlp: Mlp,
}

impl TimeEmbedding {
    /// Creates `name.frequencies` (trainable when `trainable_frequencies`, as in the reference code) and
    /// `name.mlp`. `width` must be even and at least 4.
    pub fn new(
        pb: &ParamBuilder,
        name: &str,
        width: usize,
        hidden: usize,
        trainable_frequencies: bool,
    ) -> TimeEmbedding {
        let pb = pb.sub(name);
        let half = width / 2;
        let step = (10000f64).ln() / (half.max(2) - 1) as f64;
        let values: Vec<f32> = (0..half)
            .map(|i| (-(i as f64) * step).exp() as f32)
            .collect();
        let frequencies = if trainable_frequencies {
            pb.param("frequencies", &[half], Init::Values(values))
        } else {
            pb.frozen("frequencies", &[half], Init::Values(values))
        };
        TimeEmbedding {
            frequencies,
            mlp: Mlp::new(&pb, "mlp", width, hidden, width),
        }
    }

    /// The sinusoidal features `[sin(tω), cos(tω)]`, `[B, width]`.
    pub fn features(&self, t: &Tensor) -> Tensor {
        let args = t.unsqueeze(-1) * self.frequencies.unsqueeze(0);
        Tensor::cat(&[args.sin(), args.cos()], -1)
    }

    /// The embedding `[B, width]` of times `t: [B]`.
    pub fn forward(&self, t: &Tensor) -> Tensor {
        self.mlp.forward(&self.features(t))
    }
}
