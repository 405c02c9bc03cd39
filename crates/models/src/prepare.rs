//! Brings a user's data set into the form a checkpoint expects (its recorded [`Preprocessing`]): the
//! model's genes in the model's order, then total-count normalisation and log1p when the data are raw
//! counts. Data that are already log-normalised are used as given; anything inconsistent is an error that
//! names the problem and the fix.

use crate::error::{ModelError, Result};
use crate::train::Preprocessing;
use cellshift_data::preprocess::{
    log1p_inplace, normalize_total_inplace, LogBase, NormalizeTarget,
};
use cellshift_data::{ExpressionScale, PerturbationData};

/// What [`prepare_for_model`] did, for logs and reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PreparationReport {
    /// Genes were selected (and reordered) by name to the model's panel.
    pub genes_selected: bool,
    /// Total-count normalisation was applied.
    pub normalized: bool,
    /// log1p was applied.
    pub log_transformed: bool,
    /// Notes for the user (e.g. data used as given).
    pub notes: Vec<String>,
}

/// The preprocessing record of a data set used as given: its named genes, no further transformation.
pub fn data_preprocessing(data: &PerturbationData) -> Preprocessing {
    Preprocessing {
        gene_names: data.genes.clone(),
        ..Preprocessing::identity(data.n_genes())
    }
}

/// Returns `data` transformed as `expected` says (the input is not modified).
pub fn prepare_for_model(
    data: &PerturbationData,
    expected: &Preprocessing,
) -> Result<(PerturbationData, PreparationReport)> {
    let mut report = PreparationReport::default();
    let mut out = if expected.gene_names.is_empty() {
        if data.n_genes() != expected.n_genes {
            return Err(ModelError::Input(format!(
                "the data have {} genes but the model was trained on {}; give a file with exactly the model's {} genes (e.g. with `cellshift preprocess --panel {}`)",
                data.n_genes(),
                expected.n_genes,
                expected.n_genes,
                expected.n_genes
            )));
        }
        data.clone()
    } else {
        let missing: Vec<&str> = expected
            .gene_names
            .iter()
            .filter(|g| data.gene_index(g).is_none())
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            let shown: Vec<&str> = missing.iter().take(8).copied().collect();
            return Err(ModelError::Input(format!(
                "the data lack {} of the model's {} genes ({}{}); give a file measuring the model's gene panel (`cellshift inspect` on the checkpoint lists it)",
                missing.len(),
                expected.n_genes,
                shown.join(", "),
                if missing.len() > shown.len() { ", …" } else { "" }
            )));
        }
        let same_order = data.genes == expected.gene_names;
        if !same_order {
            report.genes_selected = true;
        }
        if same_order {
            data.clone()
        } else {
            data.select_genes(&expected.gene_names)
                .map_err(|e| ModelError::Input(e.to_string()))?
        }
    };
    let wants_transform = expected.normalize_total.is_some() || expected.log1p;
    if wants_transform {
        match ExpressionScale::detect(out.x.stored_values()) {
            ExpressionScale::RawCounts => {
                if let Some(target) = &expected.normalize_total {
                    let target = match target {
                        NormalizeTarget::MedianOfTotals => NormalizeTarget::MedianOfTotals,
                        NormalizeTarget::Sum(v) => NormalizeTarget::Sum(*v),
                    };
                    normalize_total_inplace(&mut out.x, target)
                        .map_err(|e| ModelError::Input(e.to_string()))?;
                    report.normalized = true;
                }
                if expected.log1p {
                    log1p_inplace(&mut out.x, LogBase::Natural)
                        .map_err(|e| ModelError::Input(e.to_string()))?;
                    report.log_transformed = true;
                }
                out.scale = ExpressionScale::detect(out.x.stored_values());
            }
            ExpressionScale::LogNormalized => report.notes.push(
                "the data look log-normalised already; used as given (the model expects total-count normalisation + natural log1p)".into(),
            ),
            ExpressionScale::Other => {
                let (min, max) = out
                    .x
                    .stored_values()
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                        (lo.min(v), hi.max(v))
                    });
                return Err(ModelError::Input(format!(
                    "the expression values range from {min} to {max}: neither raw counts (non-negative integers) \
                     nor log-normalised values, which is what the model was trained on (total-count \
                     normalisation + natural log1p). Give the raw counts (e.g. --layer counts) or \
                     log1p-normalised values; scaled or centred data (negative values) cannot be predicted"
                )));
            }
        }
    }
    Ok((out, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellshift_data::model::CellAnnotations;
    use ndarray::array;

    fn counts() -> PerturbationData {
        PerturbationData::new(
            vec!["a".into(), "b".into(), "c".into()],
            array![[1.0, 3.0, 0.0], [2.0, 2.0, 4.0]],
            CellAnnotations {
                cell_names: vec![],
                contexts: vec![],
                treatment_labels: vec!["control".into(), "a".into()],
                treatment_values: vec![],
            },
            "control",
        )
        .unwrap()
    }

    #[test]
    fn selects_genes_by_name_then_normalises_and_logs_counts() {
        let expected = Preprocessing::median_log1p(vec!["c".into(), "a".into()]);
        let (out, report) = prepare_for_model(&counts(), &expected).unwrap();
        assert_eq!(out.genes, vec!["c".to_string(), "a".to_string()]);
        assert!(report.genes_selected && report.normalized && report.log_transformed);
        // Totals over the selected genes: 1 and 6, median 3.5; cell 0 = [0, 1] → [0, 3.5].
        assert!((out.x[[0, 1]] - 3.5f32.ln_1p()).abs() < 1e-6);
        assert!((out.x[[1, 0]] - (4.0f32 * 3.5 / 6.0).ln_1p()).abs() < 1e-6);
    }

    #[test]
    fn missing_genes_and_wrong_width_are_named() {
        let expected = Preprocessing::median_log1p(vec!["a".into(), "zz".into()]);
        let err = prepare_for_model(&counts(), &expected)
            .unwrap_err()
            .to_string();
        assert!(err.contains("zz") && err.contains("lack 1"), "{err}");
        let err = prepare_for_model(&counts(), &Preprocessing::identity(5))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("3 genes") && err.contains("trained on 5"),
            "{err}"
        );
    }
}
