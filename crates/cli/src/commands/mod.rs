//! One module per subcommand, plus the arguments they share.

pub mod bench;
pub mod demo;
pub mod evaluate;
pub mod export;
pub mod finetune;
pub mod hook_report;
pub mod import;
pub mod inspect;
pub mod kit;
pub mod leaderboard;
pub mod model;
pub mod predict;
pub mod preprocess;
pub mod pretrain;
pub mod simulate;
pub mod speed;
pub mod split;
pub mod sweep;
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

    /// Reads a whole perturbation screen from an `.h5ad` file, after checking from the file's metadata
    /// that it fits in the memory available (a clear error instead of the OOM killer).
    pub fn read(&self, path: &Path) -> anyhow::Result<PerturbationData> {
        if let Ok(footprint) = h5ad::expression_footprint(path, self.layer.as_deref()) {
            check_read_fits(path, &footprint)?;
        }
        h5ad::read_perturbation_data(path, &self.columns(), &ReadOptions::matrix_only())
            .with_context(|| format!("reading {}", path.display()))
    }
}

/// Bytes per cell the data model holds beside the matrix (cell name, labels, indices), an upper estimate.
const BYTES_PER_CELL: u64 = 160;

/// Refuses to read a screen whose matrix and annotations would not fit in the available memory.
fn check_read_fits(path: &Path, footprint: &h5ad::MatrixFootprint) -> anyhow::Result<()> {
    let (cells, genes) = footprint.shape;
    let bytes = footprint.model_bytes() + cells as u64 * BYTES_PER_CELL;
    let storage = if footprint.sparse {
        format!("{} stored values", footprint.stored)
    } else {
        "stored dense".to_string()
    };
    let fix = if footprint.sparse {
        "subset the screen first (fewer cells, e.g. `adata[mask].write_h5ad(...)` in Python) or run on a machine \
         with more memory"
    } else {
        "store X sparse (`adata.X = scipy.sparse.csr_matrix(adata.X)`; a screen with 5 % non-zeros then takes \
         about a fifth of the memory), subset the screen, or run on a machine with more memory"
    };
    crate::memory::check_fits(
        bytes,
        &format!(
            "reading {} ({cells} cells × {genes} genes, {storage})",
            path.display()
        ),
        fix,
    )
}

#[cfg(test)]
mod read_memory_tests {
    use super::*;

    #[test]
    fn a_screen_larger_than_memory_is_refused_before_reading_with_its_size_and_the_fix() {
        let available = crate::memory::available_bytes().expect("/proc/meminfo is readable");
        let stored = (available / 8 + 1) as usize;
        let huge = h5ad::MatrixFootprint {
            shape: (1_000_000, 2_000),
            stored,
            sparse: true,
        };
        let msg = check_read_fits(Path::new("screen.h5ad"), &huge)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("screen.h5ad")
                && msg.contains("1000000 cells × 2000 genes")
                && msg.contains(&format!("{stored} stored values"))
                && msg.contains("subset the screen"),
            "{msg}"
        );
        let dense = h5ad::MatrixFootprint {
            shape: (1_000_000, available as usize / 4_000_000 + 1_000),
            stored: 1_000_000 * (available as usize / 4_000_000 + 1_000),
            sparse: false,
        };
        let msg = check_read_fits(Path::new("d.h5ad"), &dense)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("store X sparse"), "{msg}");
        let small = h5ad::MatrixFootprint {
            shape: (1_000, 50),
            stored: 5_000,
            sparse: true,
        };
        check_read_fits(Path::new("s.h5ad"), &small).unwrap();
    }
}
