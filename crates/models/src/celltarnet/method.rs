//! CellTarNet behind the common interface: building the model for a data set, fitting it (statistics and
//! attention prior from the training cells only, then the shared training loop), sampling cells of a
//! query, the exact held-out log-likelihood, checkpoints and the registry entry.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use cellshift_data::{
    Budget, Capabilities, DeviceSpec, FitContext, PerturbationData, PredictError, Prediction,
    Predictor, Task, Treatment,
};
use ndarray::{Array2, Axis};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_pcg::Pcg64;
use tch::{nn, Device, Kind, Tensor};

use super::config::{CellTarNetConfig, PRESETS};
use super::flow::Decoding;
use super::model::{CellTarNetNet, TrainBatch};
use super::prior::{gene_adjacency, token_adjacency};
use crate::blocks::init::ParamBuilder;
use crate::error::{ModelError, Result};
use crate::method::{torch_device, CreateRequest, InferenceOptions, MethodEntry, MethodModel};
use crate::rng;
use crate::train::checkpoint;
use crate::train::ema::{EmaConfig, EmaInit};
use crate::train::optim::AdamWConfig;
use crate::train::schedule::{LrSchedule, ScheduleSizing};
use crate::train::source::BatchSource;
use crate::train::trainer::load_weights;
use crate::train::{LossTerms, Preprocessing, Start, TrainConfig, Trainable};

/// Method name in checkpoints and on the command line.
pub const NAME: &str = "celltarnet";

/// The registry entry.
pub static METHOD: MethodEntry = MethodEntry {
    name: NAME,
    about: "CellTarNet: conditional transformer autoregressive normalizing flow (TARFlow) with a context encoder, denoising NLL, InfoNCE and an L+S gene attention prior; exact likelihood",
    presets: PRESETS,
    load,
    create: Some(create),
    pretrain: None,
    hooks: super::HOOKS,
};

/// Cells sampled per chunk at prediction.
const SAMPLE_CHUNK: usize = 256;
/// Most training cells the prior's correlations are estimated from (a seeded subsample beyond).
const PRIOR_MAX_CELLS: usize = 20_000;

/// The single-gene targets of every non-control treatment of `data`, sorted (the multi-hot vocabulary).
pub fn perturbation_vocabulary(data: &PerturbationData) -> Vec<String> {
    let set: BTreeSet<String> = data
        .treatments
        .iter()
        .flat_map(|t| t.target_genes().into_iter().map(str::to_string))
        .collect();
    set.into_iter().collect()
}

/// The multi-hot vector of a treatment over `vocabulary` (all zeros for control).
pub fn multi_hot(vocabulary: &[String], treatment: &Treatment) -> Result<Vec<f32>> {
    let mut v = vec![0.0f32; vocabulary.len()];
    match treatment {
        Treatment::Control => {}
        Treatment::Compound { name, .. } => {
            return Err(ModelError::Input(format!(
                "CellTarNet encodes genetic perturbations as a multi-hot over target genes; compound `{name}` \
                 has no target gene"
            )))
        }
        _ => {
            for gene in treatment.target_genes() {
                let i = vocabulary.iter().position(|g| g == gene).ok_or_else(|| {
                    ModelError::Input(format!(
                        "CellTarNet has no slot for perturbation target `{gene}`: it was not among the \
                         perturbations of the data the model was created for"
                    ))
                })?;
                v[i] = 1.0;
            }
        }
    }
    Ok(v)
}

/// A built network with its variables.
struct Fitted {
    config: CellTarNetConfig,
    vs: nn::VarStore,
    net: CellTarNetNet,
}

impl Fitted {
    fn build(
        config: CellTarNetConfig,
        device: Device,
        stats: Option<(&[f32], &[f32])>,
        token_adj: Option<&[bool]>,
    ) -> Result<Fitted> {
        config.validate()?;
        let vs = nn::VarStore::new(device);
        let pb = ParamBuilder::new(vs.root(), config.seed);
        let net = CellTarNetNet::new(&pb, &config, stats, token_adj);
        Ok(Fitted { config, vs, net })
    }

    fn mean_std(&self) -> (Tensor, Tensor) {
        (self.net.gene_mean.detach(), self.net.gene_std.detach())
    }
}

impl Trainable for Fitted {
    type Batch = TrainBatch;

    fn method(&self) -> &'static str {
        NAME
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or(serde_json::Value::Null)
    }

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn loss(&self, batch: &TrainBatch, _rng: &mut Pcg64) -> Result<LossTerms> {
        self.net.loss(batch, &self.config)
    }
}

/// One training condition: its standardised cells, the control cells of its context and its multi-hot.
struct TrainCondition {
    cells: Array2<f32>,
    controls: usize,
    multi_hot: Vec<f32>,
}

/// Deterministic micro-batches drawn from the training conditions (micro-batch m from the stream
/// `(seed, "celltarnet-batch", m)`).
struct DataBatches {
    conditions: Vec<TrainCondition>,
    /// Standardised control cells per context pool.
    control_pools: Vec<Array2<f32>>,
    config: CellTarNetConfig,
    seed: u64,
}

fn tensor(values: Vec<f32>, shape: &[i64]) -> Tensor {
    Tensor::from_slice(&values).reshape(shape)
}

impl BatchSource<TrainBatch> for DataBatches {
    fn batch(&self, micro_batch: u64, size: usize) -> Result<TrainBatch> {
        let mut r = rng::stream(self.seed, "celltarnet-batch", micro_batch);
        let g = self.config.n_genes();
        let b = size.max(2);
        let k = self.config.perturbations.len();
        let (mut pre, mut post, mut post2) = (
            Vec::with_capacity(b * g),
            Vec::with_capacity(b * g),
            Vec::with_capacity(b * g),
        );
        let mut pert = Vec::with_capacity(b * k);
        let mut labels = Vec::with_capacity(b);
        let mut dropped = Vec::with_capacity(b);
        for _ in 0..b {
            let ci = r.gen_range(0..self.conditions.len());
            let c = &self.conditions[ci];
            let pool = &self.control_pools[c.controls];
            pre.extend(pool.row(r.gen_range(0..pool.nrows())).iter());
            let n = c.cells.nrows();
            let i = r.gen_range(0..n);
            let j = if n > 1 {
                (i + r.gen_range(1..n)) % n
            } else {
                i
            };
            post.extend(c.cells.row(i).iter());
            post2.extend(c.cells.row(j).iter());
            let drop = r.gen::<f64>() < self.config.label_dropout;
            dropped.push(drop);
            if drop {
                pert.extend(std::iter::repeat_n(0.0, k));
            } else {
                pert.extend(c.multi_hot.iter());
            }
            labels.push(ci);
        }
        let n = self.config.negatives;
        let (mut neg_ctx, mut neg_post, mut neg_valid) = (
            Vec::with_capacity(b * n),
            Vec::with_capacity(b * n),
            Vec::with_capacity(b * n),
        );
        for i in 0..b {
            let mut others: Vec<usize> = (0..b).filter(|&j| labels[j] != labels[i]).collect();
            others.shuffle(&mut r);
            for s in 0..n {
                match others.get(s) {
                    Some(&j) => {
                        neg_ctx.push(j as i64);
                        neg_post.push(others[(s + 1) % others.len()] as i64);
                        neg_valid.push(true);
                    }
                    None => {
                        neg_ctx.push(i as i64);
                        neg_post.push(i as i64);
                        neg_valid.push(false);
                    }
                }
            }
        }
        let s = self.config.control_noise as f32;
        let sigma = self.config.flow_noise as f32;
        let pre_noise: Vec<f32> = rng::normals(&mut r, b * g)
            .into_iter()
            .map(|v| v * s)
            .collect();
        let flow_noise: Vec<f32> = rng::normals(&mut r, 3 * b * g)
            .into_iter()
            .map(|v| v * sigma)
            .collect();
        let (bi, gi, ni) = (b as i64, g as i64, n as i64);
        Ok(TrainBatch {
            pre: tensor(pre, &[bi, gi]),
            pre_noise: tensor(pre_noise, &[bi, gi]),
            post: tensor(post, &[bi, gi]),
            post2: tensor(post2, &[bi, gi]),
            flow_noise: tensor(flow_noise, &[3 * bi, gi]),
            perturbation: tensor(pert, &[bi, k as i64]),
            dropped: Tensor::from_slice(&dropped),
            neg_context: Tensor::from_slice(&neg_ctx).reshape([bi, ni]),
            neg_post: Tensor::from_slice(&neg_post).reshape([bi, ni]),
            neg_valid: Tensor::from_slice(&neg_valid).reshape([bi, ni]),
        })
    }

    fn describe(&self) -> String {
        format!(
            "CellTarNet examples from {} training conditions (control cell + two perturbed cells)",
            self.conditions.len()
        )
    }
}

/// What one fit did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct FitSummary {
    /// Micro-batches run.
    pub steps: u64,
    /// Loss of the last micro-batch.
    pub last_loss: f64,
    /// Training conditions (perturbed) the examples came from.
    pub conditions: usize,
    /// Mean prior neighbours per token (including itself); `None` without the prior.
    pub prior_degree: Option<f64>,
    /// Wall time.
    pub seconds: f64,
}

/// CellTarNet: a model for the genes and perturbation targets of one data set.
pub struct CellTarNet {
    config: CellTarNetConfig,
    preprocessing: Preprocessing,
    device: Device,
    decoding: Decoding,
    fitted: Option<Fitted>,
    summary: Option<FitSummary>,
}

impl std::fmt::Debug for CellTarNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CellTarNet")
            .field("preset", &self.config.preset)
            .field("fitted", &self.fitted.is_some())
            .finish_non_exhaustive()
    }
}

impl CellTarNet {
    /// An unfitted model of `config`.
    pub fn new(
        config: CellTarNetConfig,
        preprocessing: Preprocessing,
        device: Device,
    ) -> Result<CellTarNet> {
        config.validate()?;
        Ok(CellTarNet {
            config,
            preprocessing,
            device,
            decoding: Decoding::Cached,
            fitted: None,
            summary: None,
        })
    }

    /// An unfitted model of preset `preset` for the genes and perturbation targets of `data`.
    pub fn for_data(
        data: &PerturbationData,
        preset: &str,
        device: DeviceSpec,
    ) -> Result<CellTarNet> {
        let config =
            CellTarNetConfig::preset(preset, data.genes.clone(), perturbation_vocabulary(data))?;
        let mut preprocessing = Preprocessing::identity(data.n_genes());
        preprocessing.gene_names = data.genes.clone();
        CellTarNet::new(config, preprocessing, torch_device(device))
    }

    /// The configuration.
    pub fn config(&self) -> &CellTarNetConfig {
        self.fitted.as_ref().map_or(&self.config, |f| &f.config)
    }

    /// Mutable access to the configuration of the next fit (hyper-parameters; genes and vocabulary must
    /// stay). Sampling settings (`guidance`, `tweedie`, `control_noise_at_inference`) also apply to a
    /// fitted model.
    pub fn config_mut(&mut self) -> &mut CellTarNetConfig {
        match self.fitted.as_mut() {
            Some(f) => &mut f.config,
            None => &mut self.config,
        }
    }

    /// Sets how sampling decodes (cached by default).
    pub fn set_decoding(&mut self, decoding: Decoding) {
        self.decoding = decoding;
    }

    /// What the last fit did.
    pub fn summary(&self) -> Option<&FitSummary> {
        self.summary.as_ref()
    }

    /// Fits on the `train` conditions of `data` (see the module doc) and returns what it did.
    pub fn fit_conditions(
        &mut self,
        data: &PerturbationData,
        train: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> Result<FitSummary> {
        let started = Instant::now();
        let g = self.config.n_genes();
        if data.n_genes() != g || data.genes != self.config.genes {
            return Err(ModelError::Input(format!(
                "the data has {} genes but the model was created for {g} (or in another order); create \
                 the model for this data",
                data.n_genes()
            )));
        }
        let conditions = data.conditions();
        // Statistics and prior from the training cells only.
        let mut train_cells: Vec<usize> = Vec::new();
        for &c in train {
            let cond = conditions.get(c).ok_or_else(|| {
                ModelError::Input(format!("training condition {c} is out of range"))
            })?;
            train_cells.extend(&cond.cells);
        }
        if train_cells.len() < 2 {
            return Err(ModelError::Input(
                "CellTarNet needs training cells; the training conditions hold fewer than two"
                    .into(),
            ));
        }
        let x = data.x.select_rows(&train_cells);
        let mean = x.mean_axis(Axis(0)).expect("non-empty");
        let std = x
            .std_axis(Axis(0), 0.0)
            .mapv(|s| if s > 1e-6 { s } else { 1.0 });
        let standardize = |a: Array2<f32>| (a - &mean) / &std;
        let mut config = self.config.clone();
        config.seed = ctx.seed;
        let token_adj = if config.prior.enabled {
            let mut rows: Vec<usize> = (0..x.nrows()).collect();
            if rows.len() > PRIOR_MAX_CELLS {
                rows.shuffle(&mut rng::stream(ctx.seed, "celltarnet-prior-cells", 0));
                rows.truncate(PRIOR_MAX_CELLS);
            }
            let sub = standardize(x.select(Axis(0), &rows));
            let adj = gene_adjacency(&sub.as_standard_layout().to_owned(), &config.prior)?;
            Some(token_adjacency(&adj, g, config.patch))
        } else {
            None
        };
        let prior_degree = token_adj.as_ref().map(|a| {
            let t = config.n_tokens();
            a.iter().filter(|&&v| v).count() as f64 / t as f64
        });
        // Examples: perturbed training conditions with the control cells of their context.
        let control_of_context = |ctx_i: usize| {
            conditions
                .iter()
                .position(|c| c.context == ctx_i && data.treatments[c.treatment].is_control())
        };
        let mut pools: Vec<Array2<f32>> = Vec::new();
        let mut pool_of_context = std::collections::HashMap::new();
        let mut batches_conditions = Vec::new();
        for &c in train {
            let cond = &conditions[c];
            let treatment = &data.treatments[cond.treatment];
            if treatment.is_control() || cond.cells.is_empty() {
                continue;
            }
            let pool = match pool_of_context.get(&cond.context) {
                Some(&p) => p,
                None => {
                    let cells = match control_of_context(cond.context) {
                        Some(ci) => conditions[ci].cells.clone(),
                        None => (0..data.n_cells())
                            .filter(|&i| data.treatments[data.cell_treatment[i]].is_control())
                            .collect(),
                    };
                    if cells.is_empty() {
                        return Err(ModelError::Input(
                            "CellTarNet pairs perturbed cells with control cells, but the data has no \
                             control cells"
                                .into(),
                        ));
                    }
                    pools.push(standardize(data.x.select_rows(&cells)));
                    pool_of_context.insert(cond.context, pools.len() - 1);
                    pools.len() - 1
                }
            };
            batches_conditions.push(TrainCondition {
                cells: standardize(data.cells_of(cond)),
                controls: pool,
                multi_hot: multi_hot(&config.perturbations, treatment)?,
            });
        }
        if batches_conditions.is_empty() {
            return Err(ModelError::Input(
                "no perturbed condition is among the training conditions; CellTarNet learns from \
                 perturbed cells"
                    .into(),
            ));
        }
        let n_conditions = batches_conditions.len();
        let mean_v: Vec<f32> = mean.to_vec();
        let std_v: Vec<f32> = std.to_vec();
        let fitted = Fitted::build(
            config.clone(),
            self.device,
            Some((&mean_v, &std_v)),
            token_adj.as_deref(),
        )?;
        let source = DataBatches {
            conditions: batches_conditions,
            control_pools: pools,
            config: config.clone(),
            seed: ctx.seed,
        };
        let steps = ctx.overrides.steps.unwrap_or(config.train_steps).max(1);
        let lr = ctx.overrides.lr.unwrap_or(config.lr);
        let mut preprocessing = self.preprocessing.clone();
        preprocessing.gene_names = data.genes.clone();
        preprocessing.n_genes = g;
        let mut tc = train_config(&config, lr, steps, preprocessing);
        if let Some(bs) = ctx.overrides.batch_size {
            tc.batch_size = bs.max(2);
        }
        if let Some(n) = ctx.overrides.checkpoint_every {
            tc.checkpoint_every = n.max(1);
        }
        let budget = ctx.budget.unwrap_or(Budget::Steps(steps));
        let mut last_loss = f64::NAN;
        let run_dir = ctx.run_dir.clone();
        let mut report = |p: &cellshift_data::Progress| {
            last_loss = p.loss;
            ctx.report(p)
        };
        let run = crate::train::trainer::train(
            &fitted,
            &tc,
            &source,
            run_dir.as_deref(),
            budget,
            Start::Fresh,
            None,
            &mut report,
        )?;
        let done = run.step;
        let summary = FitSummary {
            steps: done,
            last_loss,
            conditions: n_conditions,
            prior_degree,
            seconds: started.elapsed().as_secs_f64(),
        };
        self.fitted = Some(fitted);
        self.summary = Some(summary.clone());
        Ok(summary)
    }

    fn fitted(&self) -> Result<&Fitted> {
        self.fitted.as_ref().ok_or_else(|| {
            ModelError::Input(
                "CellTarNet is not fitted; fit it on a data set (`cellshift train --method celltarnet`) first"
                    .into(),
            )
        })
    }

    /// Checks a task against the model and returns the query's multi-hot.
    fn check_task(&self, task: &Task) -> Result<Vec<f32>> {
        let f = self.fitted()?;
        if task.n_genes() != f.config.n_genes() {
            return Err(ModelError::Input(format!(
                "the task has {} genes but the model {}; bring the data to the model's genes",
                task.n_genes(),
                f.config.n_genes()
            )));
        }
        if task.observational.nrows() == 0 {
            return Err(ModelError::Input(format!(
                "the task in context `{}` has no control cells; CellTarNet conditions on a control cell",
                task.context
            )));
        }
        multi_hot(&f.config.perturbations, &task.query.treatment)
    }

    /// `n` standardised control cells drawn (with replacement) from the task's control cells, with the
    /// control-noise augmentation when `noisy`, and their multi-hot, on the device.
    fn contexts(
        &self,
        task: &Task,
        hot: &[f32],
        n: usize,
        noisy: bool,
        r: &mut Pcg64,
    ) -> (Tensor, Tensor) {
        let f = self.fitted.as_ref().expect("checked");
        let g = task.n_genes();
        let obs = &task.observational;
        let mut vals = Vec::with_capacity(n * g);
        for _ in 0..n {
            vals.extend(obs.row(r.gen_range(0..obs.nrows())).iter());
        }
        let (mean, std) = f.mean_std();
        let mut pre = (tensor(vals, &[n as i64, g as i64]).to_device(self.device) - mean) / std;
        if noisy && f.config.control_noise > 0.0 {
            let noise = rng::normals(r, n * g);
            pre += tensor(noise, &[n as i64, g as i64]).to_device(self.device)
                * f.config.control_noise;
        }
        let k = hot.len() as i64;
        let pert = Tensor::from_slice(hot)
            .view([1, k])
            .expand([n as i64, k], false)
            .contiguous()
            .to_device(self.device);
        (pre, pert)
    }

    /// Samples `n_cells` cells (data units) of the task's query.
    pub fn sample(&self, task: &Task, n_cells: usize, seed: u64) -> Result<Array2<f32>> {
        let hot = self.check_task(task)?;
        let f = self.fitted()?;
        let g = f.config.n_genes();
        let mut r = rng::stream(seed, "celltarnet-sample", 0);
        let (mean, std) = f.mean_std();
        let mut out: Vec<f32> = Vec::with_capacity(n_cells * g);
        let mut left = n_cells;
        while left > 0 {
            let n = left.min(SAMPLE_CHUNK);
            let (pre, pert) =
                self.contexts(task, &hot, n, f.config.control_noise_at_inference, &mut r);
            let z =
                tensor(rng::normals(&mut r, n * g), &[n as i64, g as i64]).to_device(self.device);
            let sigma = if f.config.tweedie {
                f.config.flow_noise
            } else {
                0.0
            };
            let x = f
                .net
                .sample(&z, &pre, &pert, f.config.guidance, sigma, self.decoding);
            let x = (x * &std + &mean)
                .to_kind(Kind::Float)
                .to_device(Device::Cpu);
            out.extend(Vec::<f32>::try_from(x.reshape([-1]))?);
            left -= n;
        }
        Array2::from_shape_vec((n_cells, g), out)
            .map_err(|e| ModelError::Input(format!("sample shape: {e}")))
    }

    /// The held-out log-likelihood of `cells` (data units, `n × G`) of the task's query, in nats per gene
    /// and averaged over cells: each cell is scored under the context of one control cell drawn from the
    /// task's control cells (noise-augmented as at inference, seeded), so the number is
    /// log p(x | x̃_pre, c) of the continuous preprocessed expression, including the change of variables
    /// of the per-gene standardisation. It is a density of continuous values: on data with exact zeros or
    /// discrete counts it is not comparable to a likelihood of counts, and because the flow was trained on
    /// noise-augmented cells (σ = `flow_noise` gene std) it scores them as the model of x + σε would.
    pub fn log_likelihood(&self, task: &Task, cells: &Array2<f32>, seed: u64) -> Result<f64> {
        let hot = self.check_task(task)?;
        let f = self.fitted()?;
        let g = f.config.n_genes();
        if cells.ncols() != g || cells.nrows() == 0 {
            return Err(ModelError::Input(format!(
                "log-likelihood needs a non-empty cell matrix of {g} genes, got {} × {}",
                cells.nrows(),
                cells.ncols()
            )));
        }
        let mut r = rng::stream(seed, "celltarnet-log-likelihood", 0);
        let (mean, std) = f.mean_std();
        let log_std_sum = std.log().sum(Kind::Double).double_value(&[]);
        let mut total = 0.0;
        for start in (0..cells.nrows()).step_by(SAMPLE_CHUNK) {
            let n = (cells.nrows() - start).min(SAMPLE_CHUNK);
            let rows: Vec<f32> = cells
                .slice(ndarray::s![start..start + n, ..])
                .iter()
                .copied()
                .collect();
            let x = (tensor(rows, &[n as i64, g as i64]).to_device(self.device) - &mean) / &std;
            let (pre, pert) =
                self.contexts(task, &hot, n, f.config.control_noise_at_inference, &mut r);
            let lp = tch::no_grad(|| {
                let (_, kv) = f.net.context_kv(&pre, &pert);
                f.net.log_prob(&x, &kv).0
            });
            total += lp.sum(Kind::Double).double_value(&[]) - n as f64 * log_std_sum;
        }
        Ok(total / (cells.nrows() as f64 * g as f64))
    }
}

/// The training configuration: AdamW (β = 0.9, 0.95, the config's weight decay), 5 % warm-up, the last
/// 20 % decayed to lr/10, gradient clipping at 1, no EMA, a checkpoint at the end.
fn train_config(
    config: &CellTarNetConfig,
    lr: f64,
    steps: u64,
    preprocessing: Preprocessing,
) -> TrainConfig {
    TrainConfig {
        seed: config.seed,
        batch_size: config.batch_size,
        accumulation: 1,
        total_steps: steps,
        schedule: LrSchedule {
            peak: lr,
            end: lr / 10.0,
            warmup_fraction: 0.05,
            decay_fraction: 0.2,
            sizing: ScheduleSizing::Updates,
        },
        adamw: AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: config.weight_decay,
        },
        clip_norm: Some(1.0),
        ema: EmaConfig {
            decay: 0.0,
            init: EmaInit::Copy,
            debias: false,
        },
        checkpoint_every: steps.max(1),
        keep_checkpoints: 1,
        preprocessing,
    }
}

impl Predictor for CellTarNet {
    fn name(&self) -> &str {
        NAME
    }

    /// Cells, any K (context experiments are not read: the query is conditioned on its control cells and
    /// its multi-hot), with an exact log-likelihood.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            exact_log_likelihood: true,
            ..Capabilities::default()
        }
    }

    /// Fits on the train conditions; a model loaded from a checkpoint is left as it is without a run
    /// directory.
    fn fit(
        &mut self,
        data: &PerturbationData,
        train_conditions: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> std::result::Result<(), PredictError> {
        if ctx.run_dir.is_none() && self.fitted.is_some() {
            return Ok(());
        }
        self.fit_conditions(data, train_conditions, ctx)?;
        Ok(())
    }

    fn predict(
        &self,
        task: &Task,
        n_cells: usize,
        seed: u64,
    ) -> std::result::Result<Prediction, PredictError> {
        Ok(Prediction::Cells(self.sample(task, n_cells, seed)?))
    }

    /// [`CellTarNet::log_likelihood`].
    fn log_likelihood(
        &self,
        task: &Task,
        cells: &Array2<f32>,
        seed: u64,
    ) -> Option<std::result::Result<f64, PredictError>> {
        Some(
            CellTarNet::log_likelihood(self, task, cells, seed)
                .map_err(|e| Box::new(e) as PredictError),
        )
    }
}

fn create(request: &CreateRequest<'_>) -> Result<MethodModel> {
    let mut model = CellTarNet::for_data(request.data, request.preset, request.inference.device)?;
    model.preprocessing = request.preprocessing.clone();
    model.config.seed = request.seed;
    model.config = crate::method::apply_model_options(&model.config, request.model_options)?;
    Ok(Box::new(model))
}

/// Loads a fitted CellTarNet from a checkpoint (or run) directory.
pub fn load_celltarnet(path: &Path, options: &InferenceOptions) -> Result<CellTarNet> {
    let ck = checkpoint::read_checkpoint(path)?;
    let config: CellTarNetConfig = ck.model_config(NAME)?;
    let device = torch_device(options.device);
    let fitted = Fitted::build(config.clone(), device, None, None)?;
    load_weights(&fitted.vs, &ck, false)?;
    Ok(CellTarNet {
        config,
        preprocessing: ck.meta.preprocessing.clone(),
        device,
        decoding: Decoding::Cached,
        fitted: Some(fitted),
        summary: None,
    })
}

fn load(path: &Path, options: &InferenceOptions) -> Result<MethodModel> {
    Ok(Box::new(load_celltarnet(path, options)?))
}

/// Sets the flow's output heads (zero at initialisation, so an untrained flow is the identity) to
/// N(0, scale²) draws from `r`: a flow that transforms its input, for speed and sampling checks.
fn randomize_heads(vs: &nn::VarStore, r: &mut Pcg64, scale: f64) {
    tch::no_grad(|| {
        for (name, mut v) in vs.variables() {
            if name.contains(".head.") {
                let values = rng::normals(r, v.numel());
                v.copy_(&(Tensor::from_slice(&values).view(v.size().as_slice()) * scale));
            }
        }
    });
}

#[cfg(test)]
impl CellTarNet {
    /// Test hook: [`randomize_heads`] on the fitted flow.
    pub(super) fn randomize_heads_for_test(&self, seed: u64, scale: f64) {
        let fitted = self.fitted.as_ref().expect("a fitted model");
        randomize_heads(
            &fitted.vs,
            &mut rng::stream(seed, "celltarnet-test-heads", 0),
            scale,
        );
    }
}

/// One sampling-speed measurement of [`sampling_speed`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SamplingTime {
    /// Genes G.
    pub genes: usize,
    /// Cells sampled at once.
    pub cells: usize,
    /// Flow tokens T (G / patch).
    pub tokens: usize,
    /// `cached` or `uncached`.
    pub decoding: String,
    /// Wall-clock seconds of the whole sampling (context encoding, decoding, Tweedie step).
    pub seconds: f64,
    /// Of which the sequential decoding of the flow (what the cache changes), timed separately.
    pub decode_seconds: f64,
}

/// Times sampling `cells` cells of `genes` genes with a freshly initialised model of `preset` (with
/// randomised affine heads, so the flow is not the identity, and the prior enabled at about 30 neighbours
/// per token), once per decoding mode in `modes`; returns the times and the largest difference between the
/// cells of the first mode and each other mode (the modes must agree).
pub fn sampling_speed(
    preset: &str,
    patch: Option<usize>,
    genes: usize,
    cells: usize,
    modes: &[Decoding],
    seed: u64,
) -> Result<(Vec<SamplingTime>, f64)> {
    let gene_names: Vec<String> = (0..genes).map(|g| format!("gene{g}")).collect();
    let mut config = CellTarNetConfig::preset(preset, gene_names, vec!["pert0".into()])?;
    if let Some(p) = patch {
        config.patch = p;
    }
    config.seed = seed;
    config.validate()?;
    let t = config.n_tokens();
    let adj: Vec<bool> = (0..t * t)
        .map(|x| {
            let (i, j) = (x / t, x % t);
            i == j || (i * 31 + j * 17) % t.max(1) < 30.min(t)
        })
        .collect();
    let (mean, std) = (vec![0.0f32; genes], vec![1.0f32; genes]);
    let fitted = Fitted::build(config.clone(), Device::Cpu, Some((&mean, &std)), Some(&adj))?;
    let mut r = rng::stream(seed, "celltarnet-speed", 0);
    randomize_heads(&fitted.vs, &mut r, 0.05);
    let (n, g) = (cells as i64, genes as i64);
    let control = tensor(rng::normals(&mut r, cells * genes), &[n, g]);
    let z = tensor(rng::normals(&mut r, cells * genes), &[n, g]);
    let pert = Tensor::ones([n, 1], (Kind::Float, Device::Cpu));
    let mut times = Vec::new();
    let mut first: Option<Tensor> = None;
    let mut max_diff = 0.0f64;
    for &mode in modes {
        let started = Instant::now();
        let x = fitted.net.sample(
            &z,
            &control,
            &pert,
            config.guidance,
            if config.tweedie {
                config.flow_noise
            } else {
                0.0
            },
            mode,
        );
        let seconds = started.elapsed().as_secs_f64();
        // The decoding alone, for the same inputs (context keys and values computed beforehand).
        let decode_seconds = tch::no_grad(|| {
            let (_, kv) = fitted.net.context_kv(&control, &pert);
            let tokens = fitted.net.flow.to_tokens(&z);
            let t0 = Instant::now();
            let _ = fitted.net.flow.decode(&tokens, &kv, None, mode);
            t0.elapsed().as_secs_f64()
        });
        match &first {
            None => first = Some(x),
            Some(f) => max_diff = max_diff.max((f - &x).abs().max().double_value(&[])),
        }
        times.push(SamplingTime {
            genes,
            cells,
            tokens: t,
            decoding: format!("{mode:?}").to_lowercase(),
            seconds,
            decode_seconds,
        });
    }
    Ok((times, max_diff))
}
