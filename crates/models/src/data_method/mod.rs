//! The method skeleton, written once: [`DataMethod`] owns what every method trained on a data set has —
//! its configuration, the preprocessing its data went through, the device, the fitted state, what the last
//! fit did, and the refit rule — and implements the common [`Predictor`] interface, the registry's
//! `create` and `load`, on top of a [`MethodSpec`]: the few functions a method folder writes (a config for
//! a data set, a fit that returns the fitted state, the rebuild of that state from a checkpoint, and
//! prediction).
//!
//! The refit rule: a model that is already fitted (loaded from a checkpoint, or fitted before) is left as
//! it is when `fit` is called without a run directory — benchmarking a trained checkpoint does not retrain
//! it — and refitted from its configuration when a run directory is given.

use std::path::Path;

use cellshift_data::{
    Capabilities, DeviceSpec, FitContext, PerturbationData, PredictError, Prediction, Predictor,
    Task,
};
use ndarray::Array2;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tch::Device;

use crate::error::{ModelError, Result};
use crate::method::{
    apply_model_options, torch_device, CreateRequest, InferenceOptions, MethodModel,
};
use crate::train::checkpoint::{self, LoadedCheckpoint};
use crate::train::Preprocessing;

pub mod speed;

pub use speed::time_fit_and_predict;

/// What a method folder supplies to [`DataMethod`].
pub trait MethodSpec: Sized + 'static {
    /// Name in checkpoints and on the command line.
    const NAME: &'static str;
    /// Name in messages (`scDFM`).
    const TITLE: &'static str;
    /// Everything a checkpoint records about a model besides its weights (network, vocabulary, training
    /// and sampling settings).
    type Config: Clone + Serialize + DeserializeOwned + Send + 'static;
    /// The fitted state: the network with its variables and whatever prediction needs of the fit.
    type Fitted: Send + 'static;
    /// What one fit did (steps, losses, the kept epoch), for callers that ask.
    type Report: Clone + Send + 'static;

    /// The configuration of a named size for the genes, perturbations and contexts of `data`.
    fn config_for_data(data: &PerturbationData, preset: &str) -> Result<Self::Config>;
    /// Checks a configuration (after `--model-option` settings were applied); every configuration is
    /// valid unless the method says otherwise.
    fn validate(_config: &Self::Config) -> Result<()> {
        Ok(())
    }
    /// Sets the seed of the initial weights.
    fn set_seed(config: &mut Self::Config, seed: u64);
    /// The preset a configuration was built from (for debugging output).
    fn preset(config: &Self::Config) -> &str;
    /// The configuration a fitted state was made with.
    fn fitted_config(fitted: &Self::Fitted) -> &Self::Config;
    /// Mutable configuration of a fitted state (sampling settings take effect on the fitted model).
    fn fitted_config_mut(fitted: &mut Self::Fitted) -> &mut Self::Config;
    /// Fits on the `train` conditions of `data` (indices into `data.conditions()`) through the shared
    /// training loop, from the configuration of `model`.
    fn fit(
        model: &DataMethod<Self>,
        data: &PerturbationData,
        train: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> Result<(Self::Fitted, Self::Report)>;
    /// Rebuilds the fitted state of `config` from a checkpoint of this method.
    fn restore(config: Self::Config, ck: &LoadedCheckpoint, device: Device)
        -> Result<Self::Fitted>;
    /// What the method predicts and needs.
    fn capabilities(config: &Self::Config) -> Capabilities;
    /// Predictions of `tasks` (one seed each, already checked) by the fitted state.
    fn predict_many(
        model: &DataMethod<Self>,
        fitted: &Self::Fitted,
        tasks: &[Task],
        n_cells: usize,
        seeds: &[u64],
    ) -> Result<Vec<Prediction>>;
    /// The exact log-likelihood of `cells` under the task's query, for methods that have one.
    fn log_likelihood(
        _model: &DataMethod<Self>,
        _fitted: &Self::Fitted,
        _task: &Task,
        _cells: &Array2<f32>,
        _seed: u64,
    ) -> Option<Result<f64>> {
        None
    }
}

/// A method trained on a data set: configuration, preprocessing, device, fitted state and the last fit's
/// report, behind [`Predictor`] (see the module documentation).
pub struct DataMethod<S: MethodSpec> {
    config: S::Config,
    preprocessing: Preprocessing,
    device: Device,
    fitted: Option<S::Fitted>,
    report: Option<S::Report>,
}

impl<S: MethodSpec> std::fmt::Debug for DataMethod<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(S::TITLE)
            .field("preset", &S::preset(self.config()))
            .field("fitted", &self.fitted.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: MethodSpec> DataMethod<S> {
    /// An unfitted model of `config` (checked).
    pub fn new(config: S::Config, preprocessing: Preprocessing, device: Device) -> Result<Self> {
        S::validate(&config)?;
        Ok(DataMethod {
            config,
            preprocessing,
            device,
            fitted: None,
            report: None,
        })
    }

    /// An unfitted model of preset `preset` for `data` (already preprocessed; recorded as identity
    /// preprocessing over its genes).
    pub fn for_data(data: &PerturbationData, preset: &str, device: DeviceSpec) -> Result<Self> {
        let config = S::config_for_data(data, preset)?;
        let mut preprocessing = Preprocessing::identity(data.n_genes());
        preprocessing.gene_names = data.genes.clone();
        DataMethod::new(config, preprocessing, torch_device(device))
    }

    /// The configuration: the fitted model's when fitted, else the one the next fit starts from.
    pub fn config(&self) -> &S::Config {
        self.fitted.as_ref().map_or(&self.config, S::fitted_config)
    }

    /// Mutable configuration: the fitted model's when fitted (sampling settings take effect at once; the
    /// others at the next fit, which starts from it), else the next fit's.
    pub fn config_mut(&mut self) -> &mut S::Config {
        match self.fitted.as_mut() {
            Some(f) => S::fitted_config_mut(f),
            None => &mut self.config,
        }
    }

    /// The preprocessing the model's data went through (recorded in its checkpoints).
    pub fn preprocessing(&self) -> &Preprocessing {
        &self.preprocessing
    }

    /// Where the model computes.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Whether the model is fitted.
    pub fn is_fitted(&self) -> bool {
        self.fitted.is_some()
    }

    /// The fitted state, or an error naming the command that fits it.
    pub fn fitted(&self) -> Result<&S::Fitted> {
        self.fitted.as_ref().ok_or_else(|| {
            ModelError::Input(format!(
                "{} is not fitted; fit it on a data set (`cellshift train --method {}`) first",
                S::TITLE,
                S::NAME
            ))
        })
    }

    /// What the last fit did (`None` before a fit, and for a loaded model).
    pub fn report(&self) -> Option<&S::Report> {
        self.report.as_ref()
    }

    /// Keeps a fitted state and its report; the configuration of later fits starts from it.
    pub fn install(&mut self, fitted: S::Fitted, report: S::Report) {
        self.config = S::fitted_config(&fitted).clone();
        self.fitted = Some(fitted);
        self.report = Some(report);
    }

    /// Fits on the `train` conditions of `data` (whatever the refit rule) and returns what the fit did.
    pub fn fit_conditions(
        &mut self,
        data: &PerturbationData,
        train: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> Result<S::Report> {
        let (fitted, report) = S::fit(self, data, train, ctx)?;
        self.install(fitted, report.clone());
        Ok(report)
    }
}

impl<S: MethodSpec> Predictor for DataMethod<S> {
    fn name(&self) -> &str {
        S::NAME
    }

    fn capabilities(&self) -> Capabilities {
        S::capabilities(self.config())
    }

    /// Fits on the train conditions; a fitted model is left as it is without a run directory (the refit
    /// rule of the module documentation).
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
        let mut out = self.predict_many(std::slice::from_ref(task), n_cells, &[seed])?;
        Ok(out.remove(0))
    }

    fn predict_many(
        &self,
        tasks: &[Task],
        n_cells: usize,
        seeds: &[u64],
    ) -> std::result::Result<Vec<Prediction>, PredictError> {
        cellshift_data::predictor::check_one_seed_per_task(tasks, seeds)?;
        Ok(S::predict_many(
            self,
            self.fitted()?,
            tasks,
            n_cells,
            seeds,
        )?)
    }

    fn log_likelihood(
        &self,
        task: &Task,
        cells: &Array2<f32>,
        seed: u64,
    ) -> Option<std::result::Result<f64, PredictError>> {
        let fitted = match self.fitted() {
            Ok(f) => f,
            Err(e) => return Some(Err(e.into())),
        };
        S::log_likelihood(self, fitted, task, cells, seed).map(|r| r.map_err(Into::into))
    }
}

/// The registry's `create` of a method: the preset's configuration for the request's data, its seed and
/// `--model-option` settings, checked.
pub fn create<S: MethodSpec>(request: &CreateRequest<'_>) -> Result<MethodModel> {
    let mut config = S::config_for_data(request.data, request.preset)?;
    S::set_seed(&mut config, request.seed);
    let config = apply_model_options(&config, request.model_options)?;
    let model = DataMethod::<S>::new(
        config,
        request.preprocessing.clone(),
        torch_device(request.inference.device),
    )?;
    Ok(Box::new(model))
}

/// Loads a fitted model of method `S` from a checkpoint (or run) directory.
pub fn load_model<S: MethodSpec>(path: &Path, options: &InferenceOptions) -> Result<DataMethod<S>> {
    let ck = checkpoint::read_checkpoint(path)?;
    let config: S::Config = ck.model_config(S::NAME)?;
    let device = torch_device(options.device);
    let fitted = S::restore(config.clone(), &ck, device)?;
    Ok(DataMethod {
        config,
        preprocessing: ck.meta.preprocessing.clone(),
        device,
        fitted: Some(fitted),
        report: None,
    })
}

/// The registry's `load` of a method: [`load_model`] behind the common interface.
pub fn load<S: MethodSpec>(path: &Path, options: &InferenceOptions) -> Result<MethodModel> {
    Ok(Box::new(load_model::<S>(path, options)?))
}
