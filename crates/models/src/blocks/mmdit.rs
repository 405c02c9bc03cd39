//! The MMDiT block (spec §2.5): every stream has its own FiLM-LayerNorms, QKV projection (no bias),
//! output projection and MLP; all streams attend jointly; FiLM scale/shift come from the time embedding
//! (no gate, no dropout).

use tch::Tensor;

use super::attention::JointAttention;
use super::init::ParamBuilder;
use super::linear::{Linear, LinearInit};
use super::mlp::Mlp;
use super::norm::FilmLayerNorm;

/// Shape of an MMDiT block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmditShape {
    /// Model width (token dimension).
    pub width: usize,
    /// Attention heads; `width` must be a multiple.
    pub heads: usize,
    /// MLP hidden size = `mlp_ratio · width`.
    pub mlp_ratio: usize,
    /// Width of the conditioning (time) vector.
    pub cond_width: usize,
}

/// The per-stream layers of a block.
#[derive(Debug)]
pub struct StreamLayers {
    /// FiLM-LayerNorm before attention.
    pub attn_norm: FilmLayerNorm,
    /// `[q | k | v]` projection `width → 3·width`, no bias.
    pub qkv: Linear,
    /// Attention output projection.
    pub out: Linear,
    /// FiLM-LayerNorm before the MLP.
    pub mlp_norm: FilmLayerNorm,
    /// The MLP.
    pub mlp: Mlp,
}

/// One MMDiT block over a fixed, ordered set of named streams.
#[derive(Debug)]
pub struct MmditBlock {
    /// Per-stream layers, in stream order.
    pub streams: Vec<StreamLayers>,
    /// Joint attention (with the shared QK-norms).
    pub attention: JointAttention,
}

impl MmditBlock {
    /// Creates a block with one set of layers per name in `streams` (e.g. `["noise", "cond", "treat"]`).
    pub fn new(
        pb: &ParamBuilder,
        streams: &[&str],
        shape: MmditShape,
        pad_to_multiple: Option<usize>,
    ) -> MmditBlock {
        let w = shape.width;
        let layers = streams
            .iter()
            .map(|name| {
                let pb = pb.sub(name);
                StreamLayers {
                    attn_norm: FilmLayerNorm::new(
                        &pb,
                        "attn_norm",
                        "attn_film",
                        w,
                        shape.cond_width,
                        1e-5,
                    ),
                    qkv: Linear::new(&pb, "qkv", w, 3 * w, false, LinearInit::FanInUniform),
                    out: Linear::new(&pb, "out", w, w, true, LinearInit::FanInUniform),
                    mlp_norm: FilmLayerNorm::new(
                        &pb,
                        "mlp_norm",
                        "mlp_film",
                        w,
                        shape.cond_width,
                        1e-5,
                    ),
                    mlp: Mlp::new(&pb, "mlp", w, shape.mlp_ratio * w, w),
                }
            })
            .collect();
        let attention =
            JointAttention::new(pb, shape.heads, w / shape.heads, 1e-8, pad_to_multiple);
        MmditBlock {
            streams: layers,
            attention,
        }
    }

    /// Updates the streams `xs[s]: [B, L_s, width]` given the conditioning vectors `e: [B, cond_width]`.
    pub fn forward(&self, xs: &[Tensor], e: &Tensor) -> Vec<Tensor> {
        self.forward_with_key_bias(xs, e, None)
    }

    /// [`MmditBlock::forward`] with an additive attention bias per key token (see
    /// [`JointAttention::forward_with_key_bias`]).
    pub fn forward_with_key_bias(
        &self,
        xs: &[Tensor],
        e: &Tensor,
        key_bias: Option<&Tensor>,
    ) -> Vec<Tensor> {
        let qkv: Vec<Tensor> = self
            .streams
            .iter()
            .zip(xs)
            .map(|(layers, x)| {
                layers
                    .qkv
                    .forward(&layers.attn_norm.forward(x, &layers.attn_norm.modulation(e)))
            })
            .collect();
        let attended = self.attention.forward_with_key_bias(&qkv, key_bias);
        self.streams
            .iter()
            .zip(xs)
            .zip(attended)
            .map(|((layers, x), a)| {
                let x = x + layers.out.forward(&a);
                let h = layers.mlp_norm.forward(&x, &layers.mlp_norm.modulation(e));
                &x + layers.mlp.forward(&h)
            })
            .collect()
    }
}

/// Floating-point operations (2·MACs) of the stream matmuls of one block for `tokens` tokens in total.
pub fn block_dense_flops(tokens: usize, shape: MmditShape) -> f64 {
    let w = shape.width as f64;
    let per_token = 2.0 * (3.0 * w * w + w * w + 2.0 * shape.mlp_ratio as f64 * w * w);
    per_token * tokens as f64
}
