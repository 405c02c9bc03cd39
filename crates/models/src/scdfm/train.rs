//! Fitting scDFM as in the authors' run.sh: one perturbation per step (48 of its cells and 48 random control
//! cells, a random gene subset), CFM + γ·MMD, Adam, cosine annealing, on the shared training loop
//! (checkpoints, resumption, progress). The graph mask is built from the training cells only.

use std::collections::{BTreeSet, HashMap};

use cellshift_data::{Budget, FitContext, PerturbationData, Progress};
use ndarray::{Array2, Axis};
use rand::Rng;
use rand_pcg::Pcg64;
use tch::{nn, Device, Tensor};

use super::config::{PerturbationMode, ScdfmSetup};
use super::graph;
use super::loss;
use super::method::{Scdfm, NAME};
use super::model::{ScdfmNet, VelocityInputs};
use super::recompute;
use super::vocab::{
    compound_labels, genes_mismatch, mode_name, perturbation_ids, perturbation_mode,
    vocabulary_mask, SPECIALS,
};
use crate::blocks::{Init, ParamBuilder};
use crate::error::{ModelError, Result};
use crate::rng;
use crate::train::ema::{EmaConfig, EmaInit};
use crate::train::optim::AdamWConfig;
use crate::train::schedule::{LrSchedule, ScheduleSizing};
use crate::train::source::BatchSource;
use crate::train::trainer::Start;
use crate::train::{LossTerms, Preprocessing, TrainConfig, Trainable};

/// A fitted network with its variables.
pub struct Fitted {
    pub(super) setup: ScdfmSetup,
    pub(super) vs: nn::VarStore,
    pub(super) net: ScdfmNet,
    pub(super) token: HashMap<String, i64>,
    pub(super) gene_tokens: Tensor,
}

impl Fitted {
    /// Builds the network for `setup` with `mask` (`[V, V]`, true = blocked); `mask = None` creates a
    /// placeholder to be filled from a checkpoint (the mask is stored as the frozen variable `graph_mask`).
    pub(super) fn build(
        setup: ScdfmSetup,
        mask: Option<&Array2<bool>>,
        device: Device,
    ) -> Result<Fitted> {
        let v = setup.vocab.len();
        let vs = nn::VarStore::new(device);
        let init = match mask {
            Some(m) => Init::Values(m.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect()),
            None => Init::Zeros,
        };
        let stored = ParamBuilder::new(vs.root(), setup.seed).frozen("graph_mask", &[v, v], init);
        let net = ScdfmNet::new(vs.root(), &setup.net, &stored.gt(0.5), setup.seed)?;
        let token: HashMap<String, i64> = setup
            .vocab
            .iter()
            .enumerate()
            .map(|(i, g)| (g.clone(), i as i64))
            .collect();
        let ids: Vec<i64> = setup.genes.iter().map(|g| token[g]).collect();
        Ok(Fitted {
            gene_tokens: Tensor::from_slice(&ids).to_device(device),
            setup,
            vs,
            net,
            token,
        })
    }

    /// Re-reads the graph mask from the stored variable (after loading weights).
    pub(super) fn refresh_mask(&mut self) {
        let stored = self.vs.variables()["graph_mask"].shallow_clone();
        self.net.mask = stored.gt(0.5);
    }
}

/// One training micro-batch: one perturbation's target cells, random control cells, a gene subset.
pub struct ScdfmBatch {
    genes: Tensor,
    x1: Tensor,
    xc: Tensor,
    pert: Tensor,
}

impl Trainable for Fitted {
    type Batch = ScdfmBatch;

    fn method(&self) -> &'static str {
        NAME
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.setup).unwrap_or(serde_json::Value::Null)
    }

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// CFM + γ·MMD on the batch with seeded t ~ U(0,1), x₀ ~ N(0, I) and dropout.
    fn loss(&self, b: &ScdfmBatch, rng: &mut Pcg64) -> Result<LossTerms> {
        let (n, g) = (b.x1.size()[0], b.x1.size()[1]);
        let device = b.x1.device();
        let t = Tensor::from_slice(&rng::uniforms(rng, n as usize, 0.0, 1.0)).to_device(device);
        let x0 = Tensor::from_slice(&rng::normals(rng, (n * g) as usize))
            .view([n, g])
            .to_device(device);
        tch::manual_seed(rng.gen::<i64>() & i64::MAX);
        let x_t = (-&t + 1.0).unsqueeze(-1) * &x0 + t.unsqueeze(-1) * &b.x1;
        let cfg = &self.setup.net;
        let loss_of =
            |v: Tensor| loss::flow_loss(v, &x0, &b.x1, &x_t, &t, cfg.gamma, &cfg.mmd_scales);
        let (parts, backpropagated) = if self.setup.training.activation_checkpointing {
            let inputs = VelocityInputs {
                genes: &b.genes,
                x_t: &x_t,
                t: &t,
                x_c: &b.xc,
                pert: &b.pert,
            };
            let (_, parts) = recompute::forward_backward(&self.net, &inputs, true, |v| {
                let parts = loss_of(v);
                (parts.total.shallow_clone(), parts)
            })?;
            (parts, true)
        } else {
            let v = self
                .net
                .forward(&b.genes, &x_t, &t, &b.xc, &b.pert, true, None)?;
            (loss_of(v), false)
        };
        Ok(LossTerms {
            components: vec![
                ("cfm".into(), parts.cfm.detach()),
                ("mmd".into(), parts.mmd.detach() * cfg.gamma),
            ],
            total: if backpropagated {
                parts.total.detach()
            } else {
                parts.total
            },
            backpropagated,
        })
    }
}

/// The training cells grouped by perturbation (each with its context's control cells).
struct TrainingCells<'a> {
    x: &'a cellshift_data::Expression,
    groups: Vec<([i64; 2], Vec<usize>, Vec<usize>)>,
    gene_tokens: Vec<i64>,
    cells: usize,
    genes: usize,
    seed: u64,
    device: Device,
}

impl BatchSource<ScdfmBatch> for TrainingCells<'_> {
    fn batch(&self, micro_batch: u64, _size: usize) -> Result<ScdfmBatch> {
        let mut r = rng::stream(self.seed, "scdfm-batch", micro_batch);
        let (pert, targets, controls) = &self.groups[r.gen_range(0..self.groups.len())];
        let g_all = self.gene_tokens.len();
        let mut cols: Vec<usize> = (0..g_all).collect();
        if self.genes < g_all {
            for i in 0..self.genes {
                let j = r.gen_range(i..g_all);
                cols.swap(i, j);
            }
            cols.truncate(self.genes);
        }
        let pick = |r: &mut Pcg64, from: &[usize]| -> Vec<usize> {
            (0..self.cells)
                .map(|_| from[r.gen_range(0..from.len())])
                .collect()
        };
        let t_rows = pick(&mut r, targets);
        let c_rows = pick(&mut r, controls);
        let gather = |rows: &[usize]| {
            let m = self.x.select_rows(rows).select(Axis(1), &cols);
            let v: Vec<f32> = m.iter().copied().collect();
            Tensor::from_slice(&v)
                .view([rows.len() as i64, cols.len() as i64])
                .to_device(self.device)
        };
        let ids: Vec<i64> = cols.iter().map(|&c| self.gene_tokens[c]).collect();
        let n = self.cells as i64;
        Ok(ScdfmBatch {
            genes: Tensor::from_slice(&ids)
                .unsqueeze(0)
                .repeat([n, 1])
                .to_device(self.device),
            x1: gather(&t_rows),
            xc: gather(&c_rows),
            pert: Tensor::from_slice(pert)
                .unsqueeze(0)
                .repeat([n, 1])
                .to_device(self.device),
        })
    }

    fn describe(&self) -> String {
        format!(
            "scDFM cells of {} training perturbations ({} target + {} control cells, {} genes per step)",
            self.groups.len(),
            self.cells,
            self.cells,
            self.genes.min(self.gene_tokens.len())
        )
    }
}

/// Trains a fresh network of `model`'s setup on the `train_conditions` of `data` (indices into
/// `data.conditions()`): the co-expression graph of the training cells, then the shared loop.
pub(super) fn fit(
    model: &Scdfm,
    data: &PerturbationData,
    train_conditions: &[usize],
    ctx: &mut FitContext<'_>,
) -> Result<(Fitted, ())> {
    if data.genes != model.config().genes {
        return Err(genes_mismatch(&model.config().genes, &data.genes));
    }
    let mode = perturbation_mode(data)?;
    if mode != model.config().net.perturbation {
        return Err(ModelError::Input(format!(
            "this scDFM model was built in {} mode but the training data call for {} mode; create the \
             model on the data it is trained on",
            mode_name(model.config().net.perturbation),
            mode_name(mode)
        )));
    }
    let mut setup = model.config().clone();
    if mode == PerturbationMode::Drug {
        setup.compounds = compound_labels(data, Some(train_conditions));
        setup.net.ntoken = setup.net.ntoken.max(SPECIALS.len() + setup.compounds.len());
    }
    let conditions = data.conditions();
    let mut groups = Vec::new();
    let mut graph_cells = Vec::new();
    let mut trained: BTreeSet<String> = data.genes.iter().cloned().collect();
    let token: HashMap<&str, i64> = model
        .config()
        .vocab
        .iter()
        .enumerate()
        .map(|(i, g)| (g.as_str(), i as i64))
        .collect();
    for &ci in train_conditions {
        let c = conditions.get(ci).ok_or_else(|| {
            ModelError::Input(format!(
                "training condition {ci} does not exist (the data has {})",
                conditions.len()
            ))
        })?;
        graph_cells.extend_from_slice(&c.cells);
        let treatment = &data.treatments[c.treatment];
        if treatment.is_control() {
            continue;
        }
        let label = treatment.label(&data.control_label);
        let pert = perturbation_ids(&setup, treatment, &label, &|g| token.get(g).copied(), None)?;
        let controls = data
            .conditions()
            .iter()
            .find(|k| k.context == c.context && data.treatments[k.treatment].is_control())
            .map(|k| k.cells.clone())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ModelError::Input(format!(
                    "context `{}` has no control cells; scDFM pairs every perturbed cell with a control cell",
                    data.contexts[c.context]
                ))
            })?;
        if c.cells.is_empty() {
            continue;
        }
        trained.extend(treatment.target_genes().into_iter().map(String::from));
        groups.push((pert, c.cells.clone(), controls));
    }
    if groups.is_empty() {
        return Err(ModelError::Input(
            "no perturbed condition is among the training conditions; scDFM learns from perturbed cells"
                .into(),
        ));
    }
    setup.seed = ctx.seed;
    setup.trained_tokens = trained.into_iter().collect();
    if let Some(steps) = ctx.overrides.steps {
        setup.training.steps = steps.max(1);
    }
    if let Some(lr) = ctx.overrides.lr {
        setup.training.lr = lr;
    }
    if let Some(n) = ctx.overrides.cells.or(ctx.overrides.batch_size) {
        setup.training.cells_per_step = n.max(2);
    }
    if let Some(n) = ctx.overrides.checkpoint_every {
        setup.training.checkpoint_every = n.max(1);
    }
    graph_cells.sort_unstable();
    graph_cells.dedup();
    let x_graph = data.x.select_rows(&graph_cells);
    let g = graph::build_coexpression_graph(
        x_graph.view(),
        setup.training.graph_topk,
        setup.training.use_negative_edge,
    )?;
    let mask = vocabulary_mask(&g.mask, &setup.genes, &setup.vocab);
    let fitted = Fitted::build(setup, Some(&mask), model.device())?;
    let source = TrainingCells {
        x: &data.x,
        groups,
        gene_tokens: Vec::<i64>::try_from(&fitted.gene_tokens.to_device(Device::Cpu))?,
        cells: fitted.setup.training.cells_per_step,
        genes: fitted.setup.training.genes_per_step,
        seed: fitted.setup.seed,
        device: model.device(),
    };
    let config = train_config(&fitted.setup, model.preprocessing());
    let budget = ctx.budget.unwrap_or(Budget::Steps(config.total_steps));
    let run_dir = ctx.run_dir.clone();
    let mut report = |p: &Progress| ctx.report(p);
    crate::train::trainer::train(
        &fitted,
        &config,
        &source,
        run_dir.as_deref(),
        budget,
        Start::Fresh,
        None,
        &mut report,
    )?;
    Ok((fitted, ()))
}

/// Adam (no weight decay), cosine annealing from `lr` to `end_lr`, no clipping, no EMA (run.sh).
pub(super) fn train_config(setup: &ScdfmSetup, preprocessing: &Preprocessing) -> TrainConfig {
    let t = &setup.training;
    TrainConfig {
        seed: setup.seed,
        batch_size: t.cells_per_step,
        accumulation: 1,
        total_steps: t.steps.max(1),
        schedule: LrSchedule {
            peak: t.lr,
            end: t.end_lr,
            warmup_fraction: 0.0,
            decay_fraction: 0.0,
            sizing: ScheduleSizing::CosineUpdates,
        },
        adamw: AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        },
        clip_norm: None,
        ema: EmaConfig {
            decay: 0.0,
            init: EmaInit::Copy,
            debias: false,
        },
        checkpoint_every: t.checkpoint_every.max(1),
        keep_checkpoints: 2,
        preprocessing: preprocessing.clone(),
    }
}
