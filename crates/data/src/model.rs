//! The perturbation data model shared by every prior, method, baseline and metric: genes, contexts,
//! treatments, conditions (context × treatment) with their cells, and the MapPFN treatment encoding.

use std::collections::HashMap;

use ndarray::{Array1, Array2};

use crate::expression::Expression;

use crate::error::DataError;

/// What was done to the cells of a condition.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum Treatment {
    /// Unperturbed cells: the observational distribution of a context.
    Control,
    /// Single-gene knock-out (CRISPR KO, in-silico `do(gene := 0)`, or a hard intervention of a linear
    /// SCM). The label is the target gene's name as in `var`; the gene need not be measured.
    Knockout {
        /// The target gene.
        gene: String,
    },
    /// Several genes knocked out together (labels joined by `+` in `obs`).
    Combination {
        /// The target genes.
        genes: Vec<String>,
    },
    /// A small molecule at a dose.
    Compound {
        /// The compound.
        name: String,
        /// Its dose.
        dose: f64,
    },
}

/// Ordering key: control first, then knock-outs, combinations and compounds; doses compare by total order.
fn treatment_key(t: &Treatment) -> (u8, Vec<&str>, u64) {
    match t {
        Treatment::Control => (0, vec![], 0),
        Treatment::Knockout { gene } => (1, vec![gene.as_str()], 0),
        Treatment::Combination { genes } => (2, genes.iter().map(String::as_str).collect(), 0),
        Treatment::Compound { name, dose } => {
            // Map the f64 onto a u64 whose unsigned order is the IEEE total order.
            let bits = dose.to_bits();
            let key = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            (3, vec![name.as_str()], key)
        }
    }
}

impl PartialEq for Treatment {
    fn eq(&self, other: &Self) -> bool {
        treatment_key(self) == treatment_key(other)
    }
}
impl Eq for Treatment {}
impl PartialOrd for Treatment {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Treatment {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        treatment_key(self).cmp(&treatment_key(other))
    }
}
impl std::hash::Hash for Treatment {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        treatment_key(self).hash(state);
    }
}

impl Treatment {
    /// Parses an `obs` label: the control label gives [`Treatment::Control`], `NAME@DOSE` (a number after
    /// the last `@`) a compound at that dose, `A+B` a combination, anything else a single-gene knock-out
    /// of that gene.
    pub fn from_label(label: &str, control_label: &str) -> Treatment {
        if label == control_label {
            Treatment::Control
        } else if let Some(compound) = Self::compound_from_label(label) {
            compound
        } else if label.contains('+') {
            let genes: Vec<String> = label.split('+').map(|g| g.trim().to_string()).collect();
            Treatment::Combination { genes }
        } else {
            Treatment::Knockout {
                gene: label.to_string(),
            }
        }
    }

    /// A compound label `NAME@DOSE` (the form [`Treatment::label`] writes, e.g. `dexamethasone@100`):
    /// a non-empty name, `@`, and a finite number. `None` for anything else.
    fn compound_from_label(label: &str) -> Option<Treatment> {
        let (name, dose) = label.rsplit_once('@')?;
        let dose: f64 = dose.trim().parse().ok()?;
        (!name.trim().is_empty() && dose.is_finite()).then(|| Treatment::Compound {
            name: name.trim().to_string(),
            dose,
        })
    }

    /// The label written to `obs` (inverse of [`Treatment::from_label`]).
    pub fn label(&self, control_label: &str) -> String {
        match self {
            Treatment::Control => control_label.to_string(),
            Treatment::Knockout { gene } => gene.clone(),
            Treatment::Combination { genes } => genes.join("+"),
            Treatment::Compound { name, dose } => format!("{name}@{dose}"),
        }
    }

    /// True for the unperturbed condition.
    pub fn is_control(&self) -> bool {
        matches!(self, Treatment::Control)
    }

    /// The genes this treatment targets directly (empty for control and compounds).
    pub fn target_genes(&self) -> Vec<&str> {
        match self {
            Treatment::Knockout { gene } => vec![gene.as_str()],
            Treatment::Combination { genes } => genes.iter().map(String::as_str).collect(),
            Treatment::Control | Treatment::Compound { .. } => vec![],
        }
    }
}

/// How the expression values of a data set are scaled; detected from the data, never guessed silently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExpressionScale {
    /// Non-negative integers: raw UMI counts.
    RawCounts,
    /// Non-negative, non-integer values of moderate size: normalised and log1p-transformed.
    LogNormalized,
    /// Anything else (negative values, very large non-integers): used as given, with a warning.
    Other,
}

impl ExpressionScale {
    /// Inspects values: integers ≥ 0 → raw counts; non-integers in [0, 30] → log-normalised; else other.
    pub fn detect<'a>(values: impl IntoIterator<Item = &'a f32>) -> ExpressionScale {
        let mut all_integer = true;
        let mut min = f32::INFINITY;
        let mut max = f32::NEG_INFINITY;
        for &v in values {
            // Comparisons only (no branches on the integer test once it failed): vectorises well.
            all_integer &= v == v.round();
            min = min.min(v);
            max = max.max(v);
        }
        if min < 0.0 {
            ExpressionScale::Other
        } else if all_integer {
            ExpressionScale::RawCounts
        } else if max <= 30.0 {
            ExpressionScale::LogNormalized
        } else {
            ExpressionScale::Other
        }
    }

    /// Human-readable description for `inspect` and logs.
    pub fn describe(&self) -> &'static str {
        match self {
            ExpressionScale::RawCounts => "raw counts (non-negative integers)",
            ExpressionScale::LogNormalized => {
                "log-normalised (non-negative, non-integer, max ≤ 30)"
            }
            ExpressionScale::Other => "other scale (negative or very large non-integer values)",
        }
    }
}

/// One (context, treatment) condition with the indices of its cells in [`PerturbationData::x`].
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// Index into [`PerturbationData::contexts`].
    pub context: usize,
    /// Index into [`PerturbationData::treatments`].
    pub treatment: usize,
    /// Row indices of the condition's cells, in file order.
    pub cells: Vec<usize>,
    /// Intervention value of the treatment in this condition (1.0 unless given; 0.0 for control).
    pub value: f32,
}

/// A perturbation screen or a synthetic data set: a cells × genes matrix (dense, or CSR as a screen's
/// counts arrive) with, per cell, a context and a treatment. Conditions are computed once at construction and kept sorted by (context, treatment).
#[derive(Clone, Debug)]
pub struct PerturbationData {
    /// Gene names (the columns of `x`), unique.
    pub genes: Vec<String>,
    /// Expression, cells × genes, dense or sparse.
    pub x: Expression,
    /// Cell names (the rows of `x`), unique.
    pub cell_names: Vec<String>,
    /// Distinct context names, sorted.
    pub contexts: Vec<String>,
    /// Distinct treatments, sorted (control first).
    pub treatments: Vec<Treatment>,
    /// Per cell: index into `contexts`.
    pub cell_context: Vec<usize>,
    /// Per cell: index into `treatments`.
    pub cell_treatment: Vec<usize>,
    /// Per cell: intervention value (1.0 by default, 0.0 for control cells).
    pub cell_value: Vec<f32>,
    /// The label used for control cells in `obs`.
    pub control_label: String,
    /// Detected scale of `x`.
    pub scale: ExpressionScale,
    conditions: Vec<Condition>,
}

/// Per-cell annotations from which a [`PerturbationData`] is built.
#[derive(Clone, Debug, Default)]
pub struct CellAnnotations {
    /// Cell names; generated as `cell_<i>` when empty.
    pub cell_names: Vec<String>,
    /// Context name per cell; one context `default` when empty.
    pub contexts: Vec<String>,
    /// Treatment label per cell (the control label for control cells).
    pub treatment_labels: Vec<String>,
    /// Intervention value per cell; 1.0 for treated and 0.0 for control cells when empty.
    pub treatment_values: Vec<f32>,
}

impl PerturbationData {
    /// Builds and validates a data set: unique gene and cell names, finite values, consistent lengths,
    /// and one intervention value per condition.
    pub fn new(
        genes: Vec<String>,
        x: impl Into<Expression>,
        cells: CellAnnotations,
        control_label: &str,
    ) -> Result<PerturbationData, DataError> {
        let x: Expression = x.into();
        let n = x.nrows();
        if genes.len() != x.ncols() {
            return Err(DataError::Invalid(format!(
                "{} gene names for a matrix with {} columns; give one name per gene",
                genes.len(),
                x.ncols()
            )));
        }
        check_unique("gene", &genes)?;
        let cell_names = if cells.cell_names.is_empty() {
            (0..n).map(|i| format!("cell_{i}")).collect()
        } else {
            cells.cell_names
        };
        check_len("cell names", cell_names.len(), n)?;
        check_unique("cell", &cell_names)?;
        check_len("treatment labels", cells.treatment_labels.len(), n)?;
        let context_labels = if cells.contexts.is_empty() {
            vec!["default".to_string(); n]
        } else {
            cells.contexts
        };
        check_len("contexts", context_labels.len(), n)?;
        if let Some((row, col, v)) = x.first_non_finite() {
            return Err(DataError::NonFinite {
                what: "expression matrix".into(),
                row,
                col,
                value: v as f64,
            });
        }

        let (contexts, cell_context) = index_sorted(&context_labels, |c| c.clone());
        let (treatments, cell_treatment) = index_sorted(&cells.treatment_labels, |l| {
            Treatment::from_label(l, control_label)
        });
        let cell_value: Vec<f32> = if cells.treatment_values.is_empty() {
            cell_treatment
                .iter()
                .map(|&t| if treatments[t].is_control() { 0.0 } else { 1.0 })
                .collect()
        } else {
            check_len("treatment values", cells.treatment_values.len(), n)?;
            cells.treatment_values
        };
        let scale = ExpressionScale::detect(x.stored_values());
        let mut data = PerturbationData {
            genes,
            x,
            cell_names,
            contexts,
            treatments,
            cell_context,
            cell_treatment,
            cell_value,
            control_label: control_label.to_string(),
            scale,
            conditions: Vec::new(),
        };
        data.conditions = data.build_conditions()?;
        Ok(data)
    }

    fn build_conditions(&self) -> Result<Vec<Condition>, DataError> {
        let mut by_key: std::collections::BTreeMap<(usize, usize), Vec<usize>> = Default::default();
        for cell in 0..self.n_cells() {
            by_key
                .entry((self.cell_context[cell], self.cell_treatment[cell]))
                .or_default()
                .push(cell);
        }
        let mut conditions = Vec::with_capacity(by_key.len());
        for ((context, treatment), cells) in by_key {
            let value = self.cell_value[cells[0]];
            if let Some(&other) = cells.iter().find(|&&c| self.cell_value[c] != value) {
                return Err(DataError::Invalid(format!(
                    "condition ({}, {}) has cells with different intervention values ({} and {}); \
                     give one value per condition in the treatment-value column",
                    self.contexts[context],
                    self.treatments[treatment].label(&self.control_label),
                    value,
                    self.cell_value[other]
                )));
            }
            conditions.push(Condition {
                context,
                treatment,
                cells,
                value,
            });
        }
        Ok(conditions)
    }

    /// Number of cells (rows).
    pub fn n_cells(&self) -> usize {
        self.x.nrows()
    }

    /// Number of genes (columns).
    pub fn n_genes(&self) -> usize {
        self.x.ncols()
    }

    /// All conditions, sorted by (context, treatment).
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    /// The condition of a context and treatment, if it has cells.
    pub fn condition(&self, context: usize, treatment: usize) -> Option<&Condition> {
        self.conditions
            .binary_search_by(|c| (c.context, c.treatment).cmp(&(context, treatment)))
            .ok()
            .map(|i| &self.conditions[i])
    }

    /// Index of a context by name.
    pub fn context_index(&self, name: &str) -> Result<usize, DataError> {
        self.contexts
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| DataError::UnknownLabel {
                what: "context".into(),
                label: name.to_string(),
                available: self.contexts.clone(),
            })
    }

    /// Index of a treatment by its `obs` label.
    pub fn treatment_index(&self, label: &str) -> Result<usize, DataError> {
        let wanted = Treatment::from_label(label, &self.control_label);
        self.treatments
            .iter()
            .position(|t| *t == wanted)
            .ok_or_else(|| DataError::UnknownLabel {
                what: "treatment".into(),
                label: label.to_string(),
                available: self
                    .treatments
                    .iter()
                    .map(|t| t.label(&self.control_label))
                    .collect(),
            })
    }

    /// Index of a gene by name.
    pub fn gene_index(&self, gene: &str) -> Option<usize> {
        self.genes.iter().position(|g| g == gene)
    }

    /// The expression rows of a condition, copied into a new dense matrix.
    pub fn cells_of(&self, condition: &Condition) -> Array2<f32> {
        self.x.select_rows(&condition.cells)
    }

    /// The MapPFN treatment encoding of a condition: a one-hot over the genes carrying the intervention
    /// value (a sum of one-hots for combinations), zeros for control. Errors if a target is not measured.
    pub fn treatment_vector(&self, condition: &Condition) -> Result<Array1<f32>, DataError> {
        encode_treatment(
            &self.genes,
            &self.treatments[condition.treatment],
            condition.value,
        )
    }

    /// Returns a copy restricted to the given cells (in the given order).
    pub fn select_cells(&self, cells: &[usize]) -> Result<PerturbationData, DataError> {
        let annotations = CellAnnotations {
            cell_names: cells.iter().map(|&c| self.cell_names[c].clone()).collect(),
            contexts: cells
                .iter()
                .map(|&c| self.contexts[self.cell_context[c]].clone())
                .collect(),
            treatment_labels: cells
                .iter()
                .map(|&c| self.treatments[self.cell_treatment[c]].label(&self.control_label))
                .collect(),
            treatment_values: cells.iter().map(|&c| self.cell_value[c]).collect(),
        };
        PerturbationData::new(
            self.genes.clone(),
            self.x.subset_rows(cells),
            annotations,
            &self.control_label,
        )
    }

    /// Returns a copy restricted to the named genes (in the given order); errors on an unknown gene.
    pub fn select_genes(&self, genes: &[String]) -> Result<PerturbationData, DataError> {
        let columns: Vec<usize> = genes
            .iter()
            .map(|g| {
                self.gene_index(g)
                    .ok_or_else(|| DataError::GeneNotMeasured {
                        gene: g.clone(),
                        hint: "choose genes that are columns of the data (see `cellshift inspect`)"
                            .into(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(PerturbationData {
            genes: genes.to_vec(),
            x: self.x.subset_columns(&columns),
            cell_names: self.cell_names.clone(),
            contexts: self.contexts.clone(),
            treatments: self.treatments.clone(),
            cell_context: self.cell_context.clone(),
            cell_treatment: self.cell_treatment.clone(),
            cell_value: self.cell_value.clone(),
            control_label: self.control_label.clone(),
            scale: self.scale,
            conditions: self.conditions.clone(),
        })
    }

    /// Stacks data sets with the same genes (e.g. one simulated per context) into one, in order. With
    /// `prefix_cell_names`, each cell name gets its part's first context as a prefix (`ctx:cell`), so
    /// parts that reuse names stay unique. The matrix stays CSR when every part is CSR, else dense.
    pub fn stack(
        parts: Vec<PerturbationData>,
        prefix_cell_names: bool,
    ) -> Result<PerturbationData, DataError> {
        let Some(first) = parts.first() else {
            return Err(DataError::Invalid(
                "nothing to stack: no data sets were given".into(),
            ));
        };
        if parts.len() == 1 {
            return Ok(parts.into_iter().next().expect("one part"));
        }
        let genes = first.genes.clone();
        let control = first.control_label.clone();
        if let Some(other) = parts.iter().find(|p| p.genes != genes) {
            return Err(DataError::Invalid(format!(
                "the data sets to stack have different genes ({} and {}); give every context the same genes",
                genes.len(),
                other.genes.len()
            )));
        }
        let mut annotations = CellAnnotations::default();
        for part in &parts {
            let a = part.annotations();
            if prefix_cell_names {
                let prefix = &part.contexts[0];
                annotations
                    .cell_names
                    .extend(a.cell_names.iter().map(|c| format!("{prefix}:{c}")));
            } else {
                annotations.cell_names.extend(a.cell_names);
            }
            annotations.contexts.extend(a.contexts);
            annotations.treatment_labels.extend(a.treatment_labels);
            annotations.treatment_values.extend(a.treatment_values);
        }
        let matrices: Vec<&Expression> = parts.iter().map(|p| &p.x).collect();
        PerturbationData::new(
            genes,
            Expression::stack_rows(&matrices),
            annotations,
            &control,
        )
    }

    /// Per-cell annotations of this data set (to rebuild or write it).
    pub fn annotations(&self) -> CellAnnotations {
        CellAnnotations {
            cell_names: self.cell_names.clone(),
            contexts: self
                .cell_context
                .iter()
                .map(|&c| self.contexts[c].clone())
                .collect(),
            treatment_labels: self
                .cell_treatment
                .iter()
                .map(|&t| self.treatments[t].label(&self.control_label))
                .collect(),
            treatment_values: self.cell_value.clone(),
        }
    }
}

/// The MapPFN treatment encoding over a gene list: `value` at each target gene's column, zeros for
/// control. Errors with the gene's name when a target is not one of `genes`.
pub fn encode_treatment(
    genes: &[String],
    treatment: &Treatment,
    value: f32,
) -> Result<Array1<f32>, DataError> {
    let mut v = Array1::<f32>::zeros(genes.len());
    match treatment {
        Treatment::Compound { name, .. } => {
            return Err(DataError::Invalid(format!(
            "compound `{name}` has no one-hot gene encoding; MapPFN handles gene knock-outs only"
        )))
        }
        _ => {
            for gene in treatment.target_genes() {
                let j = genes.iter().position(|g| g == gene).ok_or_else(|| DataError::GeneNotMeasured {
                    gene: gene.to_string(),
                    hint: "a knock-out is encoded as a one-hot over the measured genes, so its target must be \
                           one of them; add the gene to the panel or skip this treatment"
                        .into(),
                })?;
                v[j] = value;
            }
        }
    }
    Ok(v)
}

/// Distinct values of `labels` (mapped by `make`), sorted and deduplicated, with each label's index into
/// them. Each distinct label is converted once, so this stays fast for millions of cells.
fn index_sorted<T: Ord + Clone>(
    labels: &[String],
    make: impl Fn(&String) -> T,
) -> (Vec<T>, Vec<usize>) {
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    let mut distinct_labels: Vec<&String> = Vec::new();
    let label_ids: Vec<usize> = labels
        .iter()
        .map(|l| {
            *first_seen.entry(l.as_str()).or_insert_with(|| {
                distinct_labels.push(l);
                distinct_labels.len() - 1
            })
        })
        .collect();
    let made: Vec<T> = distinct_labels.iter().map(|l| make(l)).collect();
    let mut values = made.clone();
    values.sort();
    values.dedup();
    let position: Vec<usize> = made
        .iter()
        .map(|v| {
            values
                .binary_search(v)
                .expect("value comes from the same list")
        })
        .collect();
    (
        values,
        label_ids.into_iter().map(|id| position[id]).collect(),
    )
}

fn check_len(what: &str, got: usize, cells: usize) -> Result<(), DataError> {
    if got != cells {
        return Err(DataError::Invalid(format!(
            "{got} {what} for {cells} cells; give exactly one per cell"
        )));
    }
    Ok(())
}

fn check_unique(what: &str, names: &[String]) -> Result<(), DataError> {
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    for name in names {
        if !seen.insert(name.as_str()) {
            return Err(DataError::Duplicate {
                what: what.to_string(),
                name: name.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn compound_labels_parse_and_round_trip() {
        let t = Treatment::from_label("dexamethasone@100", "ctrl");
        assert_eq!(
            t,
            Treatment::Compound {
                name: "dexamethasone".into(),
                dose: 100.0
            }
        );
        assert_eq!(Treatment::from_label(&t.label("ctrl"), "ctrl"), t);
        let half = Treatment::Compound {
            name: "SAHA".into(),
            dose: 0.5,
        };
        assert_eq!(Treatment::from_label(&half.label("ctrl"), "ctrl"), half);
        // Not a number after `@`, or no name: a gene label as before.
        for label in ["GENE@X", "@10", "A@B+C"] {
            assert!(
                !matches!(
                    Treatment::from_label(label, "ctrl"),
                    Treatment::Compound { .. }
                ),
                "{label}"
            );
        }
        assert_eq!(
            Treatment::from_label("KLF1+TGFBR2", "ctrl"),
            Treatment::Combination {
                genes: vec!["KLF1".into(), "TGFBR2".into()]
            }
        );
    }

    fn small() -> PerturbationData {
        let x = array![
            [1.0, 0.0, 2.0],
            [0.0, 3.0, 1.0],
            [2.0, 2.0, 0.0],
            [4.0, 1.0, 1.0],
            [1.0, 1.0, 1.0]
        ];
        let cells = CellAnnotations {
            contexts: ["b", "a", "a", "b", "a"].map(String::from).to_vec(),
            treatment_labels: ["G2", "ctrl", "G1+G3", "ctrl", "G2"]
                .map(String::from)
                .to_vec(),
            treatment_values: vec![0.5, 0.0, 1.0, 0.0, 0.5],
            ..CellAnnotations::default()
        };
        PerturbationData::new(
            ["G1", "G2", "G3"].map(String::from).to_vec(),
            x,
            cells,
            "ctrl",
        )
        .unwrap()
    }

    #[test]
    fn contexts_and_treatments_are_sorted_with_control_first() {
        let data = small();
        assert_eq!(data.contexts, vec!["a", "b"]);
        assert_eq!(data.treatments[0], Treatment::Control);
        assert_eq!(
            data.treatments[1],
            Treatment::Knockout { gene: "G2".into() }
        );
        assert_eq!(
            data.treatments[2],
            Treatment::Combination {
                genes: vec!["G1".into(), "G3".into()]
            }
        );
        assert_eq!(data.cell_context, vec![1, 0, 0, 1, 0]);
        assert_eq!(data.cell_treatment, vec![1, 0, 2, 0, 1]);
        assert_eq!(data.scale, ExpressionScale::RawCounts);
    }

    #[test]
    fn conditions_group_cells_and_encode_treatments() {
        let data = small();
        let summary: Vec<(usize, usize, Vec<usize>)> = data
            .conditions()
            .iter()
            .map(|c| (c.context, c.treatment, c.cells.clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, 0, vec![1]),
                (0, 1, vec![4]),
                (0, 2, vec![2]),
                (1, 0, vec![3]),
                (1, 1, vec![0])
            ]
        );
        let ko = data.condition(1, 1).unwrap();
        assert_eq!(
            data.treatment_vector(ko).unwrap().to_vec(),
            vec![0.0, 0.5, 0.0]
        );
        let combo = data.condition(0, 2).unwrap();
        assert_eq!(
            data.treatment_vector(combo).unwrap().to_vec(),
            vec![1.0, 0.0, 1.0]
        );
        let control = data.condition(0, 0).unwrap();
        assert_eq!(
            data.treatment_vector(control).unwrap().to_vec(),
            vec![0.0; 3]
        );
    }

    #[test]
    fn unmeasured_target_cannot_be_encoded() {
        let err = encode_treatment(
            &["A".into()],
            &Treatment::Knockout { gene: "B".into() },
            1.0,
        )
        .unwrap_err();
        assert!(err.to_string().contains("`B` is not measured"), "{err}");
    }

    #[test]
    fn scale_detection_distinguishes_counts_log_and_other() {
        assert_eq!(
            ExpressionScale::detect(&[0.0, 3.0, 12.0]),
            ExpressionScale::RawCounts
        );
        assert_eq!(
            ExpressionScale::detect(&[0.0, 1.3, 4.2]),
            ExpressionScale::LogNormalized
        );
        assert_eq!(
            ExpressionScale::detect(&[-0.5, 1.3]),
            ExpressionScale::Other
        );
        assert_eq!(
            ExpressionScale::detect(&[0.5, 1000.5]),
            ExpressionScale::Other
        );
    }

    #[test]
    fn invalid_input_is_rejected_with_a_fix() {
        let x = array![[1.0, f32::NAN]];
        let cells = CellAnnotations {
            treatment_labels: vec!["ctrl".into()],
            ..CellAnnotations::default()
        };
        let err = PerturbationData::new(vec!["A".into(), "B".into()], x, cells.clone(), "ctrl")
            .unwrap_err();
        assert!(err.to_string().contains("non-finite"), "{err}");
        let err = PerturbationData::new(
            vec!["A".into(), "A".into()],
            array![[1.0, 2.0]],
            cells,
            "ctrl",
        )
        .unwrap_err();
        assert!(err.to_string().contains("duplicate gene name `A`"), "{err}");
        let mixed = CellAnnotations {
            treatment_labels: vec!["G".into(), "G".into()],
            treatment_values: vec![1.0, 2.0],
            ..CellAnnotations::default()
        };
        let err = PerturbationData::new(vec!["G".into()], array![[1.0], [2.0]], mixed, "ctrl")
            .unwrap_err();
        assert!(
            err.to_string().contains("different intervention values"),
            "{err}"
        );
    }
}
