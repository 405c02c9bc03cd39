//! The attention core shared by every block of the workspace, and MapPFN's multi-stream joint attention
//! built on it.
//!
//! [`attend`] is the one scaled-dot-product function: queries, keys and values `[B, H, L, hd]` with no
//! mask, a per-key additive bias, a dense boolean mask (e.g. a gene-graph mask; `true` = may attend), or a
//! causal mask, on libtorch's fused kernel. [`KvCache`] holds the keys and values of tokens already
//! processed, so sequential (autoregressive) sampling attends to them without recomputing them.
//!
//! Joint attention (MapPFN spec §2.5 steps 4–6): the queries, keys and values of all streams are
//! concatenated along the token axis, QK-normalised per head with one shared RMSNorm for queries and one
//! for keys, attended with [`attend`], and split back into streams.

use tch::{Kind, Tensor};

/// Which keys each query may attend to.
#[derive(Clone, Copy, Debug)]
pub enum AttentionMask<'a> {
    /// Every query attends to every key.
    None,
    /// An additive bias per key, `[L_k]` (e.g. `ln m` for a key standing for `m` identical tokens).
    KeyBias(&'a Tensor),
    /// A boolean mask broadcastable to `[B, H, L_q, L_k]`; `true` where the query may attend to the key.
    Dense(&'a Tensor),
    /// Query `i` attends to keys `0..=i + (L_k − L_q)` (the last `L_q` keys are the queries' own).
    Causal,
}

/// Scaled-dot-product attention of `q: [B, H, L_q, hd]` over `k, v: [B, H, L_k, hd]` with `mask`, scaled
/// by `scale` (usually `1/√hd`); returns `[B, H, L_q, hd]`.
pub fn attend(q: &Tensor, k: &Tensor, v: &Tensor, mask: AttentionMask<'_>, scale: f64) -> Tensor {
    let sdpa = |m: Option<&Tensor>, causal: bool| {
        Tensor::scaled_dot_product_attention(q, k, v, m, 0.0, causal, scale, false)
    };
    match mask {
        AttentionMask::None => sdpa(None, false),
        AttentionMask::KeyBias(bias) => {
            sdpa(Some(&bias.to_kind(q.kind()).view([1, 1, 1, -1])), false)
        }
        AttentionMask::Dense(m) => sdpa(Some(m), false),
        AttentionMask::Causal => {
            let (lq, lk) = (q.size()[2], k.size()[2]);
            if lq == lk {
                sdpa(None, true)
            } else {
                // Offset causal mask: query i sees keys up to i + (lk − lq) (a cache precedes the queries).
                let rows = Tensor::arange(lq, (Kind::Int64, q.device())).view([lq, 1]) + (lk - lq);
                let cols = Tensor::arange(lk, (Kind::Int64, q.device())).view([1, lk]);
                sdpa(Some(&cols.le_tensor(&rows)), false)
            }
        }
    }
}

/// Keys and values of the tokens processed so far, `[B, H, L, hd]` each, for sequential sampling.
///
/// Without a capacity each append concatenates (copying the whole cache, quadratic over a long
/// sequence); [`KvCache::with_capacity`] preallocates the token axis once and writes each append in
/// place, returning views of the filled part.
#[derive(Debug, Default)]
pub struct KvCache {
    k: Option<Tensor>,
    v: Option<Tensor>,
    len: i64,
    capacity: Option<i64>,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> KvCache {
        KvCache::default()
    }

    /// An empty cache that preallocates room for `tokens` tokens at the first append (appending beyond
    /// falls back to concatenation).
    pub fn with_capacity(tokens: i64) -> KvCache {
        KvCache {
            capacity: Some(tokens),
            ..KvCache::default()
        }
    }

    /// Appends new keys and values along the token axis and returns all keys and values so far.
    pub fn append(&mut self, k: &Tensor, v: &Tensor) -> (Tensor, Tensor) {
        let n = k.size()[2];
        if let Some(cap) = self.capacity.filter(|&c| self.len + n <= c) {
            let alloc = |t: &Tensor| {
                let mut s = t.size();
                s[2] = cap;
                Tensor::zeros(s.as_slice(), (t.kind(), t.device()))
            };
            if self.k.is_none() {
                self.k = Some(alloc(k));
                self.v = Some(alloc(v));
            }
            let (kb, vb) = (self.k.as_ref().expect("set"), self.v.as_ref().expect("set"));
            kb.narrow(2, self.len, n)
                .f_copy_(k)
                .expect("same shape and kind");
            vb.narrow(2, self.len, n)
                .f_copy_(v)
                .expect("same shape and kind");
            self.len += n;
            return (kb.narrow(2, 0, self.len), vb.narrow(2, 0, self.len));
        }
        let filled = |t: &Option<Tensor>| t.as_ref().map(|t| t.narrow(2, 0, self.len));
        let cat = |old: Option<Tensor>, new: &Tensor| match old {
            Some(o) => Tensor::cat(&[&o, new], 2),
            None => new.shallow_clone(),
        };
        let (k_all, v_all) = (cat(filled(&self.k), k), cat(filled(&self.v), v));
        self.len += n;
        self.capacity = None;
        self.k = Some(k_all.shallow_clone());
        self.v = Some(v_all.shallow_clone());
        (k_all, v_all)
    }

    /// Number of cached tokens.
    pub fn len(&self) -> i64 {
        self.len
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything (a preallocated buffer is dropped too).
    pub fn reset(&mut self) {
        self.k = None;
        self.v = None;
        self.len = 0;
    }
}

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
        let bias = key_bias.map(|bias| {
            let padded = k.size()[2] - bias.size()[0];
            if padded > 0 {
                Tensor::cat(
                    &[
                        bias,
                        &bias.zeros_like().narrow(0, 0, 1).expand([padded], false),
                    ],
                    0,
                )
            } else {
                bias.shallow_clone()
            }
        });
        let mask = match &bias {
            Some(b) => AttentionMask::KeyBias(b),
            None => AttentionMask::None,
        };
        let out = attend(&q, &k, &v, mask, scale);
        out.transpose(1, 2)
            .reshape([batch, total, width])
            .split_with_sizes(lengths.as_slice(), 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn randn(shape: &[i64], seed: i64) -> Tensor {
        tch::manual_seed(seed);
        Tensor::randn(shape, (Kind::Float, tch::Device::Cpu))
    }

    /// Plain softmax attention with an additive logit mask, written out.
    fn reference(q: &Tensor, k: &Tensor, v: &Tensor, add: &Tensor, scale: f64) -> Tensor {
        (q.matmul(&k.transpose(-2, -1)) * scale + add)
            .softmax(-1, Kind::Float)
            .matmul(v)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn every_mask_kind_equals_written_out_softmax_attention() {
        let (q, k, v) = (
            randn(&[2, 3, 5, 4], 1),
            randn(&[2, 3, 5, 4], 2),
            randn(&[2, 3, 5, 4], 3),
        );
        let zero = Tensor::zeros([5, 5], (Kind::Float, tch::Device::Cpu));
        let none = attend(&q, &k, &v, AttentionMask::None, 0.5);
        assert!(max_diff(&none, &reference(&q, &k, &v, &zero, 0.5)) < 1e-5);
        let bias = Tensor::from_slice(&[0.0f32, 1.0, -2.0, 0.5, 3.0]);
        let biased = attend(&q, &k, &v, AttentionMask::KeyBias(&bias), 0.5);
        let add = bias.view([1, 5]).expand([5, 5], false);
        assert!(max_diff(&biased, &reference(&q, &k, &v, &add, 0.5)) < 1e-5);
        let causal = attend(&q, &k, &v, AttentionMask::Causal, 0.5);
        let upper = Tensor::ones([5, 5], (Kind::Float, tch::Device::Cpu)).triu(1) * -1e9;
        assert!(max_diff(&causal, &reference(&q, &k, &v, &upper, 0.5)) < 1e-5);
        // A dense graph mask: query i attends to keys i and (i+2) mod 5 only.
        let allowed: Vec<bool> = (0..25)
            .map(|x| {
                let (i, j) = (x / 5, x % 5);
                j == i || j == (i + 2) % 5
            })
            .collect();
        let dense = Tensor::from_slice(&allowed).view([5, 5]);
        let masked = attend(&q, &k, &v, AttentionMask::Dense(&dense), 0.5);
        let add = dense.logical_not().to_kind(Kind::Float) * -1e9;
        assert!(max_diff(&masked, &reference(&q, &k, &v, &add, 0.5)) < 1e-5);
        assert!(max_diff(&masked, &none) > 1e-3, "the mask must matter");
    }

    #[test]
    fn a_kv_cache_reproduces_causal_attention_token_by_token() {
        let (q, k, v) = (
            randn(&[1, 2, 6, 4], 4),
            randn(&[1, 2, 6, 4], 5),
            randn(&[1, 2, 6, 4], 6),
        );
        let full = attend(&q, &k, &v, AttentionMask::Causal, 0.5);
        let mut cache = KvCache::new();
        let mut steps = Vec::new();
        // First two tokens at once (a prompt), then one at a time.
        let (k0, v0) = cache.append(&k.narrow(2, 0, 2), &v.narrow(2, 0, 2));
        steps.push(attend(
            &q.narrow(2, 0, 2),
            &k0,
            &v0,
            AttentionMask::Causal,
            0.5,
        ));
        for i in 2..6 {
            let (ks, vs) = cache.append(&k.narrow(2, i, 1), &v.narrow(2, i, 1));
            steps.push(attend(
                &q.narrow(2, i, 1),
                &ks,
                &vs,
                AttentionMask::Causal,
                0.5,
            ));
        }
        assert_eq!(cache.len(), 6);
        assert!(max_diff(&Tensor::cat(&steps, 2), &full) < 1e-5);
        cache.reset();
        assert!(cache.is_empty());
        // A preallocated cache (room for 4, then concatenation beyond) gives the same outputs.
        let mut cache = KvCache::with_capacity(4);
        let mut steps = Vec::new();
        for i in 0..6 {
            let (ks, vs) = cache.append(&k.narrow(2, i, 1), &v.narrow(2, i, 1));
            assert_eq!(ks.size()[2], i + 1);
            steps.push(attend(
                &q.narrow(2, i, 1),
                &ks,
                &vs,
                AttentionMask::Causal,
                0.5,
            ));
        }
        assert_eq!(cache.len(), 6);
        assert!(max_diff(&Tensor::cat(&steps, 2), &full) < 1e-5);
    }
}

/// Floating-point operations (2·MACs) of the attention core (`QKᵀ` and `AV`) for `batch` sequences of
/// `tokens` tokens at model width `width`.
pub fn attention_flops(batch: usize, tokens: usize, width: usize) -> f64 {
    4.0 * batch as f64 * (tokens as f64).powi(2) * width as f64
}
