//! `cellshift._core`: the native core of the `cellshift` Python package (PyO3). Each function takes an
//! AnnData described by `cellshift/_anndata.py` (see [`convert`]), runs the library crates on a worker
//! thread without the GIL ([`runner`]), and returns AnnData descriptions, JSON reports or a [`PyModel`]
//! handle. The Python modules of the package turn these into `anndata.AnnData` and `pandas` objects.

mod bench;
mod convert;
mod errors;
mod evaluate;
mod model;
mod preprocess;
mod runner;
mod simulate;

use cellshift_data::preprocess::PreprocessChoices;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{columns, data_to_py, perturbation_data};
use crate::model::{FitRequest, Fitted, Origin, PredictRequest};

/// The `obs` conventions as Python passes them: (perturbation key, control label or None for auto,
/// context key or None for auto, intervention-value key).
type Columns = (String, Option<String>, Option<String>, String);

/// The library's `PerturbationColumns` of the conventions Python passed.
fn cols(c: &Columns) -> cellshift_data::h5ad::PerturbationColumns {
    columns(&c.0, c.1.as_deref(), c.2.as_deref(), &c.3)
}

/// The checkpoint shipped with the repository (the SERGIO-prior MapPFN, 50 genes).
#[pyfunction]
pub(crate) fn bundled_checkpoint() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../checkpoints/mappfn-sergio-small"
    )
    .to_string()
}

/// The libtorch folder this module was linked against (found through its rpath), if recorded.
#[pyfunction]
fn libtorch_build_dir() -> Option<String> {
    option_env!("LIBTORCH").map(str::to_string)
}

/// Sets libtorch's intra-op thread count (`None`: one per available core).
#[pyfunction]
#[pyo3(signature = (threads=None))]
fn set_threads(threads: Option<usize>) {
    let n = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    tch::set_num_threads(n.max(1) as i32);
}

/// Worker threads of long calls still running (an interrupted call's worker stops at its next step).
#[pyfunction]
fn running_workers() -> usize {
    runner::running_workers()
}

/// The registered methods and the baselines.
#[pyfunction]
fn method_names() -> (Vec<&'static str>, Vec<&'static str>) {
    (
        cellshift_models::registry::names(),
        cellshift_baselines::BASELINE_NAMES.to_vec(),
    )
}

/// Scores `pred` against `real` (AnnData descriptions); the report as the command line's JSON.
#[pyfunction]
#[pyo3(name = "evaluate", signature = (pred, real, columns, context, metrics, allow_scale_mismatch, max_set_cells=cellshift_metrics::DEFAULT_MAX_SET_CELLS, subsample_seed=0, progress=None))]
#[allow(clippy::too_many_arguments)]
fn py_evaluate(
    py: Python<'_>,
    pred: &Bound<'_, PyDict>,
    real: &Bound<'_, PyDict>,
    columns: Columns,
    context: Option<String>,
    metrics: String,
    allow_scale_mismatch: bool,
    max_set_cells: usize,
    subsample_seed: u64,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<String> {
    let c = cols(&columns);
    let pred = perturbation_data(pred, &c)?;
    let real = perturbation_data(real, &c)?;
    runner::run(py, progress, move |reporter| {
        reporter.progress(0, 1, "computing metrics");
        let json = evaluate::evaluate_json(
            &pred,
            &real,
            context.as_deref(),
            &metrics,
            allow_scale_mismatch,
            max_set_cells,
            subsample_seed,
        )?;
        reporter.progress(1, 1, "computing metrics");
        Ok(json)
    })
}

/// Preprocesses an AnnData description; (processed AnnData, pseudo-bulk AnnData or None, step lines).
#[pyfunction]
#[pyo3(name = "preprocess", signature = (data, columns, normalize, log1p, hvg, hvg_drop_perturbed, panel, keep_unencodable, min_cells, pseudobulk, seed, progress=None))]
#[allow(clippy::too_many_arguments)]
fn py_preprocess<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyDict>,
    columns: Columns,
    normalize: String,
    log1p: String,
    hvg: Option<usize>,
    hvg_drop_perturbed: bool,
    panel: Option<usize>,
    keep_unencodable: bool,
    min_cells: Option<usize>,
    pseudobulk: bool,
    seed: u64,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyDict>, Option<Bound<'py, PyDict>>, Vec<String>)> {
    let c = cols(&columns);
    let input = perturbation_data(data, &c)?;
    let result = runner::run(py, progress, move |reporter| {
        reporter.progress(0, 1, "preprocessing");
        let (normalize, log1p) = preprocess::transforms(&normalize, &log1p)?;
        let choices = PreprocessChoices {
            normalize,
            log1p,
            hvg,
            hvg_drop_perturbed,
            panel,
            keep_unencodable,
            min_cells,
            pseudobulk,
            seed,
        };
        let result = cellshift_data::preprocess::preprocess(&input, &choices.options())?;
        reporter.progress(1, 1, "preprocessing");
        Ok(result)
    })?;
    let out = data_to_py(py, &result.data, &c, Default::default())?;
    let bulk = match &result.pseudobulk {
        Some(table) => Some(convert::anndata_to_py(
            py,
            table
                .to_anndata(&c.perturbation)
                .map_err(|e| errors::to_py(e.into()))?,
        )?),
        None => None,
    };
    Ok((out, bulk, result.report.steps.clone()))
}

/// The `obs` conventions of simulated screens: `perturbation`, `context`, `treatment_value`.
fn simulated_columns() -> cellshift_data::h5ad::PerturbationColumns {
    cellshift_data::h5ad::PerturbationColumns {
        context: Some("context".into()),
        ..Default::default()
    }
}

/// Simulates a random screen from a prior; an AnnData description.
#[pyfunction]
#[pyo3(name = "simulate", signature = (prior, contexts, genes, cells, seed, log_normalize, clean, paired, progress=None))]
#[allow(clippy::too_many_arguments)]
fn py_simulate<'py>(
    py: Python<'py>,
    prior: String,
    contexts: usize,
    genes: Option<usize>,
    cells: Option<usize>,
    seed: u64,
    log_normalize: bool,
    clean: bool,
    paired: Option<bool>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let screen = simulate::RandomScreen {
        prior,
        contexts,
        genes,
        cells,
        seed,
        log_normalize,
        clean,
        paired,
    };
    let data = runner::run(py, progress, move |reporter| {
        simulate::random(&screen, reporter)
    })?;
    data_to_py(py, &data, &simulated_columns(), Default::default())
}

/// Simulates a benchmark suite; (AnnData description, statistics as JSON).
#[pyfunction]
#[pyo3(signature = (suite, scale, seed, grns, cell_types, doubles, genes, cells, progress=None))]
#[allow(clippy::too_many_arguments)]
fn simulate_suite<'py>(
    py: Python<'py>,
    suite: String,
    scale: String,
    seed: u64,
    grns: usize,
    cell_types: Option<usize>,
    doubles: Option<usize>,
    genes: Option<usize>,
    cells: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyDict>, String)> {
    let request = simulate::SuiteRequest {
        suite,
        scale,
        seed,
        grns,
        cell_types,
        doubles,
        genes,
        cells,
    };
    let (data, stats) = runner::run(py, progress, move |reporter| {
        reporter.progress(0, 1, "simulating the suite");
        let out = simulate::suite(&request)?;
        reporter.progress(1, 1, "simulating the suite");
        Ok(out)
    })?;
    Ok((
        data_to_py(py, &data, &simulated_columns(), Default::default())?,
        stats.to_string(),
    ))
}

/// A fitted or loaded predictor (`cellshift.Model` wraps it).
#[pyclass(name = "Model", module = "cellshift._core")]
struct PyModel {
    inner: Arc<Mutex<Fitted>>,
}

fn lock(model: &Arc<Mutex<Fitted>>) -> std::sync::MutexGuard<'_, Fitted> {
    // A panic while predicting is turned into an exception; the model itself is still usable.
    model
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[pymethods]
impl PyModel {
    /// Method or baseline name.
    #[getter]
    fn method(&self) -> String {
        lock(&self.inner).method.clone()
    }

    /// `checkpoint` (a method's weights) or `baseline`.
    #[getter]
    fn kind(&self) -> &'static str {
        match lock(&self.inner).origin {
            Origin::Checkpoint { .. } => "checkpoint",
            Origin::Baseline { .. } => "baseline",
        }
    }

    /// The genes the model expects, in order (`None`: any, used as given).
    #[getter]
    fn genes(&self) -> Option<Vec<String>> {
        lock(&self.inner)
            .preprocessing
            .as_ref()
            .map(|p| p.gene_names.clone())
            .filter(|g| !g.is_empty())
    }

    /// Predicts `queries` in a context of an AnnData description; an AnnData description of the
    /// predicted cells.
    #[pyo3(signature = (data, columns, queries, context, value, k, cells, seed, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyDict>,
        columns: Columns,
        queries: Vec<String>,
        context: Option<String>,
        value: f32,
        k: usize,
        cells: usize,
        seed: u64,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let c = cols(&columns);
        let raw = perturbation_data(data, &c)?;
        let request = PredictRequest {
            queries,
            context,
            value,
            k,
            cells,
            seed,
        };
        let inner = self.inner.clone();
        let out_cols = c.clone();
        let ann = runner::run(py, progress, move |reporter| {
            let fitted = lock(&inner);
            model::predict(&fitted, &raw, &request, &out_cols, reporter)
        })?;
        convert::anndata_to_py(py, ann)
    }

    /// Saves the model into a new folder.
    fn save(&self, py: Python<'_>, dir: PathBuf) -> PyResult<()> {
        let inner = self.inner.clone();
        runner::run(py, None, move |_| model::save(&lock(&inner), &dir))
    }
}

impl PyModel {
    fn new(fitted: Fitted) -> PyModel {
        PyModel {
            inner: Arc::new(Mutex::new(fitted)),
        }
    }
}

/// Loads a checkpoint folder of any method, or a saved baseline.
#[pyfunction]
#[pyo3(signature = (dir, reference_sampler=false))]
fn load_model(py: Python<'_>, dir: PathBuf, reference_sampler: bool) -> PyResult<PyModel> {
    let fitted = runner::run(py, None, move |_| model::load(&dir, reference_sampler))?;
    Ok(PyModel::new(fitted))
}

/// Fits a baseline, trains a method, or fine-tunes a pre-trained one (`base`, default the bundled
/// checkpoint), on every perturbation of an AnnData description.
#[pyfunction]
#[pyo3(signature = (method, data, columns, preset, steps, cells, batch, seed, model_options, run_dir, base, k, progress=None))]
#[allow(clippy::too_many_arguments)]
fn fit(
    py: Python<'_>,
    method: String,
    data: &Bound<'_, PyDict>,
    columns: Columns,
    preset: String,
    steps: Option<u64>,
    cells: Option<usize>,
    batch: (Option<usize>, Option<usize>, Option<f64>),
    seed: u64,
    model_options: Vec<String>,
    run_dir: Option<PathBuf>,
    base: Option<PathBuf>,
    k: usize,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<PyModel> {
    let input = perturbation_data(data, &cols(&columns))?;
    let request = FitRequest {
        method,
        preset,
        steps,
        cells,
        batch,
        seed,
        model_options,
        run_dir,
        base,
        k,
    };
    let fitted = runner::run(py, progress, move |reporter| {
        model::fit(request, input, reporter)
    })?;
    Ok(PyModel::new(fitted))
}

/// Runs the leaderboard on an AnnData description (named `name`) or on built-in suites; the board as
/// the JSON of `leaderboard.json`.
#[pyfunction]
#[pyo3(name = "bench", signature = (data, name, suites, columns, methods, scale, seeds, cells, seed, metrics, table_columns, model_options, shared, out, protocol="auto".to_string(), folds=5, bootstrap=cellshift_bench::cross_validation::DEFAULT_BOOTSTRAP, progress=None))]
#[allow(clippy::too_many_arguments)]
fn py_bench(
    py: Python<'_>,
    data: Option<&Bound<'_, PyDict>>,
    name: String,
    suites: Vec<String>,
    columns: Columns,
    methods: String,
    scale: String,
    seeds: u64,
    cells: Option<usize>,
    seed: u64,
    metrics: String,
    table_columns: String,
    model_options: Vec<String>,
    shared: PathBuf,
    out: Option<PathBuf>,
    protocol: String,
    folds: usize,
    bootstrap: usize,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<String> {
    let screens = match data {
        Some(desc) => {
            bench::Screens::Data(Box::new(perturbation_data(desc, &cols(&columns))?), name)
        }
        None => bench::Screens::Suites(suites),
    };
    let request = bench::BenchRequest {
        screens,
        methods,
        scale,
        seeds,
        cells,
        seed,
        metrics,
        columns: table_columns,
        model_options,
        bundled: Some(PathBuf::from(bundled_checkpoint())),
        shared,
        out,
        protocol,
        folds,
        bootstrap,
    };
    runner::run(py, progress, move |reporter| bench::run(request, reporter))
}

/// The module.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(bundled_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(libtorch_build_dir, m)?)?;
    m.add_function(wrap_pyfunction!(set_threads, m)?)?;
    m.add_function(wrap_pyfunction!(method_names, m)?)?;
    m.add_function(wrap_pyfunction!(running_workers, m)?)?;
    m.add_function(wrap_pyfunction!(py_evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(py_preprocess, m)?)?;
    m.add_function(wrap_pyfunction!(py_simulate, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_suite, m)?)?;
    m.add_function(wrap_pyfunction!(load_model, m)?)?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(py_bench, m)?)?;
    m.add_class::<PyModel>()?;
    let contexts = PyList::new(m.py(), cellshift_data::h5ad::AUTO_CONTEXT_COLUMNS)?;
    m.add("AUTO_CONTEXT_COLUMNS", contexts)?;
    m.add("TORCH_VERSION", "2.11.0")?;
    Ok(())
}
