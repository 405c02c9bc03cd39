//! The linear baseline of Ahlmann-Eltze, Huber & Anders (Nat Methods 2025; "LPM" in peers.md §5), with the
//! gene and perturbation embeddings both taken from the training data, fitted **per context** (the
//! reference fits one data set, i.e. one cell line, at a time).
//!
//! For context c, with μ₀ the mean of all of c's control cells:
//! * X (d × m): pseudo-bulks of c's control condition and of every training condition of c (as the
//!   reference, whose training set always contains `ctrl`);
//! * gene embedding G (d × k): PCA scores of the genes in X, with R's `prcomp` semantics as the reference
//!   calls it on the genes × conditions matrix — each condition's column is centred over the genes, and
//!   G = U_k Σ_k; k = `pca_dim` (default 10), capped at min(d, m);
//! * Y (d × m′): change vs μ₀ of the control condition (a zero column) and of each training single-gene
//!   knock-out whose gene is measured (other training conditions enter the PCA but not Y, as in the
//!   reference); P (m′ × k): the row of G of each knock-out's gene, a zero row for control;
//! * b = row means of Y; W = (GᵀG + λI)⁻¹ Gᵀ (Y − b) P (PᵀP + λI)⁻¹ with λ = `ridge` (default 0.1), the
//!   closed-form double ridge of the reference;
//! * prediction for a knock-out of measured gene q: change = G W G[q]ᵀ + b, returned as the task's control
//!   cells (resampled to n) plus that change (the reference's pseudo-bulk is μ₀ + change).
//!
//! Errors: the query's gene not measured; a combination or compound (the model embeds one gene); a
//! context without control cells or without a training knock-out of a measured gene. A control query gets
//! a zero change. The PCA uses a Jacobi eigensolver on the smaller of the d × d and m × m Gram matrices.

use cellshift_data::FitContext;
use cellshift_data::{PerturbationData, PredictError, Prediction, Predictor, Task, Treatment};
use ndarray::{Array1, Array2};

use crate::error::BaselineError;
use crate::shared::effects::TrainingEffects;
use crate::shared::linalg::{cholesky_solve, pca_scores};
use crate::shared::resample::shifted_control_cells;

/// The fitted linear model of one context.
#[derive(Clone, Debug)]
struct ContextModel {
    /// Gene embedding G, d × k.
    gene_embedding: Array2<f64>,
    /// Coefficients W, k × k.
    coefficients: Array2<f64>,
    /// Row means b of the training changes, length d.
    center: Array1<f64>,
    /// The λ used (relative for [`Ridge::Relative`] and [`Ridge::CrossValidated`]).
    ridge: f64,
    /// Perturbation embeddings are unit-length rows of G.
    unit_rows: bool,
}

/// Row `row` of `g`, scaled to unit length when `unit` (a zero row stays zero).
fn unit_row(g: &Array2<f64>, row: usize, unit: bool) -> Array1<f64> {
    let r = g.row(row).to_owned();
    let norm = r.dot(&r).sqrt();
    if unit && norm > 0.0 {
        r / norm
    } else {
        r
    }
}

#[derive(Clone, Debug)]
struct LinearFit {
    effects: TrainingEffects,
    /// Per context: its model, or why it could not be fitted.
    models: Vec<Result<ContextModel, String>>,
}

/// How the ridge penalty λ is set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ridge {
    /// λ as given, added to GᵀG and PᵀP (the reference's R code: 0.1).
    Absolute(f64),
    /// λ times the mean eigenvalue of each Gram matrix (λ·tr(GᵀG)/k, λ·tr(PᵀP)/k): the same shrinkage
    /// whatever the scale of the data.
    Relative(f64),
    /// The relative λ of [`CROSS_VALIDATED_RIDGES`] with the lowest error in predicting held-out training
    /// knock-outs (folds over the context's training knock-outs; each fold's PCA leaves them out), then
    /// refitted on all of them. The test perturbations are never seen.
    CrossValidated,
}

/// The relative penalties [`Ridge::CrossValidated`] chooses from.
pub const CROSS_VALIDATED_RIDGES: [f64; 5] = [100.0, 10.0, 1.0, 0.1, 0.01];

/// At most this many folds of the cross-validation (fewer with fewer training knock-outs).
const MAX_FOLDS: usize = 5;

/// Ahlmann-Eltze et al.'s linear model: PCA gene embedding, perturbation = its gene's embedding row,
/// double ridge regression; one model per context.
///
/// The reference embeds a knocked-out gene by its row of G, whose length grows with the gene's
/// expression and variance. A query gene whose row is much longer than every training knock-out's is
/// extrapolated: on the demo's 50-gene networks (25 training knock-outs) two such genes got predicted
/// changes of norm 44–50 against 1.5–7 for the others, and the baseline scored W2 178 and magnitude ratio
/// 5.7 against the context mean's 30 and 0.23. Cross-validation over the training knock-outs cannot see it
/// (their rows are not that long). The default therefore embeds a knock-out by the *direction* of its
/// row (unit length, training and query alike) and chooses a relative λ per context by cross-validation
/// ([`Ridge::CrossValidated`]): W2 28.8, RMSE 0.39, magnitude ratio 0.33 there (BENCHMARKS.md).
/// [`LinearModel::new`] is the reference.
#[derive(Clone, Debug)]
pub struct LinearModel {
    pca_dim: usize,
    ridge: Ridge,
    unit_rows: bool,
    fit: Option<LinearFit>,
}

impl Default for LinearModel {
    /// 10 components, unit-length perturbation embeddings, λ chosen per context by cross-validation
    /// ([`Ridge::CrossValidated`]).
    fn default() -> Self {
        LinearModel {
            pca_dim: Self::DEFAULT_PCA_DIM,
            ridge: Ridge::CrossValidated,
            unit_rows: true,
            fit: None,
        }
    }
}

impl LinearModel {
    /// Registry name of this baseline.
    pub const NAME: &'static str = "linear";
    /// Number of principal components of the reference (`--pca_dim 10`).
    pub const DEFAULT_PCA_DIM: usize = 10;
    /// Ridge penalty λ of the reference (`--ridge_penalty 0.1`).
    pub const DEFAULT_RIDGE: f64 = 0.1;

    /// A model with `pca_dim` components (≥ 1), the ridge setting `ridge`, and perturbation embeddings
    /// that are G's rows scaled to unit length (`unit_rows`) or G's rows as they are (the reference).
    pub fn with_settings(
        pca_dim: usize,
        ridge: Ridge,
        unit_rows: bool,
    ) -> Result<Self, BaselineError> {
        let mut model = match ridge {
            Ridge::Absolute(l) | Ridge::Relative(l) => Self::new(pca_dim, l)?,
            Ridge::CrossValidated => Self::new(pca_dim, Self::DEFAULT_RIDGE)?,
        };
        model.ridge = ridge;
        model.unit_rows = unit_rows;
        Ok(model)
    }

    /// The reference's model: `pca_dim` components (≥ 1) and the absolute ridge penalty `ridge` (finite,
    /// ≥ 0; with 0 the fit fails on singular systems).
    pub fn new(pca_dim: usize, ridge: f64) -> Result<Self, BaselineError> {
        if pca_dim == 0 {
            return Err(BaselineError::InvalidParameter(
                "linear: pca_dim must be at least 1 (the reference uses 10)".into(),
            ));
        }
        if !ridge.is_finite() || ridge < 0.0 {
            return Err(BaselineError::InvalidParameter(format!(
                "linear: the ridge penalty must be finite and ≥ 0, got {ridge} (the reference uses 0.1)"
            )));
        }
        Ok(LinearModel {
            pca_dim,
            ridge: Ridge::Absolute(ridge),
            unit_rows: false,
            fit: None,
        })
    }

    /// Number of principal components requested.
    pub fn pca_dim(&self) -> usize {
        self.pca_dim
    }

    /// The ridge setting.
    pub fn ridge(&self) -> Ridge {
        self.ridge
    }

    /// The relative (or, for [`Ridge::Absolute`], absolute) λ each fitted context uses, by context name;
    /// `None` for a context without a model.
    pub fn fitted_ridges(&self) -> Vec<(String, Option<f64>)> {
        self.fit.as_ref().map_or_else(Vec::new, |fit| {
            fit.effects
                .contexts
                .iter()
                .zip(&fit.models)
                .map(|(c, m)| (c.clone(), m.as_ref().ok().map(|m| m.ridge)))
                .collect()
        })
    }

    /// The predicted pseudo-bulk change (versus the context's control mean) of the task's query, in f64;
    /// `predict` adds it to the resampled control cells.
    pub fn predicted_change(&self, task: &Task) -> Result<Array1<f64>, PredictError> {
        Ok(self.change(task)?)
    }

    fn change(&self, task: &Task) -> Result<Array1<f64>, BaselineError> {
        let fit = self.fit.as_ref().ok_or_else(|| BaselineError::NotFitted {
            baseline: Self::NAME.into(),
        })?;
        let effects = &fit.effects;
        effects.check_task(task)?;
        let query = effects.query_treatment(task)?;
        let gene = match &query {
            Treatment::Control => return Ok(Array1::zeros(effects.n_genes())),
            Treatment::Knockout { gene } => gene,
            other => {
                return Err(BaselineError::UnsupportedTreatment {
                    baseline: Self::NAME.into(),
                    label: effects.label(other),
                    reason: "the linear model embeds a single perturbed gene; use `additive` or `matching_mean` for \
                             combinations and `perturbation_mean` for compounds"
                        .into(),
                })
            }
        };
        let row = effects
            .genes
            .iter()
            .position(|g| g == gene)
            .ok_or_else(|| BaselineError::GeneNotMeasured {
                baseline: Self::NAME.into(),
                gene: gene.clone(),
            })?;
        let not_trained = |reason: String| BaselineError::ContextNotTrained {
            baseline: Self::NAME.into(),
            context: task.context.clone(),
            reason,
        };
        let context = effects.context_index(&task.context).ok_or_else(|| {
            not_trained(format!(
                "the model is fitted per context and this context is not in the fitted data ({})",
                effects.contexts.join(", ")
            ))
        })?;
        let model = fit.models[context]
            .as_ref()
            .map_err(|reason| not_trained(reason.clone()))?;
        Ok(model.change_of_gene(row))
    }

    /// Fits the model of one context, or says why it cannot be fitted.
    fn fit_context(
        &self,
        effects: &TrainingEffects,
        context: usize,
    ) -> Result<Result<ContextModel, String>, BaselineError> {
        let Some(control) = effects.control_mean(context) else {
            return Ok(Err("the context has no control cells in the data".into()));
        };
        let conditions: Vec<(&Treatment, &Array1<f64>)> = effects
            .in_context(context)
            .map(|(t, e)| (t, &e.mean))
            .collect();
        let knockouts: Vec<(usize, &Array1<f64>)> = conditions
            .iter()
            .filter_map(|(t, mean)| match t {
                Treatment::Knockout { gene } => effects
                    .genes
                    .iter()
                    .position(|g| g == gene)
                    .map(|row| (row, *mean)),
                _ => None,
            })
            .collect();
        if knockouts.is_empty() {
            return Ok(Err(
                "no single-gene knock-out of a measured gene is among its training conditions; the linear model \
                 needs at least one to fit"
                    .into(),
            ));
        }
        let conditions: Vec<(Option<usize>, &Array1<f64>)> = conditions
            .iter()
            .map(|(t, mean)| {
                let row = match t {
                    Treatment::Knockout { gene } => effects.genes.iter().position(|g| g == gene),
                    _ => None,
                };
                (row, *mean)
            })
            .collect();
        let (relative, ridge) = match self.ridge {
            Ridge::Absolute(l) => (false, l),
            Ridge::Relative(l) => (true, l),
            Ridge::CrossValidated => (true, self.cross_validated_ridge(control, &conditions)?),
        };
        Ok(Ok(fit_linear(
            control,
            &conditions,
            self.pca_dim,
            ridge,
            relative,
            self.unit_rows,
        )?))
    }

    /// The relative λ of [`CROSS_VALIDATED_RIDGES`] that best predicts held-out training knock-outs:
    /// the knock-outs are dealt into at most [`MAX_FOLDS`] folds (knock-out i into fold i mod folds, in the
    /// data's order); each fold is predicted by a model fitted without it (its conditions also leave the
    /// PCA); the error is the summed squared difference of the predicted and measured changes. Ties go to
    /// the larger λ. With fewer than 2 knock-outs nothing can be held out and λ = 1.
    fn cross_validated_ridge(
        &self,
        control: &Array1<f64>,
        conditions: &[(Option<usize>, &Array1<f64>)],
    ) -> Result<f64, BaselineError> {
        let knockouts: Vec<usize> = (0..conditions.len())
            .filter(|&i| conditions[i].0.is_some())
            .collect();
        if knockouts.len() < 2 {
            return Ok(1.0);
        }
        let folds = knockouts.len().min(MAX_FOLDS);
        let mut best = (f64::INFINITY, 1.0);
        for &ridge in &CROSS_VALIDATED_RIDGES {
            let mut error = 0.0;
            for fold in 0..folds {
                let held: Vec<usize> = knockouts
                    .iter()
                    .enumerate()
                    .filter(|(n, _)| n % folds == fold)
                    .map(|(_, &i)| i)
                    .collect();
                let kept: Vec<(Option<usize>, &Array1<f64>)> = (0..conditions.len())
                    .filter(|i| !held.contains(i))
                    .map(|i| conditions[i])
                    .collect();
                let model = fit_linear(control, &kept, self.pca_dim, ridge, true, self.unit_rows)?;
                for &i in &held {
                    let (Some(row), mean) = conditions[i] else {
                        continue;
                    };
                    let predicted = model.change_of_gene(row);
                    error += (&predicted - &(mean - control)).mapv(|v| v * v).sum();
                }
            }
            if error < best.0 {
                best = (error, ridge);
            }
        }
        Ok(best.1)
    }
}

impl ContextModel {
    /// The predicted change of a knock-out of the gene in row `row`: G W G[row]ᵀ + b.
    fn change_of_gene(&self, row: usize) -> Array1<f64> {
        self.gene_embedding
            .dot(&self.coefficients.dot(&self.perturbation_embedding(row)))
            + &self.center
    }

    /// The perturbation embedding of a knock-out of the gene in row `row`: its row of G, scaled to unit
    /// length when `unit_rows`.
    fn perturbation_embedding(&self, row: usize) -> Array1<f64> {
        unit_row(&self.gene_embedding, row, self.unit_rows)
    }
}

/// Fits the linear model of one context from its control mean and its training conditions' means (each
/// with the row of its knocked-out gene, `None` for conditions that are not single knock-outs of a measured
/// gene), with ridge λ (`relative`: times each Gram matrix's mean eigenvalue) and, with `unit_rows`,
/// unit-length perturbation embeddings.
fn fit_linear(
    control: &Array1<f64>,
    conditions: &[(Option<usize>, &Array1<f64>)],
    pca_dim: usize,
    ridge: f64,
    relative: bool,
    unit_rows: bool,
) -> Result<ContextModel, BaselineError> {
    let d = control.len();
    let m = conditions.len() + 1;
    let mut x = Array2::<f64>::zeros((d, m));
    x.column_mut(0).assign(control);
    for (j, (_, mean)) in conditions.iter().enumerate() {
        x.column_mut(j + 1).assign(*mean);
    }
    let g = pca_scores(&x, pca_dim)?;
    let k = g.ncols();
    let knockouts: Vec<(usize, &Array1<f64>)> = conditions
        .iter()
        .filter_map(|(row, mean)| row.map(|r| (r, *mean)))
        .collect();
    // Y: control's zero column, then the knock-outs' changes; P: zero row, then the genes' rows of G.
    let mut y = Array2::<f64>::zeros((d, knockouts.len() + 1));
    let mut p = Array2::<f64>::zeros((knockouts.len() + 1, k));
    for (j, (row, mean)) in knockouts.iter().enumerate() {
        y.column_mut(j + 1).assign(&(*mean - control));
        p.row_mut(j + 1).assign(&unit_row(&g, *row, unit_rows));
    }
    let center = y
        .mean_axis(ndarray::Axis(1))
        .unwrap_or_else(|| Array1::zeros(d));
    let y_centred = &y - &center.view().insert_axis(ndarray::Axis(1));
    let (gtg, ptp) = (g.t().dot(&g), p.t().dot(&p));
    let penalty = |gram: &Array2<f64>| {
        if relative {
            // The mean eigenvalue (a floor keeps an all-zero Gram matrix solvable).
            ridge * (gram.diag().sum() / k as f64).max(1e-12)
        } else {
            ridge
        }
    };
    let eye = Array2::<f64>::eye(k);
    let left = cholesky_solve(
        &(&gtg + &(&eye * penalty(&gtg))),
        &g.t().dot(&y_centred).dot(&p),
    )?;
    // W = left (PᵀP + λI)⁻¹, i.e. Wᵀ = (PᵀP + λI)⁻¹ leftᵀ (the matrix is symmetric).
    let coefficients = cholesky_solve(&(&ptp + &(&eye * penalty(&ptp))), &left.t().to_owned())?
        .t()
        .to_owned();
    Ok(ContextModel {
        gene_embedding: g,
        coefficients,
        center,
        ridge,
        unit_rows,
    })
}

impl Predictor for LinearModel {
    fn name(&self) -> &str {
        Self::NAME
    }

    /// Fits one model per context with training perturbations; errors if no context can be fitted.
    fn fit(
        &mut self,
        data: &PerturbationData,
        train_conditions: &[usize],
        _ctx: &mut FitContext<'_>,
    ) -> Result<(), PredictError> {
        let effects = TrainingEffects::from_training(Self::NAME, data, train_conditions)?;
        let mut models = Vec::with_capacity(effects.contexts.len());
        for context in 0..effects.contexts.len() {
            let trained = effects.in_context(context).next().is_some();
            models.push(if trained {
                self.fit_context(&effects, context)?
            } else {
                Err("no perturbation of this context is among the training conditions".into())
            });
        }
        if models.iter().all(Result::is_err) {
            let reasons: Vec<String> = effects
                .contexts
                .iter()
                .zip(&models)
                .filter_map(|(c, m)| m.as_ref().err().map(|r| format!("{c}: {r}")))
                .collect();
            return Err(BaselineError::NoTrainingData {
                baseline: Self::NAME.into(),
                reason: reasons.join("; "),
            }
            .into());
        }
        self.fit = Some(LinearFit { effects, models });
        Ok(())
    }

    fn predict(&self, task: &Task, n_cells: usize, seed: u64) -> Result<Prediction, PredictError> {
        let change = self.change(task)?;
        Ok(Prediction::Cells(shifted_control_cells(
            task.observational.view(),
            &change,
            n_cells,
            seed,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::fixture;
    use cellshift_data::CellAnnotations;

    const GENES: [&str; 6] = ["G0", "G1", "G2", "G3", "G4", "G5"];
    /// Condition labels; 0 is control, 7 (G5) is held out of training.
    const CONDS: [&str; 8] = ["control", "G0", "G1", "G2", "G3", "G4", "X9", "G5"];

    /// The closed-form cell values shared with `reference/linear_reference.py`.
    fn value(context: usize, cond: usize, cell: usize, gene: usize) -> f32 {
        ((7 * cond + 3 * cell + 5 * gene + cond * gene + 4 * context) % 13) as f32 * 0.25
            + 0.5 * context as f32
    }

    /// Two contexts L (0) and M (1), 3 cells per condition; trains on everything but the G5 knock-outs.
    fn data() -> (PerturbationData, Vec<usize>) {
        let mut x = Vec::new();
        let mut contexts = Vec::new();
        let mut labels = Vec::new();
        for (ctx, name) in ["L", "M"].iter().enumerate() {
            for (cond, label) in CONDS.iter().enumerate() {
                for cell in 0..3 {
                    x.extend((0..6).map(|g| value(ctx, cond, cell, g)));
                    contexts.push(name.to_string());
                    labels.push(label.to_string());
                }
            }
        }
        let n = labels.len();
        let data = PerturbationData::new(
            GENES.iter().map(|g| g.to_string()).collect(),
            Array2::from_shape_vec((n, 6), x).unwrap(),
            CellAnnotations {
                contexts,
                treatment_labels: labels,
                ..Default::default()
            },
            "control",
        )
        .unwrap();
        let g5 = data.treatment_index("G5").unwrap();
        let train = (0..data.conditions().len())
            .filter(|&i| data.conditions()[i].treatment != g5)
            .collect();
        (data, train)
    }

    /// A query task whose observational set is the context's control cells (L's for a context not in
    /// the data).
    fn query(data: &PerturbationData, context: &str, label: &str) -> Task {
        let c = data
            .context_index(context)
            .or_else(|_| data.context_index("L"))
            .unwrap();
        let control = data.cells_of(
            data.condition(c, data.treatment_index("control").unwrap())
                .unwrap(),
        );
        fixture::task(context, control, vec![], &[label], None)
    }

    #[test]
    fn matches_the_numpy_reference() {
        // Expected values from reference/linear_reference.py (independent numpy SVD + solve).
        let cases: [(usize, f64, [f64; 6], [f64; 6]); 3] = [
            (
                3,
                0.1,
                [
                    0.5042561216,
                    -1.2166897368,
                    0.829552116,
                    0.3942339018,
                    0.4583012008,
                    -0.1918758256,
                ],
                [
                    1.2542561216,
                    0.7833102632,
                    1.9128854493,
                    1.6442339018,
                    1.8749678674,
                    1.3914575077,
                ],
            ),
            (
                10,
                0.1,
                [
                    0.3727170162,
                    -0.0954900584,
                    0.3394279677,
                    0.027894388,
                    0.1581889642,
                    -0.0249605,
                ],
                [
                    1.1227170162,
                    1.9045099416,
                    1.4227613011,
                    1.277894388,
                    1.5748556309,
                    1.5583728333,
                ],
            ),
            (
                2,
                1.0,
                [
                    0.5856561241,
                    -0.4264129297,
                    0.3951750886,
                    0.2865754411,
                    0.0184880946,
                    -0.0817040408,
                ],
                [
                    1.3356561241,
                    1.5735870703,
                    1.4785084219,
                    1.5365754411,
                    1.4351547613,
                    1.5016292925,
                ],
            ),
        ];
        let (data, train) = data();
        for (k, lambda, change, mean) in cases {
            let mut model = LinearModel::new(k, lambda).unwrap();
            model
                .fit(&data, &train, &mut FitContext::default())
                .unwrap();
            let task = query(&data, "L", "G5");
            let got = model.predicted_change(&task).unwrap();
            for j in 0..6 {
                assert!(
                    (got[j] - change[j]).abs() < 1e-8,
                    "k={k} λ={lambda} gene {j}: {} vs {}",
                    got[j],
                    change[j]
                );
            }
            // All three control cells drawn without replacement: the mean is the control mean + change.
            fixture::assert_mean(&model.predict(&task, 3, 0).unwrap(), &mean);
        }
    }

    #[test]
    fn contexts_are_fitted_separately() {
        let (data, train) = data();
        let mut model = LinearModel::default();
        model
            .fit(&data, &train, &mut FitContext::default())
            .unwrap();
        let in_l = model.predicted_change(&query(&data, "L", "G5")).unwrap();
        let in_m = model.predicted_change(&query(&data, "M", "G5")).unwrap();
        assert!(
            (&in_l - &in_m).iter().any(|v| v.abs() > 1e-3),
            "L and M have different data: {in_l} vs {in_m}"
        );
        // Fitting on L's conditions alone gives the same L model.
        let l = data.context_index("L").unwrap();
        let only_l: Vec<usize> = train
            .iter()
            .copied()
            .filter(|&i| data.conditions()[i].context == l)
            .collect();
        let mut model_l = LinearModel::default();
        model_l
            .fit(&data, &only_l, &mut FitContext::default())
            .unwrap();
        let again = model_l.predicted_change(&query(&data, "L", "G5")).unwrap();
        assert!((&in_l - &again).iter().all(|v| v.abs() < 1e-12));
        // …and leaves M without a model.
        let err = model_l.predict(&query(&data, "M", "G5"), 3, 0).unwrap_err();
        assert!(
            err.to_string().contains("no perturbation of this context"),
            "{err}"
        );
    }

    #[test]
    fn a_huge_ridge_predicts_the_row_centre() {
        // λ → ∞ shrinks W to 0, so every prediction is b: the mean over the control's zero column and the
        // five measured knock-outs' changes, i.e. (Σ changes) / 6 — independent of the PCA. (X9's gene is
        // not measured, so it is not in Y.)
        let (data, train) = data();
        let mut model = LinearModel::new(10, 1e12).unwrap();
        model
            .fit(&data, &train, &mut FitContext::default())
            .unwrap();
        let c = data.context_index("L").unwrap();
        let mean_of = |label: &str| {
            let cells = data.cells_of(
                data.condition(c, data.treatment_index(label).unwrap())
                    .unwrap(),
            );
            cells.mapv(f64::from).mean_axis(ndarray::Axis(0)).unwrap()
        };
        let control = mean_of("control");
        let mut expected = Array1::<f64>::zeros(6);
        for gene in ["G0", "G1", "G2", "G3", "G4"] {
            expected += &(mean_of(gene) - &control);
        }
        expected /= 6.0;
        for gene in ["G5", "G0"] {
            let got = model.predicted_change(&query(&data, "L", gene)).unwrap();
            assert!(
                (&got - &expected).iter().all(|v| v.abs() < 1e-9),
                "{gene}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn deterministic_under_a_seed() {
        let (data, train) = data();
        let mut model = LinearModel::default();
        model
            .fit(&data, &train, &mut FitContext::default())
            .unwrap();
        let task = query(&data, "L", "G5");
        let cells = |seed| match model.predict(&task, 6, seed).unwrap() {
            Prediction::Cells(c) => c,
            Prediction::PseudoBulk(_) => panic!("cells expected"),
        };
        assert_eq!(cells(1), cells(1));
        assert_ne!(cells(1), cells(2));
    }

    #[test]
    fn errors_name_the_problem() {
        let (data, train) = data();
        let task = query(&data, "L", "G5");
        let err = LinearModel::default().predict(&task, 3, 0).unwrap_err();
        assert!(err.to_string().contains("before it was fitted"), "{err}");
        let mut model = LinearModel::default();
        model
            .fit(&data, &train, &mut FitContext::default())
            .unwrap();
        let err = model.predict(&query(&data, "L", "X9"), 3, 0).unwrap_err();
        assert!(
            err.to_string()
                .contains("perturbed gene `X9` to be measured"),
            "{err}"
        );
        let err = model
            .predict(&query(&data, "L", "G1+G2"), 3, 0)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("use `additive` or `matching_mean`"),
            "{err}"
        );
        let err = model.predict(&query(&data, "N", "G5"), 3, 0).unwrap_err();
        assert!(err.to_string().contains("not in the fitted data"), "{err}");
        assert!(LinearModel::new(0, 0.1).is_err());
        assert!(LinearModel::new(10, -1.0).is_err());
        assert!(LinearModel::new(10, f64::NAN).is_err());
        // Only the X9 knock-out (gene not measured) in training: nothing to regress on.
        let x9 = data.treatment_index("X9").unwrap();
        let only_x9: Vec<usize> = (0..data.conditions().len())
            .filter(|&i| data.conditions()[i].treatment == x9)
            .collect();
        let err = LinearModel::default()
            .fit(&data, &only_x9, &mut FitContext::default())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("no single-gene knock-out of a measured gene"),
            "{err}"
        );
    }
}
