//! `cellshift bench speed`: sampling speed and accuracy of the ODE solvers on held-out tasks. Every solver
//! integrates the same queries from the same noise as the reference sampler (fixed-step Dopri5, dt = 0.01,
//! 601 guided evaluations); reported per solver: velocity evaluations, seconds per query, the Sinkhorn
//! "W2" between its cells and the reference's (same noise), the sampling noise (W2 between the reference's
//! cells and a solve from different noise), and the change of the main metrics against the true cells.

use crate::outputs::{check_outputs, given_files};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use cellshift_bench::prepare::prepare_for_model;
use cellshift_bench::score::{all_holdout_split, shared_control_tasks};
use cellshift_data::atomic::write_bytes_atomically;
use cellshift_data::sampler::{CellReplacement, SamplerConfig as TaskSamplerConfig, TaskSampler};
use cellshift_data::{Split, SplitRole, Task};
use cellshift_metrics::{
    evaluate, sinkhorn_divergence, EvalCase, EvalOptions, MetricGroups, MetricValue,
    SinkhornOptions,
};
use cellshift_models::flow::OdeSolver;
use cellshift_models::{MapPfn, SamplerConfig};
use ndarray::Array2;

use super::training::set_threads;
use super::DataArgs;

/// Arguments of `cellshift bench speed`.
#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint (or run) directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Data set of new contexts (every context is a hold-out context; the first one is used).
    #[arg(long)]
    pub data: PathBuf,
    /// Context experiments per task.
    #[arg(long, default_value_t = 8)]
    pub k: usize,
    /// Cells per set (the reference timings use 64 at the small shapes, 200 at paper shapes).
    #[arg(long, default_value_t = 64)]
    pub cells: usize,
    /// Queries solved (in one batch per solver).
    #[arg(long, default_value_t = 4)]
    pub queries: usize,
    /// Skip the 601-evaluation reference solve and use adaptive Dopri5 at rtol = atol = 1e-6 as the reference.
    #[arg(long)]
    pub fast_reference: bool,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub columns: DataArgs,
}

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

/// Runs `cellshift bench speed`.
pub fn run(args: Args) -> anyhow::Result<()> {
    check_outputs(&[&args.model, &args.data], &given_files(&[&args.json]))?;
    set_threads(args.threads);
    let base = MapPfn::load(&args.model)
        .with_context(|| format!("loading the model {}", args.model.display()))?;
    let raw = args.columns.read(&args.data)?;
    let (data, _) = prepare_for_model(&raw, base.preprocessing())?;
    let split = Split::new(&data, &all_holdout_split(42))?;
    let sampler = TaskSampler::new(
        &data,
        split,
        TaskSamplerConfig {
            k: args.k,
            n_cells: args.cells,
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
        .take(args.queries.max(1))
        .collect();
    // The shared-control protocol with seed 0: query i uses task seed i.
    let tasks = shared_control_tasks(&sampler, &queries, args.k, 0)?.tasks;
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
            let model = MapPfn::load(&args.model)?.with_sampler(SamplerConfig {
                solver,
                guidance: 2.0,
                ..SamplerConfig::default()
            })?;
            let started = Instant::now();
            let samples = model.sample_batch(&refs, args.cells, seeds)?;
            let secs = started.elapsed().as_secs_f64() / n as f64;
            let evals = samples.first().map_or(0, |s| s.evaluations);
            Ok((samples.into_iter().map(|s| s.cells).collect(), evals, secs))
        };
    let adaptive = |tol: f64| OdeSolver::Dopri5Adaptive {
        rtol: tol,
        atol: tol,
        dt0: 0.05,
        max_steps: 100_000,
    };
    let reference_solver = if args.fast_reference {
        adaptive(1e-6)
    } else {
        OdeSolver::Dopri5Fixed { dt: 0.01 }
    };
    eprintln!(
        "{} queries of context `{}` (K = {}, {} cells per set); reference solve …",
        n, data.contexts[first_context], args.k, args.cells
    );
    let (reference, ref_evals, ref_secs) = run_solver(reference_solver, &seeds)?;
    let w2 = |a: &Array2<f32>, b: &Array2<f32>| -> anyhow::Result<f64> {
        Ok(sinkhorn_divergence(
            a.mapv(f64::from).view(),
            b.mapv(f64::from).view(),
            &SinkhornOptions::default(),
        )?
        .value)
    };
    let mean_w2 = |samples: &[Array2<f32>]| -> anyhow::Result<f64> {
        let mut total = 0.0;
        for (a, b) in samples.iter().zip(&reference) {
            total += w2(a, b)?;
        }
        Ok(total / n as f64)
    };
    let scores = |samples: &[Array2<f32>]| -> anyhow::Result<Vec<(String, f64)>> {
        let obs = tasks[0].observational.mapv(f64::from);
        let trues = tasks
            .iter()
            .map(|t| t.target.as_ref().map(|x| x.mapv(f64::from)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| anyhow::anyhow!("task without target"))?;
        let preds = samples.iter().map(|x| x.mapv(f64::from)).collect();
        let case = EvalCase::new(obs, trues, preds, None, None)?;
        let report = evaluate(
            &case,
            &MetricGroups::parse("mappfn")?,
            &EvalOptions::default(),
        )?;
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
    };
    let reference_scores = scores(&reference)?;
    // Sampling noise: the reference solver from different noise.
    let (noise_samples, _, _) = run_solver(adaptive(1e-6), &other_seeds)?;
    let noise_floor = mean_w2(&noise_samples)?;
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
            w2_to_reference: mean_w2(&samples)?,
            metrics: scores(&samples)?,
        });
        eprintln!("{solver:?}: {evals} evaluations");
    }
    println!(
        "sampling noise (W2 between the reference's cells from two noise draws): {noise_floor:.4}"
    );
    println!(
        "| solver | guided evaluations | s/query | W2 to reference (same noise) | {} |",
        METRICS
            .iter()
            .map(|m| format!("Δ{m}"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|---|---|---|{}", "---|".repeat(METRICS.len()));
    for row in &rows {
        let deltas: Vec<String> = row
            .metrics
            .iter()
            .zip(&reference_scores)
            .map(|((_, v), (_, r))| format!("{:+.4}", v - r))
            .collect();
        println!(
            "| {} | {} | {:.2} | {:.4} | {} |",
            row.solver,
            row.evaluations,
            row.seconds_per_query,
            row.w2_to_reference,
            deltas.join(" | ")
        );
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "model": args.model.display().to_string(),
            "data": args.data.display().to_string(),
            "k": args.k, "cells": args.cells, "queries": n,
            "threads": tch::get_num_threads(),
            "sampling_noise_w2": noise_floor,
            "solvers": rows,
        });
        write_bytes_atomically(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
