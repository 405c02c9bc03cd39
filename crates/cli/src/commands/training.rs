//! Arguments and progress reporting shared by the training commands (`pretrain`, `finetune`).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::bail;
use cellshift_data::{FitContext, PerturbationData, Predictor, TrainOverrides};
use cellshift_models::{Budget, Preprocessing, Progress, TrainConfig};
use indicatif::{ProgressBar, ProgressStyle};

/// Training-schedule presets.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SchedulePreset {
    /// A few CPU hours: 8 tasks per micro-batch, no accumulation, peak LR 4e-4, 3% warmup, 20% sqrt cooldown.
    Cpu,
    /// The reference run: 32 tasks × 8 accumulated micro-batches, peak 1e-4, schedule sized in micro-batches (quirk).
    Reference,
    /// The paper's intent: as `reference` but the schedule sized in optimiser updates (1% warmup, 20% decay).
    Paper,
    /// Fine-tuning (spec §3.6): warmup over 5% of updates to 5e-5, then constant.
    Finetune,
}

impl SchedulePreset {
    /// The preset's name in [`TrainConfig::from_overrides`].
    pub fn name(self) -> &'static str {
        match self {
            SchedulePreset::Cpu => "cpu",
            SchedulePreset::Reference => "reference",
            SchedulePreset::Paper => "paper",
            SchedulePreset::Finetune => "finetune",
        }
    }
}

/// Budget, schedule and threading options of a training command.
#[derive(clap::Args, Clone, Debug)]
pub struct TrainingArgs {
    /// Schedule preset.
    #[arg(long, value_enum)]
    pub schedule: Option<SchedulePreset>,
    /// Length of the run in micro-batches (sizes the learning-rate schedule; the run stops there).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Stop this invocation after this many minutes (the run resumes when the command is repeated).
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Stop this invocation at this micro-batch (the run resumes from there when the command is repeated).
    #[arg(long, conflicts_with = "minutes")]
    pub stop_at: Option<u64>,
    /// Tasks per micro-batch (default: the preset's).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Micro-batches per optimiser update (default: the preset's).
    #[arg(long)]
    pub accumulation: Option<usize>,
    /// Peak learning rate (default: the preset's).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Checkpoint every this many micro-batches (default: the preset's).
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// Master seed of initialisation, tasks, noise and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Start the run in `--out` over: remove its checkpoints and its record of the training data first
    /// (other files in the folder are kept).
    #[arg(long)]
    pub restart: bool,
}

/// The file of a run folder recording which data the run is trained on.
const TRAINING_DATA_FILE: &str = "training_data.json";

/// Removes what a run folder holds of a run (`LATEST`, the `ckpt-*` folders, the training-data record),
/// keeping any other file.
pub fn clear_run(out: &std::path::Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return Ok(());
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with("ckpt-") && path.is_dir() {
            std::fs::remove_dir_all(&path)?;
            removed += 1;
        } else if name == "LATEST" || name == TRAINING_DATA_FILE {
            std::fs::remove_file(&path)?;
        }
    }
    eprintln!(
        "--restart: removed {removed} checkpoint(s) of the run in {}",
        out.display()
    );
    Ok(())
}

/// Fingerprint of the training data: FNV-1a over the genes, the expression matrix, each cell's
/// treatment and context, and the training conditions.
fn data_fingerprint(data: &PerturbationData, train: &[usize]) -> String {
    let mut h = cellshift_data::seed::Fnv1a64::default();
    for g in &data.genes {
        h.update(g.as_bytes());
        h.update(&[0]);
    }
    for v in data.x.stored_values().iter() {
        h.update(&v.to_le_bytes());
    }
    for (t, c) in data.cell_treatment.iter().zip(&data.cell_context) {
        h.update(data.treatments[*t].label(&data.control_label).as_bytes());
        h.update(data.contexts[*c].as_bytes());
        h.update(&[0]);
    }
    for &c in train {
        h.update(&(c as u64).to_le_bytes());
    }
    format!("{:016x}", h.0)
}

/// Records the training data of a new run in its folder, or refuses a folder whose run was trained on
/// other data (a resumed run must see the same data; a finished one would otherwise keep its old model).
fn check_training_data(
    out: &std::path::Path,
    data: &PerturbationData,
    train: &[usize],
) -> anyhow::Result<()> {
    let record = out.join(TRAINING_DATA_FILE);
    let fingerprint = data_fingerprint(data, train);
    let summary = format!(
        "{} cells × {} genes, {} training conditions",
        data.n_cells(),
        data.n_genes(),
        train.len()
    );
    if let Ok(text) = std::fs::read_to_string(&record) {
        let old: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if old["fingerprint"].as_str() != Some(fingerprint.as_str()) {
            bail!(
                "{} holds a run trained on other data ({}; now {summary}); choose a new --out, or give \
                 --restart to start this run over",
                out.display(),
                old["summary"].as_str().unwrap_or("unrecorded")
            );
        }
        return Ok(());
    }
    std::fs::create_dir_all(out)?;
    let json = serde_json::json!({ "fingerprint": fingerprint, "summary": summary });
    cellshift_data::atomic::write_bytes_atomically(&record, json.to_string().as_bytes())?;
    Ok(())
}

impl TrainingArgs {
    /// The training configuration the options describe, for data preprocessed as `preprocessing`.
    pub fn train_config(&self, preprocessing: Preprocessing) -> anyhow::Result<TrainConfig> {
        self.train_config_with(SchedulePreset::Cpu, 6000, preprocessing)
    }

    /// As [`TrainingArgs::train_config`] with a command-specific default preset and length.
    pub fn train_config_with(
        &self,
        default_preset: SchedulePreset,
        default_steps: u64,
        preprocessing: Preprocessing,
    ) -> anyhow::Result<TrainConfig> {
        Ok(TrainConfig::from_overrides(
            default_preset.name(),
            default_steps,
            preprocessing,
            &self.overrides(None, None),
            self.seed,
        )?)
    }

    /// The options as method-neutral training overrides (with the command's K and cells per set).
    pub fn overrides(&self, k: Option<usize>, cells: Option<usize>) -> TrainOverrides {
        TrainOverrides {
            schedule: self.schedule.map(|s| s.name().to_string()),
            steps: self.steps,
            batch_size: self.batch_size,
            accumulation: self.accumulation,
            lr: self.lr,
            checkpoint_every: self.checkpoint_every,
            k,
            cells,
        }
    }

    /// The budget of this invocation when `--stop-at` or `--minutes` is given (else the method's run length).
    pub fn budget_if_given(&self) -> anyhow::Result<Option<Budget>> {
        if let Some(step) = self.stop_at {
            return Ok(Some(Budget::Steps(step)));
        }
        match self.minutes {
            Some(m) if !(m > 0.0 && m.is_finite()) => {
                bail!("--minutes must be a positive number, got {m}")
            }
            Some(m) => Ok(Some(Budget::Minutes(m))),
            None => Ok(None),
        }
    }

    /// The budget of this invocation: `--stop-at` or `--minutes` if given, else the run's length.
    pub fn budget(&self, total_steps: u64) -> anyhow::Result<Budget> {
        if let Some(step) = self.stop_at {
            return Ok(Budget::Steps(step.min(total_steps)));
        }
        match self.minutes {
            Some(m) if !(m > 0.0 && m.is_finite()) => {
                bail!("--minutes must be a positive number, got {m}")
            }
            Some(m) => Ok(Budget::Minutes(m)),
            None => Ok(Budget::Steps(total_steps)),
        }
    }
}

/// Sets libtorch's intra-op thread count (`None`: one per available core).
pub fn set_threads(threads: Option<usize>) {
    let n = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    tch::set_num_threads(n.max(1) as i32);
}

/// A progress callback: a live bar (loss, learning rate, steps/s, ETA) on a terminal, else one line every
/// 30 seconds (logs).
pub fn report_progress(total_steps: u64) -> impl FnMut(&Progress) {
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal.then(|| {
        let bar = ProgressBar::new(total_steps);
        bar.set_style(
            ProgressStyle::with_template(
                "[{elapsed_precise}] [{bar:30}] {pos}/{len} {msg} (eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let mut last_line = Instant::now();
    let mut smoothed: Option<f64> = None;
    let mut first = true;
    move |p: &Progress| {
        if std::mem::take(&mut first) && p.start_step > 0 {
            eprintln!(
                "resuming the run from its checkpoint at micro-batch {} of {}",
                p.start_step, p.run_steps
            );
        }
        let loss = match smoothed {
            None => p.loss,
            Some(s) => 0.98 * s + 0.02 * p.loss,
        };
        smoothed = Some(loss);
        let eta = p.eta.map_or("?".to_string(), |e| format_duration(e));
        let parts: Vec<String> = p
            .components
            .iter()
            .map(|(name, v)| format!("{name} {v:.4}"))
            .collect();
        let parts = if parts.is_empty() {
            String::new()
        } else {
            format!(" [{}]", parts.join(", "))
        };
        let message = format!(
            "loss {loss:.4} (last {:.4}{parts}) lr {:.2e} |g| {:.2} {:.2} steps/s",
            p.loss, p.lr, p.grad_norm, p.steps_per_sec
        );
        match &bar {
            Some(bar) => {
                bar.set_length(p.target_step.max(p.step));
                bar.set_position(p.step);
                bar.set_message(message);
            }
            None => {
                if last_line.elapsed() >= Duration::from_secs(30) || p.step == p.target_step {
                    eprintln!("step {}/{} {message} eta {eta}", p.step, p.target_step);
                    last_line = Instant::now();
                }
            }
        }
    }
}

/// Fits `model` on the `train` conditions of `data` into the run directory `out` (resuming there) with
/// the budget of `args`, a progress bar, and a closing line saying where it stopped.
pub fn fit_into_run(
    model: &mut dyn Predictor,
    data: &PerturbationData,
    train: &[usize],
    args: &TrainingArgs,
    overrides: TrainOverrides,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    if args.restart {
        clear_run(out)?;
    }
    check_training_data(out, data, train)?;
    let mut last: Option<(u64, u64)> = None;
    let mut bar = report_progress(overrides.steps.unwrap_or(0));
    let mut ctx = FitContext {
        budget: args.budget_if_given()?,
        run_dir: Some(out.to_path_buf()),
        seed: args.seed,
        progress: Some(&mut |p: &Progress| {
            last = Some((p.step, p.run_steps));
            bar(p)
        }),
        overrides,
        ..FitContext::default()
    };
    model
        .fit(data, train, &mut ctx)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(ctx);
    report_stop(last, out);
    Ok(())
}

/// Prints where a training invocation stopped (`last` = the last progress's step and run length).
pub fn report_stop(last: Option<(u64, u64)>, out: &std::path::Path) {
    match last {
        Some((step, total)) => eprintln!(
            "stopped at micro-batch {step} of {total}{}; run directory {}",
            if step >= total {
                ", run finished"
            } else {
                "; run the same command again to continue"
            },
            out.display()
        ),
        None => eprintln!(
            "nothing left to train: the run in {} is complete",
            out.display()
        ),
    }
}

fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}
