//! scDFM behind the common interface: the vocabulary and graph of a data set, training as in the authors'
//! run.sh (one perturbation per step: 48 of its cells and 48 random control cells, a random gene subset,
//! CFM + γ·MMD, Adam, cosine annealing) on the shared [`Trainer`] (checkpoints, resumption, progress), and
//! sampling with the 3/8-rule RK4 on a 20-point grid from Gaussian noise.
//!
//! Vocabulary: 4 specials (`<pad>`, `<cls>`, `<mask>`, `control`) + the measured genes and every gene the
//! data set perturbs, in code-point order (their `GeneVocab`; their pipeline forces perturbed genes into the
//! HVG panel, here a perturbed gene that is not measured still gets a token). Such a gene has no
//! co-expression row, so in the graph mask it sees only itself, like the specials.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use cellshift_data::{
    Budget, Capabilities, FitContext, PerturbationData, PredictError, Prediction, Predictor,
    Progress, Task, Treatment,
};
use ndarray::{Array2, Axis};
use rand::Rng;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use super::config::{PerturbationMode, ScdfmConfig, PRESETS};
use super::graph;
use super::loss;
use super::model::{ScdfmNet, VelocityInputs};
use super::recompute;
use crate::blocks::{Init, ParamBuilder};
use crate::error::{ModelError, Result};
use crate::flow::solver::{linspace_f32, odeint_rk4_38};
use crate::method::{torch_device, CreateRequest, InferenceOptions, MethodEntry, MethodModel};
use crate::rng;
use crate::train::checkpoint;
use crate::train::ema::{EmaConfig, EmaInit};
use crate::train::optim::AdamWConfig;
use crate::train::schedule::{LrSchedule, ScheduleSizing};
use crate::train::source::BatchSource;
use crate::train::trainer::{load_weights, Start};
use crate::train::{LossTerms, Preprocessing, TrainConfig, Trainable, Trainer};

/// Method name in checkpoints and on the command line.
pub const NAME: &str = "scdfm";

/// The special tokens, in vocabulary order.
pub const SPECIALS: [&str; 4] = ["<pad>", "<cls>", "<mask>", "control"];

/// The registry entry.
pub static METHOD: MethodEntry = MethodEntry {
    name: NAME,
    about: "scDFM: flow matching from noise to perturbed cells with graph-contextualised gene tokens and differential-attention (PAD) blocks",
    presets: PRESETS,
    load,
    create: Some(create),
    pretrain: None,
    hooks: super::HOOKS,
};

/// How scDFM is trained and sampled (the defaults of each preset; run.sh's values in the `paper` preset).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScdfmTraining {
    /// Micro-batches (steps) of a run.
    pub steps: u64,
    /// Target cells per step (and as many control cells), all of one perturbation (48).
    pub cells_per_step: usize,
    /// Genes drawn per step (1,000; all genes when the panel is smaller).
    pub genes_per_step: usize,
    /// Adam learning rate at the start of the cosine schedule (5e-5).
    pub lr: f64,
    /// Learning rate at the end of the cosine schedule (1e-6).
    pub end_lr: f64,
    /// Checkpoint cadence in steps.
    pub checkpoint_every: u64,
    /// Top-k neighbours per gene of the co-expression graph (30).
    pub graph_topk: usize,
    /// Rank and keep edges by |correlation| (run.sh `use_negative_edge`).
    pub use_negative_edge: bool,
    /// Points of the RK4 time grid (20 → 19 steps, 76 evaluations).
    pub grid_points: usize,
    /// Cells per ODE solve at inference (their test batch, 48).
    pub predict_batch: usize,
    /// Clamp predictions at 0 (their sampler; on for non-negative data).
    pub clamp_output: bool,
    /// Genes per ODE solve at inference (`None`: all genes jointly, as their code). The CPU presets solve
    /// contiguous chunks of `genes_per_step` genes — the gene-set size seen in training — each from its own
    /// noise and the same control cell, so genes of different chunks are not jointly sampled.
    pub predict_gene_chunk: Option<usize>,
    /// Beyond the authors' code: keep only each PAD block's input during the forward pass and recompute
    /// the block in the backward pass ([`super::recompute`]). Same gradients, about one more forward of
    /// the blocks per step, a fraction of the memory: the paper shape at 1,000 genes needs it on a CPU.
    #[serde(default)]
    pub activation_checkpointing: bool,
}

impl ScdfmTraining {
    /// Defaults of a preset: `paper` = run.sh (lr 5e-5 → 1e-6, 200,000 steps); the CPU presets use a higher
    /// learning rate and a short run.
    pub fn preset(name: &str) -> ScdfmTraining {
        let name = super::config::split_preset(name).0;
        let paper = ScdfmTraining {
            steps: 200_000,
            cells_per_step: 48,
            genes_per_step: 1000,
            lr: 5e-5,
            end_lr: 1e-6,
            checkpoint_every: 5000,
            graph_topk: 30,
            use_negative_edge: true,
            grid_points: 20,
            predict_batch: 48,
            clamp_output: true,
            predict_gene_chunk: None,
            activation_checkpointing: false,
        };
        match name {
            "paper" => paper,
            "small" => ScdfmTraining {
                steps: 2000,
                genes_per_step: 128,
                lr: 5e-4,
                end_lr: 1e-5,
                checkpoint_every: 500,
                predict_gene_chunk: Some(128),
                ..paper
            },
            _ => ScdfmTraining {
                steps: 1000,
                genes_per_step: 128,
                lr: 1e-3,
                end_lr: 1e-5,
                checkpoint_every: 500,
                predict_gene_chunk: Some(128),
                ..paper
            },
        }
    }
}

/// Everything a checkpoint records about an scDFM model besides its weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScdfmSetup {
    /// The network.
    pub net: ScdfmConfig,
    /// The data's gene panel, in column order.
    pub genes: Vec<String>,
    /// Token strings: specials, then genes in code-point order.
    pub vocab: Vec<String>,
    /// Genes whose token was trained (measured genes and genes perturbed in training).
    pub trained_tokens: Vec<String>,
    /// Training and sampling settings.
    pub training: ScdfmTraining,
    /// Seed of the initial weights and of training.
    pub seed: u64,
    /// Drug mode: the compound tokens, the labels (`name@dose`) of the compounds of the training
    /// conditions in code-point order; `compounds[i]` is row `SPECIALS.len() + i` of the
    /// `perturbation_embedder` table and the empty second slot is `control` (row 3). Empty in genetic mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compounds: Vec<String>,
}

/// A fitted network with its variables.
struct Fitted {
    setup: ScdfmSetup,
    vs: nn::VarStore,
    net: ScdfmNet,
    token: HashMap<String, i64>,
    gene_tokens: Tensor,
}

impl Fitted {
    /// Builds the network for `setup` with `mask` (`[V, V]`, true = blocked); `mask = None` creates a
    /// placeholder to be filled from a checkpoint (the mask is stored as the frozen variable `graph_mask`).
    fn build(setup: ScdfmSetup, mask: Option<&Array2<bool>>, device: Device) -> Result<Fitted> {
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
    fn refresh_mask(&mut self) {
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

/// scDFM for the genes and perturbations of one data set.
pub struct Scdfm {
    setup: ScdfmSetup,
    preprocessing: Preprocessing,
    device: Device,
    fitted: Option<Fitted>,
}

impl std::fmt::Debug for Scdfm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scdfm")
            .field("preset", &self.setup.net.preset)
            .field("fitted", &self.fitted.is_some())
            .finish_non_exhaustive()
    }
}

/// The vocabulary of a data set: specials + measured genes ∪ perturbed genes, in code-point order.
pub fn vocabulary(data: &PerturbationData) -> Vec<String> {
    let mut genes: BTreeSet<String> = data.genes.iter().cloned().collect();
    for t in &data.treatments {
        genes.extend(t.target_genes().into_iter().map(String::from));
    }
    SPECIALS
        .iter()
        .map(|s| s.to_string())
        .chain(genes)
        .collect()
}

/// Genetic mode for screens of gene perturbations, drug mode (the authors' `perturbation_embedder`
/// tokens) for screens of compounds; an error for a screen that mixes both.
pub fn perturbation_mode(data: &PerturbationData) -> Result<PerturbationMode> {
    let compound = data
        .treatments
        .iter()
        .find(|t| matches!(t, Treatment::Compound { .. }));
    let genetic = data.treatments.iter().find(|t| {
        matches!(
            t,
            Treatment::Knockout { .. } | Treatment::Combination { .. }
        )
    });
    match (compound, genetic) {
        (Some(c), Some(g)) => Err(ModelError::Input(format!(
            "the screen mixes compounds (e.g. `{}`) and genetic perturbations (e.g. `{}`); scDFM embeds \
             either perturbed genes (genetic mode) or compound tokens (drug mode), not both in one model; \
             split the screen into its compound and its genetic conditions and train one model on each",
            c.label(&data.control_label),
            g.label(&data.control_label)
        ))),
        (Some(_), None) => Ok(PerturbationMode::Drug),
        _ => Ok(PerturbationMode::Crispr),
    }
}

/// The compound labels (`name@dose`) of `data`, or of its conditions `only` when given, in code-point order.
pub fn compound_labels(data: &PerturbationData, only: Option<&[usize]>) -> Vec<String> {
    let conditions = data.conditions();
    let treatments: Vec<&Treatment> = match only {
        Some(idx) => idx
            .iter()
            .filter_map(|&i| conditions.get(i))
            .filter(|c| !c.cells.is_empty())
            .map(|c| &data.treatments[c.treatment])
            .collect(),
        None => data.treatments.iter().collect(),
    };
    let set: BTreeSet<String> = treatments
        .into_iter()
        .filter(|t| matches!(t, Treatment::Compound { .. }))
        .map(|t| t.label(&data.control_label))
        .collect();
    set.into_iter().collect()
}

/// The `[V, V]` mask over `vocab` from a var-order graph mask over `genes`: gene pairs as in the graph,
/// every other token blocked except its own diagonal. With `vocab` = specials + sorted `genes` this is
/// their `sorted_pad_mask`.
pub fn vocabulary_mask(
    graph_mask: &Array2<bool>,
    genes: &[String],
    vocab: &[String],
) -> Array2<bool> {
    let pos: HashMap<&str, usize> = vocab
        .iter()
        .enumerate()
        .map(|(i, g)| (g.as_str(), i))
        .collect();
    let v = vocab.len();
    let mut m = Array2::from_elem((v, v), true);
    let idx: Vec<usize> = genes.iter().map(|g| pos[g.as_str()]).collect();
    for (a, &i) in idx.iter().enumerate() {
        for (b, &j) in idx.iter().enumerate() {
            m[[i, j]] = graph_mask[[a, b]];
        }
    }
    for i in 0..v {
        m[[i, i]] = false;
    }
    m
}

impl Scdfm {
    /// An unfitted model of `preset` for the genes and perturbations of `data`.
    pub fn for_data(
        data: &PerturbationData,
        preset: &str,
        device: Device,
        seed: u64,
    ) -> Result<Scdfm> {
        if data.n_genes() < 2 {
            return Err(ModelError::Input(format!(
                "scDFM needs at least 2 genes (got {})",
                data.n_genes()
            )));
        }
        let drug = perturbation_mode(data)?;
        let vocab = vocabulary(data);
        let mut rows = vocab.len();
        if drug == PerturbationMode::Drug {
            rows = rows.max(SPECIALS.len() + compound_labels(data, None).len());
        }
        let mut net = ScdfmConfig::preset(preset, rows)?;
        net.perturbation = drug;
        let mut training = ScdfmTraining::preset(preset);
        training.clamp_output = data.x.stored_values().iter().all(|&v| v >= 0.0);
        Ok(Scdfm {
            setup: ScdfmSetup {
                net,
                genes: data.genes.clone(),
                vocab,
                trained_tokens: Vec::new(),
                training,
                seed,
                compounds: Vec::new(),
            },
            preprocessing: Preprocessing {
                normalize_total: None,
                log1p: false,
                per_condition_scaling: None,
                n_genes: data.n_genes(),
                gene_names: data.genes.clone(),
            },
            device,
            fitted: None,
        })
    }

    /// The setup (network configuration, vocabulary, training settings).
    pub fn setup(&self) -> &ScdfmSetup {
        &self.setup
    }

    /// Mutable setup, for options set before fitting (ablations, step budgets).
    pub fn setup_mut(&mut self) -> &mut ScdfmSetup {
        &mut self.setup
    }

    /// The network of a fitted model.
    pub fn net(&self) -> Option<&ScdfmNet> {
        self.fitted.as_ref().map(|f| &f.net)
    }

    /// Trains on the `train_conditions` of `data` (indices into `data.conditions()`).
    pub fn fit_conditions(
        &mut self,
        data: &PerturbationData,
        train_conditions: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> Result<()> {
        if data.genes != self.setup.genes {
            return Err(genes_mismatch(&self.setup.genes, &data.genes));
        }
        let mode = perturbation_mode(data)?;
        if mode != self.setup.net.perturbation {
            return Err(ModelError::Input(format!(
                "this scDFM model was built in {} mode but the training data call for {} mode; create the \
                 model on the data it is trained on",
                mode_name(self.setup.net.perturbation),
                mode_name(mode)
            )));
        }
        let mut setup = self.setup.clone();
        if mode == PerturbationMode::Drug {
            setup.compounds = compound_labels(data, Some(train_conditions));
            setup.net.ntoken = setup.net.ntoken.max(SPECIALS.len() + setup.compounds.len());
        }
        let conditions = data.conditions();
        let mut groups = Vec::new();
        let mut graph_cells = Vec::new();
        let mut trained: BTreeSet<String> = data.genes.iter().cloned().collect();
        let token: HashMap<&str, i64> = self
            .setup
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
            let pert =
                perturbation_ids(&setup, treatment, &label, &|g| token.get(g).copied(), None)?;
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
        let fitted = Fitted::build(setup, Some(&mask), self.device)?;
        let source = TrainingCells {
            x: &data.x,
            groups,
            gene_tokens: Vec::<i64>::try_from(&fitted.gene_tokens.to_device(Device::Cpu))?,
            cells: fitted.setup.training.cells_per_step,
            genes: fitted.setup.training.genes_per_step,
            seed: fitted.setup.seed,
            device: self.device,
        };
        let config = train_config(&fitted.setup, &self.preprocessing);
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
        self.setup = fitted.setup.clone();
        self.fitted = Some(fitted);
        Ok(())
    }

    /// Predicted cells for each task (task `i` drawn from `seeds[i]`).
    pub fn predict_tasks(
        &self,
        tasks: &[Task],
        n_cells: usize,
        seeds: &[u64],
    ) -> Result<Vec<Array2<f32>>> {
        let f = self.fitted.as_ref().ok_or_else(|| {
            ModelError::Input(
                "scDFM is not fitted; train it first (`cellshift train --method scdfm`)".into(),
            )
        })?;
        let trained: BTreeSet<&str> = f.setup.trained_tokens.iter().map(String::as_str).collect();
        let mut out = Vec::with_capacity(tasks.len());
        for (task, &seed) in tasks.iter().zip(seeds) {
            if task.genes.as_slice() != f.setup.genes.as_slice() {
                return Err(genes_mismatch(&f.setup.genes, &task.genes));
            }
            let nc = task.observational.nrows();
            if nc == 0 {
                return Err(ModelError::Input(format!(
                    "the task in context `{}` has no control cells; scDFM conditions every predicted cell on a control cell",
                    task.context
                )));
            }
            let mut r = rng::stream(seed, "scdfm-predict", 0);
            let rows: Vec<usize> = (0..n_cells).map(|_| r.gen_range(0..nc)).collect();
            let controls = task.observational.select(Axis(0), &rows);
            if task.query.treatment.is_control() {
                out.push(controls);
                continue;
            }
            let label = task.query_label().to_string();
            let pert = perturbation_ids(
                &f.setup,
                &task.query.treatment,
                &label,
                &|g| f.token.get(g).copied(),
                Some(&trained),
            )?;
            out.push(self.sample(f, &controls, pert, &mut r)?);
        }
        Ok(out)
    }

    fn sample(
        &self,
        f: &Fitted,
        controls: &Array2<f32>,
        pert: [i64; 2],
        r: &mut Pcg64,
    ) -> Result<Array2<f32>> {
        let g = controls.ncols();
        let width = f
            .setup
            .training
            .predict_gene_chunk
            .unwrap_or(g)
            .clamp(1, g.max(1));
        let mut out = Array2::zeros(controls.dim());
        let mut lo = 0;
        while lo < g {
            let hi = (lo + width).min(g);
            let cols = controls.slice(ndarray::s![.., lo..hi]).to_owned();
            let ids = f.gene_tokens.narrow(0, lo as i64, (hi - lo) as i64);
            let part = self.sample_genes(f, &cols, &ids, pert, r)?;
            out.slice_mut(ndarray::s![.., lo..hi]).assign(&part);
            lo = hi;
        }
        Ok(out)
    }

    /// One ODE solve per chunk of `predict_batch` cells over the genes `ids`.
    fn sample_genes(
        &self,
        f: &Fitted,
        controls: &Array2<f32>,
        ids: &Tensor,
        pert: [i64; 2],
        r: &mut Pcg64,
    ) -> Result<Array2<f32>> {
        let _g = tch::no_grad_guard();
        let (n, g) = controls.dim();
        let grid = linspace_f32(f.setup.training.grid_points.max(2));
        let mut result = Vec::with_capacity(n * g);
        let chunk = f.setup.training.predict_batch.max(1);
        let mut start = 0;
        while start < n {
            let m = chunk.min(n - start);
            let xc: Vec<f32> = controls
                .slice(ndarray::s![start..start + m, ..])
                .iter()
                .copied()
                .collect();
            let xc = Tensor::from_slice(&xc)
                .view([m as i64, g as i64])
                .to_device(self.device);
            let x0 = Tensor::from_slice(&rng::normals(r, m * g))
                .view([m as i64, g as i64])
                .to_device(self.device);
            let genes = ids.unsqueeze(0).repeat([m as i64, 1]);
            let p = Tensor::from_slice(&pert)
                .unsqueeze(0)
                .repeat([m as i64, 1])
                .to_device(self.device);
            let traj = odeint_rk4_38(
                |t, x| {
                    f.net.forward(
                        &genes,
                        x,
                        &Tensor::from(t).to_device(self.device),
                        &xc,
                        &p,
                        false,
                        None,
                    )
                },
                &x0,
                &grid,
            )?;
            let mut end = traj.last().expect("grid ≥ 2").shallow_clone();
            if f.setup.training.clamp_output {
                end = end.clamp_min(0.0);
            }
            result.extend(Vec::<f32>::try_from(
                end.to_device(Device::Cpu)
                    .to_kind(Kind::Float)
                    .flatten(0, -1),
            )?);
            start += m;
        }
        Ok(Array2::from_shape_vec((n, g), result).expect("n × g values"))
    }
}

fn genes_mismatch(model: &[String], data: &[String]) -> ModelError {
    let first = model
        .iter()
        .zip(data)
        .position(|(a, b)| a != b)
        .map(|i| {
            format!(
                "; first difference at column {i}: model `{}`, data `{}`",
                model[i], data[i]
            )
        })
        .unwrap_or_default();
    ModelError::Input(format!(
        "the data's genes ({}) differ from the genes the scDFM model was built for ({}){first}; bring the data to \
         the model's gene panel (same genes, same order, e.g. `cellshift preprocess --genes-from <checkpoint>`) \
         or train a new model on this data",
        data.len(),
        model.len()
    ))
}

fn mode_name(mode: PerturbationMode) -> &'static str {
    match mode {
        PerturbationMode::Crispr => "genetic",
        PerturbationMode::Drug => "drug",
    }
}

/// The two perturbation token ids of a treatment in the mode of `setup`: gene tokens (see
/// [`perturbation_tokens`]) in genetic mode, `[compound, control]` rows of the `perturbation_embedder` table
/// in drug mode. Errors name a treatment of the other kind and a compound absent from training.
fn perturbation_ids(
    setup: &ScdfmSetup,
    treatment: &Treatment,
    label: &str,
    token: &dyn Fn(&str) -> Option<i64>,
    trained: Option<&BTreeSet<&str>>,
) -> Result<[i64; 2]> {
    match (setup.net.perturbation, treatment) {
        (PerturbationMode::Crispr, Treatment::Compound { .. }) => Err(ModelError::Input(format!(
            "cannot predict `{label}`: it is a compound, but this scDFM model is in genetic mode (it embeds \
             perturbed genes); train a drug-mode model on a compound screen (`cellshift train --method scdfm` \
             on data whose perturbations are compounds)"
        ))),
        (PerturbationMode::Crispr, _) => perturbation_tokens(treatment, label, token, trained),
        (PerturbationMode::Drug, Treatment::Compound { name, dose }) => {
            let key = format!("{name}@{dose}");
            match setup.compounds.binary_search(&key) {
                Ok(i) => Ok([(SPECIALS.len() + i) as i64, 3]),
                Err(_) => {
                    let doses: Vec<&str> = setup
                        .compounds
                        .iter()
                        .filter(|c| c.rsplit_once('@').is_some_and(|(n, _)| n == name))
                        .map(String::as_str)
                        .collect();
                    let seen = if doses.is_empty() {
                        format!(
                            "the model was trained on {} compound(s): {}",
                            setup.compounds.len(),
                            preview(&setup.compounds)
                        )
                    } else {
                        format!(
                            "the model saw `{name}` only as {} (each dose is its own token)",
                            doses.join(", ")
                        )
                    };
                    Err(ModelError::Input(format!(
                        "cannot predict compound `{key}`: it was absent from training, and scDFM's drug mode \
                         cannot embed compounds absent from training (each compound is a token learned in \
                         training); {seen}. Put `{key}` into the training conditions or predict a compound \
                         the model was trained on"
                    )))
                }
            }
        }
        (PerturbationMode::Drug, _) => Err(ModelError::Input(format!(
            "cannot predict `{label}`: it is a genetic perturbation, but this scDFM model is in drug mode \
             (trained on compounds); train a genetic-mode model on a genetic screen"
        ))),
    }
}

/// The first few items of a list, for messages.
fn preview(items: &[String]) -> String {
    let head: Vec<&str> = items.iter().take(5).map(String::as_str).collect();
    if items.len() > head.len() {
        format!("{}, …", head.join(", "))
    } else {
        head.join(", ")
    }
}

/// The two perturbation tokens of a treatment: `[A, control]` for a single, `[A, B]` for a double. With
/// `trained`, each gene must have been measured or perturbed in training.
fn perturbation_tokens(
    treatment: &Treatment,
    label: &str,
    token: &dyn Fn(&str) -> Option<i64>,
    trained: Option<&BTreeSet<&str>>,
) -> Result<[i64; 2]> {
    let genes = treatment.target_genes();
    if genes.is_empty() || genes.len() > 2 {
        return Err(ModelError::Input(format!(
            "scDFM embeds one or two perturbed genes per condition; `{label}` has {} (use single or double \
             genetic perturbations)",
            genes.len()
        )));
    }
    let mut ids = [3i64; 2];
    for (slot, g) in genes.iter().enumerate() {
        let id = token(g).ok_or_else(|| {
            ModelError::Input(format!(
                "cannot predict `{label}`: perturbed gene `{g}` is not in the scDFM model's vocabulary (the genes \
                 measured or perturbed in the data it was built on); train on data that measures or perturbs \
                 `{g}`"
            ))
        })?;
        if let Some(trained) = trained {
            if !trained.contains(g) {
                let what = if genes.len() == 2 {
                    format!("the double `{label}` contains the unseen single `{g}`")
                } else {
                    format!("`{label}` is an unseen single")
                };
                return Err(ModelError::Input(format!(
                    "{what}: gene `{g}` was neither measured nor perturbed in training, so its token embedding \
                     is untrained; put a condition perturbing `{g}` into training (the `additive` split keeps \
                     every single in training) or measure `{g}`"
                )));
            }
        }
        ids[slot] = id;
    }
    Ok(ids)
}

/// Adam (no weight decay), cosine annealing from `lr` to `end_lr`, no clipping, no EMA (run.sh).
fn train_config(setup: &ScdfmSetup, preprocessing: &Preprocessing) -> TrainConfig {
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

impl Predictor for Scdfm {
    fn name(&self) -> &str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

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
        let mut out = self.predict_tasks(std::slice::from_ref(task), n_cells, &[seed])?;
        Ok(Prediction::Cells(out.remove(0)))
    }

    fn predict_many(
        &self,
        tasks: &[Task],
        n_cells: usize,
        seeds: &[u64],
    ) -> std::result::Result<Vec<Prediction>, PredictError> {
        cellshift_data::predictor::check_one_seed_per_task(tasks, seeds)?;
        Ok(self
            .predict_tasks(tasks, n_cells, seeds)?
            .into_iter()
            .map(Prediction::Cells)
            .collect())
    }
}

fn create(request: &CreateRequest<'_>) -> Result<MethodModel> {
    let device = torch_device(request.inference.device);
    let mut model = Scdfm::for_data(request.data, request.preset, device, request.seed)?;
    model.preprocessing = request.preprocessing.clone();
    model.setup = crate::method::apply_model_options(&model.setup, request.model_options)?;
    Ok(Box::new(model))
}

/// Loads a fitted scDFM from a checkpoint (or run) directory.
pub fn load_scdfm(path: &Path, options: &InferenceOptions) -> Result<Scdfm> {
    let ck = checkpoint::read_checkpoint(path)?;
    let setup: ScdfmSetup = ck.model_config(NAME)?;
    let device = torch_device(options.device);
    let mut fitted = Fitted::build(setup.clone(), None, device)?;
    load_weights(&fitted.vs, &ck, false)?;
    fitted.refresh_mask();
    Ok(Scdfm {
        setup,
        preprocessing: ck.meta.preprocessing.clone(),
        device,
        fitted: Some(fitted),
    })
}

fn load(path: &Path, options: &InferenceOptions) -> Result<MethodModel> {
    Ok(Box::new(load_scdfm(path, options)?))
}

/// Writes a checkpoint of this port from one of the authors' state_dicts (safetensors, their parameter
/// names; see [`super::reference::load_reference`]). `vocab` is their vocabulary (`GeneVocab` itos: specials
/// then genes), `genes` the gene panel (column order of the data the model will predict), `mask` their
/// `[V, V]` graph mask (true = blocked; their `mask_fold_*.pt`, or this port's graph builder on the same
/// training cells). Every gene of the vocabulary counts as trained. Returns the checkpoint directory.
pub fn import_reference(
    state_dict: &Path,
    net: ScdfmConfig,
    vocab: Vec<String>,
    genes: Vec<String>,
    mask: &Array2<bool>,
    out_dir: &Path,
) -> Result<std::path::PathBuf> {
    let v = vocab.len();
    if mask.dim() != (v, v) {
        return Err(ModelError::Input(format!(
            "the graph mask is {:?} but the vocabulary has {v} tokens; pass the mask built for this vocabulary",
            mask.dim()
        )));
    }
    if net.perturbation == PerturbationMode::Drug {
        return Err(ModelError::Input(
            "importing a drug-mode state_dict needs the authors' compound vocabulary, which this importer does \
             not take; import a genetic (`perturbation_function=\"crisper\"`) checkpoint, or train drug mode \
             here with `cellshift train --method scdfm` on a compound screen"
                .into(),
        ));
    }
    if vocab.len() < SPECIALS.len() || vocab[..SPECIALS.len()] != SPECIALS {
        return Err(ModelError::Input(format!(
            "the vocabulary must start with the specials {} (their GeneVocab); it starts with {}",
            SPECIALS.join(", "),
            preview(&vocab[..vocab.len().min(SPECIALS.len())])
        )));
    }
    if v > net.ntoken {
        return Err(ModelError::Input(format!(
            "the vocabulary has {v} tokens but the checkpoint's token table has only {} rows; pass the \
             vocabulary the checkpoint was trained with",
            net.ntoken
        )));
    }
    let known: BTreeSet<&str> = vocab.iter().map(String::as_str).collect();
    if known.len() != v {
        return Err(ModelError::Input(
            "the vocabulary lists a token twice; pass their GeneVocab (each token once)".into(),
        ));
    }
    if let Some(g) = genes.iter().find(|g| !known.contains(g.as_str())) {
        return Err(ModelError::Input(format!(
            "gene `{g}` of the panel is not in the checkpoint's vocabulary; use the genes the model was trained on"
        )));
    }
    let setup = ScdfmSetup {
        trained_tokens: vocab.iter().skip(SPECIALS.len()).cloned().collect(),
        net,
        genes: genes.clone(),
        vocab,
        training: ScdfmTraining::preset("paper"),
        seed: 0,
        compounds: Vec::new(),
    };
    let mut fitted = Fitted::build(setup, Some(mask), Device::Cpu)?;
    super::reference::load_reference(&mut fitted.vs, state_dict)?;
    let preprocessing = Preprocessing {
        normalize_total: None,
        log1p: false,
        per_condition_scaling: None,
        n_genes: genes.len(),
        gene_names: genes,
    };
    let trainer = Trainer::new(&fitted, train_config(&fitted.setup, &preprocessing))?;
    trainer.save_checkpoint(out_dir)
}
