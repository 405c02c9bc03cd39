//! Welch t-statistics of every treatment group against the control cells, per gene — scanpy 1.11
//! `rank_genes_groups(method="t-test", reference=<control>)` semantics.
//!
//! Groups are treatments, pooled over contexts; the reference is all control cells of the chosen cells.
//! Per group and gene: mean and unbiased variance (f64 sums; squares of the f32 values formed in f32 as
//! scanpy does), then scipy's `ttest_ind_from_stats(equal_var=False)`:
//! `t = (m₁ − m₂) / sqrt(s₁²/n₁ + s₂²/n₂)`. A NaN statistic (both variances zero, equal means) becomes 0,
//! as in scanpy; ±∞ stays. scanpy stores the scores as float32 — [`GroupTTest::scores_f32`] gives that
//! rounding, which decides ties in the gene ranking.

use ndarray::Array2;

use crate::error::DataError;
use crate::model::PerturbationData;

/// t-statistics of each treatment group vs control, groups × genes.
#[derive(Clone, Debug)]
pub struct GroupTTest {
    /// Treatment index (into `data.treatments`) of each group, sorted.
    pub groups: Vec<usize>,
    /// Treatment label of each group.
    pub labels: Vec<String>,
    /// Cells per group.
    pub n_cells: Vec<usize>,
    /// Control cells.
    pub n_control: usize,
    /// Welch t-statistic, groups × genes (f64).
    pub t: Array2<f64>,
}

impl GroupTTest {
    /// The statistics rounded to f32, as scanpy stores them.
    pub fn scores_f32(&self) -> Array2<f32> {
        self.t.mapv(|v| v as f32)
    }

    /// Per gene: the largest signed statistic over groups (in f32, as scanpy's `scores`).
    pub fn max_over_groups(&self) -> Vec<f32> {
        let s = self.scores_f32();
        (0..s.ncols())
            .map(|g| {
                s.column(g)
                    .iter()
                    .copied()
                    .fold(f32::NEG_INFINITY, f32::max)
            })
            .collect()
    }

    /// The statistic of one group (by treatment label) and gene index.
    pub fn get(&self, label: &str, gene: usize) -> Option<f64> {
        self.labels
            .iter()
            .position(|l| l == label)
            .map(|i| self.t[[i, gene]])
    }
}

/// Mean and unbiased variance per gene over the given rows.
fn mean_var(data: &PerturbationData, rows: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let d = data.n_genes();
    let mut s = vec![0.0f64; d];
    let mut sq = vec![0.0f64; d];
    for &r in rows {
        for (g, &v) in data.x.row(r).iter().enumerate() {
            s[g] += v as f64;
            sq[g] += (v * v) as f64;
        }
    }
    let n = rows.len() as f64;
    let mean: Vec<f64> = s.iter().map(|v| v / n).collect();
    let var = (0..d)
        .map(|g| {
            let v = sq[g] / n - (s[g] / n).powi(2);
            if rows.len() > 1 {
                v * (n / (n - 1.0))
            } else {
                v
            }
        })
        .collect();
    (mean, var)
}

/// Welch t-test of every non-control treatment among `cells` against the control cells among `cells`.
/// Errors when there are no control cells, no treated cells, or a group with fewer than 2 cells.
pub fn welch_t_vs_control(
    data: &PerturbationData,
    cells: &[usize],
) -> Result<GroupTTest, DataError> {
    let mut by_treatment: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for &c in cells {
        if c >= data.n_cells() {
            return Err(DataError::Invalid(format!(
                "cell index {c} is out of range for {} cells",
                data.n_cells()
            )));
        }
        by_treatment
            .entry(data.cell_treatment[c])
            .or_default()
            .push(c);
    }
    let control: Vec<usize> = by_treatment
        .iter()
        .filter(|(t, _)| data.treatments[**t].is_control())
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    if control.len() < 2 {
        return Err(DataError::Invalid(format!(
            "the t-test against control needs at least 2 control cells (label `{}`) among the chosen cells, \
             found {}; check the control label",
            data.control_label,
            control.len()
        )));
    }
    let groups: Vec<(usize, Vec<usize>)> = by_treatment
        .into_iter()
        .filter(|(t, _)| !data.treatments[*t].is_control())
        .collect();
    if groups.is_empty() {
        return Err(DataError::Invalid(
            "the t-test against control needs treated cells among the chosen cells; none were found".into(),
        ));
    }
    if let Some((t, rows)) = groups.iter().find(|(_, rows)| rows.len() < 2) {
        return Err(DataError::Invalid(format!(
            "treatment `{}` has only {} cell(s) among the chosen cells; a t-test needs at least 2 (scanpy \
             refuses too); drop that treatment (e.g. a minimum of cells per treatment)",
            data.treatments[*t].label(&data.control_label),
            rows.len()
        )));
    }
    let (m2, v2) = mean_var(data, &control);
    let n2 = control.len() as f64;
    let d = data.n_genes();
    let mut t = Array2::<f64>::zeros((groups.len(), d));
    for (gi, (_, rows)) in groups.iter().enumerate() {
        let (m1, v1) = mean_var(data, rows);
        let n1 = rows.len() as f64;
        for g in 0..d {
            let s1 = v1[g].sqrt();
            let s2 = v2[g].sqrt();
            let vn1 = s1 * s1 / n1;
            let vn2 = s2 * s2 / n2;
            let stat = (m1[g] - m2[g]) / (vn1 + vn2).sqrt();
            t[[gi, g]] = if stat.is_nan() { 0.0 } else { stat };
        }
    }
    Ok(GroupTTest {
        labels: groups
            .iter()
            .map(|(t, _)| data.treatments[*t].label(&data.control_label))
            .collect(),
        n_cells: groups.iter().map(|(_, r)| r.len()).collect(),
        groups: groups.into_iter().map(|(t, _)| t).collect(),
        n_control: control.len(),
        t,
    })
}
