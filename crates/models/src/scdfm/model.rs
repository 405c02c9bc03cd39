//! The scDFM network (the authors' `origin` model with `fusion_method="differential_perceiver"`,
//! `predict_y`): masked gene encoder, two value encoders + fusion, timestep embedder, per-layer gene-adaLN
//! and perturbation adapter, PAD blocks (self and cross differential attention) and the expression head.
//! Parameters carry the authors' state_dict names, so their checkpoints load by name.

use std::collections::BTreeMap;

use tch::{nn, Device, Kind, Tensor};

use crate::blocks::{Init, LayerNorm, Linear, ParamBuilder};
use crate::error::{ModelError, Result};

use super::config::{AttentionKind, MaskRows, PerturbationMode, ScdfmConfig};

/// Recorded intermediate activations, keyed like the golden files (`gene_emb`, `blocks.0.diff_self_attn`, …).
pub type Activations = BTreeMap<String, Tensor>;

fn xavier(pb: &ParamBuilder, name: &str, fan_in: usize, fan_out: usize, bias: bool) -> Linear {
    let pb = pb.sub(name);
    let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
    Linear {
        weight: pb.param("weight", &[fan_out, fan_in], Init::Uniform { bound }),
        bias: bias.then(|| pb.param("bias", &[fan_out], Init::Zeros)),
    }
}

fn dropout(x: Tensor, p: f64, train: bool) -> Tensor {
    if train && p > 0.0 {
        x.dropout(p, true)
    } else {
        x
    }
}

/// `x·(1 + scale) + shift` with per-example `[B, d]` scale/shift broadcast over tokens.
fn modulate(x: &Tensor, shift: &Tensor, scale: &Tensor) -> Tensor {
    x * (scale.unsqueeze(1) + 1.0) + shift.unsqueeze(1)
}

/// `λ_init(ℓ) = 0.8 − 0.6·exp(−0.3·ℓ)` of layer `ℓ` (0-based).
pub fn lambda_init(depth: usize) -> f64 {
    0.8 - 0.6 * (-0.3 * depth as f64).exp()
}

/// Sinusoidal timestep features `[cos(t·f_k) | sin(t·f_k)]`, `f_k = exp(−ln(10⁴)·k/half)`, `half = dim/2`,
/// in float32 (zero column appended for odd `dim`). `t`: `[B]`.
pub fn timestep_embedding(t: &Tensor, dim: usize) -> Tensor {
    let half = (dim / 2) as i64;
    let k = Tensor::arange(half, (Kind::Float, t.device()));
    let freqs = ((k * (-(10000f64.ln()))) / half as f64).exp();
    let args = t.to_kind(Kind::Float).unsqueeze(-1) * freqs.unsqueeze(0);
    let emb = Tensor::cat(&[args.cos(), args.sin()], -1);
    if dim % 2 == 1 {
        let z = emb.narrow(-1, 0, 1).zeros_like();
        Tensor::cat(&[emb, z], -1)
    } else {
        emb
    }
}

/// The authors' `MultiheadDiffAttn`: two softmax maps per head, `(A₁ − λA₂)V`, per-head RMSNorm, `(1 − λ_init)`.
#[derive(Debug)]
pub struct DiffAttention {
    q1: Linear,
    k1: Linear,
    q2: Linear,
    k2: Linear,
    v: Linear,
    out: Linear,
    lambda_q1: Tensor,
    lambda_k1: Tensor,
    lambda_q2: Tensor,
    lambda_k2: Tensor,
    subln: Tensor,
    heads: i64,
    /// `λ_init` of this layer.
    pub lambda_init: f64,
    /// Built with `cross=true`: Q₁,Q₂ from the first input, K₁,K₂ from the second (their `diff_self_attn`).
    /// Otherwise Q₁,K₁ from the first input and Q₂,K₂ from the second (their `diff_cross_attn`).
    pub cross: bool,
    kind: AttentionKind,
}

impl DiffAttention {
    /// Parameters under `pb` (`q_proj_1`, …, `lambda_q1`, …, `subln.weight`).
    pub fn new(
        pb: &ParamBuilder,
        d: usize,
        heads: usize,
        depth: usize,
        cross: bool,
        kind: AttentionKind,
    ) -> DiffAttention {
        let hd = d / heads;
        let lam = |n: &str| pb.param(n, &[hd], Init::Normal { std: 0.1 });
        DiffAttention {
            q1: xavier(pb, "q_proj_1", d, d, false),
            k1: xavier(pb, "k_proj_1", d, d, false),
            q2: xavier(pb, "q_proj_2", d, d, false),
            k2: xavier(pb, "k_proj_2", d, d, false),
            v: xavier(pb, "v_proj", d, d, false),
            out: xavier(pb, "out_proj", d, d, false),
            lambda_q1: lam("lambda_q1"),
            lambda_k1: lam("lambda_k1"),
            lambda_q2: lam("lambda_q2"),
            lambda_k2: lam("lambda_k2"),
            subln: pb.sub("subln").param("weight", &[hd], Init::Ones),
            heads: heads as i64,
            lambda_init: lambda_init(depth),
            cross,
            kind,
        }
    }

    /// `λ = exp(λq1·λk1) − exp(λq2·λk2) + λ_init` (0-d, float32).
    pub fn lambda_full(&self) -> Tensor {
        let l1 = (&self.lambda_q1 * &self.lambda_k1).sum(Kind::Float).exp();
        let l2 = (&self.lambda_q2 * &self.lambda_k2).sum(Kind::Float).exp();
        l1 - l2 + self.lambda_init
    }

    fn split(&self, x: &Tensor) -> Tensor {
        let (b, n, d) = x.size3().expect("[B, N, d]");
        x.view([b, n, self.heads, d / self.heads]).transpose(1, 2)
    }

    /// `y`: `[B, N, d]` (modulated stream), `x`: `[B, N, d]` (second input).
    pub fn forward(&self, y: &Tensor, x: &Tensor) -> Tensor {
        let (b, n, d) = y.size3().expect("[B, N, d]");
        let hd = d / self.heads;
        let (q1, k1, q2, k2) = if self.cross {
            (
                self.q1.forward(y),
                self.k1.forward(x),
                self.q2.forward(y),
                self.k2.forward(x),
            )
        } else {
            (
                self.q1.forward(y),
                self.k1.forward(y),
                self.q2.forward(x),
                self.k2.forward(x),
            )
        };
        let v = self.split(&self.v.forward(y));
        let scale = (hd as f64).powf(-0.5);
        // (A₁ − λA₂)V = A₁V − λ·A₂V: two fused attention calls, never materialising the [N, N] maps.
        let attend = |q: &Tensor, k: &Tensor| {
            Tensor::scaled_dot_product_attention(
                &self.split(q),
                &self.split(k),
                &v,
                None::<&Tensor>,
                0.0,
                false,
                scale,
                false,
            )
        };
        let o = match self.kind {
            AttentionKind::Differential => attend(&q1, &k1) - attend(&q2, &k2) * self.lambda_full(),
            AttentionKind::Plain => attend(&q1, &k1),
        };
        // RMSNorm over the head dimension in float32, eps 1e-5, learnable gain.
        let o = &o * (o.square().mean_dim(-1, true, Kind::Float) + 1e-5).rsqrt() * &self.subln;
        let o = o * (1.0 - self.lambda_init);
        self.out
            .forward(&o.transpose(1, 2).contiguous().view([b, n, d]))
    }
}

/// One DiT-style sub-block with adaLN on τ: attention and a GELU-tanh MLP, both gated.
#[derive(Debug)]
pub struct DiffBlock {
    /// The differential attention.
    pub attn: DiffAttention,
    fc1: Linear,
    fc2: Linear,
    ada: Linear,
    d: i64,
}

impl DiffBlock {
    /// Parameters under `pb` (`attn.*`, `mlp.fc1/fc2`, `adaLN_modulation.1`).
    pub fn new(pb: &ParamBuilder, cfg: &ScdfmConfig, depth: usize, cross: bool) -> DiffBlock {
        let d = cfg.d_model;
        DiffBlock {
            attn: DiffAttention::new(&pb.sub("attn"), d, cfg.nhead, depth, cross, cfg.attention),
            fc1: xavier(&pb.sub("mlp"), "fc1", d, 4 * d, true),
            fc2: xavier(&pb.sub("mlp"), "fc2", 4 * d, d, true),
            ada: xavier(&pb.sub("adaLN_modulation"), "1", d, 6 * d, true),
            d: d as i64,
        }
    }

    /// Returns `(attention output before the gate, block output)`.
    pub fn forward(&self, y: &Tensor, x: &Tensor, c: &Tensor) -> (Tensor, Tensor) {
        let m = self.ada.forward(&c.silu()).chunk(6, 1);
        let ln = |z: &Tensor| z.layer_norm([self.d], None::<&Tensor>, None::<&Tensor>, 1e-6, true);
        let a = self.attn.forward(&modulate(&ln(y), &m[0], &m[1]), x);
        let y = y + m[2].unsqueeze(1) * &a;
        let h = self
            .fc1
            .forward(&modulate(&ln(&y), &m[3], &m[4]))
            .gelu("tanh");
        let y = &y + m[5].unsqueeze(1) * self.fc2.forward(&h);
        (a, y)
    }
}

/// The masked gene encoder: token table + LayerNorm, then one pre-norm cross-attention layer whose
/// memory is every vocabulary token and whose mask is the co-expression graph.
#[derive(Debug)]
struct GeneEncoder {
    embedding: Tensor,
    enc_norm: LayerNorm,
    in_proj_w: Tensor,
    in_proj_b: Tensor,
    out_proj: Linear,
    norm1: LayerNorm,
    norm2: LayerNorm,
    linear1: Linear,
    linear2: Linear,
    heads: i64,
}

/// The scDFM vector field v_θ(x_t, t | x_c, p, genes).
#[derive(Debug)]
pub struct ScdfmNet {
    /// The configuration.
    pub config: ScdfmConfig,
    /// Graph mask over the vocabulary `[M, M]` (bool, `true` = blocked), specials first.
    pub mask: Tensor,
    encoder: GeneEncoder,
    value_encoders: [(Linear, Linear, LayerNorm); 2],
    fusion0: Linear,
    fusion2: Linear,
    fusion3: LayerNorm,
    t_mlp0: Linear,
    t_mlp2: Linear,
    pert_embedder: Option<(Tensor, LayerNorm)>,
    gene_adaln: Vec<(Linear, LayerNorm)>,
    adapters: Vec<(Linear, Linear)>,
    /// Per layer: (`diff_self_attn`, `diff_cross_attn`).
    pub blocks: Vec<(DiffBlock, DiffBlock)>,
    head: [Linear; 3],
}

impl ScdfmNet {
    /// Builds the network under `root` (names as in the authors' state_dict) with seeded initial values.
    /// `mask`: `[M, M]` graph mask over the vocabulary (`true`/1 = blocked), `M ≤ ntoken`.
    pub fn new(root: nn::Path, config: &ScdfmConfig, mask: &Tensor, seed: u64) -> Result<ScdfmNet> {
        config.validate()?;
        let size = mask.size();
        if size.len() != 2 || size[0] != size[1] || size[0] as usize > config.ntoken || size[0] == 0
        {
            return Err(ModelError::Config(format!(
                "graph mask must be square [M, M] with 1 ≤ M ≤ ntoken = {} (got {:?}); build it with the \
                 co-expression graph over the vocabulary",
                config.ntoken, size
            )));
        }
        let pb = ParamBuilder::new(root, seed);
        let d = config.d_model;
        let ln = |pb: &ParamBuilder, n: &str| LayerNorm::new(pb, n, d, 1e-5);
        let enc = pb.sub("encoder");
        let pi = enc.sub("perturbation_interaction");
        let ca = pi.sub("cross_attn");
        let bound = (6.0 / (4 * d) as f64).sqrt();
        let encoder = GeneEncoder {
            embedding: enc.sub("embedding").param(
                "weight",
                &[config.ntoken, d],
                Init::Normal { std: 1.0 },
            ),
            enc_norm: ln(&enc, "enc_norm"),
            in_proj_w: ca.param("in_proj_weight", &[3 * d, d], Init::Uniform { bound }),
            in_proj_b: ca.param("in_proj_bias", &[3 * d], Init::Zeros),
            out_proj: xavier(&ca, "out_proj", d, d, true),
            norm1: ln(&pi, "norm1"),
            norm2: ln(&pi, "norm2"),
            linear1: xavier(&pi, "linear1", d, 4 * d, true),
            linear2: xavier(&pi, "linear2", 4 * d, d, true),
            heads: config.gene_encoder_nhead as i64,
        };
        let value_encoder = |name: &str| {
            let p = pb.sub(name);
            (
                xavier(&p, "linear1", 1, d, true),
                xavier(&p, "linear2", d, d, true),
                ln(&p, "norm"),
            )
        };
        let fusion = pb.sub("fusion_layer");
        let tm = pb.sub("t_embedder").sub("mlp");
        let pert_embedder = (config.perturbation == PerturbationMode::Drug).then(|| {
            let p = pb.sub("perturbation_embedder");
            (
                p.sub("embedding")
                    .param("weight", &[config.ntoken, d], Init::Normal { std: 1.0 }),
                ln(&p, "enc_norm"),
            )
        });
        let mut gene_adaln = Vec::new();
        let mut adapters = Vec::new();
        let mut blocks = Vec::new();
        for i in 0..config.nlayers {
            let s = i.to_string();
            let g = pb.sub("gene_adaLN").sub(&s);
            gene_adaln.push((
                xavier(&g.sub("adaLN_modulation"), "1", d, 3 * d, true),
                ln(&g, "norm"),
            ));
            let a = pb.sub("adapter_layer").sub(&s);
            adapters.push((xavier(&a, "0", 2 * d, d, true), xavier(&a, "3", d, d, true)));
            let b = pb.sub("blocks").sub(&s);
            blocks.push((
                DiffBlock::new(&b.sub("diff_self_attn"), config, i, true),
                DiffBlock::new(&b.sub("diff_cross_attn"), config, i, false),
            ));
        }
        let fl = pb.sub("final_layer").sub("fc");
        Ok(ScdfmNet {
            config: config.clone(),
            mask: mask.to_kind(Kind::Bool).to_device(pb.device()),
            encoder,
            value_encoders: [
                value_encoder("value_encoder_1"),
                value_encoder("value_encoder_2"),
            ],
            fusion0: xavier(&fusion, "0", 2 * d, d, true),
            fusion2: xavier(&fusion, "2", d, d, true),
            fusion3: ln(&fusion, "3"),
            t_mlp0: xavier(&tm, "0", config.frequency_embedding_size, d, true),
            t_mlp2: xavier(&tm, "2", d, d, true),
            pert_embedder,
            gene_adaln,
            adapters,
            blocks,
            head: [
                xavier(&fl, "0", 2 * d, d, true),
                xavier(&fl, "2", d, d, true),
                xavier(&fl, "4", d, 1, true),
            ],
        })
    }

    /// Vocabulary size covered by the graph mask (the gene encoder's memory tokens).
    pub fn mask_tokens(&self) -> i64 {
        self.mask.size()[0]
    }

    /// Gene encoder on token ids `[B, N]` → `[B, N, d]`.
    fn encode_tokens(&self, ids: &Tensor, train: bool) -> Tensor {
        let e = &self.encoder;
        let p = self.config.dropout;
        let q = e
            .enc_norm
            .forward(&e.embedding.index_select(0, &ids.flatten(0, -1)))
            .view([ids.size()[0], ids.size()[1], -1]);
        let m = self.mask_tokens();
        let mem = e.enc_norm.forward(&e.embedding.narrow(0, 0, m));
        let (b, n, d) = q.size3().expect("[B, N, d]");
        let h = e.heads;
        let hd = d / h;
        let w = e.in_proj_w.chunk(3, 0);
        let bias = e.in_proj_b.chunk(3, 0);
        let qn = e.norm1.forward(&q);
        let qq = qn
            .linear(&w[0], Some(&bias[0]))
            .view([b, n, h, hd])
            .transpose(1, 2);
        let kk = mem
            .linear(&w[1], Some(&bias[1]))
            .view([m, h, hd])
            .transpose(0, 1);
        let vv = mem
            .linear(&w[2], Some(&bias[2]))
            .view([m, h, hd])
            .transpose(0, 1);
        let allowed = if self.config.no_graph_mask {
            None
        } else {
            Some(
                match self.config.mask_rows {
                    MaskRows::FirstCell => {
                        self.mask.index_select(0, &ids.get(0)).view([1, 1, n, m])
                    }
                    MaskRows::PerCell => self
                        .mask
                        .index_select(0, &ids.flatten(0, -1))
                        .view([b, 1, n, m]),
                }
                .logical_not(),
            )
        };
        let o = Tensor::scaled_dot_product_attention(
            &qq,
            &kk.unsqueeze(0).expand([b, h, m, hd], false),
            &vv.unsqueeze(0).expand([b, h, m, hd], false),
            allowed.as_ref(),
            if train { p } else { 0.0 },
            false,
            (hd as f64).powf(-0.5),
            false,
        )
        .transpose(1, 2)
        .contiguous()
        .view([b, n, d]);
        let x = &q + dropout(e.out_proj.forward(&o), p, train);
        let f = dropout(
            e.linear1.forward(&e.norm2.forward(&x)).gelu("none"),
            p,
            train,
        );
        &x + dropout(e.linear2.forward(&f), p, train)
    }

    /// Checks ids against the vocabulary of the graph mask (no panic inside libtorch).
    fn check_ids(&self, ids: &Tensor, what: &str) -> Result<()> {
        if ids.numel() == 0 {
            return Ok(());
        }
        let lo = ids.min().int64_value(&[]);
        let hi = ids.max().int64_value(&[]);
        if lo < 0 || hi >= self.mask_tokens() {
            return Err(ModelError::Input(format!(
                "{what} token ids must lie in 0..{} (the vocabulary of the graph mask); got {lo}..={hi}",
                self.mask_tokens()
            )));
        }
        Ok(())
    }

    /// The encoded perturbation tokens `[B, 2, d]` from token ids `[B, 2]` (their GeneEncoder output, or
    /// the drug embedding table in drug mode).
    pub fn perturbation_tokens(&self, pert: &Tensor, train: bool) -> Tensor {
        match &self.pert_embedder {
            None => self.encode_tokens(pert, train),
            Some((table, norm)) => norm
                .forward(&table.index_select(0, &pert.flatten(0, -1)))
                .view([pert.size()[0], pert.size()[1], -1]),
        }
    }

    /// Perturbation embedding e_p `[B, d]` from token ids `[B, 2]`: the mean of the encoded tokens.
    pub fn perturbation_embedding(&self, pert: &Tensor, train: bool) -> Tensor {
        self.perturbation_tokens(pert, train)
            .mean_dim(1, false, Kind::Float)
    }

    /// The velocity `[B, G]`. `genes`: `[B, G]` token ids; `x_t`, `x_c`: `[B, G]`; `t`: `[B]` or 0-d;
    /// `pert`: `[B, 2]` token ids (perturbation tokens in drug mode). `record` collects activations.
    pub fn forward(
        &self,
        genes: &Tensor,
        x_t: &Tensor,
        t: &Tensor,
        x_c: &Tensor,
        pert: &Tensor,
        train: bool,
        mut record: Option<&mut Activations>,
    ) -> Result<Tensor> {
        let mut rec = |k: &str, v: &Tensor| {
            if let Some(r) = record.as_deref_mut() {
                r.insert(k.to_string(), v.detach().copy());
            }
        };
        let inputs = VelocityInputs {
            genes,
            x_t,
            t,
            x_c,
            pert,
        };
        let (mut h, cond) = self.stem(&inputs, train, &mut rec)?;
        for (i, (bs, bc)) in self.blocks.iter().enumerate() {
            let y = self.layer_input(i, &h, &cond, train, &mut rec);
            let (a, y) = bs.forward(&y, &y, &cond.tau);
            rec(&format!("blocks.{i}.diff_self_attn.attn"), &a);
            rec(&format!("blocks.{i}.diff_self_attn"), &y);
            let (a, y) = bc.forward(&y, &cond.value_control, &cond.tau);
            rec(&format!("blocks.{i}.diff_cross_attn.attn"), &a);
            rec(&format!("blocks.{i}.diff_cross_attn"), &y);
            h = y;
        }
        let v = self.head(&h, &cond);
        rec("final_layer", &v);
        Ok(v)
    }

    /// Everything before the PAD layers: checks the inputs, encodes genes, perturbation, values and time.
    /// Returns the fused token stream `[B, G, d]` and what every layer reads besides it.
    pub(crate) fn stem(
        &self,
        inputs: &VelocityInputs<'_>,
        train: bool,
        rec: &mut dyn FnMut(&str, &Tensor),
    ) -> Result<(Tensor, Conditioning)> {
        let VelocityInputs {
            genes,
            x_t,
            t,
            x_c,
            pert,
        } = *inputs;
        let b = x_t.size()[0];
        if genes.dim() != 2 || x_t.size() != genes.size() || x_c.size() != genes.size() {
            return Err(ModelError::Input(format!(
                "gene ids {:?}, x_t {:?} and x_c {:?} must all be [cells, genes]",
                genes.size(),
                x_t.size(),
                x_c.size()
            )));
        }
        if pert.dim() != 2 || pert.size()[0] != b {
            return Err(ModelError::Input(format!(
                "perturbation ids must be [cells, slots] with {b} cells (got {:?})",
                pert.size()
            )));
        }
        self.check_ids(genes, "gene")?;
        if self.pert_embedder.is_none() {
            self.check_ids(pert, "perturbation")?;
        } else {
            let hi = pert.max().int64_value(&[]);
            if pert.min().int64_value(&[]) < 0 || hi >= self.config.ntoken as i64 {
                return Err(ModelError::Input(format!(
                    "drug token ids must lie in 0..{}",
                    self.config.ntoken
                )));
            }
        }
        let t = if t.dim() == 0 {
            t.repeat([b])
        } else {
            t.shallow_clone()
        };
        let p = self.config.dropout;
        let gene_emb = self.encode_tokens(genes, train);
        rec("gene_emb", &gene_emb);
        let tokens = self.perturbation_tokens(pert, train);
        rec("perturbation_tokens", &tokens);
        let ep = tokens.mean_dim(1, false, Kind::Float);
        rec("perturbation_emb", &ep);
        let value = |i: usize, x: &Tensor| {
            let (l1, l2, n) = &self.value_encoders[i];
            let z = l1
                .forward(&x.clamp_max(self.config.max_value).unsqueeze(-1))
                .relu();
            dropout(n.forward(&l2.forward(&z)), p, train)
        };
        let ve1 = value(0, x_t);
        let ve2 = value(1, x_c);
        rec("value_encoder_1", &ve1);
        rec("value_encoder_2", &ve2);
        let v1 = ve1 + &gene_emb;
        let v2 = ve2 + &gene_emb;
        let h = self.fusion3.forward(
            &self.fusion2.forward(
                &self
                    .fusion0
                    .forward(&Tensor::cat(&[&v1, &v2], -1))
                    .gelu("none"),
            ),
        );
        rec("fusion_layer", &h);
        let tau = self.t_mlp2.forward(
            &self
                .t_mlp0
                .forward(&timestep_embedding(
                    &t,
                    self.config.frequency_embedding_size,
                ))
                .silu(),
        );
        rec("t_embedder", &tau);
        let (_, g, d) = h.size3().expect("[B, G, d]");
        let perturbation_tokens = ep.unsqueeze(1).expand([b, g, d], false);
        Ok((
            h,
            Conditioning {
                gene_emb,
                perturbation_tokens,
                value_control: v2,
                tau,
            },
        ))
    }

    /// Layer `i`'s gene-adaLN and perturbation adapter on the stream `h`: the input of its PAD blocks.
    pub(crate) fn layer_input(
        &self,
        i: usize,
        h: &Tensor,
        cond: &Conditioning,
        train: bool,
        rec: &mut dyn FnMut(&str, &Tensor),
    ) -> Tensor {
        let (ga, gn) = &self.gene_adaln[i];
        let (a0, a3) = &self.adapters[i];
        let m = ga.forward(&cond.gene_emb.silu()).chunk(3, -1);
        let h = h + &m[1] * (gn.forward(h) * &m[2] + &m[0]);
        rec(&format!("gene_adaLN.{i}"), &h);
        let z = dropout(
            a0.forward(&Tensor::cat(&[&h, &cond.perturbation_tokens], -1))
                .leaky_relu(),
            self.config.dropout,
            train,
        );
        let h = a3.forward(&z).leaky_relu();
        rec(&format!("adapter_layer.{i}"), &h);
        h
    }

    /// The expression head on the last layer's stream: the velocity `[B, G]`.
    pub(crate) fn head(&self, h: &Tensor, cond: &Conditioning) -> Tensor {
        let z = self.head[0]
            .forward(&Tensor::cat(&[h, &cond.perturbation_tokens], -1))
            .leaky_relu();
        let z = self.head[1].forward(&z).leaky_relu();
        self.head[2].forward(&z).squeeze_dim(-1)
    }
}

/// The inputs of one velocity evaluation (see [`ScdfmNet::forward`] for their shapes).
#[derive(Clone, Copy, Debug)]
pub struct VelocityInputs<'a> {
    /// Gene token ids `[B, G]`.
    pub genes: &'a Tensor,
    /// The state on the path `[B, G]`.
    pub x_t: &'a Tensor,
    /// Time `[B]` or 0-d.
    pub t: &'a Tensor,
    /// Paired control cells `[B, G]`.
    pub x_c: &'a Tensor,
    /// Perturbation token ids `[B, 2]`.
    pub pert: &'a Tensor,
}

/// What the PAD layers and the head read besides the token stream, computed once per forward by
/// [`ScdfmNet::stem`].
#[derive(Debug)]
pub struct Conditioning {
    /// Contextualised gene embeddings `[B, G, d]` (the gene-adaLN input).
    pub gene_emb: Tensor,
    /// The perturbation embedding broadcast over the genes `[B, G, d]`.
    pub perturbation_tokens: Tensor,
    /// Control-value encoding plus gene embedding `[B, G, d]` (the cross-attention's second input).
    pub value_control: Tensor,
    /// Time embedding τ `[B, d]`.
    pub tau: Tensor,
}

/// Number of elements of every variable of a store.
pub fn parameter_count(vs: &nn::VarStore) -> usize {
    vs.variables().values().map(Tensor::numel).sum()
}

/// The graph mask of a device-less model for shape-only uses: `M` tokens, nothing blocked but specials.
pub fn open_mask(tokens: usize, device: Device) -> Tensor {
    Tensor::zeros([tokens as i64, tokens as i64], (Kind::Bool, device))
}

/// Multiply–add count ×2 (FLOPs) of one forward of `cells` cells over `genes` genes with a vocabulary of
/// `tokens` memory tokens (matrix products and attention only; element-wise work is not counted).
pub fn forward_flops(config: &ScdfmConfig, cells: usize, genes: usize, tokens: usize) -> f64 {
    let (b, g, m, d) = (
        cells as f64,
        genes as f64,
        tokens as f64,
        config.d_model as f64,
    );
    let encoder = |n: f64| b * n * 10.0 * d * d + 2.0 * b * n * m * d;
    let mut macs = encoder(g) + encoder(2.0) + 2.0 * m * d * d;
    macs += 2.0 * b * g * (d + d * d) + b * g * 3.0 * d * d;
    macs += b * (config.frequency_embedding_size as f64 * d + d * d);
    let sub_block =
        b * 6.0 * d * d + 6.0 * b * g * d * d + 3.0 * b * g * g * d + 8.0 * b * g * d * d;
    macs += config.nlayers as f64 * (b * g * 6.0 * d * d + 2.0 * sub_block);
    macs += b * g * (3.0 * d * d + d);
    2.0 * macs
}
