//! The toy per-perturbation Gaussian: `x_g ~ N(mean_control_g + δ_{p,g}, exp(s_{p,g})²)`, fitted by
//! maximum likelihood on the target cells of training tasks (queries = train conditions, K = 0).

use std::path::Path;

use cellshift_data::{
    Capabilities, FitContext, PerturbationData, PredictError, Prediction, Predictor, Task,
};
use ndarray::{Array2, Axis};
use rand_pcg::Pcg64;
use tch::{nn, Device, Kind, Tensor};

use super::config::ToyConfig;
use crate::error::{ModelError, Result};
use crate::method::{torch_device, CreateRequest, InferenceOptions, MethodEntry, MethodModel};
use crate::rng;
use crate::sources::DataTasks;
use crate::train::checkpoint;
use crate::train::trainer::load_weights;
use crate::train::{train_in_dir, Budget, LossTerms, Preprocessing, Start, TrainConfig, Trainable};

/// Method name in checkpoints and on the command line.
pub const NAME: &str = "toy-gaussian";

/// Peak learning rate unless `--lr` is given: every parameter is a per-gene mean or log-spread of order 1,
/// which the `quick` preset's 1e-3 would need thousands of steps to reach.
pub const DEFAULT_LEARNING_RATE: f64 = 0.1;

/// The registry entry.
pub static METHOD: MethodEntry = MethodEntry {
    name: NAME,
    about: "test fixture: a per-perturbation Gaussian that exercises training, checkpoints and the registry",
    presets: &["tiny"],
    load,
    create: Some(create),
    pretrain: None,
    hooks: crate::hooks::MethodHooks::NONE,
};

/// The toy model.
pub struct ToyGaussian {
    config: ToyConfig,
    vs: nn::VarStore,
    shift: Tensor,
    log_scale: Tensor,
    preprocessing: Preprocessing,
    trained: bool,
}

impl std::fmt::Debug for ToyGaussian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToyGaussian")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ToyGaussian {
    /// A model with zero shifts and unit spreads.
    pub fn new(config: ToyConfig, preprocessing: Preprocessing, device: Device) -> Result<Self> {
        config.validate()?;
        let vs = nn::VarStore::new(device);
        let (p, d) = (config.perturbations.len() as i64, config.genes.len() as i64);
        let root = vs.root();
        let shift = root.zeros("shift", &[p, d]);
        let log_scale = root.zeros("log_scale", &[p, d]);
        Ok(ToyGaussian {
            config,
            vs,
            shift,
            log_scale,
            preprocessing,
            trained: false,
        })
    }

    fn index_of(&self, label: &str) -> Result<i64> {
        self.config
            .perturbations
            .iter()
            .position(|p| p == label)
            .map(|i| i as i64)
            .ok_or_else(|| {
                ModelError::Input(format!(
                    "{NAME} has no parameters for perturbation `{label}`; it only predicts perturbations it was trained on"
                ))
            })
    }

    /// Forward: the mean shift and log-spread of a perturbation, `[d]` each.
    pub fn forward(&self, label: &str) -> Result<(Tensor, Tensor)> {
        let i = self.index_of(label)?;
        Ok((self.shift.get(i), self.log_scale.get(i)))
    }

    /// Mean Gaussian negative log-likelihood per value (nats) of a task's target cells.
    pub fn nll(&self, task: &Task) -> Result<Tensor> {
        let target = task
            .target
            .as_ref()
            .ok_or_else(|| ModelError::Input("the task has no target cells".into()))?;
        let (shift, log_scale) = self.forward(task.query_label())?;
        let dev = self.vs.device();
        let control = task
            .observational
            .mean_axis(Axis(0))
            .ok_or_else(|| ModelError::Input("the task has no control cells".into()))?;
        let mean = Tensor::from_slice(control.as_slice().unwrap_or(&control.to_vec()))
            .to_device(dev)
            + shift;
        let x = Tensor::from_slice(&target.iter().copied().collect::<Vec<f32>>())
            .reshape([target.nrows() as i64, target.ncols() as i64])
            .to_device(dev);
        let z = (x - mean.unsqueeze(0)) * (-&log_scale).exp().unsqueeze(0);
        let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        Ok((z.square() * 0.5 + log_scale.unsqueeze(0) + half_log_2pi).mean(Kind::Float))
    }
}

impl Trainable for ToyGaussian {
    type Batch = Vec<Task>;

    fn method(&self) -> &'static str {
        NAME
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or(serde_json::Value::Null)
    }

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// NLL of the batch's target cells plus the L2 penalty on the shifts, as two named components.
    fn loss(&self, tasks: &Vec<Task>, _rng: &mut Pcg64) -> Result<LossTerms> {
        let mut nll = Tensor::zeros([], (Kind::Float, self.vs.device()));
        for task in tasks {
            nll = nll + self.nll(task)?;
        }
        let nll = nll / tasks.len().max(1) as f64;
        let penalty = self.shift.square().mean(Kind::Float) * self.config.shift_penalty;
        Ok(LossTerms {
            total: &nll + &penalty,
            components: vec![
                ("nll".into(), nll.detach()),
                ("shift_l2".into(), penalty.detach()),
            ],
            backpropagated: false,
        })
    }
}

impl Predictor for ToyGaussian {
    fn name(&self) -> &str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            exact_log_likelihood: true,
            ..Capabilities::default()
        }
    }

    /// Trains by maximum likelihood through the shared loop into `ctx.run_dir`, resuming there, then keeps
    /// the EMA weights. A model loaded from a checkpoint is already fitted: without a run directory it is
    /// left as it is (benchmarking a trained checkpoint does not retrain it).
    fn fit(
        &mut self,
        data: &PerturbationData,
        train_conditions: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> std::result::Result<(), PredictError> {
        if ctx.run_dir.is_none() && self.trained {
            return Ok(());
        }
        let run_dir = ctx.run_dir.clone().ok_or_else(|| {
            ModelError::Config(format!(
                "{NAME} trains into a run directory; give --out DIR"
            ))
        })?;
        let mut preprocessing = self.preprocessing.clone();
        preprocessing.gene_names = data.genes.clone();
        let mut o = ctx.overrides.clone();
        o.lr = o.lr.or(Some(DEFAULT_LEARNING_RATE));
        let train = TrainConfig::from_overrides("quick", 200, preprocessing, &o, ctx.seed)?;
        let source =
            DataTasks::from_conditions(data, train_conditions, 0, o.cells.unwrap_or(32), ctx.seed)?;
        let budget = ctx.budget.unwrap_or(Budget::Steps(train.total_steps));
        let mut report = |p: &crate::train::Progress| ctx.report(p);
        train_in_dir(
            &*self,
            &train,
            &source,
            &run_dir,
            budget,
            Start::Fresh,
            &mut report,
        )?;
        let ck = checkpoint::read_checkpoint(&run_dir)?;
        load_weights(&self.vs, &ck, true)?;
        self.trained = true;
        Ok(())
    }

    fn predict(
        &self,
        task: &Task,
        n_cells: usize,
        seed: u64,
    ) -> std::result::Result<Prediction, PredictError> {
        let (shift, log_scale) = self.forward(task.query_label())?;
        let d = task.n_genes();
        if d != self.config.genes.len() {
            return Err(ModelError::Input(format!(
                "the task has {d} genes, the model {}",
                self.config.genes.len()
            ))
            .into());
        }
        let to_vec = |t: Tensor| -> Result<Vec<f32>> {
            Ok(Vec::<f32>::try_from(
                t.to_kind(Kind::Float).to_device(Device::Cpu),
            )?)
        };
        let (shift, scale) = (to_vec(shift)?, to_vec(log_scale.exp())?);
        let control = task
            .observational
            .mean_axis(Axis(0))
            .ok_or_else(|| ModelError::Input("the task has no control cells".into()))?;
        let noise = rng::normals(
            &mut rng::stream(seed, "toy-gaussian-sample", 0),
            n_cells * d,
        );
        Ok(Prediction::Cells(Array2::from_shape_fn(
            (n_cells, d),
            |(i, g)| control[g] + shift[g] + scale[g] * noise[i * d + g],
        )))
    }
}

fn create(request: &CreateRequest<'_>) -> Result<MethodModel> {
    if let Some(option) = request.model_options.first() {
        return Err(ModelError::Config(format!(
            "the toy method has no model options (got `{option}`)"
        )));
    }
    let data = request.data;
    let perturbations: Vec<String> = data
        .treatments
        .iter()
        .filter(|t| !t.is_control())
        .map(|t| t.label(&data.control_label))
        .collect();
    let config = ToyConfig {
        genes: data.genes.clone(),
        perturbations,
        shift_penalty: 1e-3,
    };
    let device = torch_device(request.inference.device);
    Ok(Box::new(ToyGaussian::new(
        config,
        request.preprocessing.clone(),
        device,
    )?))
}

fn load(path: &Path, options: &InferenceOptions) -> Result<MethodModel> {
    let ck = checkpoint::read_checkpoint(path)?;
    let config: ToyConfig = ck.model_config(NAME)?;
    let model = ToyGaussian::new(
        config,
        ck.meta.preprocessing.clone(),
        torch_device(options.device),
    )?;
    let mut model = model;
    load_weights(&model.vs, &ck, true)?;
    model.trained = true;
    Ok(Box::new(model))
}
