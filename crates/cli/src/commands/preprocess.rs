//! `cellshift preprocess`: normalise, log1p, gene panel / highly variable genes, pseudo-bulk → `.h5ad`.

use crate::outputs::{check_outputs, Output};
use std::path::PathBuf;

use anyhow::Context;
use cellshift_data::h5ad::{self, WriteOptions};
use cellshift_data::preprocess::{preprocess_owned, LogBase, NormalizeTarget, PreprocessChoices};

use super::DataArgs;

/// Arguments of `cellshift preprocess`.
#[derive(clap::Args)]
pub struct Args {
    /// Input `.h5ad` (raw counts for normalisation and HVG).
    pub input: PathBuf,
    /// Output `.h5ad` with the processed cells.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Per-cell total normalisation: `median` (of the per-cell totals; scanpy default), a number such as
    /// `10000`, or `none`.
    #[arg(long, default_value = "median")]
    pub normalize: String,
    /// log1p base: `e` (natural; scanpy and the MapPFN code), `2` (MapPFN paper), `10`, or `none`.
    #[arg(long, default_value = "e")]
    pub log1p: String,
    /// Select the MapPFN gene panel of this many genes (measured targets first, then the genes with the
    /// largest Welch t-statistic of any treatment vs control on the train split).
    #[arg(long)]
    pub panel: Option<usize>,
    /// Keep cells of treatments whose target is not a panel gene (the MapPFN reference drops them).
    #[arg(long)]
    pub keep_unencodable: bool,
    /// Select this many highly variable genes (scanpy `seurat_v3` on the raw counts). The measured
    /// perturbed genes are kept first and the most variable other genes fill the rest.
    #[arg(long)]
    pub hvg: Option<usize>,
    /// With --hvg: scanpy's plain top genes, dropping perturbed genes that are not among them.
    #[arg(long)]
    pub hvg_drop_perturbed: bool,
    /// Drop treatments with fewer cells than this (MapPFN: 200).
    #[arg(long)]
    pub min_cells: Option<usize>,
    /// Also write pseudo-bulk means per (context, treatment), with cell counts, to this `.h5ad`.
    #[arg(long)]
    pub pseudobulk: Option<PathBuf>,
    /// Seed of the condition-level split used to score panel genes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// gzip level for the output arrays (0–9); none by default.
    #[arg(long)]
    pub gzip: Option<u8>,
}

/// Runs `cellshift preprocess`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut outputs = vec![Output::File(&args.out)];
    if let Some(path) = &args.pseudobulk {
        outputs.push(Output::File(path));
    }
    check_outputs(&[&args.input], &outputs)?;
    let spinner = crate::progress::spinner("reading input");
    let data = args.data.read(&args.input)?;
    let options = PreprocessChoices {
        normalize: NormalizeTarget::parse_choice(&args.normalize).ok_or_else(|| {
            anyhow::anyhow!(
                "--normalize `{}` is not valid; use `median`, a positive number such as 10000, or `none`",
                args.normalize
            )
        })?,
        log1p: LogBase::parse_choice(&args.log1p).ok_or_else(|| {
            anyhow::anyhow!(
                "--log1p `{}` is not valid; use `e`, `2`, `10` or `none`",
                args.log1p
            )
        })?,
        hvg: args.hvg,
        hvg_drop_perturbed: args.hvg_drop_perturbed,
        panel: args.panel,
        keep_unencodable: args.keep_unencodable,
        min_cells: args.min_cells,
        pseudobulk: args.pseudobulk.is_some(),
        seed: args.seed,
    }
    .options();
    spinner.set_message("preprocessing");
    let result = preprocess_owned(data, &options)?;
    spinner.set_message("writing output");
    let write = WriteOptions {
        gzip: args.gzip,
        sparse_x: false,
    };
    h5ad::write_perturbation_data(&args.out, &result.data, &args.data.columns(), &write)
        .with_context(|| format!("writing {}", args.out.display()))?;
    if let (Some(path), Some(table)) = (&args.pseudobulk, &result.pseudobulk) {
        h5ad::write_h5ad(
            path,
            &table.to_anndata(&args.data.perturbation_column)?,
            &write,
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    spinner.finish();
    for step in &result.report.steps {
        println!("{step}");
    }
    println!(
        "wrote {} ({} cells × {} genes)",
        args.out.display(),
        result.data.n_cells(),
        result.data.n_genes()
    );
    if let Some(path) = &args.pseudobulk {
        println!(
            "wrote {} (pseudo-bulk means, obs column n_cells)",
            path.display()
        );
    }
    Ok(())
}
