//! Multi-stream joint attention (spec §2.5 steps 4–6): the queries, keys and values of all streams are
//! concatenated along the token axis, QK-normalised per head with one shared RMSNorm for queries and one
//! for keys, attended with libtorch's fused scaled-dot-product attention, and split back into streams.

use tch::{Kind, Tensor};

use super::init::ParamBuilder;
use super::norm::RmsNorm;

/// Joint attention over several token streams.
#[derive(Debug)]
pub struct JointAttention {
    /// QK-norm of the queries (per head, over `head_dim`).
    pub q_norm: RmsNorm,
    /// QK-norm of the keys.
    pub k_norm: RmsNorm,
    heads: i64,
    head_dim: i64,
    pad_to_multiple: Option<usize>,
}

impl JointAttention {
    /// Creates `q_norm` and `k_norm` under `pb`. With `pad_to_multiple = Some(m)` the joint key/value
    /// sequence is padded with zero rows up to a multiple of `m` without a mask, reproducing the
    /// reference's "null sinks" (spec §2.6).
    pub fn new(
        pb: &ParamBuilder,
        heads: usize,
        head_dim: usize,
        eps: f64,
        pad_to_multiple: Option<usize>,
    ) -> JointAttention {
        JointAttention {
            q_norm: RmsNorm::new(pb, "q_norm", head_dim, eps),
            k_norm: RmsNorm::new(pb, "k_norm", head_dim, eps),
            heads: heads as i64,
            head_dim: head_dim as i64,
            pad_to_multiple,
        }
    }

    /// Attends jointly over streams given as `[q | k | v]` projections, each `[B, L_s, 3·H·hd]`; returns
    /// the attention output of each stream, `[B, L_s, H·hd]`.
    pub fn forward(&self, qkv: &[Tensor]) -> Vec<Tensor> {
        self.forward_with_key_bias(qkv, None)
    }

    /// [`JointAttention::forward`] with an additive bias on the attention logits of each key (`[L]` over
    /// the joint tokens, before padding). A key standing for `m` identical tokens gets bias `ln m`, which
    /// makes attention over it exactly equal to attention over the `m` copies.
    pub fn forward_with_key_bias(&self, qkv: &[Tensor], key_bias: Option<&Tensor>) -> Vec<Tensor> {
        let lengths: Vec<i64> = qkv.iter().map(|t| t.size()[1]).collect();
        let total: i64 = lengths.iter().sum();
        let joint = Tensor::cat(qkv, 1);
        let batch = joint.size()[0];
        let width = self.heads * self.head_dim;
        let parts = joint.split(width, -1);
        let shape = [batch, total, self.heads, self.head_dim];
        let q = self
            .q_norm
            .forward(&parts[0].reshape(shape))
            .transpose(1, 2);
        let mut k = self
            .k_norm
            .forward(&parts[1].reshape(shape))
            .transpose(1, 2);
        let mut v = parts[2].reshape(shape).transpose(1, 2);
        if let Some(m) = self.pad_to_multiple.filter(|&m| m > 1) {
            let m = m as i64;
            let pad = (m - total % m) % m;
            if pad > 0 {
                let zeros = Tensor::zeros(
                    [batch, self.heads, pad, self.head_dim],
                    (Kind::Float, joint.device()),
                )
                .to_kind(k.kind());
                k = Tensor::cat(&[&k, &zeros], 2);
                v = Tensor::cat(&[&v, &zeros], 2);
            }
        }
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let mask = key_bias.map(|bias| {
            let padded = k.size()[2] - bias.size()[0];
            let bias = if padded > 0 {
                Tensor::cat(
                    &[
                        bias,
                        &bias.zeros_like().narrow(0, 0, 1).expand([padded], false),
                    ],
                    0,
                )
            } else {
                bias.shallow_clone()
            };
            bias.to_kind(q.kind()).view([1, 1, 1, -1])
        });
        let out = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            mask.as_ref(),
            0.0,
            false,
            scale,
            false,
        );
        out.transpose(1, 2)
            .reshape([batch, total, width])
            .split_with_sizes(lengths.as_slice(), 1)
    }
}

/// Floating-point operations (2·MACs) of the attention core (`QKᵀ` and `AV`) for `batch` sequences of
/// `tokens` tokens at model width `width`.
pub fn attention_flops(batch: usize, tokens: usize, width: usize) -> f64 {
    4.0 * batch as f64 * (tokens as f64).powi(2) * width as f64
}
