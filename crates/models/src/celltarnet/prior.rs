//! The gene-network attention prior "L+S" (peers.md §1.3), computed from training cells only: for every
//! gene, the top-k genes by |Pearson correlation| (S part) united with the top-k′ genes by |C_r|, C_r the
//! rank-r approximation of the correlation matrix from its r eigenpairs of largest |eigenvalue| (L part).
//! The union is symmetrised and always holds the diagonal. With gene patches, two tokens are adjacent when
//! any of their genes are.

use ndarray::Array2;
use tch::{Device, Kind, Tensor};

use super::config::PriorConfig;
use crate::error::{ModelError, Result};

/// The gene adjacency `[G, G]` (row-major, `true` = may attend) of the L+S prior over `cells` (`n × G`,
/// training cells only).
pub fn gene_adjacency(cells: &Array2<f32>, config: &PriorConfig) -> Result<Vec<bool>> {
    let (n, g) = cells.dim();
    if n < 2 {
        return Err(ModelError::Input(format!(
            "the attention prior needs at least two training cells to estimate correlations, got {n}"
        )));
    }
    let x = Tensor::from_slice(cells.as_slice().ok_or_else(|| {
        ModelError::Input("the training cells are not a contiguous matrix".into())
    })?)
    .view([n as i64, g as i64])
    .to_kind(Kind::Double);
    let centred = &x - x.mean_dim(0, true, Kind::Double);
    let std = centred.square().mean_dim(0, true, Kind::Double).sqrt();
    // Constant genes correlate with nothing (their column becomes zero).
    let z = &centred / std.clamp_min(1e-12) * std.gt(1e-12).to_kind(Kind::Double);
    let corr = z.transpose(0, 1).matmul(&z) / n as f64;
    let eye = Tensor::eye(g as i64, (Kind::Bool, Device::Cpu));
    let mut adj = eye.shallow_clone();
    let mut add_top = |scores: &Tensor, k: usize| {
        let k = k.min(g.saturating_sub(1));
        if k == 0 {
            return;
        }
        // Self is excluded from the ranking: it is always kept anyway.
        let s = scores.abs().masked_fill(&eye, -1.0);
        let (_, idx) = s.topk(k as i64, 1, true, false);
        let hits = Tensor::zeros([g as i64, g as i64], (Kind::Bool, Device::Cpu))
            .scatter_value(1, &idx, 1);
        adj = adj.logical_or(&hits);
    };
    add_top(&corr, config.top_k);
    if config.top_k_low_rank > 0 && config.rank > 0 {
        let (values, vectors) = corr.linalg_eigh("L");
        let r = config.rank.min(g) as i64;
        let (_, order) = values.abs().topk(r, 0, true, true);
        let v = vectors.index_select(1, &order);
        let l = values.index_select(0, &order);
        let low_rank = (&v * l.view([1, r])).matmul(&v.transpose(0, 1));
        add_top(&low_rank, config.top_k_low_rank);
    }
    let adj = adj.logical_or(&adj.transpose(0, 1)).reshape([-1]);
    Ok(Vec::<bool>::try_from(adj)?)
}

/// The token adjacency `[T, T]` of a gene adjacency for tokens of `patch` consecutive genes (the last one
/// padded): tokens are adjacent when any of their genes are; the diagonal is always set.
pub fn token_adjacency(gene_adj: &[bool], n_genes: usize, patch: usize) -> Vec<bool> {
    let t = n_genes.div_ceil(patch);
    let mut out = vec![false; t * t];
    for i in 0..n_genes {
        for j in 0..n_genes {
            if gene_adj[i * n_genes + j] {
                out[(i / patch) * t + j / patch] = true;
            }
        }
    }
    for i in 0..t {
        out[i * t + i] = true;
    }
    out
}
