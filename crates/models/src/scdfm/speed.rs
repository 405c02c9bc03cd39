//! scDFM's speed benchmark (`cellshift bench speed --method scdfm [--against-reference]`): one training
//! step (forward + backward of CFM + γ·MMD + Adam update) on 48 target cells of one perturbation and one
//! sampling step of the 3/8-rule RK4 (4 velocity evaluations) on 48 cells, per preset, with a vocabulary
//! of `genes + 4` tokens and a random graph mask (1 % of the pairs blocked). GFLOP/s counts 2·MACs of
//! matrix products and attention ([`forward_flops`]); a training step is 3× the forward, a sampling step 4
//! forwards. With `--against-reference` the authors' own code is timed at the same shape by
//! `oracle/scdfm/time_reference.py` (their checkout and a Python with torch, given as options), and the
//! two are reported side by side.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use super::loss::flow_loss;
use super::model::{forward_flops, VelocityInputs};
use super::recompute;
use super::{ScdfmConfig, ScdfmNet};
use crate::hooks::{parse_options, HookReport, SpeedRequest};

/// Cells per training batch and per sampling call (their `batch_size`).
const CELLS: i64 = 48;

/// The benchmark's `--option` settings.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    /// Timed repetitions of each step (the median is reported).
    iters: usize,
    /// Untimed repetitions first.
    warmup: usize,
    /// Train with activation checkpointing (less memory, one more forward).
    recompute: bool,
    /// Skip the training step (the paper shape at 1,000 genes needs more than 23 GiB without `recompute`).
    skip_train: bool,
    /// Skip the sampling step.
    skip_sample: bool,
    /// `--against-reference`: the Python interpreter with torch that runs the authors' code.
    python: String,
    /// `--against-reference`: the authors' scDFM checkout (default `$SCDFM_SRC`).
    reference: Option<PathBuf>,
    /// `--against-reference`: the timing script.
    script: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            iters: 3,
            warmup: 1,
            recompute: false,
            skip_train: false,
            skip_sample: false,
            python: "python3".into(),
            reference: None,
            script: PathBuf::from("../shared/oracle/scdfm/time_reference.py"),
        }
    }
}

/// One preset's timings (seconds per step; NaN when skipped).
#[derive(Clone, Debug, serde::Serialize)]
struct StepTime {
    implementation: String,
    preset: String,
    genes: usize,
    parameters: Option<usize>,
    train_step_seconds: f64,
    rk4_step_seconds: f64,
    train_gflop: f64,
    rk4_gflop: f64,
}

/// The speed hook of scDFM's registry entry.
pub fn speed(request: &SpeedRequest<'_>) -> anyhow::Result<HookReport> {
    let settings: Settings = parse_options(request.options)?;
    if settings.iters == 0 {
        bail!("iters must be at least 1 (--option iters=3)");
    }
    let genes = request.genes.unwrap_or(128).max(2);
    let presets: Vec<String> = if request.presets.is_empty() {
        vec!["small".into()]
    } else {
        request.presets.to_vec()
    };
    let threads = tch::get_num_threads();
    let reference = request
        .against_reference
        .then(|| ReferenceRun::resolve(&settings))
        .transpose()?;
    let mut rows = Vec::new();
    for preset in &presets {
        rows.push(time_steps(preset, genes, &settings, request.seed)?);
        if let Some(reference) = &reference {
            rows.push(reference.time(preset, genes, threads, &settings, request.seed)?);
        }
    }
    let mut text = format!(
        "scDFM: {genes} genes, {CELLS} cells, {threads} threads, median of {} timed repetitions (after {} warm-up){}\n\n\
         | implementation | preset | parameters | train step s | GFLOP/s | RK4 step (4 evals) s | GFLOP/s |\n|---|---|---|---|---|---|---|\n",
        settings.iters,
        settings.warmup,
        if settings.recompute { "; training with activation checkpointing" } else { "" }
    );
    for r in &rows {
        writeln!(
            text,
            "| {} | {} | {} | {:.4} | {:.1} | {:.4} | {:.1} |",
            r.implementation,
            r.preset,
            r.parameters
                .map_or("–".to_string(), |p| format!("{:.2} M", p as f64 / 1e6)),
            r.train_step_seconds,
            r.train_gflop / r.train_step_seconds,
            r.rk4_step_seconds,
            r.rk4_gflop / r.rk4_step_seconds
        )?;
    }
    Ok(HookReport {
        text,
        json: serde_json::json!({ "method": "scdfm", "genes": genes, "cells": CELLS, "threads": threads, "timings": rows }),
        heatmap: None,
    })
}

/// This port's training and RK4 step at `preset` (see the module documentation).
fn time_steps(
    preset: &str,
    genes: usize,
    settings: &Settings,
    seed: u64,
) -> anyhow::Result<StepTime> {
    tch::manual_seed(seed as i64);
    let tokens = genes + 4;
    let config = ScdfmConfig::preset(preset, tokens)?;
    let vs = nn::VarStore::new(Device::Cpu);
    let mask = Tensor::rand([tokens as i64, tokens as i64], (Kind::Float, Device::Cpu)).gt(0.99);
    let mask =
        mask.logical_and(&Tensor::eye(tokens as i64, (Kind::Bool, Device::Cpu)).logical_not());
    let net = ScdfmNet::new(vs.root(), &config, &mask, seed)?;
    let mut opt = nn::Adam::default().build(&vs, 5e-5)?;
    let g = genes as i64;
    let ids = (Tensor::arange(g, (Kind::Int64, Device::Cpu)) + 4)
        .unsqueeze(0)
        .repeat([CELLS, 1]);
    let pert = Tensor::from_slice(&[4i64, 5])
        .unsqueeze(0)
        .repeat([CELLS, 1]);
    let x1 = Tensor::rand([CELLS, g], (Kind::Float, Device::Cpu));
    let xc = Tensor::rand([CELLS, g], (Kind::Float, Device::Cpu));
    let train_step = |opt: &mut nn::Optimizer| -> anyhow::Result<()> {
        opt.zero_grad();
        let t = Tensor::rand([CELLS], (Kind::Float, Device::Cpu));
        let x0 = Tensor::randn([CELLS, g], (Kind::Float, Device::Cpu));
        let x_t = (-&t + 1.0).unsqueeze(-1) * &x0 + t.unsqueeze(-1) * &x1;
        let loss_of = |v| flow_loss(v, &x0, &x1, &x_t, &t, 0.5, &config.mmd_scales).total;
        if settings.recompute {
            let inputs = VelocityInputs {
                genes: &ids,
                x_t: &x_t,
                t: &t,
                x_c: &xc,
                pert: &pert,
            };
            let _ = recompute::forward_backward(&net, &inputs, true, |v| (loss_of(v), ()))?;
        } else {
            let v = net.forward(&ids, &x_t, &t, &xc, &pert, true, None)?;
            loss_of(v).backward();
        }
        opt.step();
        Ok(())
    };
    let mut train = Vec::new();
    if !settings.skip_train {
        for i in 0..settings.iters + settings.warmup {
            let started = Instant::now();
            train_step(&mut opt)?;
            if i >= settings.warmup {
                train.push(started.elapsed().as_secs_f64());
            }
        }
    }
    let mut rk4 = Vec::new();
    if !settings.skip_sample {
        tch::no_grad(|| -> anyhow::Result<()> {
            for i in 0..settings.iters + settings.warmup {
                let x = Tensor::randn([CELLS, g], (Kind::Float, Device::Cpu));
                let started = Instant::now();
                for t in [0.0f32, 1.0 / 3.0, 2.0 / 3.0, 1.0] {
                    let _ = net.forward(&ids, &x, &Tensor::from(t), &xc, &pert, false, None)?;
                }
                if i >= settings.warmup {
                    rk4.push(started.elapsed().as_secs_f64());
                }
            }
            Ok(())
        })?;
    }
    let forward = forward_flops(&config, CELLS as usize, genes, tokens);
    Ok(StepTime {
        implementation: "cellshift".into(),
        preset: preset.into(),
        genes,
        parameters: Some(vs.trainable_variables().iter().map(|t| t.numel()).sum()),
        train_step_seconds: median(&mut train),
        rk4_step_seconds: median(&mut rk4),
        train_gflop: 3.0 * forward / 1e9,
        rk4_gflop: 4.0 * forward / 1e9,
    })
}

/// How the authors' code is run: their checkout and the timing script, checked before any timing.
struct ReferenceRun {
    checkout: PathBuf,
}

impl ReferenceRun {
    /// The checkout (`--option reference=DIR` or `$SCDFM_SRC`) and the script, or what to give.
    fn resolve(settings: &Settings) -> anyhow::Result<ReferenceRun> {
        let checkout = settings
            .reference
            .clone()
            .or_else(|| std::env::var_os("SCDFM_SRC").map(PathBuf::from))
            .context(
                "--against-reference times the authors' scDFM code: give their checkout with \
                 --option reference=DIR (or set SCDFM_SRC), and a Python with torch with --option python=PATH",
            )?;
        if !settings.script.is_file() {
            bail!(
                "the reference timing script {} does not exist; give it with --option script=PATH \
                 (it is oracle/scdfm/time_reference.py of the shared reference folder)",
                settings.script.display()
            );
        }
        Ok(ReferenceRun { checkout })
    }

    /// The authors' training and RK4 step at the same shape, through `time_reference.py`.
    fn time(
        &self,
        preset: &str,
        genes: usize,
        threads: i32,
        settings: &Settings,
        seed: u64,
    ) -> anyhow::Result<StepTime> {
        let what: Vec<&str> = [
            ("train", settings.skip_train),
            ("rk4", settings.skip_sample),
        ]
        .iter()
        .filter(|(_, skip)| !skip)
        .map(|(w, _)| *w)
        .collect();
        let output = Command::new(&settings.python)
            .arg(&settings.script)
            .arg("--src")
            .arg(&self.checkout)
            .args(["--preset", preset, "--genes", &genes.to_string()])
            .args(["--what", &what.join(","), "--threads", &threads.to_string()])
            .args(["--reps", &settings.iters.to_string()])
            .args([
                "--warmup",
                &settings.warmup.to_string(),
                "--seed",
                &seed.to_string(),
            ])
            .output()
            .with_context(|| {
                format!(
                    "could not run `{}`; give a Python with torch with --option python=PATH",
                    settings.python
                )
            })?;
        if !output.status.success() {
            bail!(
                "the reference timing failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let summary = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v.get("summary").cloned())
            .last()
            .context("the reference timing printed no summary line")?;
        let median_of = |name: &str| summary[name]["median"].as_f64().unwrap_or(f64::NAN);
        let config = ScdfmConfig::preset(preset, genes + 4)?;
        let forward = forward_flops(&config, CELLS as usize, genes, genes + 4);
        Ok(StepTime {
            implementation: "scDFM authors (PyTorch)".into(),
            preset: preset.into(),
            genes,
            parameters: None,
            train_step_seconds: median_of("train_step"),
            rk4_step_seconds: median_of("rk4_step_4evals"),
            train_gflop: 3.0 * forward / 1e9,
            rk4_gflop: 4.0 * forward / 1e9,
        })
    }
}

/// The median (NaN when empty).
fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
