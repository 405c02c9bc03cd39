//! The toy behind the common interface: its registry entry (with the shared fit-and-predict speed
//! benchmark as its `speed` hook) and its part of the method skeleton; prediction draws cells from the
//! query's Gaussian around the mean of the task's control cells.

use cellshift_data::{Capabilities, FitContext, PerturbationData, Prediction, Task};
use ndarray::{Array2, Axis};
use tch::{Device, Kind, Tensor};

use super::config::ToyConfig;
use super::model::ToyNet;
use super::train;
use crate::data_method::{self, DataMethod, MethodSpec};
use crate::error::{ModelError, Result};
use crate::hooks::MethodHooks;
use crate::method::MethodEntry;
use crate::rng;
use crate::train::checkpoint::LoadedCheckpoint;
use crate::train::trainer::load_weights;

/// Method name in checkpoints and on the command line.
pub const NAME: &str = "toy-gaussian";

/// The registry entry.
pub static METHOD: MethodEntry = MethodEntry {
    name: NAME,
    about: "test fixture: a per-perturbation Gaussian that exercises training, checkpoints and the registry",
    presets: &["tiny"],
    load: data_method::load::<ToySpec>,
    create: Some(data_method::create::<ToySpec>),
    pretrain: None,
    hooks: MethodHooks {
        speed: Some(data_method::time_fit_and_predict::<ToySpec>),
        ..MethodHooks::NONE
    },
};

/// The toy model.
pub type ToyGaussian = DataMethod<ToySpec>;

/// The toy's part of the method skeleton.
pub struct ToySpec;

impl MethodSpec for ToySpec {
    const NAME: &'static str = NAME;
    const TITLE: &'static str = "the toy Gaussian";
    type Config = ToyConfig;
    type Fitted = ToyNet;
    type Report = ();

    /// Parameters for every perturbation of `data` (one size: the toy has no presets to speak of).
    fn config_for_data(data: &PerturbationData, _preset: &str) -> Result<ToyConfig> {
        Ok(ToyConfig {
            genes: data.genes.clone(),
            perturbations: data
                .treatments
                .iter()
                .filter(|t| !t.is_control())
                .map(|t| t.label(&data.control_label))
                .collect(),
            shift_penalty: 1e-3,
        })
    }

    fn validate(config: &ToyConfig) -> Result<()> {
        config.validate()
    }

    fn set_seed(_config: &mut ToyConfig, _seed: u64) {}

    fn preset(_config: &ToyConfig) -> &str {
        "tiny"
    }

    fn fitted_config(fitted: &ToyNet) -> &ToyConfig {
        &fitted.config
    }

    fn fitted_config_mut(fitted: &mut ToyNet) -> &mut ToyConfig {
        &mut fitted.config
    }

    fn fit(
        model: &ToyGaussian,
        data: &PerturbationData,
        train: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> Result<(ToyNet, ())> {
        train::fit(model, data, train, ctx)
    }

    /// The EMA weights of the checkpoint.
    fn restore(config: ToyConfig, ck: &LoadedCheckpoint, device: Device) -> Result<ToyNet> {
        let net = ToyNet::new(config, device)?;
        load_weights(&net.vs, ck, true)?;
        Ok(net)
    }

    fn capabilities(_config: &ToyConfig) -> Capabilities {
        Capabilities {
            exact_log_likelihood: true,
            ..Capabilities::default()
        }
    }

    fn predict_many(
        _model: &ToyGaussian,
        net: &ToyNet,
        tasks: &[Task],
        n_cells: usize,
        seeds: &[u64],
    ) -> Result<Vec<Prediction>> {
        tasks
            .iter()
            .zip(seeds)
            .map(|(task, &seed)| sample(net, task, n_cells, seed).map(Prediction::Cells))
            .collect()
    }
}

/// `n_cells` cells of the task's query: control mean + shift + spread · N(0, 1), from stream `seed`.
fn sample(net: &ToyNet, task: &Task, n_cells: usize, seed: u64) -> Result<Array2<f32>> {
    let (shift, log_scale) = net.forward(task.query_label())?;
    let d = task.n_genes();
    if d != net.config.genes.len() {
        return Err(ModelError::Input(format!(
            "the task has {d} genes, the model {}",
            net.config.genes.len()
        )));
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
    Ok(Array2::from_shape_fn((n_cells, d), |(i, g)| {
        control[g] + shift[g] + scale[g] * noise[i * d + g]
    }))
}
