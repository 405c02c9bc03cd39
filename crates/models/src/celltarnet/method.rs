//! CellTarNet behind the common interface: its registry entry and [`MethodSpec`] (the configuration of a
//! data set, the fit of [`super::train`]), the multi-hot perturbation encoding, sampling cells of a query
//! and the exact held-out log-likelihood.

use std::collections::BTreeSet;
use std::path::Path;

use cellshift_data::{Capabilities, FitContext, PerturbationData, Prediction, Task, Treatment};
use ndarray::Array2;
use rand::Rng;
use rand_pcg::Pcg64;
use tch::{Device, Kind, Tensor};

use super::config::{CellTarNetConfig, PRESETS};
use super::flow::Decoding;
use super::train::{self, tensor, FitSummary, Fitted};
use crate::data_method::{self, DataMethod, MethodSpec};
use crate::error::{ModelError, Result};
use crate::method::{InferenceOptions, MethodEntry};
use crate::rng;
use crate::train::checkpoint::LoadedCheckpoint;
use crate::train::trainer::load_weights;

/// Method name in checkpoints and on the command line.
pub const NAME: &str = "celltarnet";

/// The registry entry.
pub static METHOD: MethodEntry = MethodEntry {
    name: NAME,
    about: "CellTarNet: conditional transformer autoregressive normalizing flow (TARFlow) with a context encoder, denoising NLL, InfoNCE and an L+S gene attention prior; exact likelihood",
    presets: PRESETS,
    load: data_method::load::<CellTarNetSpec>,
    create: Some(data_method::create::<CellTarNetSpec>),
    pretrain: None,
    hooks: super::HOOKS,
};

/// Cells sampled per chunk at prediction.
const SAMPLE_CHUNK: usize = 256;

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

/// CellTarNet: a model for the genes and perturbation targets of one data set.
pub type CellTarNet = DataMethod<CellTarNetSpec>;

/// CellTarNet's part of the method skeleton.
pub struct CellTarNetSpec;

impl MethodSpec for CellTarNetSpec {
    const NAME: &'static str = NAME;
    const TITLE: &'static str = "CellTarNet";
    type Config = CellTarNetConfig;
    type Fitted = Fitted;
    type Report = FitSummary;

    /// The data's genes, and a multi-hot slot for every single-gene target it perturbs.
    fn config_for_data(data: &PerturbationData, preset: &str) -> Result<CellTarNetConfig> {
        CellTarNetConfig::preset(preset, data.genes.clone(), perturbation_vocabulary(data))
    }

    fn validate(config: &CellTarNetConfig) -> Result<()> {
        config.validate()
    }

    fn set_seed(config: &mut CellTarNetConfig, seed: u64) {
        config.seed = seed;
    }

    fn preset(config: &CellTarNetConfig) -> &str {
        &config.preset
    }

    fn fitted_config(fitted: &Fitted) -> &CellTarNetConfig {
        &fitted.config
    }

    fn fitted_config_mut(fitted: &mut Fitted) -> &mut CellTarNetConfig {
        &mut fitted.config
    }

    fn fit(
        model: &CellTarNet,
        data: &PerturbationData,
        train: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> Result<(Fitted, FitSummary)> {
        train::fit(model, data, train, ctx)
    }

    fn restore(config: CellTarNetConfig, ck: &LoadedCheckpoint, device: Device) -> Result<Fitted> {
        let fitted = Fitted::build(config, device, None, None)?;
        load_weights(&fitted.vs, ck, false)?;
        Ok(fitted)
    }

    /// Cells, any K (context experiments are not read: the query is conditioned on its control cells and
    /// its multi-hot), with an exact log-likelihood.
    fn capabilities(_config: &CellTarNetConfig) -> Capabilities {
        Capabilities {
            exact_log_likelihood: true,
            ..Capabilities::default()
        }
    }

    fn predict_many(
        model: &CellTarNet,
        _fitted: &Fitted,
        tasks: &[Task],
        n_cells: usize,
        seeds: &[u64],
    ) -> Result<Vec<Prediction>> {
        tasks
            .iter()
            .zip(seeds)
            .map(|(task, &seed)| Ok(Prediction::Cells(model.sample(task, n_cells, seed)?)))
            .collect()
    }

    /// [`CellTarNet::log_likelihood`].
    fn log_likelihood(
        model: &CellTarNet,
        _fitted: &Fitted,
        task: &Task,
        cells: &Array2<f32>,
        seed: u64,
    ) -> Option<Result<f64>> {
        Some(model.log_likelihood(task, cells, seed))
    }
}

impl CellTarNet {
    /// Sets how sampling decodes (cached by default).
    pub fn set_decoding(&mut self, decoding: Decoding) {
        self.config_mut().decoding = decoding;
    }

    /// What the last fit did.
    pub fn summary(&self) -> Option<&FitSummary> {
        self.report()
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
        f: &Fitted,
        task: &Task,
        hot: &[f32],
        n: usize,
        noisy: bool,
        r: &mut Pcg64,
    ) -> (Tensor, Tensor) {
        let g = task.n_genes();
        let obs = &task.observational;
        let mut vals = Vec::with_capacity(n * g);
        for _ in 0..n {
            vals.extend(obs.row(r.gen_range(0..obs.nrows())).iter());
        }
        let (mean, std) = f.mean_std();
        let mut pre = (tensor(vals, &[n as i64, g as i64]).to_device(self.device()) - mean) / std;
        if noisy && f.config.control_noise > 0.0 {
            let noise = rng::normals(r, n * g);
            pre += tensor(noise, &[n as i64, g as i64]).to_device(self.device())
                * f.config.control_noise;
        }
        let k = hot.len() as i64;
        let pert = Tensor::from_slice(hot)
            .view([1, k])
            .expand([n as i64, k], false)
            .contiguous()
            .to_device(self.device());
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
            let (pre, pert) = self.contexts(
                f,
                task,
                &hot,
                n,
                f.config.control_noise_at_inference,
                &mut r,
            );
            let z =
                tensor(rng::normals(&mut r, n * g), &[n as i64, g as i64]).to_device(self.device());
            let sigma = if f.config.tweedie {
                f.config.flow_noise
            } else {
                0.0
            };
            let x = f
                .net
                .sample(&z, &pre, &pert, f.config.guidance, sigma, f.config.decoding);
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
            let x = (tensor(rows, &[n as i64, g as i64]).to_device(self.device()) - &mean) / &std;
            let (pre, pert) = self.contexts(
                f,
                task,
                &hot,
                n,
                f.config.control_noise_at_inference,
                &mut r,
            );
            let lp = tch::no_grad(|| {
                let (_, kv) = f.net.context_kv(&pre, &pert);
                f.net.log_prob(&x, &kv).0
            });
            total += lp.sum(Kind::Double).double_value(&[]) - n as f64 * log_std_sum;
        }
        Ok(total / (cells.nrows() as f64 * g as f64))
    }
}

/// Loads a fitted CellTarNet from a checkpoint (or run) directory.
pub fn load_celltarnet(path: &Path, options: &InferenceOptions) -> Result<CellTarNet> {
    data_method::load_model::<CellTarNetSpec>(path, options)
}
