//! Preprocessing of single-cell perturbation data with scanpy 1.11 semantics: input checks and scale
//! detection, per-cell total normalisation, log1p, seurat_v3 highly variable genes (with our own
//! LOESS), Welch t-statistics vs control, the MapPFN gene panel, pseudo-bulk means, and the pipeline that
//! chains them for the CLI.

pub mod checks;
pub mod hvg;
pub mod loess;
pub mod normalize;
pub mod panel;
pub mod pipeline;
pub mod pseudobulk;
pub mod ttest;

pub use checks::{
    check_counts, check_integer_counts, check_same_gene_lists, check_same_genes,
    detect_expression_scale, detect_scale, ScaleReport,
};
pub use hvg::{
    highly_variable_genes, highly_variable_genes_matrix, highly_variable_genes_of, HvgOptions,
    HvgResult,
};
pub use loess::{loess_fit, LoessSurface};
pub use normalize::{
    cell_totals, log1p, log1p_inplace, log1p_matrix, normalize_total, normalize_total_inplace,
    normalize_total_matrix, LogBase, NormalizeReport, NormalizeTarget,
};
pub use panel::{apply_panel, mappfn_panel, measured_targets, select_panel, GenePanel};
pub use pipeline::{
    preprocess, preprocess_owned, PanelConfig, PreprocessChoices, PreprocessOptions,
    PreprocessReport, Preprocessed,
};
pub use pseudobulk::{condition_mean, pseudobulk, pseudobulk_of, PseudoBulk};
pub use ttest::{welch_t_vs_control, GroupTTest};
