//! C3TL behind the common interface: building the model for a data set, fitting it on a delta table with
//! early stopping, predicting pseudo-bulk profiles, checkpoints and the registry entry.
//!
//! Training uses the shared [`Trainer`] step (AdamW, checkpoint format) with one micro-batch per epoch,
//! the whole table, but drives it with a small loop of its own: C3TL stops early on the validation
//! entries and keeps the best epoch's weights, which the shared loop (fixed step budgets, EMA read-out,
//! resumption mid-run) does not do. A fit takes seconds to minutes, so a run directory holding a finished
//! C3TL checkpoint of the same configuration is loaded instead of retrained, and nothing resumes mid-fit.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use cellshift_data::{
    Budget, Capabilities, DeviceSpec, FitContext, OutputKind, PerturbationData, PredictError,
    Prediction, Predictor, Progress, Task, Treatment,
};
use ndarray::{Array1, Array2, Axis};
use rand::seq::SliceRandom;
use rand_pcg::Pcg64;
use tch::{nn, Device, Kind, Tensor};

use super::config::{C3tlConfig, PRESETS};
use super::model::{C3tlNet, LatentQuery};
use super::table::{DeltaTable, Entry, Vocabulary};
use crate::blocks::init::{Init, ParamBuilder};
use crate::error::{ModelError, Result};
use crate::method::{torch_device, CreateRequest, InferenceOptions, MethodEntry, MethodModel};
use crate::rng;
use crate::train::checkpoint;
use crate::train::ema::{EmaConfig, EmaInit};
use crate::train::optim::AdamWConfig;
use crate::train::schedule::{LrSchedule, ScheduleSizing};
use crate::train::source::BatchSource;
use crate::train::trainer::load_weights;
use crate::train::{
    EarlyStopping, LossTerms, Preprocessing, Start, StepReport, TrainConfig, Trainable, Trainer,
};

/// Method name in checkpoints and on the command line.
pub const NAME: &str = "c3tl";

/// The registry entry.
pub static METHOD: MethodEntry = MethodEntry {
    name: NAME,
    about: "C3TL: pseudo-bulk context transfer (perturbation and context encoders averaged leave-one-out, added, decoded)",
    presets: PRESETS,
    load,
    create: Some(create),
    pretrain: None,
    hooks: super::HOOKS,
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

/// A fitted network with the table it aggregates over.
struct Fitted {
    config: C3tlConfig,
    vs: nn::VarStore,
    net: C3tlNet,
    /// Table deltas divided by `scale`, `[n, d]`.
    x: Tensor,
    perturbation: Tensor,
    context: Tensor,
    rows: HashMap<Entry, usize>,
    scale: f64,
    /// Rows whose leave-one-out prediction is defined (their perturbation has another context and their
    /// context another perturbation) — a property of the table alone — and their scaled deltas.
    loss_rows: Tensor,
    loss_target: Tensor,
    /// Table rows of each context (for [`C3tlConfig::context_subsample`]).
    context_rows: Vec<Vec<usize>>,
    /// The table in the matrix products' element type (the same tensor as `x` for float32), converted
    /// once instead of in every epoch.
    x_compute: Tensor,
}

/// Values decoded per chunk of the training loss (16 MB of f32, below glibc's largest `mmap` threshold).
const LOSS_CHUNK_VALUES: usize = 4 << 20;

impl Fitted {
    /// Builds the variables: the network and the stored table (`table`: the deltas and the scale, or
    /// zeros of `config.table_entries` rows to be filled from a checkpoint).
    fn build(
        config: C3tlConfig,
        device: Device,
        table: Option<(&DeltaTable, f64)>,
    ) -> Result<Fitted> {
        config.validate()?;
        let vs = nn::VarStore::new(device);
        let pb = ParamBuilder::new(vs.root(), config.seed);
        let net = C3tlNet::new(&pb.sub("net"), &config);
        let (n, d) = (config.table_entries, config.n_genes());
        let tb = pb.sub("table");
        let (deltas, pert, ctx, scale) = match table {
            Some((t, scale)) => (
                Init::Values(
                    t.deltas
                        .iter()
                        .map(|&v| (v as f64 / scale) as f32)
                        .collect(),
                ),
                Init::Values(t.entries.iter().map(|e| e.perturbation as f32).collect()),
                Init::Values(t.entries.iter().map(|e| e.context as f32).collect()),
                Init::Values(vec![scale as f32]),
            ),
            None => (Init::Zeros, Init::Zeros, Init::Zeros, Init::Ones),
        };
        let x = tb.frozen("deltas", &[n, d], deltas);
        let pert_f = tb.frozen("perturbation", &[n], pert);
        let ctx_f = tb.frozen("context", &[n], ctx);
        let scale_t = tb.frozen("scale", &[1], scale);
        let mut fitted = Fitted {
            config,
            vs,
            net,
            x,
            perturbation: pert_f.to_kind(Kind::Int64),
            context: ctx_f.to_kind(Kind::Int64),
            rows: HashMap::new(),
            scale: 1.0,
            loss_rows: Tensor::zeros([0], (Kind::Int64, device)),
            loss_target: Tensor::zeros([0, d as i64], (Kind::Float, device)),
            context_rows: Vec::new(),
            x_compute: Tensor::zeros([0, d as i64], (Kind::Float, device)),
        };
        fitted.refresh_index(&pert_f, &ctx_f, &scale_t)?;
        Ok(fitted)
    }

    /// Re-reads the entry index and scale from the stored table (after loading a checkpoint).
    fn refresh_index(&mut self, pert_f: &Tensor, ctx_f: &Tensor, scale: &Tensor) -> Result<()> {
        let p = Vec::<f32>::try_from(pert_f.to_device(Device::Cpu))?;
        let c = Vec::<f32>::try_from(ctx_f.to_device(Device::Cpu))?;
        let (np, nc) = (self.config.perturbations.len(), self.config.contexts.len());
        self.rows.clear();
        let (mut per_p, mut per_c) = (vec![0usize; np], vec![0usize; nc]);
        self.context_rows = vec![Vec::new(); nc];
        for (row, (&p, &c)) in p.iter().zip(&c).enumerate() {
            let (p, c) = (p as usize, c as usize);
            if p >= np || c >= nc {
                return Err(ModelError::Input(format!(
                    "the stored C3TL table has an entry ({p}, {c}) outside its {np} perturbations and {nc} contexts"
                )));
            }
            self.rows.insert(
                Entry {
                    perturbation: p,
                    context: c,
                },
                row,
            );
            per_p[p] += 1;
            per_c[c] += 1;
            self.context_rows[c].push(row);
        }
        let loss_rows: Vec<i64> = p
            .iter()
            .zip(&c)
            .enumerate()
            .filter(|(_, (&p, &c))| per_p[p as usize] >= 2 && per_c[c as usize] >= 2)
            .map(|(row, _)| row as i64)
            .collect();
        let device = self.x.device();
        let rows = Tensor::from_slice(&loss_rows).to_device(device);
        // With the skip, Γ learns the residual after the perturbation's leave-one-out mean delta.
        let target = match tch::no_grad(|| {
            self.net
                .leave_one_out_skip(&self.x, &pert_f.to_kind(Kind::Int64))
        }) {
            Some(skip) => &self.x - skip,
            None => self.x.shallow_clone(),
        };
        self.loss_target = if loss_rows.len() == p.len() {
            target
        } else {
            target.index_select(0, &rows)
        };
        self.loss_rows = rows;
        self.x_compute = tch::no_grad(|| {
            self.x
                .to_kind(self.config.matmul_precision.kind())
                .shallow_clone()
        });
        self.perturbation = pert_f.to_kind(Kind::Int64);
        self.context = ctx_f.to_kind(Kind::Int64);
        self.scale = scale.double_value(&[0]);
        if !(self.scale > 0.0 && self.scale.is_finite()) {
            return Err(ModelError::Input(format!(
                "the stored C3TL delta scale is {}, not a positive number",
                self.scale
            )));
        }
        Ok(())
    }

    /// Predicted deltas (data units) of `entries`, `[m, d]`; an entry in the table is predicted from the
    /// others (leave-one-out), as in training.
    fn predict_deltas(&self, entries: &[Entry]) -> Result<Tensor> {
        tch::no_grad(|| {
            let enc = self
                .net
                .encode(&self.x_compute, &self.perturbation, &self.context);
            let queries: Vec<LatentQuery> = entries
                .iter()
                .map(|e| LatentQuery {
                    perturbation: e.perturbation,
                    context: e.context,
                    own_row: self.rows.get(e).copied(),
                })
                .collect();
            let latents = self.net.query_latents(
                &enc,
                &self.perturbation,
                &self.context,
                &queries,
                (&self.config.perturbations, &self.config.contexts),
            )?;
            let decoded = self.net.decoder.forward(&latents);
            let decoded = match self.net.query_skip(&self.x, &self.perturbation, &queries) {
                Some(skip) => decoded + skip,
                None => decoded,
            };
            Ok(decoded * self.scale)
        })
    }

    /// The entries that feed the context latents in one training epoch with
    /// [`C3tlConfig::context_subsample`] `k`: `k` random rows of every context with more than `k` entries,
    /// every row of the others; 1.0 / 0.0 per row, `[n]`.
    fn context_subset(&self, k: usize, rng: &mut Pcg64) -> Tensor {
        let mut keep = vec![0f32; self.context.size()[0] as usize];
        for rows in &self.context_rows {
            if rows.len() <= k {
                rows.iter().for_each(|&r| keep[r] = 1.0);
            } else {
                rows.choose_multiple(rng, k).for_each(|&r| keep[r] = 1.0);
            }
        }
        Tensor::from_slice(&keep).to_device(self.x.device())
    }

    /// Number of table entries whose leave-one-out prediction is defined.
    fn loss_entries(&self) -> i64 {
        self.loss_rows.size()[0]
    }
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

/// C3TL: a model for the perturbations and contexts of one data set.
pub struct C3tl {
    config: C3tlConfig,
    preprocessing: Preprocessing,
    device: Device,
    fitted: Option<Fitted>,
    history: Option<FitHistory>,
}

impl std::fmt::Debug for C3tl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("C3tl")
            .field("preset", &self.config.preset)
            .field("fitted", &self.fitted.is_some())
            .finish_non_exhaustive()
    }
}

impl C3tl {
    /// An unfitted model of `config`.
    pub fn new(config: C3tlConfig, preprocessing: Preprocessing, device: Device) -> Result<C3tl> {
        config.validate()?;
        Ok(C3tl {
            config,
            preprocessing,
            device,
            fitted: None,
            history: None,
        })
    }

    /// An unfitted model of preset `preset` for every perturbation and context of `data`.
    pub fn for_data(data: &PerturbationData, preset: &str, device: DeviceSpec) -> Result<C3tl> {
        let perturbations: Vec<String> = data
            .treatments
            .iter()
            .filter(|t| !t.is_control())
            .map(|t| t.label(&data.control_label))
            .collect();
        let config = C3tlConfig::preset(
            preset,
            data.genes.clone(),
            perturbations,
            data.contexts.clone(),
        )?;
        let mut preprocessing = Preprocessing::identity(data.n_genes());
        preprocessing.gene_names = data.genes.clone();
        C3tl::new(config, preprocessing, torch_device(device))
    }

    /// The configuration (of the last fit, when fitted).
    pub fn config(&self) -> &C3tlConfig {
        self.fitted.as_ref().map_or(&self.config, |f| &f.config)
    }

    /// Mutable access to the configuration of the next fit (hyper-parameters; the vocabulary must stay).
    pub fn config_mut(&mut self) -> &mut C3tlConfig {
        &mut self.config
    }

    /// The vocabulary of the model's perturbations and contexts.
    pub fn vocabulary(&self) -> Vocabulary {
        Vocabulary::new(&self.config.perturbations, &self.config.contexts)
    }

    /// What the last fit did.
    pub fn history(&self) -> Option<&FitHistory> {
        self.history.as_ref()
    }

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
        let vocab = self.vocabulary();
        let table = DeltaTable::from_conditions(data, train, &vocab)?;
        let val = DeltaTable::from_conditions(data, validation, &vocab)?;
        if val.is_empty() {
            let (train, val) = auto_validation(&table, self.config.auto_val_fraction, ctx.seed);
            self.fit_table(train, val, ctx)
        } else {
            self.fit_table(table, val, ctx)
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
        let started = Instant::now();
        check_table(&table, &self.config)?;
        if let Some(e) = validation
            .entries
            .iter()
            .find(|e| table.position(**e).is_some())
        {
            return Err(ModelError::Input(format!(
                "validation entry ({}, {}) is also a training entry; validation entries must be held out",
                self.config.perturbations[e.perturbation], self.config.contexts[e.context]
            )));
        }
        let mut config = self.config.clone();
        config.table_entries = table.len();
        config.seed = ctx.seed;
        let scale = rms(&table.deltas);
        let fitted = Fitted::build(config, self.device, Some((&table, scale)))?;
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
        let mut train_config = train_config(&fitted.config, lr, max_epochs, &self.preprocessing);
        if let Some(n) = ctx.overrides.checkpoint_every {
            train_config.checkpoint_every = n.max(1);
        }
        let val_target = tensor_2d(&validation.deltas, self.device);
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
        self.fitted = Some(fitted);
        self.history = Some(history.clone());
        Ok(history)
    }

    /// Predicted deltas (data units) of (perturbation, context) entries, one row each. An entry that is
    /// in the training table is predicted from the other entries only (leave-one-out).
    pub fn predict_entries(&self, entries: &[Entry]) -> Result<Array2<f32>> {
        let fitted = self.fitted()?;
        let d = fitted.config.n_genes();
        if entries.is_empty() {
            return Ok(Array2::zeros((0, d)));
        }
        let pred = fitted.predict_deltas(entries)?.to_device(Device::Cpu);
        let values = Vec::<f32>::try_from(pred.reshape([-1]))?;
        Array2::from_shape_vec((entries.len(), d), values)
            .map_err(|e| ModelError::Input(format!("prediction shape: {e}")))
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
        check_table(table, &self.config)?;
        let mut config = self.config.clone();
        config.table_entries = table.len();
        config.seed = seed;
        let fitted = Fitted::build(config, self.device, Some((table, rms(&table.deltas))))?;
        let tc = train_config(
            &fitted.config,
            fitted.config.lr,
            epochs as u64 + 1,
            &self.preprocessing,
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

    fn fitted(&self) -> Result<&Fitted> {
        self.fitted.as_ref().ok_or_else(|| {
            ModelError::Input(
                "C3TL is not fitted; fit it on a data set (`cellshift train --method c3tl`) first"
                    .into(),
            )
        })
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

impl Predictor for C3tl {
    fn name(&self) -> &str {
        NAME
    }

    /// Pseudo-bulk profiles; the task's context experiments are not read (the context is known from the
    /// training table's entries of that context), so any K is accepted.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            output: OutputKind::PseudoBulk,
            k_min: 0,
            k_max: None,
            exact_log_likelihood: false,
            needs_measured_targets: false,
        }
    }

    /// Fits on the train conditions with a seeded automatic validation share for early stopping. A model
    /// loaded from a checkpoint is already fitted: without a run directory it is left as it is.
    fn fit(
        &mut self,
        data: &PerturbationData,
        train_conditions: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> std::result::Result<(), PredictError> {
        if ctx.run_dir.is_none() && self.fitted.is_some() {
            return Ok(());
        }
        self.fit_with_validation(data, train_conditions, &[], ctx)?;
        Ok(())
    }

    fn predict(
        &self,
        task: &Task,
        n_cells: usize,
        seed: u64,
    ) -> std::result::Result<Prediction, PredictError> {
        let mut out = self.predict_many(std::slice::from_ref(task), n_cells, &[seed])?;
        Ok(out.remove(0))
    }

    /// All queries from one pass of the encoders over the table: the profile is the mean of the task's
    /// control cells plus the predicted delta (zero for a control query). Deterministic: seeds are unused.
    fn predict_many(
        &self,
        tasks: &[Task],
        _n_cells: usize,
        seeds: &[u64],
    ) -> std::result::Result<Vec<Prediction>, PredictError> {
        cellshift_data::predictor::check_one_seed_per_task(tasks, seeds)?;
        let fitted = self.fitted()?;
        let vocab = self.vocabulary();
        let d = fitted.config.n_genes();
        let mut entries = Vec::new();
        let mut slots = Vec::with_capacity(tasks.len());
        for task in tasks {
            if task.n_genes() != d {
                return Err(ModelError::Input(format!(
                    "the task has {} genes but the model {d}; bring the data to the model's genes",
                    task.n_genes()
                ))
                .into());
            }
            if task.observational.nrows() == 0 {
                return Err(ModelError::Input(format!(
                    "the task in context `{}` has no control cells; C3TL predicts a delta on top of the \
                     context's control mean",
                    task.context
                ))
                .into());
            }
            if matches!(task.query.treatment, Treatment::Control) {
                slots.push(None);
                continue;
            }
            let entry = Entry {
                perturbation: vocab.perturbation(task.query_label())?,
                context: vocab.context(&task.context)?,
            };
            slots.push(Some(entries.len()));
            entries.push(entry);
        }
        let deltas = self.predict_entries(&entries)?;
        Ok(tasks
            .iter()
            .zip(slots)
            .map(|(task, slot)| {
                let control = task
                    .observational
                    .mean_axis(Axis(0))
                    .unwrap_or_else(|| Array1::zeros(d));
                Prediction::PseudoBulk(match slot {
                    Some(i) => control + deltas.row(i),
                    None => control,
                })
            })
            .collect())
    }
}

fn create(request: &CreateRequest<'_>) -> Result<MethodModel> {
    let mut model = C3tl::for_data(request.data, request.preset, request.inference.device)?;
    model.preprocessing = request.preprocessing.clone();
    model.config.seed = request.seed;
    model.config = crate::method::apply_model_options(&model.config, request.model_options)?;
    model.config.validate()?;
    Ok(Box::new(model))
}

/// Loads a fitted C3TL from a checkpoint (or run) directory.
pub fn load_c3tl(path: &Path, options: &InferenceOptions) -> Result<C3tl> {
    let ck = checkpoint::read_checkpoint(path)?;
    let config: C3tlConfig = ck.model_config(NAME)?;
    let device = torch_device(options.device);
    let mut fitted = Fitted::build(config.clone(), device, None)?;
    load_weights(&fitted.vs, &ck, false)?;
    let vars = fitted.vs.variables();
    let get = |name: &str| {
        vars.get(name)
            .map(|t| t.shallow_clone())
            .ok_or_else(|| ModelError::CheckpointCorrupt {
                path: ck.dir.clone(),
                reason: format!("the C3TL table variable `{name}` is missing"),
            })
    };
    let (p, c, s) = (
        get("table.perturbation")?,
        get("table.context")?,
        get("table.scale")?,
    );
    fitted.refresh_index(&p, &c, &s)?;
    Ok(C3tl {
        config,
        preprocessing: ck.meta.preprocessing.clone(),
        device,
        fitted: Some(fitted),
        history: None,
    })
}

fn load(path: &Path, options: &InferenceOptions) -> Result<MethodModel> {
    Ok(Box::new(load_c3tl(path, options)?))
}
