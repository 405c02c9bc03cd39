//! Fitted and loaded predictors: a checkpoint of any registered method (the bundled MapPFN by default), a
//! method trained here on an AnnData, or a baseline fitted on one; each predicts queries in a context the
//! way `cellshift predict` does, and saves and loads itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use cellshift_baselines::{baseline_by_name, BASELINE_NAMES};
use cellshift_data::h5ad::{self, PerturbationColumns, UnsValue, WriteOptions};
use cellshift_data::inference::{inference_task, predicted_screen, resolve_context};
use cellshift_data::{FitContext, OutputKind, PerturbationData, Progress, TrainOverrides};
use cellshift_models::flow::OdeSolver;
use cellshift_models::prepare::{data_preprocessing, prepare_for_model};
use cellshift_models::registry::{self, CreateRequest, InferenceOptions, MethodModel};
use cellshift_models::train::checkpoint;
use cellshift_models::{Preprocessing, SamplerConfig};

use crate::runner::Reporter;

/// Queries predicted together between two progress reports (methods that batch solve them at once).
const QUERIES_PER_GROUP: usize = 5;

/// File of a saved baseline naming it; its training screen is `training.h5ad` beside it.
const BASELINE_FILE: &str = "baseline.json";
const BASELINE_DATA: &str = "training.h5ad";

/// Where a model's state lives.
pub enum Origin {
    /// A checkpoint folder (loaded, or the run folder a fit wrote; `temporary` keeps a fit's folder alive).
    Checkpoint {
        /// The checkpoint or run folder.
        dir: PathBuf,
        /// The temporary folder of a fit made without `run_dir` (removed with the model).
        temporary: Option<tempfile::TempDir>,
    },
    /// A baseline: closed-form fits, stored as the screen it was fitted on.
    Baseline {
        /// The screen it was fitted on.
        data: Box<PerturbationData>,
    },
}

/// A predictor with what predicting, saving and describing it needs.
pub struct Fitted {
    /// The predictor.
    pub predictor: MethodModel,
    /// Method or baseline name.
    pub method: String,
    /// Preprocessing its inputs must have (checkpoints); `None`: inputs used as given (baselines).
    pub preprocessing: Option<Preprocessing>,
    /// The sampler it predicts with (flow methods), for the record.
    pub sampler: Option<SamplerConfig>,
    /// Where its state lives.
    pub origin: Origin,
}

/// The sampler of a loaded checkpoint: its recommended settings (unless `reference`), else the command
/// line's defaults (adaptive Dopri5 at rtol = atol = 1e-3, the reference's guidance and populations).
fn sampler_for(dir: &Path, reference: bool) -> anyhow::Result<SamplerConfig> {
    let (_, meta) = checkpoint::read_meta(dir)?;
    let recommended = meta.recommended_sampler.filter(|_| !reference);
    let base = SamplerConfig::default();
    let adaptive = OdeSolver::Dopri5Adaptive {
        rtol: 1e-3,
        atol: 1e-3,
        dt0: 0.05,
        max_steps: 10_000,
    };
    Ok(match recommended {
        None => SamplerConfig {
            solver: adaptive,
            ..base
        },
        Some(r) => SamplerConfig {
            solver: r.solver.unwrap_or(adaptive),
            guidance: r.guidance.unwrap_or(base.guidance),
            populations: r.populations.unwrap_or(base.populations),
            nonnegative: r.nonnegative.unwrap_or(base.nonnegative),
            temperature: r.temperature.unwrap_or(base.temperature),
        },
    })
}

/// Loads a checkpoint (or run) folder of any registered method, or a saved baseline.
pub fn load(dir: &Path, reference_sampler: bool) -> anyhow::Result<Fitted> {
    if !dir.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("model folder {} not found; check the path", dir.display()),
        )
        .into());
    }
    if dir.join(BASELINE_FILE).is_file() {
        return load_baseline(dir);
    }
    let load = || -> anyhow::Result<Fitted> {
        let (entry, preprocessing) = registry::checkpoint_method(dir)?;
        let sampler = sampler_for(dir, reference_sampler)?;
        let options = InferenceOptions {
            sampler: sampler.clone(),
            ..InferenceOptions::default()
        };
        Ok(Fitted {
            predictor: (entry.load)(dir, &options)?,
            method: entry.name.to_string(),
            preprocessing: Some(preprocessing),
            sampler: Some(sampler),
            origin: Origin::Checkpoint {
                dir: dir.to_path_buf(),
                temporary: None,
            },
        })
    };
    load().with_context(|| format!("loading the model {}", dir.display()))
}

/// Every non-control condition of `data`: a fit learns from all of the screen it is given.
fn all_perturbations(data: &PerturbationData) -> Vec<usize> {
    data.conditions()
        .iter()
        .enumerate()
        .filter(|(_, c)| !data.treatments[c.treatment].is_control())
        .map(|(i, _)| i)
        .collect()
}

/// What `fit` trains.
pub struct FitRequest {
    /// Method or baseline name.
    pub method: String,
    /// Named size of a trained method.
    pub preset: String,
    /// Training length in micro-batches (method default when `None`).
    pub steps: Option<u64>,
    /// Cells per set of training tasks.
    pub cells: Option<usize>,
    /// Items per micro-batch, micro-batches per update and peak learning rate (method defaults when `None`).
    pub batch: (Option<usize>, Option<usize>, Option<f64>),
    /// Seed of initial weights and training.
    pub seed: u64,
    /// `KEY=VALUE` options of the method's configuration.
    pub model_options: Vec<String>,
    /// Run folder (checkpoints; resumed when it holds the same run); a temporary one when `None`.
    pub run_dir: Option<PathBuf>,
    /// For methods pre-trained on priors (MapPFN): the checkpoint fine-tuned (the bundled one when `None`).
    pub base: Option<PathBuf>,
    /// Context experiments per training task when fine-tuning.
    pub k: usize,
}

/// Fits a baseline or trains a registered method on every perturbation of `data`.
pub fn fit(
    request: FitRequest,
    data: PerturbationData,
    reporter: &Reporter,
) -> anyhow::Result<Fitted> {
    let train = all_perturbations(&data);
    if train.is_empty() {
        anyhow::bail!("the data have no perturbed cells to fit on; give a screen with perturbations besides the control");
    }
    if BASELINE_NAMES.contains(&request.method.as_str()) {
        let mut predictor = baseline_by_name(&request.method)?;
        predictor
            .fit(&data, &train, &mut FitContext::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok(Fitted {
            predictor,
            method: request.method,
            preprocessing: None,
            sampler: None,
            origin: Origin::Baseline {
                data: Box::new(data),
            },
        });
    }
    if registry::method(&request.method).is_ok_and(|m| m.pretrains_on_priors()) {
        return finetune(request, &data, &train, reporter);
    }
    if registry::method(&request.method).is_err() {
        anyhow::bail!(
            "unknown method `{}`; the methods are {}, the baselines {}",
            request.method,
            registry::names().join(", "),
            BASELINE_NAMES.join(", ")
        );
    }
    let preprocessing = data_preprocessing(&data);
    let mut predictor = registry::create(
        &request.method,
        &CreateRequest {
            preset: &request.preset,
            data: &data,
            preprocessing: preprocessing.clone(),
            inference: InferenceOptions::default(),
            seed: request.seed,
            model_options: &request.model_options,
        },
    )?;
    let overrides = TrainOverrides {
        steps: request.steps,
        cells: request.cells,
        batch_size: request.batch.0,
        accumulation: request.batch.1,
        lr: request.batch.2,
        ..TrainOverrides::default()
    };
    let origin = train_into_run(&mut predictor, &request, &data, &train, overrides, reporter)?;
    Ok(Fitted {
        predictor,
        method: request.method,
        preprocessing: Some(preprocessing),
        sampler: None,
        origin,
    })
}

/// Fine-tunes a checkpoint of a method pre-trained on priors (`request.base`, else the bundled MapPFN)
/// on the perturbations of `data`, brought to the checkpoint's preprocessing, as `cellshift finetune`.
fn finetune(
    request: FitRequest,
    data: &PerturbationData,
    train: &[usize],
    reporter: &Reporter,
) -> anyhow::Result<Fitted> {
    let base = request
        .base
        .clone()
        .unwrap_or_else(|| PathBuf::from(crate::bundled_checkpoint()));
    let mut loaded = load(&base, false)?;
    if loaded.method != request.method {
        anyhow::bail!(
            "the checkpoint {} holds a {} model, not {}; give a {} checkpoint",
            base.display(),
            loaded.method,
            request.method,
            request.method
        );
    }
    let expected = loaded
        .preprocessing
        .clone()
        .unwrap_or_else(|| data_preprocessing(data));
    let (prepared, report) =
        prepare_for_model(data, &expected).context("preparing the data for the model")?;
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    let overrides = TrainOverrides {
        steps: request.steps,
        k: Some(request.k),
        cells: Some(request.cells.unwrap_or(64)),
        batch_size: request.batch.0,
        accumulation: request.batch.1,
        lr: request.batch.2,
        ..TrainOverrides::default()
    };
    let origin = train_into_run(
        &mut loaded.predictor,
        &request,
        &prepared,
        train,
        overrides,
        reporter,
    )?;
    // The fine-tuned weights as `predict --model RUN` sees them: the run's checkpoint, whose sampler is
    // the default one (fine-tuning drops the base checkpoint's recommended sampler).
    let Origin::Checkpoint { dir, .. } = &origin else {
        unreachable!("training writes a checkpoint folder")
    };
    let mut tuned = load(dir, false)?;
    tuned.origin = origin;
    Ok(tuned)
}

/// Trains `predictor` into the run folder of `request` (a temporary one when none is given), reporting
/// every micro-batch and stopping on Ctrl-C; where the trained model's checkpoints now live.
fn train_into_run(
    predictor: &mut MethodModel,
    request: &FitRequest,
    data: &PerturbationData,
    train: &[usize],
    overrides: TrainOverrides,
    reporter: &Reporter,
) -> anyhow::Result<Origin> {
    let (dir, temporary) = match &request.run_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("cellshift-fit-")
                .tempdir()?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let mut hook = |p: &Progress| {
        reporter.progress(p.step, p.target_step.max(p.step), p.loss_text());
        reporter.stop_if_cancelled();
    };
    let mut ctx = FitContext {
        run_dir: Some(dir.clone()),
        seed: request.seed,
        progress: Some(&mut hook),
        overrides,
        ..FitContext::default()
    };
    predictor
        .fit(data, train, &mut ctx)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("training {}", request.method))?;
    Ok(Origin::Checkpoint { dir, temporary })
}

/// What `predict` predicts.
pub struct PredictRequest {
    /// Perturbation labels to predict.
    pub queries: Vec<String>,
    /// Context to predict in (optional with one context).
    pub context: Option<String>,
    /// Intervention value of the queries.
    pub value: f32,
    /// Context experiments per task.
    pub k: usize,
    /// Cells per set (and predicted per query).
    pub cells: usize,
    /// Seed of the cell subsets, context choice and sampling noise.
    pub seed: u64,
}

/// Predicts the queries in one context of `raw` (brought to the model's preprocessing first); the
/// predicted cells (or pseudo-bulk profiles) as AnnData with provenance in `uns["cellshift"]`.
pub fn predict(
    fitted: &Fitted,
    raw: &PerturbationData,
    request: &PredictRequest,
    cols: &PerturbationColumns,
    reporter: &Reporter,
) -> anyhow::Result<h5ad::AnnData> {
    if request.queries.is_empty() {
        anyhow::bail!("no queries given; name the perturbations to predict, e.g. queries=[\"g1\"]");
    }
    let caps = fitted.predictor.capabilities();
    if !caps.supports_k(request.k) {
        let max = caps.k_max.map_or("any".to_string(), |m| m.to_string());
        anyhow::bail!(
            "K = {} is outside what {} accepts ({}..={max}); use k={} or less",
            request.k,
            fitted.method,
            caps.k_min,
            caps.k_max.unwrap_or(request.k)
        );
    }
    let prepared;
    let data = match &fitted.preprocessing {
        Some(expected) => {
            let (data, report) =
                prepare_for_model(raw, expected).context("preparing the data for the model")?;
            for note in &report.notes {
                eprintln!("note: {note}");
            }
            prepared = data;
            &prepared
        }
        None => raw,
    };
    let context = resolve_context(data, request.context.as_deref())?;
    let seeds: Vec<u64> = (0..request.queries.len() as u64)
        .map(|i| cellshift_data::seed::query_seed(request.seed, i))
        .collect();
    let tasks = request
        .queries
        .iter()
        .zip(&seeds)
        .map(|(query, &seed)| {
            inference_task(
                data,
                context,
                query,
                request.value,
                request.k,
                request.cells,
                seed,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut predictions = Vec::with_capacity(tasks.len());
    reporter.progress(
        0,
        tasks.len() as u64,
        format!("predicting with {}", fitted.method),
    );
    for (group, group_seeds) in tasks
        .chunks(QUERIES_PER_GROUP)
        .zip(seeds.chunks(QUERIES_PER_GROUP))
    {
        reporter.check()?;
        predictions.extend(
            fitted
                .predictor
                .predict_many(group, request.cells, group_seeds)
                .map_err(|e| anyhow::anyhow!("{} failed: {e}", fitted.method))
                .context("predicting the queries")?,
        );
        reporter.progress(
            predictions.len() as u64,
            tasks.len() as u64,
            format!("predicting with {}", fitted.method),
        );
    }
    let pseudo_bulk = caps.output == OutputKind::PseudoBulk;
    let predicted = predicted_screen(
        data,
        context,
        &request.queries,
        &predictions,
        &tasks,
        request.cells,
        request.value,
        pseudo_bulk,
    )?;
    let mut adata = h5ad::perturbation_data_to_anndata(&predicted, cols);
    adata.uns.insert(
        "cellshift".into(),
        UnsValue::Dict(provenance(
            fitted,
            data,
            context,
            request,
            &tasks,
            pseudo_bulk,
        )),
    );
    Ok(adata)
}

/// `uns["cellshift"]` of a prediction: the model, the sampler, the options and, per query, the context
/// experiments shown to the model.
fn provenance(
    fitted: &Fitted,
    data: &PerturbationData,
    context: usize,
    request: &PredictRequest,
    tasks: &[cellshift_data::Task],
    pseudo_bulk: bool,
) -> BTreeMap<String, UnsValue> {
    let text = |v: String| UnsValue::Str(v);
    let mut meta = BTreeMap::new();
    meta.insert("method".into(), text(fitted.method.clone()));
    if let Origin::Checkpoint {
        dir,
        temporary: None,
    } = &fitted.origin
    {
        meta.insert("model".into(), text(dir.display().to_string()));
    }
    meta.insert("context".into(), text(data.contexts[context].clone()));
    meta.insert("k".into(), UnsValue::I64(request.k as i64));
    meta.insert("cells".into(), UnsValue::I64(request.cells as i64));
    meta.insert(
        "output".into(),
        text(if pseudo_bulk {
            "pseudo-bulk: one predicted mean profile per query (control mean + predicted delta)"
                .into()
        } else {
            "cells".into()
        }),
    );
    meta.insert("seed".into(), UnsValue::I64(request.seed as i64));
    if let Some(sampler) = &fitted.sampler {
        meta.insert("sampler".into(), text(format!("{sampler:?}")));
    }
    let experiments = request
        .queries
        .iter()
        .zip(tasks)
        .map(|(q, t)| {
            let used = t.experiments.iter().map(|e| e.label.clone()).collect();
            (q.clone(), UnsValue::StrArray(used))
        })
        .collect();
    meta.insert("context_experiments".into(), UnsValue::Dict(experiments));
    meta
}

/// Saves the model into `dir` (created with its parents; must not exist or be empty): a checkpoint's files, or a
/// baseline's name and training screen. Written into a temporary folder beside `dir`, then renamed.
pub fn save(fitted: &Fitted, dir: &Path) -> anyhow::Result<()> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        anyhow::bail!(
            "{} exists and is not empty; save into a new folder",
            dir.display()
        );
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("creating the folder {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".cellshift-save-")
        .tempdir_in(&parent)?;
    match &fitted.origin {
        Origin::Checkpoint { dir: source, .. } => copy_tree(source, staging.path())?,
        Origin::Baseline { data } => {
            let json = serde_json::json!({
                "baseline": fitted.method,
                "control_label": data.control_label,
            });
            std::fs::write(staging.path().join(BASELINE_FILE), json.to_string())?;
            h5ad::write_perturbation_data(
                &staging.path().join(BASELINE_DATA),
                data,
                &PerturbationColumns {
                    context: Some("context".into()),
                    ..PerturbationColumns::default()
                },
                &WriteOptions::default(),
            )?;
        }
    }
    if dir.exists() {
        std::fs::remove_dir(dir)?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, dir)
        .with_context(|| format!("moving the saved model into {}", dir.display()))?;
    Ok(())
}

/// Copies a folder tree (a run's checkpoints).
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// A saved baseline: refitted on its stored training screen (baselines are closed-form and fit in
/// milliseconds, so the refit is the same model).
fn load_baseline(dir: &Path) -> anyhow::Result<Fitted> {
    let text = std::fs::read_to_string(dir.join(BASELINE_FILE))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("reading {}", dir.join(BASELINE_FILE).display()))?;
    let name = json["baseline"].as_str().ok_or_else(|| {
        anyhow::anyhow!(
            "{} does not name a baseline",
            dir.join(BASELINE_FILE).display()
        )
    })?;
    let columns = PerturbationColumns {
        context: Some("context".into()),
        control: json["control_label"]
            .as_str()
            .unwrap_or(cellshift_data::control_label::AUTO_CONTROL)
            .to_string(),
        ..PerturbationColumns::default()
    };
    let data = h5ad::read_perturbation_data(
        &dir.join(BASELINE_DATA),
        &columns,
        &h5ad::ReadOptions::matrix_only(),
    )?;
    let request = FitRequest {
        method: name.to_string(),
        preset: String::new(),
        steps: None,
        cells: None,
        batch: (None, None, None),
        seed: 0,
        model_options: Vec::new(),
        run_dir: None,
        base: None,
        k: 8,
    };
    let silent = Reporter::silent();
    fit(request, data, &silent)
}
