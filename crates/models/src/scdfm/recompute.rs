//! Activation checkpointing for scDFM training (beyond the authors' code): the forward pass keeps only the
//! input of each PAD block, and the backward pass recomputes one block at a time. The gradients are those
//! of the plain forward + backward (same dropout draws: the blocks themselves draw none); the price is one
//! more forward of the blocks, the gain that the paper shape (d 512, 4 layers) at 1,000 genes × 48 cells
//! trains in CPU memory (BENCHMARKS.md, scDFM speed).
//!
//! libtorch has no checkpoint function that `tch` exposes, so the graph is cut by hand: every block's
//! input and output become leaves, the loss is back-propagated to the last output, and each block is then
//! re-run with gradients and back-propagated with the gradient of its output (`Σ out ⊙ ∂L/∂out`).

use tch::Tensor;

use super::model::{Conditioning, ScdfmNet, VelocityInputs};
use crate::error::Result;

/// A fresh leaf with the values of `x` that collects the gradient flowing into it.
fn leaf(x: &Tensor) -> Tensor {
    x.detach().set_requires_grad(true)
}

/// Back-propagates `Σ x ⊙ grad` when `grad` is defined (a leaf that received no gradient has none).
fn backward_with(x: &Tensor, grad: &Tensor) {
    if grad.defined() {
        (x * grad).sum(x.kind()).backward();
    }
}

/// One PAD layer's saved state: the graph from the previous block's output to this layer's block input
/// (gene-adaLN and adapter, cheap), the leaves it starts from and the self-attention block's output.
struct SavedLayer {
    /// The stream entering the layer (a leaf) and the block input computed from it (with its graph).
    stream_in: Tensor,
    block_input: Tensor,
    /// Output of the self-attention block (the cross-attention block's input), without a graph.
    self_out: Tensor,
}

/// Runs the forward pass, calls `loss_of(velocity)`, and back-propagates its first value into the
/// parameters' gradients with the PAD blocks recomputed. Returns what `loss_of` returned (the loss
/// detached from any graph). Gradients accumulate like `loss.backward()` would.
pub fn forward_backward<T>(
    net: &ScdfmNet,
    inputs: &VelocityInputs<'_>,
    train: bool,
    loss_of: impl FnOnce(Tensor) -> (Tensor, T),
) -> Result<(Tensor, T)> {
    let (stem_h, stem_cond) = net.stem(inputs, train, &mut |_, _| {})?;
    // The stem's outputs as leaves: every later use accumulates into their gradients, and the stem is
    // back-propagated once at the end.
    let cond = Conditioning {
        gene_emb: leaf(&stem_cond.gene_emb),
        perturbation_tokens: leaf(&stem_cond.perturbation_tokens),
        value_control: leaf(&stem_cond.value_control),
        tau: leaf(&stem_cond.tau),
    };
    let first = leaf(&stem_h);
    let mut stream = first.shallow_clone();
    let mut saved = Vec::with_capacity(net.blocks.len());
    for (i, (bs, bc)) in net.blocks.iter().enumerate() {
        let block_input = net.layer_input(i, &stream, &cond, train, &mut |_, _| {});
        let (self_out, out) = tch::no_grad(|| {
            let x = block_input.detach();
            let (_, y) = bs.forward(&x, &x, &cond.tau);
            let (_, z) = bc.forward(&y, &cond.value_control, &cond.tau);
            (y, z)
        });
        saved.push(SavedLayer {
            stream_in: stream,
            block_input,
            self_out,
        });
        stream = leaf(&out);
    }
    let velocity = net.head(&stream, &cond);
    let (loss, extra) = loss_of(velocity);
    loss.backward();
    let mut grad = stream.grad();
    for (layer, (bs, bc)) in saved.iter().zip(&net.blocks).rev() {
        if !grad.defined() {
            break;
        }
        let y = leaf(&layer.self_out);
        let (_, z) = bc.forward(&y, &cond.value_control, &cond.tau);
        backward_with(&z, &grad);
        let x = leaf(&layer.block_input);
        let (_, y_again) = bs.forward(&x, &x, &cond.tau);
        backward_with(&y_again, &y.grad());
        backward_with(&layer.block_input, &x.grad());
        grad = layer.stream_in.grad();
    }
    // The stem, once: its outputs' accumulated gradients.
    let pairs = [
        (&stem_h, first.grad()),
        (&stem_cond.gene_emb, cond.gene_emb.grad()),
        (
            &stem_cond.perturbation_tokens,
            cond.perturbation_tokens.grad(),
        ),
        (&stem_cond.value_control, cond.value_control.grad()),
        (&stem_cond.tau, cond.tau.grad()),
    ];
    let terms: Vec<Tensor> = pairs
        .iter()
        .filter(|(_, g)| g.defined())
        .map(|(x, g)| (*x * g).sum(x.kind()))
        .collect();
    if !terms.is_empty() {
        Tensor::stack(&terms, 0).sum(terms[0].kind()).backward();
    }
    Ok((loss.detach(), extra))
}
