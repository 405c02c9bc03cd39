//! C3TL's benchmark hook (`cellshift bench sweep --method c3tl`): leave-one-context-out with the paper's
//! 8 % / 2 % / 90 % split against pseudo-bulk readings of the baselines, or the data-efficiency sweep
//! (training contexts × adaptation shares) with a heat map; the machinery is in [`super::transfer`].

use std::fmt::Write as _;
use std::time::Instant;

use ndarray::Array2;

use super::config::MatmulPrecision;
use super::table::{duplicate_perturbations, DuplicatePerturbation};
use super::transfer::{
    summarise_folds, summary_table, sweep, sweep_matrix, sweep_table, transfer_benchmark,
    FoldReport, TransferConfig, C3TL, METRICS,
};
use super::TransferFractions;
use crate::hooks::{comma_list, parse_options, Heatmap, HookReport, SweepInput, SweepRequest};
use cellshift_data::PerturbationData;

/// The benchmark's `--option` settings.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Keep perturbations whose deltas repeat another's in every context (pruned by default, as in the
    /// paper, so that a test entry cannot leak through its twin).
    keep_duplicates: bool,
    /// Adaptation share of the held-out context's perturbations.
    adaptation: f64,
    /// Validation share of the held-out context's perturbations.
    validation: f64,
    /// Beyond the paper: average the predictions of this many C3TL models (1 = the paper).
    ensemble: usize,
    /// Data-efficiency sweep: numbers of training contexts (e.g. `1,2`); with `sweep_adaptation`.
    #[serde(deserialize_with = "comma_list")]
    sweep_contexts: Vec<usize>,
    /// Data-efficiency sweep: adaptation shares (e.g. `0.1,0.3,0.5,0.8`).
    #[serde(deserialize_with = "comma_list")]
    sweep_adaptation: Vec<f64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            keep_duplicates: false,
            adaptation: 0.08,
            validation: 0.02,
            ensemble: 1,
            sweep_contexts: Vec::new(),
            sweep_adaptation: Vec::new(),
        }
    }
}

/// Baselines beside C3TL by default.
const DEFAULT_BASELINES: [&str; 5] = [
    "perturbation_mean",
    "closest_context",
    "context_mean",
    "linear",
    "control",
];

/// Tolerance of [`duplicate_perturbations`]: deltas equal up to float rounding of the means.
const DUPLICATE_TOLERANCE: f32 = 1e-6;

/// Drops perturbations whose deltas repeat an earlier perturbation's in every context, saying which.
fn prune_duplicates(
    data: PerturbationData,
) -> anyhow::Result<(PerturbationData, Vec<DuplicatePerturbation>)> {
    let pruned = duplicate_perturbations(&data, DUPLICATE_TOLERANCE)?;
    if pruned.is_empty() {
        return Ok((data, pruned));
    }
    for d in &pruned {
        eprintln!(
            "pruned perturbation `{}`: its deltas repeat `{}` in every context (--option keep_duplicates=true keeps it)",
            d.duplicate, d.kept
        );
    }
    let dropped: Vec<usize> = pruned
        .iter()
        .map(|d| data.treatment_index(&d.duplicate))
        .collect::<Result<_, _>>()?;
    let cells: Vec<usize> = (0..data.n_cells())
        .filter(|&i| !dropped.contains(&data.cell_treatment[i]))
        .collect();
    Ok((data.select_cells(&cells)?, pruned))
}

/// The benchmark's configuration from the request: C3TL first, then the baselines (in the order given;
/// naming `c3tl` among them places it there instead), and C3TL's settings from `--model-option`s.
fn transfer_config(
    request: &SweepRequest<'_>,
    settings: &Settings,
) -> anyhow::Result<TransferConfig> {
    let baselines: Vec<String> = match request.baselines {
        Some(b) => b.to_vec(),
        None => DEFAULT_BASELINES.iter().map(|b| b.to_string()).collect(),
    };
    let methods = if baselines.iter().any(|b| b == C3TL) {
        baselines
    } else {
        std::iter::once(C3TL.to_string()).chain(baselines).collect()
    };
    let options = ModelOptions::default();
    let options: ModelOptions =
        crate::method::apply_model_options(&options, request.model_options)?;
    Ok(TransferConfig {
        methods,
        preset: request.preset.unwrap_or("small").to_string(),
        max_epochs: options.max_epochs,
        patience: options.patience,
        perturbation_skip: options.perturbation_skip,
        context_subsample: options.context_subsample,
        matmul_precision: options.matmul_precision,
        fractions: TransferFractions {
            adaptation: settings.adaptation,
            validation: settings.validation,
        },
        seed: request.seed,
        ensemble: settings.ensemble,
    })
}

/// The C3TL settings the benchmark takes from `--model-option` (fields of C3TL's configuration).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelOptions {
    /// Maximum epochs (default: the preset's).
    max_epochs: Option<u64>,
    /// Early-stopping patience (default: the preset's).
    patience: Option<u64>,
    /// Beyond the paper: decode a correction to the perturbation's mean observed delta.
    perturbation_skip: bool,
    /// Beyond the paper: average each training context latent over this many entries per epoch.
    context_subsample: usize,
    /// Element type of the matrix products: `f32` (default) or `bf16`.
    matmul_precision: MatmulPrecision,
}

/// The benchmark hook of C3TL's registry entry.
pub fn sweep_hook(request: &SweepRequest<'_>) -> anyhow::Result<HookReport> {
    let settings: Settings = parse_options(request.options)?;
    let [input] = request.inputs else {
        anyhow::bail!("C3TL's benchmark takes one data set: give --data FILE.h5ad (not --suites)");
    };
    let (data, pruned) = if settings.keep_duplicates {
        (input.data.clone(), Vec::new())
    } else {
        prune_duplicates(input.data.clone())?
    };
    eprintln!(
        "{}: {} cells, {} genes, {} contexts ({}), {} treatments; expression {}",
        input.name,
        data.n_cells(),
        data.n_genes(),
        data.contexts.len(),
        data.contexts.join(", "),
        data.treatments.len(),
        data.scale.describe()
    );
    let config = transfer_config(request, &settings)?;
    let started = Instant::now();
    if !settings.sweep_contexts.is_empty() || !settings.sweep_adaptation.is_empty() {
        return run_sweep(input, &data, &config, &settings, &pruned, started);
    }
    let folds = transfer_benchmark(&data, &config, report_fold)?;
    let summary = summarise_folds(&folds, &config.methods);
    let mut text = summary_table(&summary, &config.methods);
    text.push_str(
        "(mean ± sd over folds (folds); deltas vs the context's control mean; cell-level metrics: not \
         applicable, C3TL predicts pseudo-bulk profiles)\n",
    );
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    let json = serde_json::json!({
        "data": input.name,
        "contexts": data.contexts,
        "pruned_duplicates": pruned,
        "config": config,
        "summary": summary,
        "folds": folds,
        "cell_level_metrics": "not applicable: C3TL predicts pseudo-bulk profiles",
    });
    Ok(HookReport {
        text,
        json,
        heatmap: None,
    })
}

/// One line per fold on standard error.
fn report_fold(fold: &FoldReport) {
    let parts: Vec<String> = fold
        .methods
        .iter()
        .map(|m| match (&m.scores, &m.error) {
            (Some(s), _) => format!(
                "{} r_pert {:.3} r_gene {:.3} mse {:.2e}",
                m.method, s.pearson_per_perturbation, s.pearson_per_gene, s.mse
            ),
            (None, Some(e)) => format!("{} n/a ({e})", m.method),
            _ => format!("{} n/a", m.method),
        })
        .collect();
    eprintln!(
        "fold `{}` (adaptation {:?}, validation {:?}, {} test): {}",
        fold.test_context,
        fold.adaptation,
        fold.validation,
        fold.n_test,
        parts.join("; ")
    );
}

/// The data-efficiency sweep: a table per metric, the heat map of the Pearson correlation per perturbation.
fn run_sweep(
    input: &SweepInput,
    data: &PerturbationData,
    config: &TransferConfig,
    settings: &Settings,
    pruned: &[DuplicatePerturbation],
    started: Instant,
) -> anyhow::Result<HookReport> {
    let (counts, shares) = (&settings.sweep_contexts, &settings.sweep_adaptation);
    if counts.is_empty() || shares.is_empty() {
        anyhow::bail!(
            "the sweep needs both --option sweep_contexts=… and --option sweep_adaptation=…"
        );
    }
    let cells = sweep(data, counts, shares, config, |cell| {
        eprintln!(
            "sweep: {} training contexts, adaptation {:.0} % done ({:.0} s)",
            cell.training_contexts,
            cell.adaptation * 100.0,
            started.elapsed().as_secs_f64()
        );
    })?;
    let mut text = String::new();
    for metric in METRICS {
        let _ = write!(
            text,
            "\n{metric} (mean over folds):\n\n{}",
            sweep_table(&cells, &config.methods, metric)
        );
    }
    let method = if config.methods.iter().any(|m| m == C3TL) {
        C3TL
    } else {
        config.methods[0].as_str()
    };
    let values: Array2<f64> =
        sweep_matrix(&cells, counts, shares, method, "pearson_per_perturbation");
    let heatmap = Heatmap {
        values,
        rows: counts.iter().map(|m| m.to_string()).collect(),
        columns: shares
            .iter()
            .map(|a| format!("{:.0} %", a * 100.0))
            .collect(),
        axes: ("adaptation share".into(), "training contexts".into()),
        title: format!("{method}: Pearson per perturbation (mean over folds)"),
    };
    let json = serde_json::json!({
        "data": input.name,
        "config": config,
        "pruned_duplicates": pruned,
        "sweep_contexts": counts,
        "sweep_adaptation": shares,
        "cells": cells,
    });
    Ok(HookReport {
        text,
        json,
        heatmap: Some(heatmap),
    })
}
