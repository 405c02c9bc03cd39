//! The training loop shared by all neural methods (spec §3.2, Appendix B): per micro-batch, the loss of
//! `batch_size` tasks, its gradient clipped to global norm `clip_norm`, a running mean over `accumulation`
//! micro-batches passed to AdamW with the scheduled learning rate, and an EMA update; checkpoints at a
//! fixed cadence; exact resumption.
//!
//! The loop is generic over a method's batch type ([`Trainable::Batch`]): a batch source yields micro-batch
//! `m` from its index alone (for task-based methods, task `j` of micro-batch `m` is
//! `source.task(m·batch_size + j)`), and every random draw of micro-batch `m` comes from the stream
//! `(seed, "train-micro-batch", m)`. A resumed run therefore reproduces the uninterrupted run's loss
//! sequence bit for bit (on the same device and thread count). A method's loss has named components
//! ([`LossTerms`]) that the progress reports and the checkpoints carry.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand_pcg::Pcg64;
use tch::{nn, Tensor};

use super::checkpoint::{
    self, CheckpointMeta, Counters, LoadedCheckpoint, RngPosition, TensorFileInfo,
};
use super::config::{Budget, Progress, TrainConfig};
use super::early_stop::{EarlyStopping, EarlyStoppingState};
use super::ema::Ema;
use super::flat::FlatParams;
use super::optim::AdamW;
use super::source::BatchSource;
use crate::error::{ModelError, Result};
use crate::rng;

/// Domain name of the per-micro-batch random streams.
pub const MICRO_BATCH_STREAM: &str = "train-micro-batch";

/// The loss of one micro-batch: the scalar the optimiser minimises and its named parts (e.g. flow matching
/// and MMD, NLL and InfoNCE), reported in progress and checkpoints. `components` may be empty when the loss
/// has a single term.
pub struct LossTerms {
    /// The scalar loss (with autograd history).
    pub total: Tensor,
    /// Named parts, already weighted as they enter `total` (values only; no gradient needed).
    pub components: Vec<(String, Tensor)>,
    /// The model has already back-propagated `total` into its parameters' gradients (e.g. with
    /// activation checkpointing), so the trainer must not call `backward` again.
    pub backpropagated: bool,
}

impl LossTerms {
    /// A loss of one term.
    pub fn single(total: Tensor) -> LossTerms {
        LossTerms {
            total,
            components: Vec::new(),
            backpropagated: false,
        }
    }

    /// The components as numbers.
    pub fn component_values(&self) -> Vec<(String, f64)> {
        self.components
            .iter()
            .map(|(n, t)| (n.clone(), t.double_value(&[])))
            .collect()
    }
}

/// A model the shared loop can train.
pub trait Trainable {
    /// What one micro-batch is (e.g. `Vec<Task>` for in-context methods).
    type Batch;
    /// Method name stored in checkpoints (e.g. `"mappfn"`).
    fn method(&self) -> &'static str;
    /// The model configuration as JSON (stored in checkpoints; the method's loader reads it back).
    fn config_json(&self) -> serde_json::Value;
    /// The model's variables.
    fn var_store(&self) -> &nn::VarStore;
    /// The loss of one micro-batch; every random number must be drawn from `rng`.
    fn loss(&self, batch: &Self::Batch, rng: &mut Pcg64) -> Result<LossTerms>;
}

/// The trainable variables of a var store, sorted by name.
pub fn named_trainables(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// All variables (trainable or not) of a var store, sorted by name.
pub fn named_variables(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Number of trainable parameters.
pub fn parameter_count(vs: &nn::VarStore) -> usize {
    named_trainables(vs).iter().map(|(_, t)| t.numel()).sum()
}

/// Copies the weights of a checkpoint into a var store: the EMA weights of trainable variables when
/// `ema` (debiased if the run's EMA setting says so), else the raw weights; non-trainable variables always
/// come from the raw weights.
pub fn load_weights(vs: &nn::VarStore, ck: &LoadedCheckpoint, ema: bool) -> Result<()> {
    let factor = if ema {
        Ema::readout_factor(&ck.meta.train_config.ema, ck.meta.counters.ema_updates)
    } else {
        1.0
    };
    // An inference export holds only `model/` tensors (the EMA readout baked in).
    let ema = ema && !ck.is_inference_export();
    tch::no_grad(|| {
        for (name, mut var) in named_variables(vs) {
            let from_ema = ema && var.requires_grad();
            let src = ck.tensor(if from_ema { "ema" } else { "model" }, &name, &var.size())?;
            if from_ema && factor != 1.0 {
                var.f_copy_(&(src * factor))?;
            } else {
                var.f_copy_(src)?;
            }
        }
        Ok(())
    })
}

/// What one micro-batch did.
#[derive(Clone, Debug)]
pub struct StepReport {
    /// The micro-batch loss.
    pub loss: f64,
    /// Its named components.
    pub components: Vec<(String, f64)>,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate of the update made in this micro-batch, if one was made.
    pub lr: Option<f64>,
}

/// Summary of one training invocation.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// Micro-batches done in the run (including earlier invocations).
    pub step: u64,
    /// Optimiser updates done.
    pub updates: u64,
    /// Losses of the micro-batches done in this invocation, in order.
    pub losses: Vec<f64>,
    /// The last checkpoint written.
    pub checkpoint: Option<PathBuf>,
    /// Whether the run is over: it reached `total_steps` or stopped early.
    pub finished: bool,
    /// The run stopped early (its weights are the best micro-batch's).
    pub stopped_early: bool,
    /// The micro-batch this invocation started from (> 0 when it resumed a run).
    pub start_step: u64,
    /// With early stopping: the best micro-batch (1-based) and its criterion.
    pub best: Option<(u64, f64)>,
    /// Wall time of this invocation.
    pub elapsed: Duration,
}

/// How a training invocation starts when the run directory holds no checkpoint yet.
pub enum Start<'a> {
    /// From the model's current (freshly initialised) weights.
    Fresh,
    /// From the weights and EMA of another run's checkpoint, with a fresh optimiser and counters.
    FinetuneFrom(&'a LoadedCheckpoint),
}

/// Training state of one model: optimiser, EMA, accumulated gradient and counters.
pub struct Trainer<'m, M: Trainable + ?Sized> {
    model: &'m M,
    config: TrainConfig,
    params: FlatParams,
    optimizer: AdamW,
    ema: Ema,
    accum: Tensor,
    counters: Counters,
    task_source: String,
    last_loss: Option<f64>,
    last_components: Vec<(String, f64)>,
    finetuned_from: Option<String>,
    early: Option<EarlyStoppingState>,
    best: Option<Tensor>,
}

impl<'m, M: Trainable + ?Sized> Trainer<'m, M> {
    /// A fresh trainer for `model` (AdamW moments zero, EMA initialised per `config.ema`).
    pub fn new(model: &'m M, config: TrainConfig) -> Result<Self> {
        config.validate()?;
        let named = named_trainables(model.var_store());
        if named.is_empty() {
            return Err(ModelError::Config(
                "the model has no trainable parameters".into(),
            ));
        }
        let params = FlatParams::new(named);
        let optimizer = AdamW::new(config.adamw, &params.flat);
        let ema = Ema::new(config.ema, &params.flat);
        let accum = tch::no_grad(|| params.flat.zeros_like());
        Ok(Trainer {
            model,
            config,
            params,
            optimizer,
            ema,
            accum,
            counters: Counters::default(),
            task_source: String::new(),
            last_loss: None,
            last_components: Vec::new(),
            finetuned_from: None,
            early: None,
            best: None,
        })
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The training configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The learning rate of the next optimiser update.
    pub fn next_lr(&self) -> f64 {
        let horizon = self
            .config
            .schedule
            .horizon(self.config.total_steps, self.config.accumulation as u64);
        self.config.schedule.lr(self.counters.updates, horizon)
    }

    /// The EMA read-out, by parameter name.
    pub fn ema_weights(&self) -> Vec<(String, Tensor)> {
        self.params.layout.named_views(&self.ema.readout())
    }

    /// Runs one micro-batch: loss, backward, clip, accumulate, maybe update, EMA.
    pub fn step<S: BatchSource<M::Batch> + ?Sized>(&mut self, source: &S) -> Result<StepReport> {
        let m = self.counters.micro_batches;
        let batch = source.batch(m, self.config.batch_size)?;
        let mut stream = rng::stream(self.config.seed, MICRO_BATCH_STREAM, m);
        self.params.zero_grad();
        let terms = self.model.loss(&batch, &mut stream)?;
        let components = tch::no_grad(|| terms.component_values());
        let terms_backpropagated = terms.backpropagated;
        let loss = terms.total;
        let loss_value = loss.double_value(&[]);
        if !loss_value.is_finite() {
            return Err(ModelError::NonFiniteLoss {
                step: m,
                loss: loss_value,
            });
        }
        if !terms_backpropagated {
            loss.backward();
        }
        let grad = self.params.flat_grad();
        let grad_norm =
            tch::no_grad(|| grad.square().sum(tch::Kind::Float).sqrt().double_value(&[]));
        let scale = match self.config.clip_norm {
            Some(c) if grad_norm > c => c / grad_norm,
            _ => 1.0,
        };
        let mut lr = None;
        let schedule = self.config.schedule;
        let horizon = schedule.horizon(self.config.total_steps, self.config.accumulation as u64);
        let accumulation = self.config.accumulation as u64;
        let update: Option<Tensor> = tch::no_grad(|| {
            if accumulation == 1 {
                Some(&grad * scale)
            } else {
                // Running mean of the clipped gradients: acc ← acc + (g·scale − acc)/(k + 1).
                let k = self.counters.accumulated as f64;
                let _ = self.accum.lerp_(&(&grad * scale), 1.0 / (k + 1.0));
                self.counters.accumulated += 1;
                if self.counters.accumulated == accumulation {
                    self.counters.accumulated = 0;
                    let mean = self.accum.copy();
                    let _ = self.accum.zero_();
                    Some(mean)
                } else {
                    None
                }
            }
        });
        if let Some(g) = update {
            let rate = schedule.lr(self.counters.updates, horizon);
            self.optimizer.step(&self.params.flat, &g, rate);
            self.counters.updates += 1;
            lr = Some(rate);
        }
        self.ema.update(&self.params.flat);
        self.counters.ema_updates = self.ema.count;
        self.counters.micro_batches += 1;
        self.last_loss = Some(loss_value);
        self.last_components = components.clone();
        Ok(StepReport {
            loss: loss_value,
            components,
            grad_norm,
            lr,
        })
    }

    /// The tensors of a checkpoint (weights, EMA, AdamW moments, accumulated gradient).
    fn checkpoint_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = named_variables(self.model.var_store())
            .into_iter()
            .map(|(n, t)| (format!("model/{n}"), t))
            .collect();
        let layout = &self.params.layout;
        let groups: [(&str, &Tensor); 3] = [
            ("ema", &self.ema.shadow),
            ("adam_m", &self.optimizer.m),
            ("adam_v", &self.optimizer.v),
        ];
        for (prefix, flat) in groups {
            for (n, t) in layout.named_views(flat) {
                out.push((format!("{prefix}/{n}"), t));
            }
        }
        if self.counters.accumulated > 0 {
            for (n, t) in layout.named_views(&self.accum) {
                out.push((format!("grad_accum/{n}"), t));
            }
        }
        if let Some(best) = &self.best {
            for (n, t) in layout.named_views(best) {
                out.push((format!("best/{n}"), t));
            }
        }
        out
    }

    /// Writes a checkpoint into the run directory `run_dir` and returns its directory.
    pub fn save_checkpoint(&self, run_dir: &Path) -> Result<PathBuf> {
        let c = self.counters;
        let meta = CheckpointMeta {
            format: checkpoint::FORMAT.into(),
            format_version: checkpoint::FORMAT_VERSION,
            method: self.model.method().into(),
            model_config: self.model.config_json(),
            train_config: self.config.clone(),
            counters: c,
            rng: RngPosition {
                seed: self.config.seed,
                scheme: format!("pcg64 stream (seed, \"{MICRO_BATCH_STREAM}\", micro_batch); task index = micro_batch·batch_size + j"),
                next_micro_batch: c.micro_batches,
                next_task_index: c.micro_batches * self.config.batch_size as u64,
            },
            task_source: self.task_source.clone(),
            preprocessing: self.config.preprocessing.clone(),
            parameter_count: self.params.layout.numel as usize,
            last_loss: self.last_loss,
            last_loss_components: self.last_components.clone(),
            finetuned_from: self.finetuned_from.clone(),
            tensors: TensorFileInfo { file: String::new(), bytes: 0, fnv1a64: String::new() },
            // A recommendation was calibrated for other weights; training invalidates it.
            recommended_sampler: None,
            early_stopping: self.early.clone(),
        };
        checkpoint::write_checkpoint(
            run_dir,
            meta,
            &self.checkpoint_tensors(),
            self.config.keep_checkpoints,
        )
    }

    /// Restores the complete state (weights, EMA, optimiser, accumulated gradient, counters) of a checkpoint
    /// of the same run.
    pub fn restore(&mut self, ck: &LoadedCheckpoint) -> Result<()> {
        load_weights(self.model.var_store(), ck, false)?;
        let c = ck.meta.counters;
        let layout = self.params.layout.clone();
        tch::no_grad(|| -> Result<()> {
            for (i, n) in layout.names.iter().enumerate() {
                let shape = &layout.shapes[i];
                layout
                    .view(&self.ema.shadow, i)
                    .f_copy_(ck.tensor("ema", n, shape)?)?;
                layout
                    .view(&self.optimizer.m, i)
                    .f_copy_(ck.tensor("adam_m", n, shape)?)?;
                layout
                    .view(&self.optimizer.v, i)
                    .f_copy_(ck.tensor("adam_v", n, shape)?)?;
                if c.accumulated > 0 {
                    layout
                        .view(&self.accum, i)
                        .f_copy_(ck.tensor("grad_accum", n, shape)?)?;
                }
            }
            if c.accumulated == 0 {
                let _ = self.accum.zero_();
            }
            self.best = match ck.meta.early_stopping.as_ref().and_then(|e| e.best) {
                Some(_) => {
                    let best = self.params.flat.zeros_like();
                    for (i, n) in layout.names.iter().enumerate() {
                        layout.view(&best, i).f_copy_(ck.tensor(
                            "best",
                            n,
                            &layout.shapes[i],
                        )?)?;
                    }
                    Some(best)
                }
                None => None,
            };
            Ok(())
        })?;
        self.early = ck.meta.early_stopping.clone();
        self.counters = c;
        self.optimizer.updates = c.updates;
        self.ema.count = c.ema_updates;
        self.last_loss = ck.meta.last_loss;
        self.last_components = ck.meta.last_loss_components.clone();
        self.finetuned_from = ck.meta.finetuned_from.clone();
        Ok(())
    }

    /// Starts fine-tuning from another run's checkpoint: its raw weights and EMA (with its count), fresh
    /// AdamW state and counters.
    pub fn start_from(&mut self, ck: &LoadedCheckpoint) -> Result<()> {
        load_weights(self.model.var_store(), ck, false)?;
        let layout = self.params.layout.clone();
        // An inference export carries the EMA readout as its weights: the EMA restarts from them.
        let export = ck.is_inference_export();
        let prefix = if export { "model" } else { "ema" };
        tch::no_grad(|| -> Result<()> {
            for (i, n) in layout.names.iter().enumerate() {
                layout.view(&self.ema.shadow, i).f_copy_(ck.tensor(
                    prefix,
                    n,
                    &layout.shapes[i],
                )?)?;
            }
            Ok(())
        })?;
        self.ema.count = if export {
            // Treat the restored shadow as fully warmed up (no debiasing of a copied EMA).
            ck.meta.counters.ema_updates.max(1)
        } else {
            ck.meta.counters.ema_updates
        };
        self.counters = Counters {
            ema_updates: self.ema.count,
            ..Counters::default()
        };
        self.finetuned_from = Some(ck.dir.display().to_string());
        Ok(())
    }

    /// Trains until the budget or `total_steps` is reached (or `early` stops the run), checkpointing into
    /// `run_dir` (when given) every `checkpoint_every` micro-batches and at the end; calls `on_progress`
    /// after every micro-batch. With early stopping, a run that is over (finished or stopped) ends on the
    /// weights of its best micro-batch.
    pub fn run<S: BatchSource<M::Batch> + ?Sized>(
        &mut self,
        source: &S,
        run_dir: Option<&Path>,
        budget: Budget,
        early: Option<&EarlyStopping<'_>>,
        on_progress: &mut dyn FnMut(&Progress),
    ) -> Result<RunSummary> {
        self.task_source = source.describe();
        let total = self.config.total_steps;
        let (target, deadline) = match budget {
            Budget::Steps(n) => (n.min(total), None),
            Budget::Minutes(m) => {
                if !(m >= 0.0 && m.is_finite()) {
                    return Err(ModelError::Config(format!(
                        "time budget {m} minutes must be a non-negative number"
                    )));
                }
                (total, Some(Duration::from_secs_f64(m * 60.0)))
            }
        };
        if early.is_some() && self.early.is_none() {
            self.early = Some(EarlyStoppingState::default());
        }
        let start = Instant::now();
        let first_step = self.counters.micro_batches;
        let mut saved_at = first_step;
        let mut checkpoint = None;
        let mut losses = Vec::new();
        while self.counters.micro_batches < target && !self.stopped_early() {
            if deadline.is_some_and(|d| start.elapsed() >= d) {
                break;
            }
            let mut report = self.step(source)?;
            losses.push(report.loss);
            let step = self.counters.micro_batches;
            let mut run_steps = total;
            if let Some(e) = early {
                let (criterion, extra) = (e.criterion)(&report)?;
                report.components.extend(extra);
                let state = self.early.get_or_insert_with(EarlyStoppingState::default);
                if state.record(step, criterion) {
                    self.best = Some(tch::no_grad(|| self.params.flat.detach().copy()));
                }
                if state.since_best >= e.patience {
                    state.stopped = true;
                    run_steps = step;
                }
            }
            if let Some(dir) = run_dir {
                if step % self.config.checkpoint_every == 0 && !self.stopped_early() {
                    checkpoint = Some(self.save_checkpoint(dir)?);
                    saved_at = step;
                }
            }
            let elapsed = start.elapsed();
            let done = (step - first_step) as f64;
            let rate = done / elapsed.as_secs_f64().max(1e-9);
            let target_step = target.min(run_steps);
            let eta =
                (rate > 0.0).then(|| Duration::from_secs_f64((target_step - step) as f64 / rate));
            on_progress(&Progress {
                step,
                start_step: first_step,
                target_step,
                run_steps,
                updates: self.counters.updates,
                loss: report.loss,
                components: report.components,
                lr: report.lr.unwrap_or_else(|| self.next_lr()),
                grad_norm: report.grad_norm,
                steps_per_sec: rate,
                eta,
                elapsed,
            });
        }
        let over = self.counters.micro_batches >= total || self.stopped_early();
        let mut weights_changed = false;
        // A run that is over ends on its best weights; so does an in-memory run (it cannot be resumed).
        if (over || run_dir.is_none()) && early.is_some() {
            if let Some(best) = &self.best {
                tch::no_grad(|| self.params.flat.copy_(best));
                weights_changed = true;
            }
        }
        if let Some(dir) = run_dir {
            if self.counters.micro_batches != saved_at
                || weights_changed && self.counters.micro_batches > first_step
                || (checkpoint.is_none() && !checkpoint::has_checkpoint(dir))
            {
                checkpoint = Some(self.save_checkpoint(dir)?);
            }
        }
        Ok(RunSummary {
            step: self.counters.micro_batches,
            updates: self.counters.updates,
            losses,
            checkpoint,
            finished: over,
            stopped_early: self.stopped_early(),
            start_step: first_step,
            best: self
                .early
                .as_ref()
                .and_then(|e| e.best.map(|b| (e.best_step, b))),
            elapsed: start.elapsed(),
        })
    }

    /// True when early stopping has ended the run.
    pub fn stopped_early(&self) -> bool {
        self.early.as_ref().is_some_and(|e| e.stopped)
    }
}

/// Trains `model` in the run directory `run_dir`: resumes from the run's latest checkpoint when there is one
/// (its method, model configuration and training configuration must match), else starts as `start` says.
pub fn train_in_dir<M: Trainable + ?Sized, S: BatchSource<M::Batch> + ?Sized>(
    model: &M,
    config: &TrainConfig,
    source: &S,
    run_dir: &Path,
    budget: Budget,
    start: Start<'_>,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<RunSummary> {
    train(
        model,
        config,
        source,
        Some(run_dir),
        budget,
        start,
        None,
        on_progress,
    )
}

/// The one training loop of every method: trains `model` in the run directory `run_dir` when given
/// (resuming from its latest checkpoint when there is one: its method, model configuration and training
/// configuration must match) or in memory, from `start` otherwise, with optional early stopping. The
/// model's variables hold the final weights (the best ones when early stopping ended the run) afterwards.
#[allow(clippy::too_many_arguments)]
pub fn train<M: Trainable + ?Sized, S: BatchSource<M::Batch> + ?Sized>(
    model: &M,
    config: &TrainConfig,
    source: &S,
    run_dir: Option<&Path>,
    budget: Budget,
    start: Start<'_>,
    early: Option<&EarlyStopping<'_>>,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<RunSummary> {
    let mut trainer = Trainer::new(model, config.clone())?;
    if let Some(run_dir) = run_dir.filter(|d| checkpoint::has_checkpoint(d)) {
        let ck = checkpoint::read_checkpoint(run_dir)?;
        let mismatch = |detail: String| ModelError::RunMismatch {
            path: run_dir.to_path_buf(),
            detail,
        };
        if ck.meta.method != model.method() {
            return Err(mismatch(format!(
                "method `{}` vs `{}`",
                ck.meta.method,
                model.method()
            )));
        }
        if ck.meta.model_config != model.config_json() {
            return Err(mismatch("model configuration differs".into()));
        }
        if &ck.meta.train_config != config {
            return Err(mismatch("training configuration differs".into()));
        }
        trainer.restore(&ck)?;
    } else if let Start::FinetuneFrom(ck) = start {
        trainer.start_from(ck)?;
    }
    trainer.run(source, run_dir, budget, early, on_progress)
}
