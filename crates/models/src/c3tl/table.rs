//! The pseudo-bulk delta table C3TL learns from (peers.md §1.4): for each observed (perturbation p,
//! context c) entry, `x_p^c = mean(X_p^c) − mean(X_0^c)`, the mean over the entry's cells minus the mean of
//! *all* control cells of its context, over every gene. Means are accumulated in f64.

use std::collections::HashMap;

use cellshift_data::preprocess::pseudobulk::condition_mean;
use cellshift_data::PerturbationData;
use ndarray::{Array1, Array2};

use crate::error::{ModelError, Result};

/// One observed entry: indices into the model's perturbation and context vocabularies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entry {
    /// Perturbation index.
    pub perturbation: usize,
    /// Context index.
    pub context: usize,
}

/// Observed entries and their deltas, `entries.len() × d`.
#[derive(Clone, Debug, PartialEq)]
pub struct DeltaTable {
    /// The entries, one per row of `deltas`, without duplicates.
    pub entries: Vec<Entry>,
    /// Pseudo-bulk deltas, one row per entry.
    pub deltas: Array2<f32>,
}

/// Maps a data set's treatments and contexts onto a model's vocabularies.
#[derive(Clone, Debug)]
pub struct Vocabulary {
    perturbations: HashMap<String, usize>,
    contexts: HashMap<String, usize>,
}

impl Vocabulary {
    /// The vocabulary of the given perturbation labels and context names.
    pub fn new(perturbations: &[String], contexts: &[String]) -> Vocabulary {
        let index = |names: &[String]| {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i))
                .collect()
        };
        Vocabulary {
            perturbations: index(perturbations),
            contexts: index(contexts),
        }
    }

    /// Index of a perturbation label.
    pub fn perturbation(&self, label: &str) -> Result<usize> {
        self.perturbations.get(label).copied().ok_or_else(|| {
            ModelError::Input(format!(
                "C3TL has no slot for perturbation `{label}`; it predicts only perturbations of the data it \
                 was created for (train it on a file that contains `{label}`)"
            ))
        })
    }

    /// Index of a context name.
    pub fn context(&self, name: &str) -> Result<usize> {
        self.contexts.get(name).copied().ok_or_else(|| {
            ModelError::Input(format!(
                "C3TL has no slot for context `{name}`; it predicts only in contexts of the data it was \
                 created for, where some perturbations were measured"
            ))
        })
    }

    /// The entry of a data condition (`None` for control conditions).
    pub fn entry_of(&self, data: &PerturbationData, condition: usize) -> Result<Option<Entry>> {
        let c = data.conditions().get(condition).ok_or_else(|| {
            ModelError::Input(format!(
                "condition index {condition} is out of range ({} conditions)",
                data.conditions().len()
            ))
        })?;
        let treatment = &data.treatments[c.treatment];
        if treatment.is_control() {
            return Ok(None);
        }
        Ok(Some(Entry {
            perturbation: self.perturbation(&treatment.label(&data.control_label))?,
            context: self.context(&data.contexts[c.context])?,
        }))
    }
}

/// Mean of all control cells of every context of `data` (`None` where a context has none).
pub fn control_means(data: &PerturbationData) -> Vec<Option<Array1<f64>>> {
    let mut means = vec![None; data.contexts.len()];
    for c in data.conditions() {
        if data.treatments[c.treatment].is_control() {
            means[c.context] = Some(condition_mean(data, c));
        }
    }
    means
}

/// The pseudo-bulk delta of condition `condition` against its context's control mean.
pub fn condition_delta(
    data: &PerturbationData,
    condition: usize,
    controls: &[Option<Array1<f64>>],
) -> Result<Array1<f32>> {
    let c = &data.conditions()[condition];
    let control = controls[c.context].as_ref().ok_or_else(|| {
        ModelError::Input(format!(
            "context `{}` has no control cells (label `{}`), so its perturbation effects cannot be \
             measured; add its control cells or set --control to the control label",
            data.contexts[c.context], data.control_label
        ))
    })?;
    Ok((condition_mean(data, c) - control).mapv(|v| v as f32))
}

/// A perturbation whose pseudo-bulk deltas repeat another's in every context (peers.md §1.4: the paper
/// prunes such duplicates, which would otherwise leak a test entry through its twin).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DuplicatePerturbation {
    /// The perturbation to drop.
    pub duplicate: String,
    /// The earlier perturbation (in treatment order) it repeats, which is kept.
    pub kept: String,
}

/// Perturbations observed in exactly the same contexts as an earlier one, with deltas equal to its
/// deltas in every one of them up to `tolerance` (max absolute difference per gene). Each duplicate names
/// the first perturbation it repeats.
pub fn duplicate_perturbations(
    data: &PerturbationData,
    tolerance: f32,
) -> Result<Vec<DuplicatePerturbation>> {
    let controls = control_means(data);
    // Per treatment: its deltas by context, for the non-control treatments observed somewhere.
    type DeltasByContext = Vec<(usize, Array1<f32>)>;
    let mut profiles: Vec<(usize, DeltasByContext)> = Vec::new();
    for t in 0..data.treatments.len() {
        if data.treatments[t].is_control() {
            continue;
        }
        let mut by_context = Vec::new();
        for (i, c) in data.conditions().iter().enumerate() {
            if c.treatment == t && controls[c.context].is_some() {
                by_context.push((c.context, condition_delta(data, i, &controls)?));
            }
        }
        if !by_context.is_empty() {
            by_context.sort_by_key(|(c, _)| *c);
            profiles.push((t, by_context));
        }
    }
    let same = |a: &[(usize, Array1<f32>)], b: &[(usize, Array1<f32>)]| {
        a.len() == b.len()
            && a.iter().zip(b).all(|((ca, da), (cb, db))| {
                ca == cb && da.iter().zip(db).all(|(x, y)| (x - y).abs() <= tolerance)
            })
    };
    let mut out = Vec::new();
    let mut is_duplicate = vec![false; profiles.len()];
    for i in 0..profiles.len() {
        if is_duplicate[i] {
            continue;
        }
        for j in i + 1..profiles.len() {
            if !is_duplicate[j] && same(&profiles[i].1, &profiles[j].1) {
                is_duplicate[j] = true;
                out.push(DuplicatePerturbation {
                    duplicate: data.treatments[profiles[j].0].label(&data.control_label),
                    kept: data.treatments[profiles[i].0].label(&data.control_label),
                });
            }
        }
    }
    Ok(out)
}

impl DeltaTable {
    /// The table of the non-control `conditions` of `data` (indices into `data.conditions()`).
    pub fn from_conditions(
        data: &PerturbationData,
        conditions: &[usize],
        vocab: &Vocabulary,
    ) -> Result<DeltaTable> {
        let controls = control_means(data);
        let mut entries = Vec::new();
        let mut rows = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for &i in conditions {
            let Some(entry) = vocab.entry_of(data, i)? else {
                continue;
            };
            if seen.insert(entry) {
                rows.push(condition_delta(data, i, &controls)?);
                entries.push(entry);
            }
        }
        let d = data.n_genes();
        let mut deltas = Array2::<f32>::zeros((entries.len(), d));
        for (mut row, delta) in deltas.rows_mut().into_iter().zip(&rows) {
            row.assign(delta);
        }
        Ok(DeltaTable { entries, deltas })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Row of an entry.
    pub fn position(&self, entry: Entry) -> Option<usize> {
        self.entries.iter().position(|&e| e == entry)
    }

    /// The sub-table of the given rows, in that order.
    pub fn select(&self, rows: &[usize]) -> DeltaTable {
        DeltaTable {
            entries: rows.iter().map(|&r| self.entries[r]).collect(),
            deltas: self.deltas.select(ndarray::Axis(0), rows),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellshift_data::CellAnnotations;

    /// Two contexts; A: control (1,1), P (3,1), Q (1,5); B: control (0,0), P (0,4).
    pub(crate) fn small_data() -> PerturbationData {
        let rows = [
            ("A", "control", [1.0, 1.0]),
            ("A", "control", [1.0, 1.0]),
            ("A", "P", [2.0, 1.0]),
            ("A", "P", [4.0, 1.0]),
            ("A", "Q", [1.0, 5.0]),
            ("B", "control", [0.0, 0.0]),
            ("B", "P", [0.0, 4.0]),
        ];
        let x = Array2::from_shape_fn((rows.len(), 2), |(i, j)| rows[i].2[j]);
        PerturbationData::new(
            vec!["g0".into(), "g1".into()],
            x,
            CellAnnotations {
                contexts: rows.iter().map(|r| r.0.to_string()).collect(),
                treatment_labels: rows.iter().map(|r| r.1.to_string()).collect(),
                ..CellAnnotations::default()
            },
            "control",
        )
        .unwrap()
    }

    #[test]
    fn deltas_are_condition_means_minus_context_control_means() {
        let data = small_data();
        let vocab = Vocabulary::new(&["P".into(), "Q".into()], &["A".into(), "B".into()]);
        let all: Vec<usize> = (0..data.conditions().len()).collect();
        let table = DeltaTable::from_conditions(&data, &all, &vocab).unwrap();
        assert_eq!(table.len(), 3, "control conditions are not entries");
        let get = |p, c| {
            let r = table
                .position(Entry {
                    perturbation: p,
                    context: c,
                })
                .unwrap();
            table.deltas.row(r).to_vec()
        };
        assert_eq!(get(0, 0), vec![2.0, 0.0]);
        assert_eq!(get(1, 0), vec![0.0, 4.0]);
        assert_eq!(get(0, 1), vec![0.0, 4.0]);
    }

    #[test]
    fn unknown_perturbations_are_named() {
        let data = small_data();
        let vocab = Vocabulary::new(&["P".into()], &["A".into(), "B".into()]);
        let all: Vec<usize> = (0..data.conditions().len()).collect();
        let err = DeltaTable::from_conditions(&data, &all, &vocab)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`Q`"), "{err}");
    }
}
