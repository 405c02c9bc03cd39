//! `cellshift.preprocess`: the command line's `preprocess` on an AnnData in memory (normalise, log1p, gene
//! panel or highly variable genes, pseudo-bulk), with its option spellings and messages.

use cellshift_data::preprocess::{
    preprocess, HvgOptions, LogBase, NormalizeTarget, PanelConfig, PreprocessOptions, Preprocessed,
};
use cellshift_data::split::SplitConfig;
use cellshift_data::PerturbationData;

/// The options of `cellshift preprocess`, as the Python call gives them.
pub struct Options {
    /// `median`, a positive number, or `none`.
    pub normalize: String,
    /// `e`, `2`, `10` or `none`.
    pub log1p: String,
    /// Highly variable genes to keep.
    pub hvg: Option<usize>,
    /// With `hvg`: scanpy's plain top genes, dropping perturbed genes not among them.
    pub hvg_drop_perturbed: bool,
    /// MapPFN gene panel size.
    pub panel: Option<usize>,
    /// Keep treatments whose target is not a panel gene.
    pub keep_unencodable: bool,
    /// Drop treatments with fewer cells.
    pub min_cells: Option<usize>,
    /// Also compute pseudo-bulk means.
    pub pseudobulk: bool,
    /// Seed of the split that scores panel genes.
    pub seed: u64,
}

/// Runs the pipeline on `data` (not modified).
pub fn run(data: &PerturbationData, options: &Options) -> anyhow::Result<Preprocessed> {
    let pipeline = PreprocessOptions {
        min_cells_per_treatment: options.min_cells,
        normalize: parse_normalize(&options.normalize)?,
        log1p: parse_log(&options.log1p)?,
        hvg: options.hvg.map(|n| HvgOptions {
            keep_perturbed: !options.hvg_drop_perturbed,
            ..HvgOptions::seurat_v3(n)
        }),
        panel: options.panel.map(|n_genes| PanelConfig {
            n_genes,
            split: SplitConfig {
                seed: options.seed,
                ..SplitConfig::default()
            },
            drop_unencodable: !options.keep_unencodable,
        }),
        pseudobulk: options.pseudobulk,
    };
    Ok(preprocess(data, &pipeline)?)
}

fn parse_normalize(text: &str) -> anyhow::Result<Option<NormalizeTarget>> {
    match text {
        "none" => Ok(None),
        "median" => Ok(Some(NormalizeTarget::MedianOfTotals)),
        other => match other.parse::<f32>() {
            Ok(v) if v > 0.0 && v.is_finite() => Ok(Some(NormalizeTarget::Sum(v))),
            _ => anyhow::bail!(
                "normalize `{other}` is not valid; use \"median\", a positive number such as 10000, or None"
            ),
        },
    }
}

fn parse_log(text: &str) -> anyhow::Result<Option<LogBase>> {
    match text {
        "none" => Ok(None),
        "e" => Ok(Some(LogBase::Natural)),
        "2" => Ok(Some(LogBase::Two)),
        "10" => Ok(Some(LogBase::Ten)),
        other => anyhow::bail!("log1p `{other}` is not valid; use True (natural), 2, 10 or False"),
    }
}
