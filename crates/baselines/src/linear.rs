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
}

#[derive(Clone, Debug)]
struct LinearFit {
    effects: TrainingEffects,
    /// Per context: its model, or why it could not be fitted.
    models: Vec<Result<ContextModel, String>>,
}

/// Ahlmann-Eltze et al.'s linear model: PCA gene embedding, perturbation = its gene's embedding row,
/// double ridge regression; one model per context.
#[derive(Clone, Debug)]
pub struct LinearModel {
    pca_dim: usize,
    ridge: f64,
    fit: Option<LinearFit>,
}

impl Default for LinearModel {
    fn default() -> Self {
        LinearModel {
            pca_dim: Self::DEFAULT_PCA_DIM,
            ridge: Self::DEFAULT_RIDGE,
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

    /// A new, unfitted model with `pca_dim` components (≥ 1) and ridge penalty `ridge` (finite, ≥ 0; with
    /// 0 the fit fails on singular systems).
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
            ridge,
            fit: None,
        })
    }

    /// Number of principal components requested.
    pub fn pca_dim(&self) -> usize {
        self.pca_dim
    }

    /// Ridge penalty λ.
    pub fn ridge(&self) -> f64 {
        self.ridge
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
        let embedding = model.gene_embedding.row(row);
        Ok(model
            .gene_embedding
            .dot(&model.coefficients.dot(&embedding))
            + &model.center)
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
        let d = effects.n_genes();
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
        let m = conditions.len() + 1;
        let mut x = Array2::<f64>::zeros((d, m));
        x.column_mut(0).assign(control);
        for (j, (_, mean)) in conditions.iter().enumerate() {
            x.column_mut(j + 1).assign(*mean);
        }
        let g = pca_scores(&x, self.pca_dim)?;
        let k = g.ncols();
        // Y: control's zero column, then the knock-outs' changes; P: zero row, then the genes' rows of G.
        let mut y = Array2::<f64>::zeros((d, knockouts.len() + 1));
        let mut p = Array2::<f64>::zeros((knockouts.len() + 1, k));
        for (j, (row, mean)) in knockouts.iter().enumerate() {
            y.column_mut(j + 1).assign(&(*mean - control));
            p.row_mut(j + 1).assign(&g.row(*row));
        }
        let center = y
            .mean_axis(ndarray::Axis(1))
            .unwrap_or_else(|| Array1::zeros(d));
        let y_centred = &y - &center.view().insert_axis(ndarray::Axis(1));
        let ridge_eye = Array2::<f64>::eye(k) * self.ridge;
        let left = cholesky_solve(
            &(g.t().dot(&g) + &ridge_eye),
            &g.t().dot(&y_centred).dot(&p),
        )?;
        // W = left (PᵀP + λI)⁻¹, i.e. Wᵀ = (PᵀP + λI)⁻¹ leftᵀ (the matrix is symmetric).
        let coefficients = cholesky_solve(&(p.t().dot(&p) + &ridge_eye), &left.t().to_owned())?
            .t()
            .to_owned();
        Ok(Ok(ContextModel {
            gene_embedding: g,
            coefficients,
            center,
        }))
    }
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
