//! The conditional transformer autoregressive flow of CellTarNet (TARFlow, peers.md §1.2–1.3).
//!
//! A cell `x ∈ R^G` is cut into T tokens of `patch` genes (the last one zero-padded; padded channels are
//! never transformed, so they stay zero and count neither in the log-determinant nor in the likelihood).
//! Each of the N blocks permutes the tokens (identity for even blocks, reversal for odd ones), embeds them
//! (linear + learned positions, N(0, 0.01²)), runs K layers of
//! cross-attention to the context tokens → causal self-attention restricted by the gene prior → MLP
//! (pre-LN, residual), and a zero-initialised affine head whose outputs are **shifted by one token**, so
//! the shift b_i and log-scale a_i of token i depend only on tokens < i. Encoding (data → noise) is
//! `z_i = (x_i − b_i)·exp(−a_i)` with log|det| = −Σ a; decoding runs the blocks in reverse and, inside a
//! block, the tokens sequentially, either with a key–value cache (one token per step) or by recomputing
//! the prefix (the reference the cache is tested against).
//!
//! The prior mask is aligned with the shift: the query at position q produces the parameters of token
//! q + 1, so it may attend to key j ≤ q when j = q or when tokens q + 1 and j are adjacent in the prior.
//! Any such mask is a subset of the causal mask, so the flow stays exactly invertible with a triangular
//! Jacobian whatever the prior.

use tch::{Kind, Tensor};

use crate::blocks::attention::{attend, AttentionMask, KvCache};
use crate::blocks::init::{Init, ParamBuilder};
use crate::blocks::linear::{Linear, LinearInit};
use crate::blocks::mlp::Mlp;
use crate::blocks::norm::LayerNorm;

const LN_EPS: f64 = 1e-6;

/// Multi-head self-attention with a fused `[q | k | v]` projection and an optional key–value cache.
#[derive(Debug)]
pub struct SelfAttention {
    /// `width → 3·width`.
    pub qkv: Linear,
    /// `width → width`.
    pub out: Linear,
    heads: i64,
    head_dim: i64,
}

impl SelfAttention {
    /// Creates `name.qkv` and `name.out`.
    pub fn new(pb: &ParamBuilder, name: &str, width: usize, heads: usize) -> SelfAttention {
        let pb = pb.sub(name);
        SelfAttention {
            qkv: Linear::new(&pb, "qkv", width, 3 * width, true, LinearInit::FanInUniform),
            out: Linear::new(&pb, "out", width, width, true, LinearInit::FanInUniform),
            heads: heads as i64,
            head_dim: (width / heads) as i64,
        }
    }

    /// Attends `x: [B, L, width]` (queries at the last L positions) to itself and, with a cache, to the
    /// cached tokens before it; `mask` is `[L, L_keys]` (`true` = may attend) or none.
    pub fn forward(
        &self,
        x: &Tensor,
        mask: Option<&Tensor>,
        cache: Option<&mut KvCache>,
    ) -> Tensor {
        let s = x.size();
        let (b, l) = (s[0], s[1]);
        let qkv = self
            .qkv
            .forward(x)
            .view([b, l, 3, self.heads, self.head_dim])
            .permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let (k, v) = match cache {
            Some(c) => c.append(&k, &v),
            None => (k, v),
        };
        let m = match mask {
            Some(m) => AttentionMask::Dense(m),
            None => AttentionMask::None,
        };
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let o = attend(&q, &k, &v, m, scale).transpose(1, 2).reshape([
            b,
            l,
            self.heads * self.head_dim,
        ]);
        self.out.forward(&o)
    }
}

/// Multi-head cross-attention from tokens to context tokens (full attention over the context).
#[derive(Debug)]
pub struct CrossAttention {
    /// `width → width` queries.
    pub q: Linear,
    /// `width → 2·width` keys and values of the context.
    pub kv: Linear,
    /// `width → width`.
    pub out: Linear,
    heads: i64,
    head_dim: i64,
}

impl CrossAttention {
    /// Creates `name.q`, `name.kv` and `name.out`.
    pub fn new(pb: &ParamBuilder, name: &str, width: usize, heads: usize) -> CrossAttention {
        let pb = pb.sub(name);
        CrossAttention {
            q: Linear::new(&pb, "q", width, width, true, LinearInit::FanInUniform),
            kv: Linear::new(&pb, "kv", width, 2 * width, true, LinearInit::FanInUniform),
            out: Linear::new(&pb, "out", width, width, true, LinearInit::FanInUniform),
            heads: heads as i64,
            head_dim: (width / heads) as i64,
        }
    }

    /// Keys and values of context tokens `[B, C, width]`, each `[B, H, C, hd]` (computed once per sample).
    pub fn keys_values(&self, context: &Tensor) -> (Tensor, Tensor) {
        let s = context.size();
        let kv = self
            .kv
            .forward(context)
            .view([s[0], s[1], 2, self.heads, self.head_dim])
            .permute([2, 0, 3, 1, 4]);
        // Contiguous once here rather than at each of the T sequential decoding steps.
        (kv.get(0).contiguous(), kv.get(1).contiguous())
    }

    /// Attends `x: [B, L, width]` to the context keys and values.
    pub fn forward(&self, x: &Tensor, kv: &(Tensor, Tensor)) -> Tensor {
        let s = x.size();
        let q = self
            .q
            .forward(x)
            .view([s[0], s[1], self.heads, self.head_dim])
            .transpose(1, 2);
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let o = attend(&q, &kv.0, &kv.1, AttentionMask::None, scale)
            .transpose(1, 2)
            .reshape([s[0], s[1], self.heads * self.head_dim]);
        self.out.forward(&o)
    }
}

/// One flow layer: cross-attention to the context, prior-masked causal self-attention, MLP (pre-LN).
#[derive(Debug)]
pub struct FlowLayer {
    /// Norm before the cross-attention.
    pub ln_cross: LayerNorm,
    /// Cross-attention to the context tokens.
    pub cross: CrossAttention,
    /// Norm before the self-attention.
    pub ln_self: LayerNorm,
    /// Causal self-attention.
    pub attn: SelfAttention,
    /// Norm before the MLP.
    pub ln_mlp: LayerNorm,
    /// The MLP (GELU).
    pub mlp: Mlp,
}

impl FlowLayer {
    fn new(pb: &ParamBuilder, width: usize, heads: usize, mlp_ratio: usize) -> FlowLayer {
        FlowLayer {
            ln_cross: LayerNorm::new(pb, "ln_cross", width, LN_EPS),
            cross: CrossAttention::new(pb, "cross", width, heads),
            ln_self: LayerNorm::new(pb, "ln_self", width, LN_EPS),
            attn: SelfAttention::new(pb, "attn", width, heads),
            ln_mlp: LayerNorm::new(pb, "ln_mlp", width, LN_EPS),
            mlp: Mlp::new(pb, "mlp", width, mlp_ratio * width, width),
        }
    }

    fn forward(
        &self,
        h: &Tensor,
        kv: &(Tensor, Tensor),
        mask: &Tensor,
        cache: Option<&mut KvCache>,
    ) -> Tensor {
        let h = h + self.cross.forward(&self.ln_cross.forward(h), kv);
        let h = &h
            + self
                .attn
                .forward(&self.ln_self.forward(&h), Some(mask), cache);
        &h + self.mlp.forward(&self.ln_mlp.forward(&h))
    }
}

/// One autoregressive flow step (TARFlow's MetaBlock).
#[derive(Debug)]
pub struct MetaBlock {
    /// Token embedding `patch → width`.
    pub input: Linear,
    /// Learned positions `[T, width]`.
    pub pos: Tensor,
    /// The K layers.
    pub layers: Vec<FlowLayer>,
    /// Final norm.
    pub ln_out: LayerNorm,
    /// Zero-initialised affine head `width → 2·patch` (`[a | b]`).
    pub head: Linear,
    /// Whether the block reverses the token order.
    pub reverse: bool,
}

impl MetaBlock {
    /// Raw head outputs `[B, L, 2·patch]` of `L` permuted tokens starting at position `offset`; output q
    /// holds the parameters of token q + 1.
    fn trunk(
        &self,
        x: &Tensor,
        offset: i64,
        kvs: &[(Tensor, Tensor)],
        mask: &Tensor,
        mut caches: Option<&mut Vec<KvCache>>,
    ) -> Tensor {
        let l = x.size()[1];
        let mut h = self.input.forward(x) + self.pos.narrow(0, offset, l).to_kind(x.kind());
        for (i, (layer, kv)) in self.layers.iter().zip(kvs).enumerate() {
            let cache = caches.as_mut().map(|c| &mut c[i]);
            h = layer.forward(&h, kv, mask, cache);
        }
        self.head.forward(&self.ln_out.forward(&h))
    }

    fn permute(&self, x: &Tensor) -> Tensor {
        if self.reverse {
            x.flip([1])
        } else {
            x.shallow_clone()
        }
    }
}

/// Context keys and values of every layer of every block.
pub type ContextKv = Vec<Vec<(Tensor, Tensor)>>;

/// How sequential decoding computes each token's parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Decoding {
    /// One new token per step, attending to a key–value cache of the earlier ones.
    #[default]
    Cached,
    /// The whole prefix recomputed at every step (reference; quadratic).
    Uncached,
}

/// The flow: N blocks over T tokens of `patch` genes.
#[derive(Debug)]
pub struct Flow {
    /// The blocks, applied in order when encoding.
    pub blocks: Vec<MetaBlock>,
    /// Token adjacency of the prior `[T, T]` (1 = adjacent), stored with the weights; `None`: plain causal.
    pub token_adjacency: Option<Tensor>,
    genes: i64,
    patch: i64,
    tokens: i64,
}

impl Flow {
    /// Creates `blocks.{i}…` (and `prior.token_adjacency`, frozen, when `token_adjacency` is given:
    /// `T×T` row-major, or `None` to be filled from a checkpoint with `with_prior`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pb: &ParamBuilder,
        genes: usize,
        patch: usize,
        width: usize,
        heads: usize,
        blocks: usize,
        layers_per_block: usize,
        mlp_ratio: usize,
        prior: Option<Option<&[bool]>>,
    ) -> Flow {
        let tokens = genes.div_ceil(patch);
        let blocks = (0..blocks)
            .map(|b| {
                let pb = pb.sub("blocks").sub(&b.to_string());
                MetaBlock {
                    input: Linear::new(&pb, "input", patch, width, true, LinearInit::FanInUniform),
                    pos: pb.param("pos", &[tokens, width], Init::Normal { std: 0.01 }),
                    layers: (0..layers_per_block)
                        .map(|l| {
                            FlowLayer::new(
                                &pb.sub("layers").sub(&l.to_string()),
                                width,
                                heads,
                                mlp_ratio,
                            )
                        })
                        .collect(),
                    ln_out: LayerNorm::new(&pb, "ln_out", width, LN_EPS),
                    head: Linear::new(&pb, "head", width, 2 * patch, true, LinearInit::Zero),
                    reverse: b % 2 == 1,
                }
            })
            .collect();
        let token_adjacency = prior.map(|adj| {
            let init = match adj {
                Some(a) => Init::Values(a.iter().map(|&v| if v { 1.0 } else { 0.0 }).collect()),
                None => Init::Ones,
            };
            pb.sub("prior")
                .frozen("token_adjacency", &[tokens, tokens], init)
        });
        Flow {
            blocks,
            token_adjacency,
            genes: genes as i64,
            patch: patch as i64,
            tokens: tokens as i64,
        }
    }

    /// Number of tokens T.
    pub fn tokens(&self) -> i64 {
        self.tokens
    }

    /// Cells `[B, G]` as tokens `[B, T, patch]` (zero-padded).
    pub fn to_tokens(&self, x: &Tensor) -> Tensor {
        let b = x.size()[0];
        let pad = self.tokens * self.patch - self.genes;
        let x = if pad > 0 {
            Tensor::cat(&[x, &Tensor::zeros([b, pad], (x.kind(), x.device()))], 1)
        } else {
            x.shallow_clone()
        };
        x.view([b, self.tokens, self.patch])
    }

    /// Tokens `[B, T, patch]` back to cells `[B, G]`.
    pub fn from_tokens(&self, t: &Tensor) -> Tensor {
        let b = t.size()[0];
        t.reshape([b, self.tokens * self.patch])
            .narrow(1, 0, self.genes)
    }

    /// 1 for real genes, 0 for padding, `[T, patch]` in natural token order.
    fn dim_mask(&self, like: &Tensor) -> Tensor {
        let real = Tensor::ones([self.genes], (like.kind(), like.device()));
        let pad = self.tokens * self.patch - self.genes;
        Tensor::cat(
            &[real, Tensor::zeros([pad], (like.kind(), like.device()))],
            0,
        )
        .view([self.tokens, self.patch])
    }

    /// The self-attention mask `[T, T]` of block `b` in its permuted order (see the module doc).
    pub fn block_mask(&self, b: usize, device: tch::Device) -> Tensor {
        let t = self.tokens;
        let causal = Tensor::ones([t, t], (Kind::Bool, device)).tril(0);
        let Some(adj) = &self.token_adjacency else {
            return causal;
        };
        let mut a = adj.gt(0.5).to_device(device);
        if self.blocks[b].reverse {
            a = a.flip([0, 1]);
        }
        // Row q serves token q + 1; the last row's output is never used.
        let target_rows = Tensor::cat(
            &[
                a.narrow(0, 1, t - 1),
                Tensor::ones([1, t], (Kind::Bool, device)),
            ],
            0,
        );
        let eye = Tensor::eye(t, (Kind::Bool, device));
        causal.logical_and(&target_rows.logical_or(&eye))
    }

    /// The context keys and values of every layer for context tokens `[B, C, width]`.
    pub fn context_kv(&self, context: &Tensor) -> ContextKv {
        self.blocks
            .iter()
            .map(|b| {
                b.layers
                    .iter()
                    .map(|l| l.cross.keys_values(context))
                    .collect()
            })
            .collect()
    }

    /// Encodes cells given as tokens `[B, T, patch]` to noise tokens, with log|det ∂z/∂x| per cell `[B]`.
    pub fn encode(&self, x: &Tensor, kv: &ContextKv) -> (Tensor, Tensor) {
        let s = x.size();
        let (b, t, p) = (s[0], s[1], s[2]);
        let dm = self.dim_mask(x);
        let mut x = x.shallow_clone();
        let mut logdet = Tensor::zeros([b], (x.kind(), x.device()));
        for (bi, block) in self.blocks.iter().enumerate() {
            let xp = block.permute(&x);
            let dmp = block.permute(&dm.unsqueeze(0));
            let mask = self.block_mask(bi, x.device());
            let out = block.trunk(&xp, 0, &kv[bi], &mask, None);
            let shifted = Tensor::cat(
                &[
                    Tensor::zeros([b, 1, 2 * p], (x.kind(), x.device())),
                    out.narrow(1, 0, t - 1),
                ],
                1,
            );
            let a = shifted.narrow(2, 0, p) * &dmp;
            let bb = shifted.narrow(2, p, p) * &dmp;
            let z = (xp - bb) * (-&a).exp();
            logdet -= a.sum_dim_intlist([1i64, 2].as_slice(), false, None::<Kind>);
            x = block.permute(&z);
        }
        (x, logdet)
    }

    /// log p(x) per cell `[B]` of tokens `[B, T, patch]` under the standard normal base (real genes only),
    /// with the noise tokens.
    pub fn log_prob(&self, x: &Tensor, kv: &ContextKv) -> (Tensor, Tensor) {
        let (z, logdet) = self.encode(x, kv);
        let quad = z
            .square()
            .sum_dim_intlist([1i64, 2].as_slice(), false, None::<Kind>);
        let lp = quad * -0.5 - 0.5 * (2.0 * std::f64::consts::PI).ln() * self.genes as f64 + logdet;
        (lp, z)
    }

    /// Decodes noise tokens `[B, T, patch]` to cells. With `guidance = Some(g)`, `kv` holds the
    /// conditional contexts then the unconditional ones (`2B`), and every token's (a, b) is
    /// `p + g(p − p_uncond)` (classifier-free guidance on both).
    pub fn decode(
        &self,
        z: &Tensor,
        kv: &ContextKv,
        guidance: Option<f64>,
        mode: Decoding,
    ) -> Tensor {
        let s = z.size();
        let (t, p) = (s[1], s[2]);
        let dm = self.dim_mask(z);
        let mut x = z.shallow_clone();
        for (bi, block) in self.blocks.iter().enumerate().rev() {
            let zp = block.permute(&x);
            let dmp = block.permute(&dm.unsqueeze(0));
            let mask = self.block_mask(bi, z.device());
            let dup = |v: &Tensor| match guidance {
                Some(_) => Tensor::cat(&[v, v], 0),
                None => v.shallow_clone(),
            };
            let mut caches: Vec<KvCache> = block
                .layers
                .iter()
                .map(|_| KvCache::with_capacity(t))
                .collect();
            let mut xs: Vec<Tensor> = vec![zp.narrow(1, 0, 1)];
            for i in 1..t {
                let out = match mode {
                    Decoding::Cached => {
                        let m = mask.narrow(0, i - 1, 1).narrow(1, 0, i);
                        block.trunk(
                            &dup(&xs[(i - 1) as usize]),
                            i - 1,
                            &kv[bi],
                            &m,
                            Some(&mut caches),
                        )
                    }
                    Decoding::Uncached => {
                        let m = mask.narrow(0, 0, i).narrow(1, 0, i);
                        let prefix = Tensor::cat(&xs, 1);
                        block
                            .trunk(&dup(&prefix), 0, &kv[bi], &m, None)
                            .narrow(1, i - 1, 1)
                    }
                };
                let params = match guidance {
                    Some(g) => {
                        let parts = out.chunk(2, 0);
                        &parts[0] + (&parts[0] - &parts[1]) * g
                    }
                    None => out,
                };
                let d = dmp.narrow(1, i, 1);
                let a = params.narrow(2, 0, p) * &d;
                let bb = params.narrow(2, p, p) * &d;
                xs.push(zp.narrow(1, i, 1) * a.exp() + bb);
            }
            x = block.permute(&Tensor::cat(&xs, 1));
        }
        x
    }
}
