//! `cellshift predict`: predict the cells of unmeasured (or held-back) perturbations in one context of a
//! screen with a checkpoint of any method (the bundled MapPFN by default), from the context's control
//! cells and K measured perturbations; writes the predicted cells as an `.h5ad` (one block of `--cells`
//! cells per query); a pseudo-bulk method (C3TL) writes one predicted profile per query instead — its
//! delta on top of the mean of all the context's control cells — and no cells are made up. `--method auto`
//! predicts with the baseline that cross-validation on the screen's measured perturbations chooses.

use crate::outputs::{check_outputs, Output};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use cellshift_baselines::{baseline_by_name, BASELINE_NAMES};
use cellshift_bench::auto::{Auto, AutoReport, Candidate};
use cellshift_bench::ScoreConfig;
use cellshift_data::h5ad::{self, UnsValue, WriteOptions};
use cellshift_data::inference::{inference_task, predicted_screen, resolve_context};
use cellshift_data::split::Split;
use cellshift_data::{
    FitContext, OutputKind, PerturbationData, PredictError, Prediction, Predictor, Task, Treatment,
};
use cellshift_metrics::MetricGroups;
use cellshift_models::prepare::prepare_for_model;

use super::model::{check_k, load_model, model_dir, SamplerArgs};
use super::training::set_threads;
use super::DataArgs;

/// Queries predicted together between two moves of the progress bar.
const QUERIES_PER_GROUP: usize = 5;

/// Arguments of `cellshift predict`.
#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint (or run) directory written by `pretrain`, `train` or `finetune` (default: the bundled
    /// SERGIO-prior MapPFN, `checkpoints/mappfn-sergio-small`).
    #[arg(long, conflicts_with = "method")]
    pub model: Option<PathBuf>,
    /// `auto`: instead of a checkpoint, choose among the baselines (all but the oracle) by
    /// cross-validation on this screen's measured perturbations of the queries' kind in the context
    /// (never the queries themselves), refit the winner on all of them, and predict with it. The data
    /// are used on the scale given. The choice and the inner scores are printed and kept in the output's
    /// `uns["cellshift"]`.
    #[arg(long)]
    pub method: Option<String>,
    /// Inner folds of `--method auto`.
    #[arg(long, default_value_t = cellshift_bench::auto::DEFAULT_INNER_FOLDS)]
    pub auto_folds: usize,
    /// The screen (`.h5ad`; raw counts are normalised as the checkpoint records).
    #[arg(long)]
    pub data: PathBuf,
    /// Context (cell line, …) to predict in; optional when the file has one context.
    #[arg(long)]
    pub context: Option<String>,
    /// Perturbations to predict (repeat the option or separate with commas); a knock-out's label is its target gene.
    #[arg(long, required = true, value_delimiter = ',')]
    pub query: Vec<String>,
    /// Intervention value of the queries (1 for knock-outs).
    #[arg(long, default_value_t = 1.0)]
    pub value: f32,
    /// Measured perturbations of the context shown to the model as context experiments.
    #[arg(long, default_value_t = 8)]
    pub k: usize,
    /// Cells per set (control and context sets are subsampled to this; this many cells are predicted per query).
    #[arg(long, default_value_t = 200)]
    pub cells: usize,
    /// Seed of the cell subsets, context choice and sampling noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output `.h5ad` of predicted cells.
    #[arg(long)]
    pub out: PathBuf,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub sampler: SamplerArgs,
    #[command(flatten)]
    pub columns: DataArgs,
}

/// Runs `cellshift predict`.
pub fn run(args: Args) -> anyhow::Result<()> {
    set_threads(args.threads);
    let auto = match args.method.as_deref() {
        None => false,
        Some("auto") => true,
        Some(other) => anyhow::bail!(
            "--method `{other}` is not supported here; use --method auto, or --model DIR for a trained \
             checkpoint of any method"
        ),
    };
    let model_path = if auto {
        None
    } else {
        Some(model_dir(args.model.as_deref())?)
    };
    let mut inputs: Vec<&std::path::Path> = vec![&args.data];
    inputs.extend(model_path.as_deref());
    check_outputs(&inputs, &[Output::File(&args.out)])?;
    let raw = args.columns.read(&args.data)?;
    let (mut model, method, sampler, data) = match &model_path {
        Some(path) => {
            let loaded = load_model(path, &args.sampler)?;
            check_k(&loaded, args.k)?;
            let (data, report) = prepare_for_model(&raw, &loaded.preprocessing)
                .with_context(|| format!("preparing {} for the model", args.data.display()))?;
            for note in &report.notes {
                eprintln!("note: {note}");
            }
            let sampler = format!("{:?}", loaded.sampler);
            (
                loaded.model as Box<dyn Predictor>,
                loaded.method.to_string(),
                sampler,
                data,
            )
        }
        None => (
            Box::new(NoModel) as Box<dyn Predictor>,
            "auto".to_string(),
            "none (baselines)".to_string(),
            raw,
        ),
    };
    let context = resolve_context(&data, args.context.as_deref())?;
    let mut choice = None;
    if auto {
        let (fitted, report) = fit_auto(&data, context, &args)?;
        model = fitted;
        choice = Some(report);
    }
    let seeds: Vec<u64> = (0..args.query.len() as u64)
        .map(|i| cellshift_data::seed::query_seed(args.seed, i))
        .collect();
    let tasks = args
        .query
        .iter()
        .zip(&seeds)
        .map(|(query, &seed)| {
            inference_task(&data, context, query, args.value, args.k, args.cells, seed)
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Queries in groups: methods that batch (MapPFN: one batched ODE solve) solve each group together,
    // and the progress bar moves between groups.
    let bar = crate::progress::bar(tasks.len() as u64, &format!("predicting with {method}"));
    let mut predictions = Vec::with_capacity(tasks.len());
    for (group, group_seeds) in tasks
        .chunks(QUERIES_PER_GROUP)
        .zip(seeds.chunks(QUERIES_PER_GROUP))
    {
        predictions.extend(
            model
                .predict_many(group, args.cells, group_seeds)
                .map_err(|e| anyhow::anyhow!("{method} failed: {e}"))
                .context("predicting the queries")?,
        );
        bar.inc(group.len() as u64);
    }
    bar.finish();
    eprintln!(
        "predicted {} queries × {} cells in `{}` with {}",
        args.query.len(),
        args.cells,
        data.contexts[context],
        method
    );
    let pseudo_bulk = model.capabilities().output == OutputKind::PseudoBulk;
    let predicted = predicted_screen(
        &data,
        context,
        &args.query,
        &predictions,
        &tasks,
        args.cells,
        args.value,
        pseudo_bulk,
    )?;
    let n = predicted.n_cells();
    // Provenance in `uns["cellshift"]`: the model, the sampler and, per query, the context experiments.
    let mut adata = h5ad::perturbation_data_to_anndata(&predicted, &args.columns.columns());
    let mut meta = BTreeMap::new();
    let text = |v: String| UnsValue::Str(v);
    meta.insert("method".into(), text(method.clone()));
    if let Some(path) = &model_path {
        meta.insert("model".into(), text(path.display().to_string()));
    }
    if let Some(report) = &choice {
        meta.insert("auto".into(), text(serde_json::to_string(report)?));
    }
    meta.insert("data".into(), text(args.data.display().to_string()));
    meta.insert("context".into(), text(data.contexts[context].clone()));
    meta.insert("k".into(), UnsValue::I64(args.k as i64));
    meta.insert("cells".into(), UnsValue::I64(args.cells as i64));
    meta.insert(
        "output".into(),
        text(if pseudo_bulk {
            "pseudo-bulk: one predicted mean profile per query (control mean + predicted delta)"
                .into()
        } else {
            "cells".into()
        }),
    );
    meta.insert("seed".into(), UnsValue::I64(args.seed as i64));
    meta.insert("sampler".into(), text(sampler));
    let experiments: BTreeMap<String, UnsValue> = args
        .query
        .iter()
        .zip(&tasks)
        .map(|(q, t)| {
            let used = t.experiments.iter().map(|e| e.label.clone()).collect();
            (q.clone(), UnsValue::StrArray(used))
        })
        .collect();
    meta.insert("context_experiments".into(), UnsValue::Dict(experiments));
    adata.uns.insert("cellshift".into(), UnsValue::Dict(meta));
    h5ad::write_h5ad(&args.out, &adata, &WriteOptions::default())
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "wrote {} predicted {} ({} queries) to {}",
        n,
        if pseudo_bulk {
            "pseudo-bulk profiles"
        } else {
            "cells"
        },
        args.query.len(),
        args.out.display()
    );
    Ok(())
}

/// Stands in for the model until `auto` has chosen one (never asked to predict).
struct NoModel;

impl Predictor for NoModel {
    fn name(&self) -> &str {
        "auto"
    }

    fn predict(&self, _: &Task, _: usize, _: u64) -> Result<Prediction, PredictError> {
        Err("auto has not chosen a model".into())
    }
}

/// `--method auto`: chooses among the baselines on the context's measured perturbations of the queries'
/// kinds (the queries' own conditions left out) and refits the winner on every measured condition but the
/// queries'.
fn fit_auto(
    data: &PerturbationData,
    context: usize,
    args: &Args,
) -> anyhow::Result<(Box<dyn Predictor>, AutoReport)> {
    let query_conditions: Vec<usize> = args
        .query
        .iter()
        .filter_map(|q| {
            let t = data.treatment_index(q).ok()?;
            data.conditions()
                .iter()
                .position(|c| c.context == context && c.treatment == t)
        })
        .collect();
    let train: Vec<usize> = (0..data.conditions().len())
        .filter(|c| !query_conditions.contains(c))
        .collect();
    let mut kinds: Vec<(usize, &'static str)> = args
        .query
        .iter()
        .map(|q| {
            let treatment = Treatment::from_label(q, &data.control_label);
            (context, Split::treatment_kind(&treatment))
        })
        .collect();
    kinds.sort();
    kinds.dedup();
    let folds = args.auto_folds;
    let candidates = BASELINE_NAMES
        .iter()
        .filter(|&&b| baseline_by_name(b).is_ok_and(|p| !p.capabilities().reads_target))
        .map(|&b| -> anyhow::Result<Candidate> {
            let fresh = || -> anyhow::Result<Box<dyn Predictor>> { Ok(baseline_by_name(b)?) };
            Ok(Candidate {
                name: b.to_string(),
                per_fold: (0..folds)
                    .map(|_| fresh().map(|p| (p, None)))
                    .collect::<anyhow::Result<_>>()?,
                refit: (fresh()?, None),
                baseline: true,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = Arc::new(Mutex::new(AutoReport::default()));
    let config = ScoreConfig {
        k: args.k,
        n_cells: args.cells.min(64),
        seeds: vec![args.seed],
        groups: MetricGroups::none(),
        split: Default::default(),
    };
    let mut auto = Auto::new(candidates, kinds, &config, folds, report.clone());
    eprintln!(
        "auto: choosing among {} baselines by {folds}-fold cross-validation on the measured perturbations",
        BASELINE_NAMES.len() - 1
    );
    auto.fit(
        data,
        &train,
        &mut FitContext {
            seed: args.seed,
            ..FitContext::default()
        },
    )
    .map_err(|e| anyhow::anyhow!("auto: {e}"))?;
    let report = report
        .lock()
        .map_err(|_| anyhow::anyhow!("auto's report was lost"))?
        .clone();
    for s in &report.inner {
        match (s.mean_rmse, &s.reason) {
            (Some(v), _) => eprintln!(
                "  {}: inner mean_rmse {v:.4} over {} perturbations",
                s.name, s.n
            ),
            (None, Some(r)) => eprintln!("  {}: not scored ({r})", s.name),
            (None, None) => eprintln!("  {}: no value", s.name),
        }
    }
    eprintln!("auto chose {}", report.chosen);
    Ok((Box::new(auto), report))
}
