//! The co-expression graph mask of the gene encoder (the authors' `build_gene_coexpression_graph` +
//! `sorted_pad_mask`), host side in f64: `log1p(max(X, 0))`, per-gene z-score (ddof 1), Pearson
//! correlation, top-k by |W| per row, symmetrised with an elementwise max, mask = NOT(edge or self), then
//! reordered to the vocabulary's code-point order with the special tokens prepended (blocked except their
//! own diagonal).

use ndarray::{Array2, ArrayView2, Axis};

use crate::error::{ModelError, Result};

/// `log1p(max(X, 0))` then per-gene z-score with ddof 1 (a zero standard deviation is replaced by 1).
pub fn preprocess_expression(x: ArrayView2<f32>) -> Array2<f64> {
    let mut xp = x.mapv(|v| (v.max(0.0) as f64).ln_1p());
    let n = xp.nrows() as f64;
    for mut col in xp.axis_iter_mut(Axis(1)) {
        let mean = col.sum() / n;
        let var = col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0).max(1.0);
        let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
        col.mapv_inplace(|v| (v - mean) / sd);
    }
    xp
}

/// Pearson correlation of the columns; non-finite entries and zero-variance genes give 0, the diagonal
/// is 1, values are clipped to [−1, 1].
pub fn correlation_matrix(xp: ArrayView2<f64>) -> Array2<f64> {
    let n = xp.nrows() as f64;
    let g = xp.ncols();
    let mut centred = xp.to_owned();
    let mut norms = vec![0.0; g];
    for (j, mut col) in centred.axis_iter_mut(Axis(1)).enumerate() {
        let mean = col.sum() / n;
        col.mapv_inplace(|v| v - mean);
        norms[j] = col.iter().map(|v| v * v).sum::<f64>().sqrt();
    }
    let cov = centred.t().dot(&centred);
    let mut c = Array2::zeros((g, g));
    for i in 0..g {
        for j in 0..g {
            let r = if i == j {
                1.0
            } else {
                let v = cov[[i, j]] / (norms[i] * norms[j]);
                if v.is_finite() {
                    v.clamp(-1.0, 1.0)
                } else {
                    0.0
                }
            };
            c[[i, j]] = r;
        }
    }
    c
}

/// Per row, keeps the `k` off-diagonal entries of largest |W| (zeros among them dropped), then
/// `A = max(A, Aᵀ)` elementwise.
pub fn sparsify_topk(w: ArrayView2<f64>, k: usize) -> Array2<f64> {
    let g = w.nrows();
    let mut a = Array2::zeros((g, g));
    for i in 0..g {
        let mut idx: Vec<usize> = (0..g).filter(|&j| j != i).collect();
        idx.sort_by(|&p, &q| w[[i, q]].abs().total_cmp(&w[[i, p]].abs()));
        for &j in idx.iter().take(k) {
            a[[i, j]] = w[[i, j]];
        }
    }
    let at = a.t().to_owned();
    a.zip_mut_with(&at, |x, y| *x = x.max(*y));
    a
}

/// The co-expression graph of `x` (cells × genes, var order) and its mask.
#[derive(Clone, Debug)]
pub struct CoexpressionGraph {
    /// Adjacency after top-k and symmetrisation (genes × genes, var order).
    pub adjacency: Array2<f64>,
    /// `true` = blocked (no edge and not the diagonal), var order.
    pub mask: Array2<bool>,
}

/// Builds the graph with top-`k` sparsification; `use_negative_edge` ranks and keeps |C| (run.sh),
/// otherwise the signed C (negative edges then vanish unless reciprocal).
pub fn build_coexpression_graph(
    x: ArrayView2<f32>,
    k: usize,
    use_negative_edge: bool,
) -> Result<CoexpressionGraph> {
    if x.nrows() < 2 || x.ncols() < 2 {
        return Err(ModelError::Input(format!(
            "the co-expression graph needs ≥ 2 cells and ≥ 2 genes (got {} × {})",
            x.nrows(),
            x.ncols()
        )));
    }
    let c = correlation_matrix(preprocess_expression(x).view());
    let w = if use_negative_edge {
        c.mapv(f64::abs)
    } else {
        c
    };
    let adjacency = sparsify_topk(w.view(), k);
    let g = x.ncols();
    let mask = Array2::from_shape_fn((g, g), |(i, j)| !(i == j || adjacency[[i, j]] != 0.0));
    Ok(CoexpressionGraph { adjacency, mask })
}

/// The vocabulary order of `names`: indices sorted by code point (their `GeneVocab`).
pub fn sorted_order(names: &[String]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| names[a].cmp(&names[b]));
    order
}

/// Reorders a var-order mask to the vocabulary order and prepends `pad` special tokens that are blocked
/// everywhere except their own diagonal; gene diagonals are allowed.
pub fn sorted_pad_mask(mask: &Array2<bool>, pad: usize, names: &[String]) -> Array2<bool> {
    let order = sorted_order(names);
    let n = order.len() + pad;
    let mut out = Array2::from_elem((n, n), true);
    for (r, &i) in order.iter().enumerate() {
        for (c, &j) in order.iter().enumerate() {
            out[[pad + r, pad + c]] = mask[[i, j]];
        }
    }
    for i in 0..n {
        out[[i, i]] = false;
    }
    out
}
