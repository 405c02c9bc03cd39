//! MapPFN's speed benchmark (`cellshift bench speed --method mappfn`): sampling speed and accuracy of the
//! ODE solvers on held-out tasks. Every solver integrates the same queries from the same noise as the
//! reference sampler (fixed-step Dopri5, dt = 0.01, 601 guided evaluations); reported per solver: velocity
//! evaluations, seconds per query, the Sinkhorn "W2" between its cells and the reference's (same noise),
//! the sampling noise (W2 between the reference's cells and a solve from different noise), and the change
//! of the main metrics against the true cells.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Context;
use cellshift_data::sampler::{CellReplacement, SamplerConfig as TaskSamplerConfig, TaskSampler};
use cellshift_data::{Split, SplitConfig, SplitMode, SplitRole, Task};
use cellshift_metrics::{
    evaluate, sinkhorn_divergence, EvalCase, EvalOptions, MetricGroups, MetricValue,
    SinkhornOptions,
};
use ndarray::Array2;

use super::{MapPfn, SamplerConfig};
use crate::flow::OdeSolver;
use crate::hooks::{parse_options, HookReport, SpeedRequest};

/// The benchmark's `--option` settings.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Context experiments per task.
    k: usize,
    /// Queries solved (in one batch per solver).
    queries: usize,
    /// Skip the 601-evaluation reference solve; adaptive Dopri5 at rtol = atol = 1e-6 is the reference.
    fast_reference: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            k: 8,
            queries: 4,
            fast_reference: false,
        }
    }
}

/// Cells per set by default (the reference timings use 64 at the small shapes, 200 at paper shapes).
const DEFAULT_CELLS: usize = 64;

/// One solver's result.
#[derive(serde::Serialize)]
struct SolverRow {
    solver: String,
    evaluations: usize,
    seconds_per_query: f64,
    w2_to_reference: f64,
    metrics: Vec<(String, f64)>,
}

const METRICS: [&str; 5] = ["w2", "mmd", "mean_rmse", "mag_ratio", "pds"];

/// The held-out tasks of the first context of the data (every context a hold-out context).
fn held_out_tasks(
    request: &SpeedRequest<'_>,
    model: &MapPfn,
    settings: &Settings,
    cells: usize,
) -> anyhow::Result<(Vec<Task>, String)> {
    let (_, raw) = request.data.ok_or_else(|| {
        anyhow::anyhow!(
            "give --data FILE.h5ad (a data set of new contexts) to time MapPFN's solvers"
        )
    })?;
    let data = crate::prepare::prepare_for_model(raw, model.preprocessing())?.0;
    let split_config = SplitConfig {
        seed: 42,
        mode: SplitMode::AllContextsHoldout,
        ..SplitConfig::default()
    };
    let split = Split::new(&data, &split_config)?;
    let sampler = TaskSampler::new(
        &data,
        split,
        TaskSamplerConfig {
            k: settings.k,
            n_cells: cells,
            with_replacement_policy: CellReplacement::WhenTooFew,
            seed: 0,
            query_role: SplitRole::Test,
            require_k_available: true,
        },
    )?;
    let first_context = sampler
        .queries()
        .first()
        .map(|&q| data.conditions()[q].context)
        .ok_or_else(|| anyhow::anyhow!("the data have no test perturbations"))?;
    let queries: Vec<usize> = sampler
        .queries()
        .iter()
        .copied()
        .filter(|&q| data.conditions()[q].context == first_context)
        .take(settings.queries.max(1))
        .collect();
    // The shared-control protocol with seed 0: query i uses task seed i.
    let tasks = request
        .kit
        .shared_control_tasks(&sampler, &queries, settings.k, 0)?;
    Ok((tasks, data.contexts[first_context].clone()))
}

/// The main metrics of `samples` against the tasks' true cells.
fn scores(tasks: &[Task], samples: &[Array2<f32>]) -> anyhow::Result<Vec<(String, f64)>> {
    let obs = tasks[0].observational.mapv(f64::from);
    let trues = tasks
        .iter()
        .map(|t| t.target.as_ref().map(|x| x.mapv(f64::from)))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| anyhow::anyhow!("task without target"))?;
    let preds = samples.iter().map(|x| x.mapv(f64::from)).collect();
    let case = EvalCase::new(obs, trues, preds, None, None)?;
    let groups = MetricGroups::parse(MetricGroups::MAPPFN_NAME)?;
    let report = evaluate(&case, &groups, &EvalOptions::default())?;
    Ok(METRICS
        .iter()
        .map(|&m| {
            let v = report
                .mean
                .get(m)
                .copied()
                .or_else(|| match report.global.get(m) {
                    Some(MetricValue::Float(v)) => Some(*v),
                    _ => None,
                })
                .unwrap_or(f64::NAN);
            (m.to_string(), v)
        })
        .collect())
}

/// Mean Sinkhorn "W2" between paired sample sets.
fn mean_w2(samples: &[Array2<f32>], reference: &[Array2<f32>]) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for (a, b) in samples.iter().zip(reference) {
        total += sinkhorn_divergence(
            a.mapv(f64::from).view(),
            b.mapv(f64::from).view(),
            &SinkhornOptions::default(),
        )?
        .value;
    }
    Ok(total / reference.len().max(1) as f64)
}

fn adaptive(tol: f64) -> OdeSolver {
    OdeSolver::Dopri5Adaptive {
        rtol: tol,
        atol: tol,
        dt0: 0.05,
        max_steps: 100_000,
    }
}

/// The speed hook of MapPFN's registry entry.
pub fn speed(request: &SpeedRequest<'_>) -> anyhow::Result<HookReport> {
    let settings: Settings = parse_options(request.options)?;
    let model_dir = request.model.ok_or_else(|| {
        anyhow::anyhow!("give --model RUN (a MapPFN checkpoint) to time its solvers")
    })?;
    let cells = request.cells.unwrap_or(DEFAULT_CELLS);
    let base = MapPfn::load(model_dir)
        .with_context(|| format!("loading the model {}", model_dir.display()))?;
    let (tasks, context) = held_out_tasks(request, &base, &settings, cells)?;
    let inputs: Vec<Task> = tasks
        .iter()
        .map(|t| Task {
            target: None,
            ..t.clone()
        })
        .collect();
    let refs: Vec<&Task> = inputs.iter().collect();
    let seeds: Vec<u64> = (0..tasks.len() as u64).collect();
    let other_seeds: Vec<u64> = seeds.iter().map(|s| s + 1_000).collect();
    let n = tasks.len();
    let run_solver =
        |solver: OdeSolver, seeds: &[u64]| -> anyhow::Result<(Vec<Array2<f32>>, usize, f64)> {
            let model = MapPfn::load(model_dir)?.with_sampler(SamplerConfig {
                solver,
                guidance: 2.0,
                ..SamplerConfig::default()
            })?;
            let started = Instant::now();
            let samples = model.sample_batch(&refs, cells, seeds)?;
            let secs = started.elapsed().as_secs_f64() / n as f64;
            let evals = samples.first().map_or(0, |s| s.evaluations);
            Ok((samples.into_iter().map(|s| s.cells).collect(), evals, secs))
        };
    let reference_solver = if settings.fast_reference {
        adaptive(1e-6)
    } else {
        OdeSolver::Dopri5Fixed { dt: 0.01 }
    };
    eprintln!(
        "{n} queries of context `{context}` (K = {}, {cells} cells per set); reference solve …",
        settings.k
    );
    let (reference, ref_evals, ref_secs) = run_solver(reference_solver, &seeds)?;
    let reference_scores = scores(&tasks, &reference)?;
    // Sampling noise: the reference solver from different noise.
    let (noise_samples, _, _) = run_solver(adaptive(1e-6), &other_seeds)?;
    let noise_floor = mean_w2(&noise_samples, &reference)?;
    let mut rows = vec![SolverRow {
        solver: format!("{reference_solver:?} (reference)"),
        evaluations: ref_evals,
        seconds_per_query: ref_secs,
        w2_to_reference: 0.0,
        metrics: reference_scores.clone(),
    }];
    let candidates = [
        adaptive(1e-2),
        adaptive(1e-3),
        adaptive(1e-4),
        OdeSolver::Euler { steps: 10 },
        OdeSolver::Euler { steps: 20 },
        OdeSolver::Rk4 { steps: 3 },
        OdeSolver::Rk4 { steps: 5 },
    ];
    for solver in candidates {
        let (samples, evals, secs) = run_solver(solver, &seeds)?;
        rows.push(SolverRow {
            solver: format!("{solver:?}"),
            evaluations: evals,
            seconds_per_query: secs,
            w2_to_reference: mean_w2(&samples, &reference)?,
            metrics: scores(&tasks, &samples)?,
        });
        eprintln!("{solver:?}: {evals} evaluations");
    }
    let json = serde_json::json!({
        "model": model_dir.display().to_string(),
        "data": request.data.map(|(p, _)| p.display().to_string()),
        "k": settings.k, "cells": cells, "queries": n,
        "threads": tch::get_num_threads(),
        "sampling_noise_w2": noise_floor,
        "solvers": rows,
    });
    Ok(HookReport {
        text: table(&rows, &reference_scores, noise_floor),
        json,
        heatmap: None,
    })
}

/// The printed table: per solver, the change of each metric against the reference's.
fn table(rows: &[SolverRow], reference_scores: &[(String, f64)], noise_floor: f64) -> String {
    let mut out = format!(
        "sampling noise (W2 between the reference's cells from two noise draws): {noise_floor:.4}\n"
    );
    let _ = writeln!(
        out,
        "| solver | guided evaluations | s/query | W2 to reference (same noise) | {} |",
        METRICS
            .iter()
            .map(|m| format!("Δ{m}"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(out, "|---|---|---|---|{}", "---|".repeat(METRICS.len()));
    for row in rows {
        let deltas: Vec<String> = row
            .metrics
            .iter()
            .zip(reference_scores)
            .map(|((_, v), (_, r))| format!("{:+.4}", v - r))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.4} | {} |",
            row.solver,
            row.evaluations,
            row.seconds_per_query,
            row.w2_to_reference,
            deltas.join(" | ")
        );
    }
    out
}
