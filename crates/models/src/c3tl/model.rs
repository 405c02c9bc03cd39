//! The C3TL network (peers.md §1.4): a perturbation encoder Θ_z([x_p^γ ; ψ_γ]) and a context encoder
//! Θ_ψ([x_π^c ; z_π]) applied to every observed entry, scatter-means of their outputs into per-perturbation
//! latents ẑ_p and per-context latents ψ̂_c, and a decoder Γ(ẑ_p + ψ̂_c).
//!
//! The one-hot half of each encoder's first layer is stored as an identity table (the rows of the weight
//! matrix that multiply the one-hot), so `[x ; onehot] W = x W_x + W_id[index]` costs one gather instead
//! of a `P`-wide matrix product; the function is the same. Training entries are predicted with
//! leave-one-out latents (their own encodings are excluded from both means, see [`super::aggregate`]);
//! queries that are not in the table use the plain means.

use tch::{Kind, Tensor};

use super::aggregate::{group_sums, leave_one_out_means, subset_leave_one_out_means};
use super::config::{C3tlConfig, MatmulPrecision};
use crate::blocks::init::{Init, ParamBuilder};
use crate::blocks::linear::{Linear, LinearInit};
use crate::error::{ModelError, Result};

/// An encoder `[x ; one-hot(id)] → hidden… → latent` with GELU between layers.
#[derive(Debug)]
pub struct Encoder {
    /// First layer, expression part: `d → widths[0]` (with the bias).
    pub input: Linear,
    /// First layer, one-hot part: one row of `widths[0]` per identity.
    pub identity: Tensor,
    /// The remaining layers.
    pub layers: Vec<Linear>,
    /// Element type of the matrix products (float32 or bfloat16, [`MatmulPrecision`]).
    pub compute: Kind,
}

impl Encoder {
    /// Creates `name.input`, `name.identity` and `name.layer{i}`; both parts of the first layer start as
    /// one linear layer over the concatenated `d + n_ids` inputs would.
    pub fn new(
        pb: &ParamBuilder,
        name: &str,
        d: usize,
        n_ids: usize,
        hidden: &[usize],
        latent: usize,
        precision: MatmulPrecision,
    ) -> Encoder {
        let pb = pb.sub(name);
        let widths: Vec<usize> = hidden.iter().copied().chain([latent]).collect();
        let fan_in = d + n_ids;
        let input_pb = pb.sub("input");
        let input = Linear {
            weight: input_pb.param("weight", &[widths[0], d], Init::fan_in_uniform(fan_in)),
            bias: Some(input_pb.param("bias", &[widths[0]], Init::fan_in_uniform(fan_in))),
        };
        let identity = pb.param(
            "identity",
            &[n_ids, widths[0]],
            Init::fan_in_uniform(fan_in),
        );
        let layers = linear_stack(&pb, &widths);
        Encoder {
            input,
            identity,
            layers,
            compute: precision.kind(),
        }
    }

    /// Encodes entries: `x` `[n, d]`, `ids` int64 `[n]` → `[n, latent]`.
    pub fn forward(&self, x: &Tensor, ids: &Tensor) -> Tensor {
        self.forward_from_input(linear_in(&self.input, x, self.compute), ids)
    }

    /// The rest of [`Encoder::forward`] given the expression part of the first layer, `x W_xᵀ + b`.
    pub fn forward_from_input(&self, input: Tensor, ids: &Tensor) -> Tensor {
        let mut h = input + self.identity.index_select(0, ids);
        for layer in &self.layers {
            h = linear_in(layer, &h.gelu("none"), self.compute);
        }
        h
    }
}

/// The decoder Γ: `latent → hidden… → d`, GELU between layers.
#[derive(Debug)]
pub struct Decoder {
    /// The layers.
    pub layers: Vec<Linear>,
    /// Element type of the matrix products (float32 or bfloat16, [`MatmulPrecision`]).
    pub compute: Kind,
}

impl Decoder {
    /// Creates `name.layer{i}`.
    pub fn new(
        pb: &ParamBuilder,
        name: &str,
        latent: usize,
        hidden: &[usize],
        d: usize,
        precision: MatmulPrecision,
    ) -> Decoder {
        let pb = pb.sub(name);
        let widths: Vec<usize> = [latent]
            .into_iter()
            .chain(hidden.iter().copied())
            .chain([d])
            .collect();
        let layers = linear_stack(&pb, &widths);
        Decoder {
            layers,
            compute: precision.kind(),
        }
    }

    /// Sets the last layer's weights and bias to zero, so that the decoder outputs zero until trained.
    pub fn zero_output(&self) {
        if let Some(last) = self.layers.last() {
            tch::no_grad(|| {
                let _ = last.weight.shallow_clone().zero_();
                if let Some(b) = &last.bias {
                    let _ = b.shallow_clone().zero_();
                }
            });
        }
    }

    /// Decodes latents `[m, latent]` → `[m, d]`.
    pub fn forward(&self, latent: &Tensor) -> Tensor {
        let mut h = latent.shallow_clone();
        for (i, layer) in self.layers.iter().enumerate() {
            if i > 0 {
                h = h.gelu("none");
            }
            h = linear_in(layer, &h, self.compute);
        }
        h
    }
}

/// The per-entry encodings of a table: Θ_z and Θ_ψ of every entry.
#[derive(Debug)]
pub struct Encodings {
    /// Θ_z([x_p^γ ; ψ_γ]) per entry, `[n, q]`.
    pub perturbation: Tensor,
    /// Θ_ψ([x_π^c ; z_π]) per entry, `[n, q]`.
    pub context: Tensor,
}

/// A query for [`C3tlNet::query_latents`]: a perturbation, a context and, when that entry is in the table,
/// its row (excluded from both means).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatentQuery {
    /// Perturbation index.
    pub perturbation: usize,
    /// Context index.
    pub context: usize,
    /// Row of the (perturbation, context) entry in the table, if observed.
    pub own_row: Option<usize>,
}

/// The per-query index tensors of [`query_means`]: each query's perturbation and context, the row of its
/// own entry (0 when absent) and whether it has one (1.0 / 0.0).
struct QueryIndex {
    perturbation: Tensor,
    context: Tensor,
    own_row: Tensor,
    own: Tensor,
}

impl QueryIndex {
    fn new(queries: &[LatentQuery], device: tch::Device) -> QueryIndex {
        let index = |f: &dyn Fn(&LatentQuery) -> i64| {
            Tensor::from_slice(&queries.iter().map(f).collect::<Vec<i64>>()).to_device(device)
        };
        let own: Vec<f32> = queries
            .iter()
            .map(|q| if q.own_row.is_some() { 1.0 } else { 0.0 })
            .collect();
        QueryIndex {
            perturbation: index(&|q| q.perturbation as i64),
            context: index(&|q| q.context as i64),
            own_row: index(&|q| q.own_row.unwrap_or(0) as i64),
            own: Tensor::from_slice(&own).to_device(device),
        }
    }
}

/// Per query, the mean of `values` over its group (`sums`/`counts` from [`group_sums`], `group`: each
/// query's group index) without the query's own entry: `(sum − own)/(n − own)`, `n − own` floored at 1.
fn query_means(
    values: &Tensor,
    (sums, counts): (&Tensor, &Tensor),
    group: &Tensor,
    index: &QueryIndex,
) -> Tensor {
    let others = (counts.index_select(0, group) - &index.own).clamp_min(1.0);
    (sums.index_select(0, group) - values.index_select(0, &index.own_row) * index.own.unsqueeze(1))
        / others.unsqueeze(1)
}

/// The whole network.
#[derive(Debug)]
pub struct C3tlNet {
    /// Θ_z: encodes an entry with its context's one-hot; averaged per perturbation.
    pub perturbation_encoder: Encoder,
    /// Θ_ψ: encodes an entry with its perturbation's one-hot; averaged per context.
    pub context_encoder: Encoder,
    /// Γ.
    pub decoder: Decoder,
    /// Whether predictions add the perturbation's mean observed delta ([`C3tlConfig::perturbation_skip`]).
    pub perturbation_skip: bool,
    n_perturbations: i64,
    n_contexts: i64,
}

impl C3tlNet {
    /// Creates the network's parameters under `pb`.
    pub fn new(pb: &ParamBuilder, config: &C3tlConfig) -> C3tlNet {
        let d = config.n_genes();
        let (p, c) = (config.perturbations.len(), config.contexts.len());
        C3tlNet {
            perturbation_encoder: Encoder::new(
                pb,
                "perturbation_encoder",
                d,
                c,
                &config.encoder_hidden,
                config.latent,
                config.matmul_precision,
            ),
            context_encoder: Encoder::new(
                pb,
                "context_encoder",
                d,
                p,
                &config.encoder_hidden,
                config.latent,
                config.matmul_precision,
            ),
            decoder: {
                let decoder = Decoder::new(
                    pb,
                    "decoder",
                    config.latent,
                    &config.decoder_hidden,
                    d,
                    config.matmul_precision,
                );
                // With the skip the decoder is a correction to the perturbation mean: start it at zero.
                if config.perturbation_skip {
                    decoder.zero_output();
                }
                decoder
            },
            perturbation_skip: config.perturbation_skip,
            n_perturbations: p as i64,
            n_contexts: c as i64,
        }
    }

    /// Encodes every entry: `x` `[n, d]`, perturbation and context indices int64 `[n]`. The expression
    /// parts of both encoders' first layers are one matrix product (the `[n, d]` table is read once).
    /// `x` may already be in the encoders' compute type (a cached copy of the table), which saves the
    /// conversion.
    pub fn encode(&self, x: &Tensor, perturbation: &Tensor, context: &Tensor) -> Encodings {
        let (pe, ce) = (
            &self.perturbation_encoder.input,
            &self.context_encoder.input,
        );
        let weight = Tensor::cat(&[&pe.weight, &ce.weight], 0);
        let bias = match (&pe.bias, &ce.bias) {
            (Some(a), Some(b)) => Some(Tensor::cat(&[a, b], 0)),
            _ => None,
        };
        let width = pe.weight.size()[0];
        let compute = self.perturbation_encoder.compute;
        let both = if compute == Kind::Float {
            x.to_kind(Kind::Float).linear(&weight, bias.as_ref())
        } else {
            let bias = bias.map(|b| b.to_kind(compute));
            x.to_kind(compute)
                .linear(&weight.to_kind(compute), bias.as_ref())
                .to_kind(Kind::Float)
        };
        Encodings {
            perturbation: self
                .perturbation_encoder
                .forward_from_input(both.narrow(1, 0, width), context),
            context: self
                .context_encoder
                .forward_from_input(both.narrow(1, width, width), perturbation),
        }
    }

    /// Predicts every entry of the table from the *other* entries (leave-one-out latents), in one pass:
    /// `[n, d]` and a boolean `[n]`, false where the entry's perturbation or context has no other entry
    /// (such a prediction carries no information and must not enter the loss).
    pub fn leave_one_out(
        &self,
        x: &Tensor,
        perturbation: &Tensor,
        context: &Tensor,
    ) -> (Tensor, Tensor) {
        let (latent, valid) = self.leave_one_out_latents(x, perturbation, context);
        let decoded = self.decoder.forward(&latent);
        match self.leave_one_out_skip(x, perturbation) {
            Some(skip) => (decoded + skip, valid),
            None => (decoded, valid),
        }
    }

    /// With [`C3tlNet::perturbation_skip`]: every entry's leave-one-out mean observed delta of its
    /// perturbation over the other contexts, `[n, d]` (zero where there is none), added to the decoded
    /// prediction; `None` without the skip.
    pub fn leave_one_out_skip(&self, x: &Tensor, perturbation: &Tensor) -> Option<Tensor> {
        self.perturbation_skip
            .then(|| leave_one_out_means(x, perturbation, self.n_perturbations).0)
    }

    /// With [`C3tlNet::perturbation_skip`]: the mean observed delta `[m, d]` of each query's perturbation
    /// in the table `x` (its own entry excluded); `None` without the skip. [`C3tlNet::query_latents`]
    /// checks that every query's perturbation has another entry.
    pub fn query_skip(
        &self,
        x: &Tensor,
        perturbation: &Tensor,
        queries: &[LatentQuery],
    ) -> Option<Tensor> {
        if !self.perturbation_skip {
            return None;
        }
        let (sums, counts) = group_sums(x, perturbation, self.n_perturbations);
        let index = QueryIndex::new(queries, x.device());
        Some(query_means(
            x,
            (&sums, &counts),
            &index.perturbation,
            &index,
        ))
    }

    /// The leave-one-out latents ẑ_p + ψ̂_c of every entry, `[n, q]`, and the validity of
    /// [`C3tlNet::leave_one_out`] (decode them to get its prediction).
    pub fn leave_one_out_latents(
        &self,
        x: &Tensor,
        perturbation: &Tensor,
        context: &Tensor,
    ) -> (Tensor, Tensor) {
        let enc = self.encode(x, perturbation, context);
        let (z, z_ok) = leave_one_out_means(&enc.perturbation, perturbation, self.n_perturbations);
        let (psi, psi_ok) = leave_one_out_means(&enc.context, context, self.n_contexts);
        (z + psi, z_ok.logical_and(&psi_ok))
    }

    /// [`C3tlNet::leave_one_out_latents`] with each context latent averaged over a subset of the
    /// context's other entries only (`context_keep` `[n]`, 1.0 for the entries that feed their context's
    /// mean): training with few entries per context latent, as the held-out context has at test time
    /// ([`C3tlConfig::context_subsample`]). Returns the latents `[n, q]`.
    pub fn subset_context_latents(
        &self,
        x: &Tensor,
        perturbation: &Tensor,
        context: &Tensor,
        context_keep: &Tensor,
    ) -> Tensor {
        let enc = self.encode(x, perturbation, context);
        let (z, _) = leave_one_out_means(&enc.perturbation, perturbation, self.n_perturbations);
        let psi = subset_leave_one_out_means(&enc.context, context, self.n_contexts, context_keep);
        z + psi
    }

    /// Mean squared error of the decoded `latent` rows against `target` (`[m, d]`), decoding and scoring
    /// at most `chunk_values` values at a time: the sum is the same, but no table-sized temporary is
    /// allocated (each would be a fresh `mmap`, with its page faults, in every epoch).
    pub fn chunked_mse(&self, latent: &Tensor, target: &Tensor, chunk_values: usize) -> Tensor {
        let (m, d) = (target.size()[0], target.size()[1]);
        let rows = ((chunk_values as i64) / d.max(1)).max(1);
        let mut total = Tensor::zeros([], (Kind::Float, latent.device()));
        let mut start = 0;
        while start < m {
            let len = rows.min(m - start);
            let pred = self.decoder.forward(&latent.narrow(0, start, len));
            total += pred.mse_loss(&target.narrow(0, start, len), tch::Reduction::Sum);
            start += len;
        }
        total / ((m * d).max(1) as f64)
    }

    /// The latents ẑ_p + ψ̂_c of `queries` from the encodings of a table (`perturbation`, `context`: the
    /// table's index tensors), `[m, q]`; an error names a query whose perturbation or context has no
    /// observed entry besides the query itself.
    pub fn query_latents(
        &self,
        enc: &Encodings,
        perturbation: &Tensor,
        context: &Tensor,
        queries: &[LatentQuery],
        names: (&[String], &[String]),
    ) -> Result<Tensor> {
        let (z_sum, z_n) = group_sums(&enc.perturbation, perturbation, self.n_perturbations);
        let (psi_sum, psi_n) = group_sums(&enc.context, context, self.n_contexts);
        let z_counts = Vec::<f32>::try_from(z_n.to_device(tch::Device::Cpu))?;
        let psi_counts = Vec::<f32>::try_from(psi_n.to_device(tch::Device::Cpu))?;
        for q in queries {
            let own = if q.own_row.is_some() { 1.0 } else { 0.0 };
            if z_counts[q.perturbation] - own < 0.5 {
                return Err(ModelError::Input(format!(
                    "perturbation `{}` is not observed in any context of the training table (other than the \
                     queried one), so C3TL has no perturbation latent for it; measure it in at least one \
                     training context",
                    names.0[q.perturbation]
                )));
            }
            if psi_counts[q.context] - own < 0.5 {
                return Err(ModelError::Input(format!(
                    "context `{}` has no observed perturbation in the training table (other than the \
                     query), so C3TL has no context latent for it; train with some of its perturbations \
                     measured (adaptation entries)",
                    names.1[q.context]
                )));
            }
        }
        // Every query has another entry in both groups (checked above), so the floor never applies.
        let index = QueryIndex::new(queries, enc.perturbation.device());
        let z = query_means(
            &enc.perturbation,
            (&z_sum, &z_n),
            &index.perturbation,
            &index,
        );
        let psi = query_means(&enc.context, (&psi_sum, &psi_n), &index.context, &index);
        Ok(z + psi)
    }
}

/// `layer(x)` with its matrix product in `compute` (float32 input and output either way; with bfloat16
/// the operands are rounded and libtorch accumulates in float32).
fn linear_in(layer: &Linear, x: &Tensor, compute: Kind) -> Tensor {
    if compute == Kind::Float {
        return layer.forward(x);
    }
    let bias = layer.bias.as_ref().map(|b| b.to_kind(compute));
    x.to_kind(compute)
        .linear(&layer.weight.to_kind(compute), bias.as_ref())
        .to_kind(Kind::Float)
}

/// Linear layers `layer0, layer1, …` between consecutive `widths`, with biases and fan-in uniform weights.
fn linear_stack(pb: &ParamBuilder, widths: &[usize]) -> Vec<Linear> {
    widths
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            Linear::new(
                pb,
                &format!("layer{i}"),
                w[0],
                w[1],
                true,
                LinearInit::FanInUniform,
            )
        })
        .collect()
}
