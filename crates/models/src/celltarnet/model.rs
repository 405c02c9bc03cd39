//! The CellTarNet network: the context encoder, the autoregressive flow and the InfoNCE projection head,
//! with the training losses (peers.md §1.3) and sampling. Everything here works on standardised
//! expression (each gene centred and scaled by its training mean and standard deviation); the method
//! converts to and from data units.
//!
//! Losses of one micro-batch of B examples (a control cell x_pre, two cells x_post, x_post′ of the same
//! perturbation c, all of the same context):
//! - L_NLL^post: per-dimension NLL of x_post and x_post′ (each + σε, TARFlow noise augmentation) under the
//!   context (x̃_pre, c), x̃_pre = x_pre + s·ε_pre; c is zeroed with probability `label_dropout` (CFG);
//! - L_NLL^pre: per-dimension NLL of the clean x_pre (+ σε) under (x̃_pre, c = 0), weight λ_denoise;
//! - L_Cont: InfoNCE over projected codes g(f(x_post; ctx)): positive f(x_post′; ctx), negatives (a) the
//!   anchor's cell under other examples' contexts of another perturbation, (b) other examples' cells of
//!   another perturbation under the anchor's context; weight λ_cont. Anchors whose label was dropped are
//!   left out (their context is the unconditional one).

use tch::{Kind, Tensor};

use super::config::CellTarNetConfig;
use super::context::ContextEncoder;
use super::flow::{ContextKv, Decoding, Flow};
use crate::blocks::init::{Init, ParamBuilder};
use crate::blocks::mlp::Mlp;
use crate::error::Result;
use crate::train::LossTerms;

/// One training micro-batch (standardised units, on the CPU; moved to the model's device in the loss).
#[derive(Debug)]
pub struct TrainBatch {
    /// Clean control cells `[B, G]`.
    pub pre: Tensor,
    /// Control-cell noise s·ε, ε ~ N(0, 1) per standardised gene `[B, G]`.
    pub pre_noise: Tensor,
    /// First perturbed cells `[B, G]`.
    pub post: Tensor,
    /// Second perturbed cells of the same condition `[B, G]`.
    pub post2: Tensor,
    /// TARFlow noise σε of `post`, `post2`, `pre`, stacked `[3B, G]`.
    pub flow_noise: Tensor,
    /// Multi-hot perturbations `[B, k]`, already zeroed where the label is dropped.
    pub perturbation: Tensor,
    /// Whether the example's label was dropped `[B]` (bool).
    pub dropped: Tensor,
    /// Context-negative example indices `[B, n]` (int64; any valid index where not `neg_valid`).
    pub neg_context: Tensor,
    /// Post-negative example indices `[B, n]`.
    pub neg_post: Tensor,
    /// Which negatives exist `[B, n]` (bool; fewer examples of other perturbations than n leave gaps).
    pub neg_valid: Tensor,
}

/// The network.
#[derive(Debug)]
pub struct CellTarNetNet {
    /// T_φ.
    pub context: ContextEncoder,
    /// f_θ.
    pub flow: Flow,
    /// g_ψ: flattened latent code → projection.
    pub projection: Mlp,
    /// Training mean per gene `[G]` (frozen).
    pub gene_mean: Tensor,
    /// Training standard deviation per gene `[G]` (frozen).
    pub gene_std: Tensor,
    genes: i64,
}

impl CellTarNetNet {
    /// Builds the network of `config` under `pb`. `stats` are the gene means and standard deviations and
    /// `token_adjacency` the prior's `T×T` token adjacency (both `None` when loading: the checkpoint
    /// fills them).
    pub fn new(
        pb: &ParamBuilder,
        config: &CellTarNetConfig,
        stats: Option<(&[f32], &[f32])>,
        token_adjacency: Option<&[bool]>,
    ) -> CellTarNetNet {
        let (g, t) = (config.n_genes(), config.n_tokens());
        let context = ContextEncoder::new(
            &pb.sub("context"),
            t,
            config.patch,
            config.perturbations.len(),
            config.width,
            config.heads,
            config.context_layers,
            config.mlp_ratio,
        );
        let flow = Flow::new(
            &pb.sub("flow"),
            g,
            config.patch,
            config.width,
            config.heads,
            config.blocks,
            config.layers_per_block,
            config.mlp_ratio,
            config.prior.enabled.then_some(token_adjacency),
        );
        let projection = Mlp::new(
            pb,
            "projection",
            t * config.patch,
            2 * config.projection_dim,
            config.projection_dim,
        );
        let sp = pb.sub("standardize");
        let (mean, std) = match stats {
            Some((m, s)) => (Init::Values(m.to_vec()), Init::Values(s.to_vec())),
            None => (Init::Zeros, Init::Ones),
        };
        CellTarNetNet {
            context,
            flow,
            projection,
            gene_mean: sp.frozen("mean", &[g], mean),
            gene_std: sp.frozen("std", &[g], std),
            genes: g as i64,
        }
    }

    /// Context keys and values for control cells `[B, G]` (already noise-augmented) and perturbations.
    pub fn context_kv(&self, control: &Tensor, perturbation: &Tensor) -> (Tensor, ContextKv) {
        let ctx = self
            .context
            .forward(&self.flow.to_tokens(control), perturbation);
        let kv = self.flow.context_kv(&ctx);
        (ctx, kv)
    }

    /// log p(x | context) per cell `[B]` in standardised units, and the latent code tokens.
    pub fn log_prob(&self, x: &Tensor, kv: &ContextKv) -> (Tensor, Tensor) {
        self.flow.log_prob(&self.flow.to_tokens(x), kv)
    }

    fn codes(&self, z: &Tensor) -> Tensor {
        let b = z.size()[0];
        let e = self.projection.forward(&z.reshape([b, -1]));
        &e / e
            .square()
            .sum_dim_intlist([-1i64].as_slice(), true, None::<Kind>)
            .sqrt()
            .clamp_min(1e-8)
    }

    /// The losses of one micro-batch (see the module doc).
    pub fn loss(&self, batch: &TrainBatch, config: &CellTarNetConfig) -> Result<LossTerms> {
        let device = self.gene_mean.device();
        let on = |t: &Tensor| t.to_device(device);
        let (pre, post, post2) = (on(&batch.pre), on(&batch.post), on(&batch.post2));
        let b = pre.size()[0];
        let g = self.genes as f64;
        let noisy_pre = &pre + on(&batch.pre_noise);
        let pert = on(&batch.perturbation);
        let ctx_c = self
            .context
            .forward(&self.flow.to_tokens(&noisy_pre), &pert);
        let ctx_0 = self.context.forward(
            &self.flow.to_tokens(&noisy_pre),
            &self.context.no_perturbation(b, &pre),
        );
        let inputs = Tensor::cat(&[&post, &post2, &pre], 0) + on(&batch.flow_noise);
        let ctx_all = Tensor::cat(&[&ctx_c, &ctx_c, &ctx_0], 0);
        let (lp, z) = self.flow.log_prob(
            &self.flow.to_tokens(&inputs),
            &self.flow.context_kv(&ctx_all),
        );
        let nll_post = -lp.narrow(0, 0, 2 * b).mean(Kind::Float) / g;
        let nll_pre = -lp.narrow(0, 2 * b, b).mean(Kind::Float) / g * config.lambda_denoise;
        let mut total = &nll_post + &nll_pre;
        let mut components = vec![
            ("nll_post".to_string(), nll_post.detach()),
            ("denoise".to_string(), nll_pre.detach()),
        ];
        let n = batch.neg_context.size()[1];
        if config.lambda_cont > 0.0 && n > 0 {
            let noisy_post = inputs.narrow(0, 0, b);
            let (neg_ctx, neg_post) = (on(&batch.neg_context), on(&batch.neg_post));
            let valid = on(&batch.neg_valid);
            let anchor_rep = Tensor::arange(b, (Kind::Int64, device))
                .view([b, 1])
                .expand([b, n], false)
                .reshape([-1]);
            // (a) the anchor's cell under other contexts; (b) other cells under the anchor's context.
            let cells = Tensor::cat(
                &[
                    noisy_post.index_select(0, &anchor_rep),
                    noisy_post.index_select(0, &neg_post.reshape([-1])),
                ],
                0,
            );
            let ctxs = Tensor::cat(
                &[
                    ctx_c.index_select(0, &neg_ctx.reshape([-1])),
                    ctx_c.index_select(0, &anchor_rep),
                ],
                0,
            );
            let (z_neg, _) = self
                .flow
                .encode(&self.flow.to_tokens(&cells), &self.flow.context_kv(&ctxs));
            let e_anchor = self.codes(&z.narrow(0, 0, b));
            let e_pos = self.codes(&z.narrow(0, b, b));
            let e_neg = self.codes(&z_neg).view([2, b, n, -1]);
            let tau = config.temperature;
            let s_pos =
                (&e_anchor * &e_pos).sum_dim_intlist([-1i64].as_slice(), true, None::<Kind>) / tau;
            let sim = |e: Tensor| {
                (e * e_anchor.unsqueeze(1)).sum_dim_intlist([-1i64].as_slice(), false, None::<Kind>)
                    / tau
            };
            let invalid = valid.logical_not();
            let s_ctx = sim(e_neg.get(0)).masked_fill(&invalid, f64::NEG_INFINITY);
            let s_post = sim(e_neg.get(1)).masked_fill(&invalid, f64::NEG_INFINITY);
            let logits = Tensor::cat(&[s_pos, s_ctx, s_post], 1);
            let per_anchor = -logits.log_softmax(1, Kind::Float).select(1, 0);
            let use_anchor = on(&batch.dropped)
                .logical_not()
                .logical_and(&valid.any_dim(1, false))
                .to_kind(Kind::Float);
            let count = use_anchor.sum(Kind::Float).clamp_min(1.0);
            let cont = (per_anchor * &use_anchor).sum(Kind::Float) / count * config.lambda_cont;
            total += &cont;
            components.push(("infonce".to_string(), cont.detach()));
        }
        Ok(LossTerms {
            total,
            components,
            backpropagated: false,
        })
    }

    /// Samples standardised cells `[B, G]` from standard-normal noise `z` given noise-augmented control
    /// cells and perturbations, with classifier-free guidance `guidance` (0: none) and, when `tweedie_sigma`
    /// is positive, one Tweedie denoising step x ← x + σ²∇ₓ log p(x | context).
    pub fn sample(
        &self,
        z: &Tensor,
        control: &Tensor,
        perturbation: &Tensor,
        guidance: f64,
        tweedie_sigma: f64,
        mode: Decoding,
    ) -> Tensor {
        let b = z.size()[0];
        let (ctx_c, kv_c) = tch::no_grad(|| self.context_kv(control, perturbation));
        let x = tch::no_grad(|| {
            if guidance != 0.0 {
                let ctx_u = self.context.forward(
                    &self.flow.to_tokens(control),
                    &self.context.no_perturbation(b, control),
                );
                let kv = self.flow.context_kv(&Tensor::cat(&[&ctx_c, &ctx_u], 0));
                self.flow
                    .decode(&self.flow.to_tokens(z), &kv, Some(guidance), mode)
            } else {
                self.flow.decode(&self.flow.to_tokens(z), &kv_c, None, mode)
            }
        });
        let x = self.flow.from_tokens(&x);
        if tweedie_sigma > 0.0 {
            let xg = x.detach().set_requires_grad(true);
            let (lp, _) = self.log_prob(&xg, &kv_c);
            let grad = Tensor::run_backward(&[lp.sum(lp.kind())], &[&xg], false, false);
            (x + &grad[0] * (tweedie_sigma * tweedie_sigma)).detach()
        } else {
            x
        }
    }
}
