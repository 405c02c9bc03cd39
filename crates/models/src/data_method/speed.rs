//! The speed benchmark any method built on [`super::DataMethod`] can list as its `speed` hook
//! (`cellshift bench speed --method M --data FILE.h5ad`): on the standard split of the screen, the fit of
//! `--option steps=N` micro-batches (default 50) on the training conditions, into a scratch run directory,
//! then the prediction of every test perturbation (K = 0, `--cells` cells each, default 64) in one
//! `predict_many` call. It reports the wall time of each part, micro-batches per second and predicted cells
//! per second.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use cellshift_data::{
    inference::inference_task, Budget, DeviceSpec, FitContext, Predictor, Split, SplitConfig,
    TrainOverrides,
};

use super::{DataMethod, MethodSpec};
use crate::hooks::speed::refuse_reference;
use crate::hooks::{parse_options, HookReport, SpeedRequest};

/// The benchmark's `--option` settings.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Micro-batches of the timed fit.
    steps: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { steps: 50 }
    }
}

/// One timing of [`time_fit_and_predict`].
#[derive(Clone, Debug, serde::Serialize)]
struct FitPredictTime {
    preset: String,
    train_conditions: usize,
    steps: u64,
    fit_seconds: f64,
    steps_per_second: f64,
    test_perturbations: usize,
    cells_per_perturbation: usize,
    predict_seconds: f64,
    cells_per_second: f64,
    threads: i32,
}

/// A scratch run directory, removed when dropped.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Times a fit and a prediction of method `S` on `--data` (see the module documentation).
pub fn time_fit_and_predict<S: MethodSpec>(
    request: &SpeedRequest<'_>,
) -> anyhow::Result<HookReport> {
    refuse_reference(request, &format!("the {} fit-and-predict timing", S::TITLE))?;
    let settings: Settings = parse_options(request.options)?;
    let (path, data) = request.data.with_context(|| {
        format!(
            "the {} speed benchmark fits and predicts on a screen; give --data FILE.h5ad",
            S::TITLE
        )
    })?;
    let split = Split::new(
        data,
        &SplitConfig {
            seed: request.seed,
            ..SplitConfig::default()
        },
    )?;
    let (train, test) = (split.train_conditions(), split.test_conditions());
    let presets: Vec<String> = if request.presets.is_empty() {
        vec!["tiny".into()]
    } else {
        request.presets.to_vec()
    };
    let cells = request.cells.unwrap_or(64).max(1);
    let conditions = data.conditions();
    let tasks = test
        .iter()
        .map(|&c| {
            let condition = &conditions[c];
            let label = data.treatments[condition.treatment].label(&data.control_label);
            inference_task(data, condition.context, &label, 1.0, 0, cells, request.seed)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let seeds: Vec<u64> = (0..tasks.len() as u64).map(|i| request.seed + i).collect();
    let scratch = ScratchDir(std::env::temp_dir().join(format!(
        "cellshift-speed-{}-{}-{}",
        S::NAME,
        std::process::id(),
        request.seed
    )));
    let mut rows = Vec::new();
    let mut text = format!(
        "{} on {} (standard split, seed {}): {} training conditions, {} test perturbations, {cells} cells each\n\n\
         | preset | micro-batches | fit s | micro-batches/s | predict s | cells/s |\n|---|---|---|---|---|---|\n",
        S::TITLE,
        path.display(),
        request.seed,
        train.len(),
        tasks.len()
    );
    for preset in &presets {
        let _ = std::fs::remove_dir_all(&scratch.0);
        let mut model = DataMethod::<S>::for_data(data, preset, DeviceSpec::Cpu)?;
        S::set_seed(model.config_mut(), request.seed);
        let mut ctx = FitContext {
            budget: Some(Budget::Steps(settings.steps)),
            run_dir: Some(scratch.0.clone()),
            seed: request.seed,
            overrides: TrainOverrides {
                steps: Some(settings.steps),
                ..TrainOverrides::default()
            },
            ..FitContext::default()
        };
        let started = Instant::now();
        model
            .fit(data, &train, &mut ctx)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let fit_seconds = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let predictions = model
            .predict_many(&tasks, cells, &seeds)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let predict_seconds = started.elapsed().as_secs_f64();
        let predicted = predictions.len() * cells;
        let row = FitPredictTime {
            preset: preset.clone(),
            train_conditions: train.len(),
            steps: settings.steps,
            fit_seconds,
            steps_per_second: settings.steps as f64 / fit_seconds.max(1e-9),
            test_perturbations: tasks.len(),
            cells_per_perturbation: cells,
            predict_seconds,
            cells_per_second: predicted as f64 / predict_seconds.max(1e-9),
            threads: tch::get_num_threads(),
        };
        writeln!(
            text,
            "| {} | {} | {:.3} | {:.1} | {:.3} | {:.0} |",
            row.preset,
            row.steps,
            row.fit_seconds,
            row.steps_per_second,
            row.predict_seconds,
            row.cells_per_second
        )?;
        rows.push(row);
    }
    Ok(HookReport {
        text,
        json: serde_json::json!({
            "method": S::NAME,
            "data": path.display().to_string(),
            "timings": rows,
        }),
        heatmap: None,
    })
}
