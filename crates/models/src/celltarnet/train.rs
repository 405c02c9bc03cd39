//! Fitting CellTarNet: per-gene statistics and the gene attention prior from the training cells only,
//! examples pairing each perturbed training cell with a control cell of its context, and the shared
//! training loop (denoising NLL, InfoNCE; checkpoints, progress, resumption).

use std::time::Instant;

use cellshift_data::{Budget, FitContext, PerturbationData};
use ndarray::{Array2, Axis};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_pcg::Pcg64;
use tch::{nn, Device, Tensor};

use super::config::CellTarNetConfig;
use super::method::{multi_hot, CellTarNet, NAME};
use super::model::{CellTarNetNet, TrainBatch};
use super::prior::{gene_adjacency, token_adjacency};
use crate::blocks::init::ParamBuilder;
use crate::error::{ModelError, Result};
use crate::rng;
use crate::train::ema::{EmaConfig, EmaInit};
use crate::train::optim::AdamWConfig;
use crate::train::schedule::{LrSchedule, ScheduleSizing};
use crate::train::source::BatchSource;
use crate::train::{LossTerms, Preprocessing, Start, TrainConfig, Trainable};

/// Most training cells the prior's correlations are estimated from (a seeded subsample beyond).
const PRIOR_MAX_CELLS: usize = 20_000;

/// A built network with its variables.
pub struct Fitted {
    pub(super) config: CellTarNetConfig,
    pub(super) vs: nn::VarStore,
    pub(super) net: CellTarNetNet,
}

impl Fitted {
    pub(super) fn build(
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

    pub(super) fn mean_std(&self) -> (Tensor, Tensor) {
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

pub(super) fn tensor(values: Vec<f32>, shape: &[i64]) -> Tensor {
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

/// Fits a fresh network of `model`'s configuration on the `train` conditions of `data` (see the module
/// documentation) and returns it with what the fit did.
pub(super) fn fit(
    model: &CellTarNet,
    data: &PerturbationData,
    train: &[usize],
    ctx: &mut FitContext<'_>,
) -> Result<(Fitted, FitSummary)> {
    let started = Instant::now();
    let g = model.config().n_genes();
    if data.n_genes() != g || data.genes != model.config().genes {
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
        let cond = conditions
            .get(c)
            .ok_or_else(|| ModelError::Input(format!("training condition {c} is out of range")))?;
        train_cells.extend(&cond.cells);
    }
    if train_cells.len() < 2 {
        return Err(ModelError::Input(
            "CellTarNet needs training cells; the training conditions hold fewer than two".into(),
        ));
    }
    let x = data.x.select_rows(&train_cells);
    let mean = x.mean_axis(Axis(0)).expect("non-empty");
    let std = x
        .std_axis(Axis(0), 0.0)
        .mapv(|s| if s > 1e-6 { s } else { 1.0 });
    let standardize = |a: Array2<f32>| (a - &mean) / &std;
    let mut config = model.config().clone();
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
        model.device(),
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
    let mut preprocessing = model.preprocessing().clone();
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
    Ok((fitted, summary))
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
