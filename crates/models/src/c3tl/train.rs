//! Fitting C3TL: the leave-one-out loss over the delta table (one micro-batch per epoch, the whole table),
//! early stopping on validation entries with the best epoch's weights kept, both through the shared
//! training loop, and the epoch timing of the speed benchmark. A fit takes seconds to minutes, so a run
//! directory holding a finished C3TL checkpoint of the same configuration is loaded instead of retrained.

use std::collections::HashMap;
use std::time::Instant;

use cellshift_data::{Budget, FitContext, PerturbationData, Progress};
use ndarray::Array2;
use rand::seq::SliceRandom;
use rand_pcg::Pcg64;
use tch::{nn, Device, Kind, Tensor};

use super::config::C3tlConfig;
use super::fitted::{Fitted, LOSS_CHUNK_VALUES};
use super::method::{C3tl, NAME};
use super::table::DeltaTable;
use crate::error::{ModelError, Result};
use crate::rng;
use crate::train::ema::{EmaConfig, EmaInit};
use crate::train::optim::AdamWConfig;
use crate::train::schedule::{LrSchedule, ScheduleSizing};
use crate::train::source::BatchSource;
use crate::train::{
    EarlyStopping, LossTerms, Preprocessing, Start, StepReport, TrainConfig, Trainable, Trainer,
};

/// The time of one training epoch.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct EpochTime {
    /// Wall-clock seconds.
    pub wall: f64,
    /// Process CPU seconds (all threads), when the caller's clock gives them.
    pub cpu: Option<f64>,
}

/// What one fit did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct FitHistory {
    /// Epochs run.
    pub epochs: u64,
    /// The epoch whose weights were kept (1-based).
    pub best_epoch: u64,
    /// Validation MSE on the deltas (data units) of the kept epoch; `None` without validation entries.
    pub best_val_mse: Option<f64>,
    /// Training MSE (leave-one-out, data units) per epoch.
    pub train_mse: Vec<f64>,
    /// Validation MSE per epoch (empty without validation entries).
    pub val_mse: Vec<f64>,
    /// Entries of the training table.
    pub train_entries: usize,
    /// Training entries that enter the loss: those whose perturbation has another context and whose
    /// context has another perturbation (the others only feed the other entries' means).
    pub loss_entries: usize,
    /// Validation entries.
    pub val_entries: usize,
    /// Wall time of the fit.
    pub seconds: f64,
    /// Whether the weights came from an existing checkpoint in the run directory instead of training.
    pub loaded_from_run: bool,
}

impl Trainable for Fitted {
    /// One epoch is the whole table.
    type Batch = ();

    fn method(&self) -> &'static str {
        NAME
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or(serde_json::Value::Null)
    }

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Leave-one-out MSE (in units of the delta scale) over every entry with a defined prediction; with
    /// [`C3tlConfig::context_subsample`] the context latents average a random subset drawn from `rng`.
    fn loss(&self, _batch: &(), rng: &mut Pcg64) -> Result<LossTerms> {
        let latent = match self.config.context_subsample {
            k if k >= 2 => self.net.subset_context_latents(
                &self.x_compute,
                &self.perturbation,
                &self.context,
                &self.context_subset(k, rng),
            ),
            _ => {
                self.net
                    .leave_one_out_latents(&self.x_compute, &self.perturbation, &self.context)
                    .0
            }
        };
        let latent = if self.loss_target.size()[0] == latent.size()[0] {
            latent
        } else {
            latent.index_select(0, &self.loss_rows)
        };
        Ok(LossTerms::single(self.net.chunked_mse(
            &latent,
            &self.loss_target,
            LOSS_CHUNK_VALUES,
        )))
    }
}

/// The whole table as one micro-batch.
struct WholeTable;

impl BatchSource<()> for WholeTable {
    fn batch(&self, _micro_batch: u64, _size: usize) -> Result<()> {
        Ok(())
    }

    fn describe(&self) -> String {
        "the C3TL delta table (one epoch per micro-batch)".into()
    }
}

impl C3tl {
    /// Fits on the non-control `train` conditions of `data`, stopping early on the `validation`
    /// conditions (the paper's protocol: 2 % of the test context's perturbations). With no validation
    /// conditions a seeded share of the training entries is held out instead ([`C3tlConfig::auto_val_fraction`]).
    pub fn fit_with_validation(
        &mut self,
        data: &PerturbationData,
        train: &[usize],
        validation: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> Result<FitHistory> {
        let (fitted, history) = self.fit_state(data, train, validation, ctx)?;
        self.install(fitted, history.clone());
        Ok(history)
    }

    /// [`C3tl::fit_with_validation`] without keeping the result: the fitted state and what the fit did.
    pub(super) fn fit_state(
        &self,
        data: &PerturbationData,
        train: &[usize],
        validation: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> Result<(Fitted, FitHistory)> {
        let vocab = self.vocabulary();
        let table = DeltaTable::from_conditions(data, train, &vocab)?;
        let val = DeltaTable::from_conditions(data, validation, &vocab)?;
        if val.is_empty() {
            let (train, val) = auto_validation(&table, self.config().auto_val_fraction, ctx.seed);
            self.fit_table_state(train, val, ctx)
        } else {
            self.fit_table_state(table, val, ctx)
        }
    }

    /// Fits on a delta table, stopping early on `validation` (entries not in `table`; empty: the
    /// leave-one-out training MSE is the stopping criterion). Returns what the fit did.
    pub fn fit_table(
        &mut self,
        table: DeltaTable,
        validation: DeltaTable,
        ctx: &mut FitContext<'_>,
    ) -> Result<FitHistory> {
        let (fitted, history) = self.fit_table_state(table, validation, ctx)?;
        self.install(fitted, history.clone());
        Ok(history)
    }

    fn fit_table_state(
        &self,
        table: DeltaTable,
        validation: DeltaTable,
        ctx: &mut FitContext<'_>,
    ) -> Result<(Fitted, FitHistory)> {
        let started = Instant::now();
        check_table(&table, self.config())?;
        if let Some(e) = validation
            .entries
            .iter()
            .find(|e| table.position(**e).is_some())
        {
            return Err(ModelError::Input(format!(
                "validation entry ({}, {}) is also a training entry; validation entries must be held out",
                self.config().perturbations[e.perturbation], self.config().contexts[e.context]
            )));
        }
        let mut config = self.config().clone();
        config.table_entries = table.len();
        config.seed = ctx.seed;
        let scale = rms(&table.deltas);
        let fitted = Fitted::build(config, self.device(), Some((&table, scale)))?;
        let loss_entries = fitted.loss_entries() as usize;
        if loss_entries == 0 {
            return Err(ModelError::Input(
                "no training entry has both another context measuring its perturbation and another \
                 perturbation measured in its context, so C3TL has nothing to learn from; it needs \
                 perturbations measured in at least two contexts"
                    .into(),
            ));
        }
        let mut history = FitHistory {
            train_entries: table.len(),
            loss_entries,
            val_entries: validation.len(),
            ..FitHistory::default()
        };
        let max_epochs = ctx
            .overrides
            .steps
            .unwrap_or(fitted.config.max_epochs)
            .max(1);
        let budget = ctx.budget.unwrap_or(Budget::Steps(max_epochs));
        let lr = ctx.overrides.lr.unwrap_or(fitted.config.lr);
        let mut train_config = train_config(&fitted.config, lr, max_epochs, self.preprocessing());
        if let Some(n) = ctx.overrides.checkpoint_every {
            train_config.checkpoint_every = n.max(1);
        }
        let val_target = tensor_2d(&validation.deltas, self.device());
        let delta_scale2 = fitted.scale * fitted.scale;
        // The stopping criterion: the validation MSE (data units), or the training MSE without
        // validation entries; both are reported beside the loss.
        let criterion = |step: &StepReport| -> Result<(f64, Vec<(String, f64)>)> {
            let train_mse = step.loss * delta_scale2;
            let mut named = vec![("train_mse".to_string(), train_mse)];
            if validation.is_empty() {
                return Ok((train_mse, named));
            }
            let pred = fitted.predict_deltas(&validation.entries)?;
            let v = (pred - &val_target)
                .square()
                .mean(Kind::Float)
                .double_value(&[]);
            named.push(("val_mse".to_string(), v));
            Ok((v, named))
        };
        let early = EarlyStopping {
            criterion: &criterion,
            patience: fitted.config.patience,
        };
        let run_dir = ctx.run_dir.clone();
        let (mut train_mse, mut val_mse) = (Vec::new(), Vec::new());
        let mut report = |p: &Progress| {
            for (name, v) in &p.components {
                match name.as_str() {
                    "train_mse" => train_mse.push(*v),
                    "val_mse" => val_mse.push(*v),
                    _ => {}
                }
            }
            ctx.report(p)
        };
        let run = crate::train::trainer::train(
            &fitted,
            &train_config,
            &WholeTable,
            run_dir.as_deref(),
            budget,
            Start::Fresh,
            Some(&early),
            &mut report,
        )?;
        history.train_mse = train_mse;
        history.val_mse = val_mse;
        history.epochs = run.step;
        history.loaded_from_run = run.start_step > 0 && run.step == run.start_step;
        if let Some((epoch, value)) = run.best {
            history.best_epoch = epoch;
            if !validation.is_empty() {
                history.best_val_mse = Some(value);
            }
        }
        history.seconds = started.elapsed().as_secs_f64();
        Ok((fitted, history))
    }

    /// Times training epochs on `table` (no validation, no checkpoint), the speed benchmark of peers.md
    /// §1.4: after one warm-up epoch, `epochs` epochs each timed by the wall clock and by `cpu_clock` (the
    /// caller's process CPU-time clock in seconds, when it has one: the fair figure on a shared machine).
    pub fn time_epochs(
        &self,
        table: &DeltaTable,
        epochs: usize,
        seed: u64,
        cpu_clock: &dyn Fn() -> Option<f64>,
    ) -> Result<Vec<EpochTime>> {
        check_table(table, self.config())?;
        let mut config = self.config().clone();
        config.table_entries = table.len();
        config.seed = seed;
        let fitted = Fitted::build(config, self.device(), Some((table, rms(&table.deltas))))?;
        let tc = train_config(
            &fitted.config,
            fitted.config.lr,
            epochs as u64 + 1,
            self.preprocessing(),
        );
        let mut trainer = Trainer::new(&fitted, tc)?;
        trainer.step(&WholeTable)?;
        let mut times = Vec::with_capacity(epochs);
        for _ in 0..epochs {
            let (t, cpu0) = (Instant::now(), cpu_clock());
            trainer.step(&WholeTable)?;
            let cpu = match (cpu0, cpu_clock()) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            };
            times.push(EpochTime {
                wall: t.elapsed().as_secs_f64(),
                cpu,
            });
        }
        Ok(times)
    }
}

/// The training configuration of one fit: constant learning rate `lr`, AdamW with the config's weight
/// decay, no clipping, no EMA smoothing, one checkpoint.
fn train_config(
    config: &C3tlConfig,
    lr: f64,
    epochs: u64,
    preprocessing: &Preprocessing,
) -> TrainConfig {
    TrainConfig {
        seed: config.seed,
        batch_size: 1,
        accumulation: 1,
        total_steps: epochs.max(1),
        schedule: LrSchedule {
            peak: lr,
            end: lr,
            warmup_fraction: 0.0,
            decay_fraction: 0.0,
            sizing: ScheduleSizing::Updates,
        },
        adamw: AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: config.weight_decay,
        },
        clip_norm: None,
        ema: EmaConfig {
            decay: 0.0,
            init: EmaInit::Copy,
            debias: false,
        },
        checkpoint_every: epochs.max(1),
        keep_checkpoints: 1,
        preprocessing: preprocessing.clone(),
    }
}

/// Checks a table against a configuration.
fn check_table(table: &DeltaTable, config: &C3tlConfig) -> Result<()> {
    if table.is_empty() {
        return Err(ModelError::Input(
            "the C3TL training table is empty: no perturbation (other than control) is among the training \
             conditions"
                .into(),
        ));
    }
    if table.deltas.ncols() != config.n_genes() {
        return Err(ModelError::Input(format!(
            "the table has {} genes but the model {}",
            table.deltas.ncols(),
            config.n_genes()
        )));
    }
    if let Some(e) = table.entries.iter().find(|e| {
        e.perturbation >= config.perturbations.len() || e.context >= config.contexts.len()
    }) {
        return Err(ModelError::Input(format!(
            "table entry {e:?} is outside the model's {} perturbations and {} contexts",
            config.perturbations.len(),
            config.contexts.len()
        )));
    }
    Ok(())
}

/// Root mean square of the deltas (1 when they are all zero), the scale the network works in.
fn rms(deltas: &Array2<f32>) -> f64 {
    let n = deltas.len().max(1) as f64;
    let ms = deltas.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / n;
    if ms > 0.0 && ms.is_finite() {
        ms.sqrt()
    } else {
        1.0
    }
}

fn tensor_2d(a: &Array2<f32>, device: Device) -> Tensor {
    let values: Vec<f32> = a.iter().copied().collect();
    Tensor::from_slice(&values)
        .reshape([a.nrows() as i64, a.ncols() as i64])
        .to_device(device)
}

/// Splits `table` into training and validation entries for early stopping: a seeded `fraction` of the
/// entries (none when fewer than 10), taken only where the entry's perturbation and context keep another
/// training entry.
pub fn auto_validation(table: &DeltaTable, fraction: f64, seed: u64) -> (DeltaTable, DeltaTable) {
    let n = table.len();
    let want = if n < 10 {
        0
    } else {
        ((fraction * n as f64).round() as usize).max(1)
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng::stream(seed, "c3tl-auto-validation", 0));
    let mut per_p: HashMap<usize, usize> = HashMap::new();
    let mut per_c: HashMap<usize, usize> = HashMap::new();
    for e in &table.entries {
        *per_p.entry(e.perturbation).or_default() += 1;
        *per_c.entry(e.context).or_default() += 1;
    }
    let mut val = Vec::new();
    for &row in &order {
        if val.len() == want {
            break;
        }
        let e = table.entries[row];
        if per_p[&e.perturbation] >= 2 && per_c[&e.context] >= 2 {
            *per_p.get_mut(&e.perturbation).expect("counted") -= 1;
            *per_c.get_mut(&e.context).expect("counted") -= 1;
            val.push(row);
        }
    }
    val.sort_unstable();
    let train: Vec<usize> = (0..n).filter(|r| val.binary_search(r).is_err()).collect();
    (table.select(&train), table.select(&val))
}
