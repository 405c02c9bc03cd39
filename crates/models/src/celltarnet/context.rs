//! The context encoder T_φ of CellTarNet (peers.md §1.3): a standard (unmasked) pre-LN transformer over
//! `[CLS; control-cell tokens; perturbation token]` with learned position embeddings. A control-cell
//! token is `Linear(patch → d)` of its genes' values (with `patch = 1`: `x_pre,g·w_val + b`, one token per
//! gene, the paper's G + 2 tokens) plus its position; the perturbation token is `Linear(k → d)` of the
//! multi-hot perturbation vector (a double is 2-hot; all zeros = unconditional).

use tch::{Kind, Tensor};

use super::flow::SelfAttention;
use crate::blocks::init::{Init, ParamBuilder};
use crate::blocks::linear::{Linear, LinearInit};
use crate::blocks::mlp::Mlp;
use crate::blocks::norm::LayerNorm;

const LN_EPS: f64 = 1e-6;

/// One encoder layer: full self-attention and an MLP, pre-LN.
#[derive(Debug)]
pub struct EncoderLayer {
    /// Norm before the attention.
    pub ln_attn: LayerNorm,
    /// Self-attention over all context tokens.
    pub attn: SelfAttention,
    /// Norm before the MLP.
    pub ln_mlp: LayerNorm,
    /// The MLP.
    pub mlp: Mlp,
}

/// The context encoder.
#[derive(Debug)]
pub struct ContextEncoder {
    /// Control-cell value embedding `patch → d`.
    pub value: Linear,
    /// Perturbation embedding `k → d` of the multi-hot vector.
    pub perturbation: Linear,
    /// The CLS token `[d]`.
    pub cls: Tensor,
    /// Position embeddings `[T + 2, d]` (CLS, T control tokens, perturbation).
    pub pos: Tensor,
    /// The layers.
    pub layers: Vec<EncoderLayer>,
    /// Final norm.
    pub ln_out: LayerNorm,
}

impl ContextEncoder {
    /// Creates the encoder under `pb` for `tokens` control tokens of `patch` genes and `k` perturbation slots.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pb: &ParamBuilder,
        tokens: usize,
        patch: usize,
        k: usize,
        width: usize,
        heads: usize,
        layers: usize,
        mlp_ratio: usize,
    ) -> ContextEncoder {
        ContextEncoder {
            value: Linear::new(pb, "value", patch, width, true, LinearInit::FanInUniform),
            perturbation: Linear::new(pb, "perturbation", k, width, true, LinearInit::FanInUniform),
            cls: pb.param("cls", &[width], Init::Normal { std: 0.02 }),
            pos: pb.param("pos", &[tokens + 2, width], Init::Normal { std: 0.02 }),
            layers: (0..layers)
                .map(|l| {
                    let pb = pb.sub("layers").sub(&l.to_string());
                    EncoderLayer {
                        ln_attn: LayerNorm::new(&pb, "ln_attn", width, LN_EPS),
                        attn: SelfAttention::new(&pb, "attn", width, heads),
                        ln_mlp: LayerNorm::new(&pb, "ln_mlp", width, LN_EPS),
                        mlp: Mlp::new(&pb, "mlp", width, mlp_ratio * width, width),
                    }
                })
                .collect(),
            ln_out: LayerNorm::new(pb, "ln_out", width, LN_EPS),
        }
    }

    /// Context tokens `[B, T + 2, d]` of control cells as tokens `[B, T, patch]` and multi-hot
    /// perturbations `[B, k]`.
    pub fn forward(&self, control: &Tensor, perturbation: &Tensor) -> Tensor {
        let b = control.size()[0];
        let kind = control.kind();
        let cls = self
            .cls
            .to_kind(kind)
            .view([1, 1, -1])
            .expand([b, 1, -1], false);
        let values = self.value.forward(control);
        let pert = self
            .perturbation
            .forward(&perturbation.to_kind(kind))
            .unsqueeze(1);
        let mut h = Tensor::cat(&[cls, values, pert], 1) + self.pos.to_kind(kind).unsqueeze(0);
        for layer in &self.layers {
            h = &h + layer.attn.forward(&layer.ln_attn.forward(&h), None, None);
            h = &h + layer.mlp.forward(&layer.ln_mlp.forward(&h));
        }
        self.ln_out.forward(&h)
    }

    /// The unconditional perturbation input (all zeros) for `b` examples.
    pub fn no_perturbation(&self, b: i64, like: &Tensor) -> Tensor {
        let k = self.perturbation.weight.size()[1];
        Tensor::zeros([b, k], (Kind::Float, like.device())).to_kind(like.kind())
    }
}
