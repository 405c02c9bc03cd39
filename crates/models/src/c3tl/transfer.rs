//! The C3TL benchmark (peers.md §1.4) on any data set with a context column: leave-one-context-out folds
//! with the paper's 8 % / 2 % / 90 % split of the held-out context's perturbations, C3TL against
//! pseudo-bulk readings of the baselines, the paper's metrics on pseudo-bulk deltas with mean ± sd over
//! folds, and the data-efficiency sweep (training contexts × adaptation shares).
//!
//! Metrics (on deltas = profile − the context's control mean, over the fold's test perturbations):
//! * `pearson_per_perturbation`: Pearson correlation across genes of predicted vs true delta, averaged over
//!   test perturbations;
//! * `pearson_per_gene`: Pearson correlation across test perturbations of each gene's predicted vs true
//!   delta, averaged over genes (genes constant in either are skipped; undefined with one test
//!   perturbation);
//! * `mse`: mean squared error over test perturbations and genes.
//!
//! C3TL predicts pseudo-bulk profiles only, so the cell-level metrics (distributional distances,
//! discrimination scores, DE tests) are not applicable and are not computed.
//!
//! Every method sees the same observed conditions: all of the training contexts, the held-out context's
//! control and adaptation perturbations, and its validation perturbations — C3TL uses the validation
//! entries only for early stopping, the baselines (which have no early stopping) fit on them. Baseline
//! profiles are the mean of their predicted cells for a task whose control set is all of the held-out
//! context's control cells, so their delta is exactly the baseline's shift.

use std::collections::BTreeMap;
use std::time::Instant;

use super::config::MatmulPrecision;
use super::table::{condition_delta, control_means};
use super::{C3tl, ContextTransferSplit, FitHistory, TransferFractions};
use cellshift_baselines::baseline_by_name;
use cellshift_data::{DeviceSpec, FitContext, PerturbationData, Task, TaskTreatment};
use ndarray::{Array2, Array3, Axis};

/// Name of C3TL in the method lists of this module.
pub const C3TL: &str = super::method::NAME;

/// The paper's metrics of one method on one fold.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct PseudoBulkScores {
    /// Mean over test perturbations of the Pearson correlation across genes.
    pub pearson_per_perturbation: f64,
    /// Mean over genes of the Pearson correlation across test perturbations.
    pub pearson_per_gene: f64,
    /// Mean squared error of the deltas.
    pub mse: f64,
    /// Test perturbations scored.
    pub n_test: usize,
    /// Genes with a defined per-gene correlation.
    pub genes_scored: usize,
}

/// The metric names of [`PseudoBulkScores`], in table order.
pub const METRICS: [&str; 3] = ["pearson_per_perturbation", "pearson_per_gene", "mse"];

impl PseudoBulkScores {
    /// A metric by name.
    pub fn get(&self, metric: &str) -> Option<f64> {
        match metric {
            "pearson_per_perturbation" => Some(self.pearson_per_perturbation),
            "pearson_per_gene" => Some(self.pearson_per_gene),
            "mse" => Some(self.mse),
            _ => None,
        }
    }
}

fn pearson(a: impl Iterator<Item = f64> + Clone, b: impl Iterator<Item = f64> + Clone) -> f64 {
    let n = a.clone().count() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let (ma, mb) = (a.clone().sum::<f64>() / n, b.clone().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    // A constant side (up to float rounding, e.g. the zero delta of the control baseline) has no
    // correlation.
    if saa <= 1e-12 * n || sbb <= 1e-12 * n {
        f64::NAN
    } else {
        sab / (saa * sbb).sqrt()
    }
}

fn nan_mean(values: impl Iterator<Item = f64>) -> (f64, usize) {
    let (mut sum, mut n) = (0.0, 0);
    for v in values.filter(|v| v.is_finite()) {
        sum += v;
        n += 1;
    }
    (if n > 0 { sum / n as f64 } else { f64::NAN }, n)
}

/// Scores predicted against true deltas (`test perturbations × genes`).
pub fn pseudobulk_scores(pred: &Array2<f32>, truth: &Array2<f32>) -> PseudoBulkScores {
    let f = |v: &f32| *v as f64;
    let (per_pert, _) = nan_mean(
        pred.rows()
            .into_iter()
            .zip(truth.rows())
            .map(|(p, t)| pearson(p.iter().map(f), t.iter().map(f))),
    );
    let (per_gene, genes_scored) = nan_mean(
        pred.columns()
            .into_iter()
            .zip(truth.columns())
            .map(|(p, t)| pearson(p.iter().map(f), t.iter().map(f))),
    );
    let mse = (pred - truth)
        .mapv(|v| (v as f64) * (v as f64))
        .mean()
        .unwrap_or(f64::NAN);
    PseudoBulkScores {
        pearson_per_perturbation: per_pert,
        pearson_per_gene: per_gene,
        mse,
        n_test: pred.nrows(),
        genes_scored,
    }
}

/// How the benchmark runs.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TransferConfig {
    /// Methods: `c3tl` and baseline names (`perturbation_mean`, `closest_context`, `linear`, `control`, …).
    pub methods: Vec<String>,
    /// C3TL size preset.
    pub preset: String,
    /// Override of C3TL's maximum epochs.
    pub max_epochs: Option<u64>,
    /// Override of C3TL's early-stopping patience (epochs without a lower validation MSE).
    pub patience: Option<u64>,
    /// Beyond the paper: C3TL decodes a correction to the perturbation's mean observed delta
    /// ([`super::C3tlConfig::perturbation_skip`]).
    pub perturbation_skip: bool,
    /// Beyond the paper: C3TL averages each training context latent over a random subset of this many
    /// entries per epoch (0 = off; [`super::C3tlConfig::context_subsample`]).
    pub context_subsample: usize,
    /// Element type of C3TL's matrix products
    /// ([`super::C3tlConfig::matmul_precision`]).
    pub matmul_precision: MatmulPrecision,
    /// Shares of the held-out context's perturbations.
    pub fractions: TransferFractions,
    /// Seed of the splits and of C3TL's initial weights.
    pub seed: u64,
    /// Beyond the paper: C3TL's prediction is the mean of this many models fitted from different initial
    /// weights (1 = one model, the paper). Averaging removes the part of each fitted correction that
    /// depends on the initialisation.
    pub ensemble: usize,
}

/// Seed of the initial weights of ensemble member `member` of a fold fitted from `fit_seed`
/// ([`cellshift_data::seed::member_seed`]).
fn member_seed(fit_seed: u64, member: usize) -> u64 {
    cellshift_data::seed::member_seed(fit_seed, member as u64)
}

/// One method on one fold.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MethodFold {
    /// Method name.
    pub method: String,
    /// Its scores, when it could predict every test perturbation.
    pub scores: Option<PseudoBulkScores>,
    /// Why it could not (e.g. the linear baseline on perturbations of unmeasured genes).
    pub error: Option<String>,
    /// C3TL's fit.
    pub fit: Option<FitHistory>,
    /// Fit and prediction time.
    pub seconds: f64,
}

/// One fold's results.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FoldReport {
    /// The held-out context.
    pub test_context: String,
    /// The training contexts.
    pub training_contexts: Vec<String>,
    /// Adaptation perturbation labels.
    pub adaptation: Vec<String>,
    /// Validation perturbation labels.
    pub validation: Vec<String>,
    /// Number of test perturbations.
    pub n_test: usize,
    /// Per method.
    pub methods: Vec<MethodFold>,
}

/// Mean ± sample sd over folds of one method's metric.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FoldSummary {
    /// Method.
    pub method: String,
    /// Metric name.
    pub metric: String,
    /// Mean over the folds where it is defined.
    pub mean: f64,
    /// Sample standard deviation (n − 1) over those folds (0 for one fold).
    pub sd: f64,
    /// Folds where it is defined.
    pub folds: usize,
}

fn label_of(data: &PerturbationData, condition: usize) -> String {
    data.treatments[data.conditions()[condition].treatment].label(&data.control_label)
}

/// The deltas of `method` for the fold's test conditions.
fn method_deltas(
    data: &PerturbationData,
    split: &ContextTransferSplit,
    method: &str,
    config: &TransferConfig,
    fit_seed: u64,
) -> anyhow::Result<(Array2<f32>, Option<FitHistory>)> {
    let d = data.n_genes();
    if method == C3TL {
        if config.ensemble == 0 {
            anyhow::bail!(
                "the C3TL ensemble needs at least 1 model (1 = the paper's single model)"
            );
        }
        let (mut sum, history) = c3tl_deltas(data, split, config, fit_seed)?;
        for member in 1..config.ensemble {
            sum += &c3tl_deltas(data, split, config, member_seed(fit_seed, member))?.0;
        }
        sum /= config.ensemble as f32;
        return Ok((sum, Some(history)));
    }
    let mut baseline = baseline_by_name(method).map_err(|e| anyhow::anyhow!("{e}"))?;
    baseline
        .fit(
            data,
            &split.observed_conditions(data),
            &mut FitContext::default(),
        )
        .map_err(|e| anyhow::anyhow!("fitting {method}: {e}"))?;
    let control = data
        .conditions()
        .iter()
        .find(|c| c.context == split.test_context && data.treatments[c.treatment].is_control())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "context `{}` has no control cells",
                data.contexts[split.test_context]
            )
        })?;
    let observational = data.cells_of(control);
    let control_mean = observational
        .mean_axis(Axis(0))
        .ok_or_else(|| anyhow::anyhow!("empty control set"))?;
    let n = observational.nrows();
    let genes = std::sync::Arc::new(data.genes.clone());
    let mut out = Array2::<f32>::zeros((split.test.len(), d));
    for (row, &i) in split.test.iter().enumerate() {
        let task = Task {
            context: data.contexts[split.test_context].clone(),
            context_index: split.test_context,
            genes: genes.clone(),
            observational: observational.clone(),
            experiments: Vec::new(),
            context_cells: Array3::zeros((0, n, d)),
            query: TaskTreatment::from_label(
                &label_of(data, i),
                &data.control_label,
                data.conditions()[i].value,
            ),
            target: None,
        };
        let prediction = baseline
            .predict(&task, n, fit_seed)
            .map_err(|e| anyhow::anyhow!("{method} on `{}`: {e}", label_of(data, i)))?;
        out.row_mut(row)
            .assign(&(prediction.mean_profile() - &control_mean));
    }
    Ok((out, None))
}

/// C3TL fitted on the fold (initial weights from `fit_seed`): its deltas for the test conditions and its fit.
fn c3tl_deltas(
    data: &PerturbationData,
    split: &ContextTransferSplit,
    config: &TransferConfig,
    fit_seed: u64,
) -> anyhow::Result<(Array2<f32>, FitHistory)> {
    let mut model = C3tl::for_data(data, &config.preset, DeviceSpec::Cpu)?;
    if let Some(e) = config.max_epochs {
        model.config_mut().max_epochs = e;
    }
    if let Some(p) = config.patience {
        model.config_mut().patience = p;
    }
    model.config_mut().perturbation_skip = config.perturbation_skip;
    model.config_mut().context_subsample = config.context_subsample;
    model.config_mut().matmul_precision = config.matmul_precision;
    let mut ctx = FitContext {
        seed: fit_seed,
        ..FitContext::default()
    };
    let history = model.fit_with_validation(
        data,
        &split.train_conditions(data),
        &split.validation,
        &mut ctx,
    )?;
    let vocab = model.vocabulary();
    let entries = split
        .test
        .iter()
        .map(|&i| {
            vocab
                .entry_of(data, i)?
                .ok_or_else(|| anyhow::anyhow!("test condition {i} is a control condition"))
                .map_err(|e| crate::ModelError::Input(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((model.predict_entries(&entries)?, history))
}

/// Runs every method on one fold.
pub fn run_fold(
    data: &PerturbationData,
    split: &ContextTransferSplit,
    config: &TransferConfig,
) -> anyhow::Result<FoldReport> {
    let controls = control_means(data);
    let mut truth = Array2::<f32>::zeros((split.test.len(), data.n_genes()));
    for (row, &i) in split.test.iter().enumerate() {
        truth
            .row_mut(row)
            .assign(&condition_delta(data, i, &controls)?);
    }
    let fit_seed = cellshift_data::seed::offset_seed(config.seed, split.test_context as u64);
    let mut methods = Vec::new();
    for method in &config.methods {
        let started = Instant::now();
        let (scores, error, fit) = match method_deltas(data, split, method, config, fit_seed) {
            Ok((pred, fit)) => (Some(pseudobulk_scores(&pred, &truth)), None, fit),
            Err(e) => (None, Some(format!("{e:#}")), None),
        };
        methods.push(MethodFold {
            method: method.clone(),
            scores,
            error,
            fit,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    let names = |v: &[usize]| v.iter().map(|&i| label_of(data, i)).collect();
    Ok(FoldReport {
        test_context: data.contexts[split.test_context].clone(),
        training_contexts: split
            .training_contexts
            .iter()
            .map(|&c| data.contexts[c].clone())
            .collect(),
        adaptation: names(&split.adaptation),
        validation: names(&split.validation),
        n_test: split.test.len(),
        methods,
    })
}

/// Contexts that can be held out: those with enough perturbations for the split (others are skipped).
pub fn foldable_contexts(
    data: &PerturbationData,
    fractions: TransferFractions,
    seed: u64,
) -> Vec<usize> {
    (0..data.contexts.len())
        .filter(|&c| ContextTransferSplit::leave_one_context_out(data, c, fractions, seed).is_ok())
        .collect()
}

/// The leave-one-context-out benchmark: one fold per context that can be held out.
pub fn transfer_benchmark(
    data: &PerturbationData,
    config: &TransferConfig,
    mut on_fold: impl FnMut(&FoldReport),
) -> anyhow::Result<Vec<FoldReport>> {
    if data.contexts.len() < 2 {
        anyhow::bail!(
            "the data has {} context(s); leave-one-context-out needs at least two (give --context-column)",
            data.contexts.len()
        );
    }
    let folds = foldable_contexts(data, config.fractions, config.seed);
    if folds.is_empty() {
        anyhow::bail!("no context has enough perturbations to hold out with these shares");
    }
    let mut reports = Vec::new();
    for c in folds {
        let split =
            ContextTransferSplit::leave_one_context_out(data, c, config.fractions, config.seed)?;
        let report = run_fold(data, &split, config)?;
        on_fold(&report);
        reports.push(report);
    }
    Ok(reports)
}

/// Mean ± sd over folds per method and metric, in the order of `methods` and [`METRICS`].
pub fn summarise_folds(reports: &[FoldReport], methods: &[String]) -> Vec<FoldSummary> {
    let mut out = Vec::new();
    for method in methods {
        for metric in METRICS {
            let values: Vec<f64> = reports
                .iter()
                .flat_map(|r| r.methods.iter())
                .filter(|m| &m.method == method)
                .filter_map(|m| m.scores.and_then(|s| s.get(metric)))
                .filter(|v| v.is_finite())
                .collect();
            let n = values.len();
            let mean = if n > 0 {
                values.iter().sum::<f64>() / n as f64
            } else {
                f64::NAN
            };
            let sd = if n > 1 {
                (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
            } else if n == 1 {
                0.0
            } else {
                f64::NAN
            };
            out.push(FoldSummary {
                method: method.clone(),
                metric: metric.to_string(),
                mean,
                sd,
                folds: n,
            });
        }
    }
    out
}

/// A markdown table: one row per method, `mean ± sd (folds)` per metric.
pub fn summary_table(summary: &[FoldSummary], methods: &[String]) -> String {
    let mut s = format!(
        "| method | {} |\n|---|{}\n",
        METRICS.join(" | "),
        "---|".repeat(METRICS.len())
    );
    for method in methods {
        let cells: Vec<String> = METRICS
            .iter()
            .map(|metric| {
                summary
                    .iter()
                    .find(|x| &x.method == method && x.metric == *metric)
                    .filter(|x| x.folds > 0)
                    .map_or("n/a".to_string(), |x| {
                        format!("{} ± {} ({})", fmt4(x.mean), fmt4(x.sd), x.folds)
                    })
            })
            .collect();
        s.push_str(&format!("| {method} | {} |\n", cells.join(" | ")));
    }
    s
}

fn fmt4(v: f64) -> String {
    if v.abs() < 0.01 && v != 0.0 {
        format!("{v:.2e}")
    } else {
        format!("{v:.3}")
    }
}

/// One cell of the data-efficiency sweep: mean over folds per method.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SweepCell {
    /// Training contexts.
    pub training_contexts: usize,
    /// Adaptation share.
    pub adaptation: f64,
    /// Mean ± sd over folds per method and metric.
    pub summary: Vec<FoldSummary>,
    /// The folds.
    pub folds: Vec<FoldReport>,
}

/// The data-efficiency sweep: for each number of training contexts (nested sets) and adaptation share
/// (nested, split 75/25 into adaptation and validation, one test set per fold: the perturbations outside
/// the largest share), every context that can be held out is a fold.
pub fn sweep(
    data: &PerturbationData,
    training_counts: &[usize],
    adaptation: &[f64],
    config: &TransferConfig,
    mut on_cell: impl FnMut(&SweepCell),
) -> anyhow::Result<Vec<SweepCell>> {
    let max = adaptation.iter().copied().fold(0.0, f64::max);
    let mut cells = Vec::new();
    for &m in training_counts {
        for &a in adaptation {
            let mut folds = Vec::new();
            for c in 0..data.contexts.len() {
                let Ok(split) = ContextTransferSplit::sweep(data, c, m, a, max, config.seed) else {
                    continue;
                };
                folds.push(run_fold(data, &split, config)?);
            }
            if folds.is_empty() {
                anyhow::bail!(
                    "no fold possible with {m} training contexts and adaptation share {a}: each held-out \
                     context needs {m} other contexts and perturbations outside the largest share {max}"
                );
            }
            let cell = SweepCell {
                training_contexts: m,
                adaptation: a,
                summary: summarise_folds(&folds, &config.methods),
                folds,
            };
            on_cell(&cell);
            cells.push(cell);
        }
    }
    Ok(cells)
}

/// The sweep as a markdown table: one row per (training contexts, adaptation share), `mean` of `metric`
/// per method.
pub fn sweep_table(cells: &[SweepCell], methods: &[String], metric: &str) -> String {
    let mut s = format!(
        "| training contexts | adaptation | {} |\n|---|---|{}\n",
        methods.join(" | "),
        "---|".repeat(methods.len())
    );
    for cell in cells {
        let values: Vec<String> = methods
            .iter()
            .map(|m| {
                cell.summary
                    .iter()
                    .find(|x| &x.method == m && x.metric == metric && x.folds > 0)
                    .map_or("n/a".into(), |x| fmt4(x.mean))
            })
            .collect();
        s.push_str(&format!(
            "| {} | {:.0} % | {} |\n",
            cell.training_contexts,
            cell.adaptation * 100.0,
            values.join(" | ")
        ));
    }
    s
}

/// The sweep's values of one method and metric as a matrix (rows: training-context counts, columns:
/// adaptation shares), NaN where undefined.
pub fn sweep_matrix(
    cells: &[SweepCell],
    training_counts: &[usize],
    adaptation: &[f64],
    method: &str,
    metric: &str,
) -> Array2<f64> {
    let mut by_key = BTreeMap::new();
    for cell in cells {
        if let Some(x) = cell
            .summary
            .iter()
            .find(|x| x.method == method && x.metric == metric && x.folds > 0)
        {
            by_key.insert((cell.training_contexts, cell.adaptation.to_bits()), x.mean);
        }
    }
    Array2::from_shape_fn((training_counts.len(), adaptation.len()), |(i, j)| {
        by_key
            .get(&(training_counts[i], adaptation[j].to_bits()))
            .copied()
            .unwrap_or(f64::NAN)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_correlations_and_mse_are_what_their_names_say() {
        // Two perturbations × three genes.
        let truth = Array2::from_shape_vec((2, 3), vec![1.0, 2.0, 3.0, 1.0, 0.0, -1.0]).unwrap();
        let perfect = pseudobulk_scores(&truth, &truth);
        assert!((perfect.pearson_per_perturbation - 1.0).abs() < 1e-12);
        assert!((perfect.pearson_per_gene - 1.0).abs() < 1e-12);
        assert_eq!(perfect.mse, 0.0);
        // Scaling each row keeps per-perturbation correlations; swapping rows flips per-gene ones.
        let swapped = Array2::from_shape_vec((2, 3), vec![1.0, 0.0, -1.0, 1.0, 2.0, 3.0]).unwrap();
        let s = pseudobulk_scores(&swapped, &truth);
        assert!((s.pearson_per_perturbation + 1.0).abs() < 1e-12);
        // Gene 0 is constant in both: skipped; genes 1 and 2 anti-correlate.
        assert_eq!(s.genes_scored, 2);
        assert!((s.pearson_per_gene + 1.0).abs() < 1e-12);
        assert!((s.mse - (4.0 + 16.0 + 4.0 + 16.0) / 6.0).abs() < 1e-12);
    }

    /// The McFaline-Figueroa lines of the shared PerturBench devel set (None, with a message, when absent).
    fn mcfaline_lines() -> Option<PerturbationData> {
        use cellshift_data::h5ad::{read_perturbation_data, PerturbationColumns, ReadOptions};
        use cellshift_data::testing::{require_path, shared_dir};
        let path = require_path(
            &shared_dir(env!("CARGO_MANIFEST_DIR")).join("data/perturbench/devel.h5ad"),
        )?;
        let columns = PerturbationColumns {
            perturbation: "condition".into(),
            control: "control".into(),
            context: Some("cell_type".into()),
            value: "treatment_value".into(),
            layer: None,
        };
        let all = read_perturbation_data(&path, &columns, &ReadOptions::matrix_only()).unwrap();
        // The McFaline-Figueroa lines only (K562 is the Norman part).
        let cells: Vec<usize> = (0..all.n_cells())
            .filter(|&i| all.contexts[all.cell_context[i]] != "k562")
            .collect();
        let data = all.select_cells(&cells).unwrap();
        assert_eq!(data.contexts, vec!["A172", "T98G", "U87MG"]);
        Some(data)
    }

    #[test]
    fn an_ensemble_predicts_the_mean_of_its_members() {
        let Some(data) = mcfaline_lines() else { return };
        let mut config = TransferConfig {
            methods: vec![C3TL.into()],
            preset: "tiny".into(),
            max_epochs: Some(5),
            patience: None,
            perturbation_skip: false,
            context_subsample: 0,
            matmul_precision: Default::default(),
            fractions: TransferFractions::default(),
            seed: 0,
            ensemble: 3,
        };
        let split =
            ContextTransferSplit::leave_one_context_out(&data, 1, config.fractions, 0).unwrap();
        let (ensemble, _) = method_deltas(&data, &split, C3TL, &config, 7).unwrap();
        let members: Vec<Array2<f32>> = (0..3)
            .map(|m| {
                c3tl_deltas(&data, &split, &config, member_seed(7, m))
                    .unwrap()
                    .0
            })
            .collect();
        let mean = (&members[0] + &members[1] + &members[2]) / 3.0;
        let diff = (&ensemble - &mean)
            .mapv(f32::abs)
            .fold(0.0f32, |a, &b| a.max(b));
        assert!(
            diff < 1e-5,
            "ensemble differs from its members' mean by {diff}"
        );
        assert!(
            (&members[0] - &members[1]).mapv(f32::abs).sum() > 1e-3,
            "members must start from different weights"
        );
        config.ensemble = 1;
        let (single, _) = method_deltas(&data, &split, C3TL, &config, 7).unwrap();
        assert_eq!(single, members[0], "an ensemble of one is the single model");
        config.ensemble = 0;
        let err = method_deltas(&data, &split, C3TL, &config, 7)
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 1 model"), "{err}");
    }

    #[test]
    fn mcfaline_fold_scores_c3tl_and_reports_inapplicable_baselines() {
        let Some(data) = mcfaline_lines() else { return };
        let config = TransferConfig {
            methods: vec![C3TL.into(), "closest_context".into(), "linear".into()],
            preset: "tiny".into(),
            max_epochs: Some(20),
            patience: None,
            perturbation_skip: false,
            context_subsample: 0,
            matmul_precision: Default::default(),
            fractions: TransferFractions::default(),
            seed: 0,
            ensemble: 1,
        };
        let split =
            ContextTransferSplit::leave_one_context_out(&data, 0, config.fractions, 0).unwrap();
        assert_eq!(
            (
                split.adaptation.len(),
                split.validation.len(),
                split.test.len()
            ),
            (1, 1, 7)
        );
        let fold = run_fold(&data, &split, &config).unwrap();
        let c3tl = &fold.methods[0];
        let s = c3tl.scores.expect("C3TL scores the fold");
        assert!(s.mse.is_finite() && s.pearson_per_perturbation.is_finite() && s.n_test == 7);
        assert!(c3tl.fit.as_ref().is_some_and(|f| f.val_entries == 1));
        assert!(fold.methods[1].scores.is_some());
        // The kinase targets are not measured genes: the linear baseline cannot embed them and says so.
        assert!(fold.methods[2].scores.is_none() && fold.methods[2].error.is_some());
    }

    #[test]
    fn fold_summary_is_mean_and_sample_sd() {
        let fold = |v: f64| FoldReport {
            test_context: "c".into(),
            training_contexts: vec![],
            adaptation: vec![],
            validation: vec![],
            n_test: 2,
            methods: vec![MethodFold {
                method: "m".into(),
                scores: Some(PseudoBulkScores {
                    pearson_per_perturbation: v,
                    pearson_per_gene: f64::NAN,
                    mse: 1.0,
                    n_test: 2,
                    genes_scored: 0,
                }),
                error: None,
                fit: None,
                seconds: 0.0,
            }],
        };
        let s = summarise_folds(&[fold(0.2), fold(0.4)], &["m".to_string()]);
        assert!((s[0].mean - 0.3).abs() < 1e-12 && (s[0].sd - 0.02f64.sqrt()).abs() < 1e-12);
        assert_eq!(
            s[1].folds, 0,
            "undefined per-gene correlations are not averaged in"
        );
        assert!(summary_table(&s, &["m".to_string()]).contains("n/a"));
    }
}
