//! The preprocessing pipeline the CLI calls: optional minimum cells per treatment, seurat_v3 HVG (on the
//! raw counts), normalize_total, log1p, the MapPFN gene panel (with its split) and pseudo-bulk means.
//!
//! Order (MapPFN spec §7): filter treatments → HVG on raw counts → normalise (all genes) → log1p →
//! HVG subset (if no panel) → split + panel + keep encodable treatments → pseudo-bulk.

use std::collections::{HashMap, HashSet};

use super::checks::{detect_scale, ScaleReport};
use super::hvg::{highly_variable_genes, HvgOptions, HvgResult};
use super::normalize::{
    log1p_inplace, normalize_total_inplace, LogBase, NormalizeReport, NormalizeTarget,
};
use super::panel::{apply_panel, measured_targets, select_panel, GenePanel};
use super::pseudobulk::{pseudobulk, PseudoBulk};
use crate::error::DataError;
use crate::model::{ExpressionScale, PerturbationData};
use crate::split::{Split, SplitConfig};

/// Gene-panel step settings.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PanelConfig {
    /// Panel size (MapPFN: 50).
    pub n_genes: usize,
    /// The split whose train + control cells score the genes (MapPFN: seed 42, 0.1 / 0.5).
    pub split: SplitConfig,
    /// Keep only control cells and cells whose treatment targets are panel genes (reference behaviour).
    pub drop_unencodable: bool,
}

/// The pipeline's choices as the command line and the Python package take them (one flag or argument
/// each); [`PreprocessChoices::options`] makes the [`PreprocessOptions`].
#[derive(Clone, Debug, Default)]
pub struct PreprocessChoices {
    /// Per-cell total normalisation.
    pub normalize: Option<NormalizeTarget>,
    /// log1p base.
    pub log1p: Option<LogBase>,
    /// seurat_v3 highly variable genes to keep.
    pub hvg: Option<usize>,
    /// With `hvg`: scanpy's plain top genes, dropping perturbed genes not among them.
    pub hvg_drop_perturbed: bool,
    /// MapPFN gene panel size.
    pub panel: Option<usize>,
    /// With `panel`: keep treatments whose target is not a panel gene.
    pub keep_unencodable: bool,
    /// Drop treatments with fewer cells.
    pub min_cells: Option<usize>,
    /// Also compute pseudo-bulk means.
    pub pseudobulk: bool,
    /// Seed of the split that scores the panel genes.
    pub seed: u64,
}

impl PreprocessChoices {
    /// The pipeline's options: HVG with perturbed genes kept unless asked, the panel scored on the
    /// reference split of `seed`.
    pub fn options(&self) -> PreprocessOptions {
        PreprocessOptions {
            min_cells_per_treatment: self.min_cells,
            normalize: self.normalize,
            log1p: self.log1p,
            hvg: self.hvg.map(|n| HvgOptions {
                keep_perturbed: !self.hvg_drop_perturbed,
                ..HvgOptions::seurat_v3(n)
            }),
            panel: self.panel.map(|n_genes| PanelConfig {
                n_genes,
                split: SplitConfig {
                    seed: self.seed,
                    ..SplitConfig::default()
                },
                drop_unencodable: !self.keep_unencodable,
            }),
            pseudobulk: self.pseudobulk,
        }
    }
}

/// What [`preprocess`] does; `None`/`false` skips a step.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PreprocessOptions {
    /// Drop treatments with fewer cells (over all contexts); control is never dropped. MapPFN: 200.
    pub min_cells_per_treatment: Option<usize>,
    /// Per-cell total normalisation (needs raw counts).
    pub normalize: Option<NormalizeTarget>,
    /// log1p transform.
    pub log1p: Option<LogBase>,
    /// seurat_v3 highly variable genes on the raw counts (needs raw counts). Without a panel the data are
    /// subset to these genes; with a panel they restrict the panel's fill genes.
    pub hvg: Option<HvgOptions>,
    /// MapPFN gene panel.
    pub panel: Option<PanelConfig>,
    /// Also return pseudo-bulk means of the processed data.
    pub pseudobulk: bool,
}

impl PreprocessOptions {
    /// The MapPFN real-data recipe (spec §7): ≥ 200 cells per treatment, median normalisation, natural
    /// log1p, a `n_genes` panel scored on the seed-42 split, un-encodable treatments dropped.
    pub fn mappfn(n_genes: usize) -> Self {
        PreprocessOptions {
            min_cells_per_treatment: Some(200),
            normalize: Some(NormalizeTarget::MedianOfTotals),
            log1p: Some(LogBase::Natural),
            hvg: None,
            panel: Some(PanelConfig {
                n_genes,
                split: SplitConfig::default(),
                drop_unencodable: true,
            }),
            pseudobulk: false,
        }
    }
}

/// What the pipeline found and did.
#[derive(Clone, Debug)]
pub struct PreprocessReport {
    /// Detected scale of the input, with its sentence.
    pub input_scale: ScaleReport,
    /// Treatments dropped by the minimum-cells rule, with their cell counts.
    pub dropped_treatments: Vec<(String, usize)>,
    /// Normalisation facts.
    pub normalize: Option<NormalizeReport>,
    /// HVG statistics.
    pub hvg: Option<HvgResult>,
    /// The gene panel.
    pub panel: Option<GenePanel>,
    /// One line per step, for logs.
    pub steps: Vec<String>,
}

/// Output of [`preprocess`].
#[derive(Clone, Debug)]
pub struct Preprocessed {
    /// The processed data.
    pub data: PerturbationData,
    /// The split used by the panel step, carried over to the processed data.
    pub split: Option<Split>,
    /// Pseudo-bulk means of the processed data, if asked for.
    pub pseudobulk: Option<PseudoBulk>,
    /// What was found and done.
    pub report: PreprocessReport,
}

/// Runs the steps selected in `options` on a copy of `data` (not modified) and returns the processed data.
pub fn preprocess(
    data: &PerturbationData,
    options: &PreprocessOptions,
) -> Result<Preprocessed, DataError> {
    preprocess_owned(data.clone(), options)
}

/// [`preprocess`] on a data set the caller gives up: its matrix is transformed in place, so a screen is
/// held once, not twice.
pub fn preprocess_owned(
    data: PerturbationData,
    options: &PreprocessOptions,
) -> Result<Preprocessed, DataError> {
    let input_scale = detect_scale(&data);
    let mut steps = vec![format!("input: {}", input_scale.sentence)];
    if (options.normalize.is_some() || options.hvg.is_some())
        && input_scale.scale != ExpressionScale::RawCounts
    {
        return Err(DataError::Invalid(format!(
            "normalize_total and seurat_v3 HVG need raw counts, but the input {}; give the raw counts (e.g. \
             the `counts` layer) or skip normalisation and HVG for data that are already normalised",
            input_scale.sentence
        )));
    }
    let required = measured_targets(&data);

    let mut current = data;
    let mut dropped_treatments = Vec::new();
    if let Some(min) = options.min_cells_per_treatment {
        let mut counts: HashMap<usize, usize> = HashMap::new();
        for &t in &current.cell_treatment {
            *counts.entry(t).or_default() += 1;
        }
        let keep: Vec<bool> = (0..current.treatments.len())
            .map(|t| {
                current.treatments[t].is_control() || counts.get(&t).copied().unwrap_or(0) >= min
            })
            .collect();
        for (t, &k) in keep.iter().enumerate() {
            if !k {
                dropped_treatments.push((
                    current.treatments[t].label(&current.control_label),
                    counts.get(&t).copied().unwrap_or(0),
                ));
            }
        }
        if !dropped_treatments.is_empty() {
            let rows: Vec<usize> = (0..current.n_cells())
                .filter(|&c| keep[current.cell_treatment[c]])
                .collect();
            current = current.select_cells(&rows)?;
        }
        steps.push(format!(
            "kept treatments with >= {min} cells: dropped {} ({}), {} cells remain",
            dropped_treatments.len(),
            dropped_treatments
                .iter()
                .map(|(t, n)| format!("{t}: {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            current.n_cells()
        ));
    }

    let hvg = match &options.hvg {
        Some(h) => {
            let r = highly_variable_genes(&current, h)?;
            steps.push(format!(
                "seurat_v3 highly variable genes: {} selected",
                r.selected.len()
            ));
            Some(r)
        }
        None => None,
    };

    // `current` is our own copy: transform its matrix in place
    let mut normalize_report = None;
    if let Some(target) = options.normalize {
        let r = normalize_total_inplace(&mut current.x, target)?;
        steps.push(format!(
            "normalize_total: every cell scaled to {} ({} cells with zero total left at zero)",
            r.target_sum, r.zero_total_cells
        ));
        normalize_report = Some(r);
    }
    if let Some(base) = options.log1p {
        log1p_inplace(&mut current.x, base)?;
        steps.push(format!("log1p ({base:?})"));
    }
    if options.normalize.is_some() || options.log1p.is_some() {
        current.scale = ExpressionScale::detect(current.x.stored_values());
    }

    let hvg_genes: Option<Vec<String>> = match (&hvg, &options.hvg) {
        (Some(r), Some(h)) => {
            let (genes, kept) = hvg_subset(r, &required, h.keep_perturbed);
            if kept > 0 {
                steps.push(format!(
                    "kept {kept} measured perturbed genes that are not among the top highly variable genes \
                     (turn off with --hvg-drop-perturbed)"
                ));
            }
            Some(genes)
        }
        _ => None,
    };
    let mut split = None;
    let mut panel = None;
    match &options.panel {
        None => {
            if let Some(genes) = &hvg_genes {
                current = current.select_genes(genes)?;
                steps.push(format!("subset to {} highly variable genes", genes.len()));
            }
        }
        Some(cfg) => {
            let s = Split::new(&current, &cfg.split)?;
            let cells = s.panel_scoring_cells(&current);
            let p = select_panel(
                &current,
                &cells,
                &required,
                cfg.n_genes,
                hvg_genes.as_deref(),
            )?;
            let processed = apply_panel(&current, &p.genes, cfg.drop_unencodable)?;
            steps.push(format!(
                "gene panel: {} genes ({} measured targets first), {} cells kept",
                p.genes.len(),
                p.required.len().min(cfg.n_genes),
                processed.n_cells()
            ));
            split = Some(s.remap(&current, &processed)?);
            current = processed;
            panel = Some(p);
        }
    }
    let pb = if options.pseudobulk {
        Some(pseudobulk(&current))
    } else {
        None
    };
    Ok(Preprocessed {
        data: current,
        split,
        pseudobulk: pb,
        report: PreprocessReport {
            input_scale,
            dropped_treatments,
            normalize: normalize_report,
            hvg,
            panel,
            steps,
        },
    })
}

/// The genes an HVG selection keeps, in data order, and how many perturbed genes were added to it: with
/// `keep_perturbed`, every measured perturbed gene (`required`) first, then the most variable other genes
/// up to `n_top_genes` in all (more when the perturbed genes alone exceed it); otherwise the top genes.
fn hvg_subset(r: &HvgResult, required: &[String], keep_perturbed: bool) -> (Vec<String>, usize) {
    let n = r.selected.len();
    let mut chosen: Vec<usize> = Vec::with_capacity(n.max(required.len()));
    let mut added = 0;
    if keep_perturbed {
        let top: HashSet<usize> = r.selected.iter().copied().collect();
        for gene in required {
            if let Some(g) = r.genes.iter().position(|x| x == gene) {
                added += usize::from(!top.contains(&g));
                chosen.push(g);
            }
        }
        let have: HashSet<usize> = chosen.iter().copied().collect();
        let room = n.saturating_sub(chosen.len());
        chosen.extend(r.selected.iter().filter(|g| !have.contains(g)).take(room));
    } else {
        chosen.extend(&r.selected);
    }
    chosen.sort_unstable();
    (chosen.iter().map(|&g| r.genes[g].clone()).collect(), added)
}
