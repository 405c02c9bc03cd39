//! CellTarNet's benchmark hook (`cellshift bench sweep --method celltarnet`): fitted on each suite's
//! training conditions (held-out doubles), scored beside baselines with its held-out log-likelihood, and
//! re-scored at other classifier-free guidance scales without refitting (`--option guidance_sweep=1,2`);
//! `--model-option prior.enabled=false` is the no-prior ablation.

use std::time::Instant;

use cellshift_baselines::baseline_by_name;
use cellshift_data::{DeviceSpec, FitContext};
use cellshift_metrics::summary::{markdown_table, MetricSummary};
use cellshift_metrics::MetricGroups;

use super::CellTarNet;
use crate::hooks::{comma_list, parse_options, HookReport, ScoreSetup, SweepInput, SweepRequest};
use crate::method::apply_model_options;

/// The benchmark's `--option` settings.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Also score the fitted model at these guidance scales (sampling only, no refit), e.g. `1,2`.
    #[serde(deserialize_with = "comma_list")]
    guidance_sweep: Vec<f64>,
}

/// Metrics of the table (CellTarNet's paper table, plus the rank metric and the likelihood).
const TABLE: [&str; 8] = [
    "l2_means",
    "mse",
    "mae",
    "de_spearman_lfc_sig",
    "pearson_delta",
    "pds",
    "mean_rmse",
    "heldout_log_likelihood_per_gene",
];

/// Baselines scored beside CellTarNet by default.
const DEFAULT_BASELINES: [&str; 3] = ["additive", "linear", "control"];

/// Adds `l2_means` = ‖μ̂ − μ‖₂ = √(G·MSE of the means) (std by the delta method).
fn with_l2(mut summary: Vec<MetricSummary>, genes: usize) -> Vec<MetricSummary> {
    if let Some(mse) = summary.iter().find(|m| m.metric == "mse").cloned() {
        let l2 = (genes as f64 * mse.mean).sqrt();
        let std = if mse.mean > 0.0 {
            genes as f64 * mse.std / (2.0 * l2)
        } else {
            0.0
        };
        summary.push(MetricSummary {
            metric: "l2_means".into(),
            mean: l2,
            std,
            n: mse.n,
            ci_low: None,
            ci_high: None,
        });
    }
    summary
}

/// The benchmark hook of CellTarNet's registry entry.
pub fn sweep_hook(request: &SweepRequest<'_>) -> anyhow::Result<HookReport> {
    let settings: Settings = parse_options(request.options)?;
    let started = Instant::now();
    let mut text = String::new();
    let mut json_suites = Vec::new();
    for input in request.inputs {
        let (rows, json) = one_input(request, &settings, input)?;
        text.push_str(&rows);
        json_suites.push(json);
    }
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    let command = std::iter::once("cellshift".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    Ok(HookReport {
        text,
        json: serde_json::json!({ "command": command, "suites": json_suites }),
        heatmap: None,
    })
}

/// CellTarNet, its guidance sweep and the baselines on one suite: the markdown section and its JSON.
fn one_input(
    request: &SweepRequest<'_>,
    settings: &Settings,
    input: &SweepInput,
) -> anyhow::Result<(String, serde_json::Value)> {
    let (split, split_description) = input.split.clone().ok_or_else(|| {
        anyhow::anyhow!(
            "CellTarNet's benchmark scores a suite's held-out doubles: give --suites (e.g. combinatorial)"
        )
    })?;
    let data = &input.data;
    eprintln!(
        "{}: {} cells × {} genes; {split_description}",
        input.name,
        data.n_cells(),
        data.n_genes()
    );
    let setup = ScoreSetup {
        k: input.k.unwrap_or(0),
        cells: request.cells.or(input.cells).unwrap_or(64),
        seeds: (0..request.seeds.unwrap_or(3).max(1)).collect(),
        groups: MetricGroups {
            mappfn: true,
            celleval: true,
            de: true,
            ..MetricGroups::none()
        },
    };
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    let mut model = CellTarNet::for_data(data, request.preset.unwrap_or("tiny"), DeviceSpec::Cpu)?;
    *model.config_mut() = apply_model_options(model.config(), request.model_options)?;
    model.config().validate()?;
    let steps = request.train.steps.unwrap_or(model.config().train_steps);
    let mut progress = request.kit.progress(steps);
    let mut fit = FitContext {
        seed: request.seed,
        progress: Some(&mut *progress),
        overrides: request.train.clone(),
        ..FitContext::default()
    };
    let t = Instant::now();
    let summary = request
        .kit
        .score(data, &mut model, split.clone(), &setup, &mut fit)?;
    drop(fit);
    let label = if model.config().prior.enabled {
        super::METHOD.name.to_string()
    } else {
        format!("{} (no prior)", super::METHOD.name)
    };
    eprintln!(
        "  {label}: fitted and scored in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let summary = with_l2(summary, data.n_genes());
    json_rows.push(serde_json::json!({
        "method": label,
        "config": model.config(),
        "fit": model.summary(),
        "seconds": t.elapsed().as_secs_f64(),
        "summary": summary,
    }));
    rows.push((label.clone(), summary));
    for &g in &settings.guidance_sweep {
        model.config_mut().guidance = g;
        let t = Instant::now();
        // Already fitted and no run directory: scoring does not refit.
        let summary = request.kit.score(
            data,
            &mut model,
            split.clone(),
            &setup,
            &mut FitContext::default(),
        )?;
        let summary = with_l2(summary, data.n_genes());
        let name = format!("{label} g={g}");
        json_rows.push(serde_json::json!({
            "method": name,
            "guidance": g,
            "seconds": t.elapsed().as_secs_f64(),
            "summary": summary,
        }));
        rows.push((name, summary));
    }
    score_baselines(request, input, &split, &setup, &mut rows, &mut json_rows)?;
    let text = format!(
        "## {} ({} cells × {} genes; {split_description})\n\n{}",
        input.name,
        data.n_cells(),
        data.n_genes(),
        markdown_table(&rows, &TABLE)
    );
    let json = serde_json::json!({
        "suite": input.name,
        "description": input.description,
        "split": split_description,
        "shape": [data.n_cells(), data.n_genes()],
        "k": setup.k,
        "cells": setup.cells,
        "seeds": setup.seeds,
        "rows": json_rows,
    });
    Ok((text, json))
}

/// The baselines on the same split; one that cannot apply (e.g. `linear`, which embeds single genes
/// only, on held-out doubles) is reported as not applicable.
fn score_baselines(
    request: &SweepRequest<'_>,
    input: &SweepInput,
    split: &cellshift_data::Split,
    setup: &ScoreSetup,
    rows: &mut Vec<(String, Vec<MetricSummary>)>,
    json_rows: &mut Vec<serde_json::Value>,
) -> anyhow::Result<()> {
    let baselines: Vec<String> = match request.baselines {
        Some(b) => b.to_vec(),
        None => DEFAULT_BASELINES.iter().map(|b| b.to_string()).collect(),
    };
    for b in &baselines {
        let mut predictor = baseline_by_name(b)?;
        let t = Instant::now();
        let summary = match request.kit.score(
            &input.data,
            predictor.as_mut(),
            split.clone(),
            setup,
            &mut FitContext::default(),
        ) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("  {b}: n/a — {e:#}");
                json_rows
                    .push(serde_json::json!({"method": b, "not_applicable": format!("{e:#}")}));
                rows.push((format!("{b} (n/a)"), Vec::new()));
                continue;
            }
        };
        let summary = with_l2(summary, input.data.n_genes());
        json_rows.push(serde_json::json!({
            "method": predictor.name(),
            "seconds": t.elapsed().as_secs_f64(),
            "summary": summary,
        }));
        rows.push((predictor.name().to_string(), summary));
    }
    Ok(())
}
