//! Highly variable genes, scanpy 1.11 `highly_variable_genes(flavor="seurat_v3")` without `batch_key`,
//! on raw counts.
//!
//! Per gene: mean and unbiased variance (sums in f64, squares of the f32 counts formed in f32 as scanpy
//! does); a LOESS fit (span 0.3, degree 2, see [`super::loess`]) of log10 variance on log10 mean over the
//! genes with non-zero variance; regularised sd σ̂_g = sqrt(10^fit_g) (1 for constant genes); counts
//! clipped at `σ̂_g·sqrt(N) + mean_g`; the normalised variance
//! `(N·mean² + Σ clip² − 2·mean·Σ clip) / ((N−1)·σ̂²)`; genes ranked by it (descending). Exact ties in the
//! normalised variance are broken by gene order (numpy's unstable argsort may order them differently;
//! ties only occur for degenerate genes, e.g. several constant ones).

use ndarray::ArrayView2;

use super::checks::{check_counts, check_integer_counts};
use super::loess::loess_fit;
use crate::error::DataError;
use crate::expression::Expression;
use crate::model::PerturbationData;

/// Settings of the seurat_v3 selection.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HvgOptions {
    /// Number of genes to select (scanpy `n_top_genes`); capped at the number of genes.
    pub n_top_genes: usize,
    /// LOESS span (scanpy default 0.3).
    pub span: f64,
    /// Refuse non-integer input (seurat_v3 is defined on raw counts; scanpy only warns).
    pub require_integers: bool,
    /// In [`crate::preprocess::preprocess`]: keep every measured perturbed gene in the gene subset (they
    /// come first, the most variable other genes fill the rest of the `n_top_genes`), so the effect of a
    /// knock-out on its own target stays visible. Off: the plain seurat_v3 top genes (scanpy).
    #[serde(default = "keep_perturbed_default")]
    pub keep_perturbed: bool,
}

fn keep_perturbed_default() -> bool {
    true
}

impl HvgOptions {
    /// scanpy defaults with the given number of genes.
    pub fn seurat_v3(n_top_genes: usize) -> Self {
        HvgOptions {
            n_top_genes,
            span: 0.3,
            require_integers: true,
            keep_perturbed: true,
        }
    }
}

/// Per-gene statistics and the selection.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct HvgResult {
    /// Gene names (all genes, data order).
    pub genes: Vec<String>,
    /// Per-gene mean of the counts.
    pub means: Vec<f64>,
    /// Per-gene unbiased variance of the counts.
    pub variances: Vec<f64>,
    /// Per-gene normalised (clipped, standardised) variance — scanpy `variances_norm`.
    pub variances_norm: Vec<f64>,
    /// Per gene: its rank by normalised variance (0 = most variable) if among the top genes.
    pub rank: Vec<Option<usize>>,
    /// Indices of the selected genes, most variable first.
    pub selected: Vec<usize>,
}

impl HvgResult {
    /// Names of the selected genes, most variable first.
    pub fn selected_genes(&self) -> Vec<String> {
        self.selected
            .iter()
            .map(|&g| self.genes[g].clone())
            .collect()
    }
}

/// seurat_v3 on a counts matrix (cells × genes) with gene names.
pub fn highly_variable_genes_matrix(
    x: ArrayView2<'_, f32>,
    genes: &[String],
    options: &HvgOptions,
) -> Result<HvgResult, DataError> {
    highly_variable_genes_of(&Expression::from(x.to_owned()), genes, options)
}

/// seurat_v3 on an expression matrix, dense or sparse (per-gene sums over the stored values).
pub fn highly_variable_genes_of(
    x: &Expression,
    genes: &[String],
    options: &HvgOptions,
) -> Result<HvgResult, DataError> {
    if options.require_integers {
        check_integer_counts(x, "highly_variable_genes (seurat_v3) input")?;
    } else {
        check_counts(x, "highly_variable_genes (seurat_v3) input")?;
    }
    let (n, d) = x.shape();
    if n < 2 {
        return Err(DataError::Invalid(format!(
            "highly_variable_genes needs at least 2 cells to estimate variances, got {n}"
        )));
    }
    if options.n_top_genes == 0 {
        return Err(DataError::Invalid(
            "highly_variable_genes: n_top_genes must be at least 1".into(),
        ));
    }
    let nf = n as f64;
    let (sums, sq) = x.column_sums(|_, v| (v as f64, (v * v) as f64));
    let means: Vec<f64> = sums.iter().map(|s| s / nf).collect();
    let variances: Vec<f64> = (0..d)
        .map(|g| (sq[g] / nf - (sums[g] / nf).powi(2)) * (nf / (nf - 1.0)))
        .collect();
    let varying: Vec<usize> = (0..d).filter(|&g| variances[g] > 0.0).collect();
    let lx: Vec<f64> = varying.iter().map(|&g| means[g].log10()).collect();
    let ly: Vec<f64> = varying.iter().map(|&g| variances[g].log10()).collect();
    let fitted = loess_fit(&lx, &ly, options.span, 2).map_err(|e| {
        DataError::Invalid(format!(
            "highly_variable_genes (seurat_v3): the mean–variance LOESS fit over {} varying genes failed ({e}); \
             seurat_v3 needs many genes with non-zero variance — give more genes or use a larger span",
            varying.len()
        ))
    })?;
    let mut estimated = vec![0.0f64; d];
    for (&g, &f) in varying.iter().zip(&fitted) {
        estimated[g] = f;
    }
    let reg_std: Vec<f64> = estimated.iter().map(|e| 10f64.powf(*e).sqrt()).collect();
    let vmax = nf.sqrt();
    let clip: Vec<f64> = (0..d).map(|g| reg_std[g] * vmax + means[g]).collect();
    let (csum, csq) = x.column_sums(|g, v| {
        let e = (v as f64).min(clip[g]);
        (e, e * e)
    });
    let variances_norm: Vec<f64> = (0..d)
        .map(|g| {
            (1.0 / ((nf - 1.0) * reg_std[g].powi(2)))
                * (nf * means[g].powi(2) + csq[g] - 2.0 * csum[g] * means[g])
        })
        .collect();
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| {
        variances_norm[b]
            .total_cmp(&variances_norm[a])
            .then(a.cmp(&b))
    });
    let n_top = options.n_top_genes.min(d);
    let selected: Vec<usize> = order[..n_top].to_vec();
    let mut rank = vec![None; d];
    for (r, &g) in selected.iter().enumerate() {
        rank[g] = Some(r);
    }
    Ok(HvgResult {
        genes: genes.to_vec(),
        means,
        variances,
        variances_norm,
        rank,
        selected,
    })
}

/// seurat_v3 on a data set of raw counts.
pub fn highly_variable_genes(
    data: &PerturbationData,
    options: &HvgOptions,
) -> Result<HvgResult, DataError> {
    highly_variable_genes_of(&data.x, &data.genes, options)
}
