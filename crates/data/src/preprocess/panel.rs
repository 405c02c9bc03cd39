//! The MapPFN gene panel (spec §7, steps 1, 5–6) and restricting a data set to a panel.
//!
//! * Required genes: the perturbation targets that are measured genes, sorted by name.
//! * Gene score: the largest signed Welch t-statistic of any treatment vs control (see [`super::ttest`]),
//!   computed on the train + control cells (pooled over contexts), rounded to f32 as scanpy stores it.
//! * More required genes than slots (Frangieh): the N highest-scoring required genes, by score.
//!   Fewer (Papalexi): all required genes (sorted), then the highest-scoring other genes up to N.
//!   Ties in score are broken by gene name (pandas `nlargest` over the name-sorted score table).
//! * Restriction: keep the panel's columns, and (reference behaviour) only the control cells and the
//!   cells whose treatment targets are all panel genes, because only those have a one-hot encoding.

use std::collections::HashSet;

use super::ttest::{welch_t_vs_control, GroupTTest};
use crate::error::DataError;
use crate::model::PerturbationData;
use crate::split::Split;

/// A selected gene panel with the scores behind it.
#[derive(Clone, Debug)]
pub struct GenePanel {
    /// The panel, in column order: required genes first (sorted), then fill genes by score.
    pub genes: Vec<String>,
    /// The measured perturbation targets (sorted); all of them are in the panel unless there were more
    /// than the panel size.
    pub required: Vec<String>,
    /// Per gene of the input data: the gene score (max over treatments of the f32 t-statistic).
    pub scores: Vec<f32>,
    /// The per-group statistics.
    pub ttest: GroupTTest,
}

/// The measured perturbation targets of a data set, sorted and unique.
pub fn measured_targets(data: &PerturbationData) -> Vec<String> {
    let genes: HashSet<&str> = data.genes.iter().map(String::as_str).collect();
    let mut out: Vec<String> = data
        .treatments
        .iter()
        .flat_map(|t| t.target_genes())
        .filter(|g| genes.contains(g))
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Order of gene indices by descending score, ties by gene name.
fn by_score(
    data: &PerturbationData,
    scores: &[f32],
    candidates: impl Iterator<Item = usize>,
) -> Vec<usize> {
    let mut idx: Vec<usize> = candidates.collect();
    idx.sort_by(|&a, &b| {
        scores[b]
            .total_cmp(&scores[a])
            .then_with(|| data.genes[a].cmp(&data.genes[b]))
    });
    idx
}

/// Selects an `n_genes` panel from gene scores computed on `score_cells` (normally
/// [`Split::panel_scoring_cells`]). `required` are the genes to keep first (normally
/// [`measured_targets`]); `fill_candidates`, when given, restricts the fill genes (e.g. to HVGs).
pub fn select_panel(
    data: &PerturbationData,
    score_cells: &[usize],
    required: &[String],
    n_genes: usize,
    fill_candidates: Option<&[String]>,
) -> Result<GenePanel, DataError> {
    if n_genes == 0 {
        return Err(DataError::Invalid(
            "the gene panel size must be at least 1".into(),
        ));
    }
    let mut required_idx = Vec::with_capacity(required.len());
    for g in required {
        required_idx.push(
            data.gene_index(g)
                .ok_or_else(|| DataError::GeneNotMeasured {
                    gene: g.clone(),
                    hint:
                        "panel genes must be columns of the data; remove it from the required genes"
                            .into(),
                })?,
        );
    }
    let ttest = welch_t_vs_control(data, score_cells)?;
    let scores = ttest.max_over_groups();
    let genes: Vec<usize> = if required_idx.len() >= n_genes {
        let mut sorted_required: Vec<usize> = required_idx.clone();
        sorted_required.sort_by(|&a, &b| data.genes[a].cmp(&data.genes[b]));
        by_score(data, &scores, sorted_required.into_iter())
            .into_iter()
            .take(n_genes)
            .collect()
    } else {
        let taken: HashSet<usize> = required_idx.iter().copied().collect();
        let candidates: Vec<usize> = match fill_candidates {
            None => (0..data.n_genes()).filter(|g| !taken.contains(g)).collect(),
            Some(list) => {
                let mut v = Vec::with_capacity(list.len());
                for g in list {
                    let i = data
                        .gene_index(g)
                        .ok_or_else(|| DataError::GeneNotMeasured {
                            gene: g.clone(),
                            hint: "panel fill candidates must be columns of the data".into(),
                        })?;
                    if !taken.contains(&i) {
                        v.push(i);
                    }
                }
                v.sort_unstable();
                v.dedup();
                v
            }
        };
        let mut out = required_idx.clone();
        out.extend(
            by_score(data, &scores, candidates.into_iter())
                .into_iter()
                .take(n_genes - required_idx.len()),
        );
        out
    };
    Ok(GenePanel {
        genes: genes.iter().map(|&g| data.genes[g].clone()).collect(),
        required: required.to_vec(),
        scores,
        ttest,
    })
}

/// The MapPFN panel of `n_genes` genes: measured targets first, filled by t-score on the split's
/// train + control cells.
pub fn mappfn_panel(
    data: &PerturbationData,
    split: &Split,
    n_genes: usize,
) -> Result<GenePanel, DataError> {
    split.check_matches(data)?;
    let cells = split.panel_scoring_cells(data);
    select_panel(data, &cells, &measured_targets(data), n_genes, None)
}

/// Restricts a data set to the panel's genes (in panel order). With `drop_unencodable`, also keeps only
/// control cells and cells whose treatment targets are all panel genes (the reference keeps exactly
/// these rows). Errors with the gene's name if a panel gene is not measured.
pub fn apply_panel(
    data: &PerturbationData,
    panel_genes: &[String],
    drop_unencodable: bool,
) -> Result<PerturbationData, DataError> {
    for g in panel_genes {
        if data.gene_index(g).is_none() {
            return Err(DataError::GeneNotMeasured {
                gene: g.clone(),
                hint: "every panel gene must be a column of the data; remove it from the panel or use data \
                       that measures it"
                    .into(),
            });
        }
    }
    let subset = data.select_genes(panel_genes)?;
    if !drop_unencodable {
        return Ok(subset);
    }
    let in_panel: HashSet<&str> = panel_genes.iter().map(String::as_str).collect();
    let keep_treatment: Vec<bool> = data
        .treatments
        .iter()
        .map(|t| {
            t.is_control()
                || (!t.target_genes().is_empty()
                    && t.target_genes().iter().all(|g| in_panel.contains(g)))
        })
        .collect();
    let rows: Vec<usize> = (0..data.n_cells())
        .filter(|&c| keep_treatment[data.cell_treatment[c]])
        .collect();
    if rows.len() == data.n_cells() {
        return Ok(subset);
    }
    subset.select_cells(&rows)
}
