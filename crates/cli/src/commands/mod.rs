//! One module per subcommand, plus the arguments they share.

pub mod bench;
pub mod c3tl;
pub mod celltarnet;
pub mod demo;
pub mod evaluate;
pub mod export;
pub mod finetune;
pub mod import;
pub mod inspect;
pub mod leaderboard;
pub mod model;
pub mod predict;
pub mod preprocess;
pub mod pretrain;
pub mod simulate;
pub mod speed;
pub mod train;
pub mod training;
pub mod tta;

use std::path::Path;

use anyhow::Context;
use cellshift_data::h5ad::{self, PerturbationColumns, ReadOptions};
use cellshift_data::PerturbationData;

/// How perturbations are annotated in an input `.h5ad` (AnnData conventions; MapPFN defaults).
#[derive(clap::Args, Clone, Debug)]
pub struct DataArgs {
    /// `obs` column holding each cell's perturbation label (a knock-out's label is its target gene).
    #[arg(long, default_value = "perturbation")]
    pub perturbation_column: String,
    /// Label of control (unperturbed) cells, e.g. `non-targeting`; `auto` (default) picks the one label
    /// spelt like a control (control, ctrl, non-targeting, NTC, DMSO, …) and lists candidates otherwise.
    #[arg(long, default_value = cellshift_data::control_label::AUTO_CONTROL)]
    pub control: String,
    /// `obs` column with the biological context; default: `context` or `cell_line` when present.
    #[arg(long)]
    pub context_column: Option<String>,
    /// `obs` column with each cell's intervention value (optional in the file; 1.0 when absent).
    #[arg(long, default_value = "treatment_value")]
    pub value_column: String,
    /// Read expression from this layer instead of `X`.
    #[arg(long)]
    pub layer: Option<String>,
}

impl DataArgs {
    /// The column conventions for the h5ad reader.
    pub fn columns(&self) -> PerturbationColumns {
        PerturbationColumns {
            perturbation: self.perturbation_column.clone(),
            control: self.control.clone(),
            context: self.context_column.clone(),
            value: self.value_column.clone(),
            layer: self.layer.clone(),
        }
    }

    /// Reads a whole perturbation screen from an `.h5ad` file.
    pub fn read(&self, path: &Path) -> anyhow::Result<PerturbationData> {
        h5ad::read_perturbation_data(path, &self.columns(), &ReadOptions::matrix_only())
            .with_context(|| format!("reading {}", path.display()))
    }
}
