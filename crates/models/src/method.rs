//! What a method is to the rest of the workspace: its registry entry ([`MethodEntry`]: name, create,
//! load, pre-train, capabilities), the requests and options those functions take, the model behind the
//! common interface, and the device mapping. Method folders implement these; the table of methods is
//! [`crate::registry`], which imports this module (never the other way round).

use std::path::Path;

use cellshift_data::{DeviceSpec, PerturbationData, Predictor};

pub use crate::model_options::apply_model_options;

use crate::error::Result;
use crate::flow::SamplerConfig;
use crate::hooks::MethodHooks;
use crate::train::{Budget, Preprocessing, Progress, RunSummary, TaskSource, TrainConfig};

/// A method's trained (or trainable) model behind the common interface.
pub type MethodModel = Box<dyn Predictor + Send>;

/// How a loaded model predicts (each method uses what applies to it).
#[derive(Clone, Debug, PartialEq)]
pub struct InferenceOptions {
    /// ODE solver and guidance of flow-based methods.
    pub sampler: SamplerConfig,
    /// Where to compute.
    pub device: DeviceSpec,
}

impl Default for InferenceOptions {
    fn default() -> Self {
        InferenceOptions {
            sampler: SamplerConfig::default(),
            device: DeviceSpec::Cpu,
        }
    }
}

/// What a fresh model is built for: a named size and the data it will be trained on.
pub struct CreateRequest<'a> {
    /// Named size (`tiny`, `small`, `paper`, …; each method lists its own).
    pub preset: &'a str,
    /// The (already preprocessed) data the model will be fitted on; fixes the gene panel.
    pub data: &'a PerturbationData,
    /// The preprocessing `data` went through (recorded in the checkpoints).
    pub preprocessing: Preprocessing,
    /// Inference settings of the created model.
    pub inference: InferenceOptions,
    /// Seed of the initial weights.
    pub seed: u64,
    /// `KEY=VALUE` settings of the method's configuration (`--model-option`, dotted keys reach nested
    /// fields, e.g. `prior.enabled=false`), applied with [`apply_model_options`].
    pub model_options: &'a [String],
}

/// One method: its name and the functions of its folder that the commands call.
pub struct MethodEntry {
    /// Name on the command line and in checkpoints.
    pub name: &'static str,
    /// One line for `--help` and listings.
    pub about: &'static str,
    /// Named sizes accepted by `create`.
    pub presets: &'static [&'static str],
    /// Loads a trained model from a checkpoint (or run) directory written by this method.
    pub load: fn(&Path, &InferenceOptions) -> Result<MethodModel>,
    /// Builds an untrained model to be fitted on data (`None`: the method is pre-trained on a synthetic
    /// prior instead, see `cellshift pretrain`).
    pub create: Option<fn(&CreateRequest<'_>) -> Result<MethodModel>>,
    /// Pre-trains a model of a named size on tasks from a synthetic prior (`None`: the method is trained
    /// on a data set instead, see `cellshift train`).
    pub pretrain: Option<PretrainFn>,
    /// Optional commands of the method: reference importer, speed benchmark, sweeps, splits.
    pub hooks: MethodHooks,
}

impl MethodEntry {
    /// Whether `cellshift pretrain` applies (pre-training on synthetic priors).
    pub fn pretrains_on_priors(&self) -> bool {
        self.pretrain.is_some()
    }
}

/// A method's pre-training entry point: a fresh model of `request.preset` trained on `request.source`.
pub type PretrainFn = fn(&PretrainRequest<'_>, &mut dyn FnMut(&Progress)) -> Result<RunSummary>;

/// What `cellshift pretrain` asks of a method.
pub struct PretrainRequest<'a> {
    /// Named size (each method lists its own).
    pub preset: &'a str,
    /// Genes d of the prior's data sets.
    pub genes: usize,
    /// The largest number of context experiments a task carries (methods with a bounded context check it).
    pub k: usize,
    /// Optimiser, schedule, seed and preprocessing.
    pub train: &'a TrainConfig,
    /// The tasks.
    pub source: &'a dyn TaskSource,
    /// Run directory (resumed when it holds a checkpoint of the same run).
    pub out_dir: &'a Path,
    /// When to stop this invocation.
    pub budget: Budget,
    /// Where to train.
    pub device: DeviceSpec,
    /// `KEY=VALUE` settings of the method's model configuration (`--model-option`), applied with
    /// [`apply_model_options`].
    pub model_options: &'a [String],
}

/// The torch device of a device specification.
pub fn torch_device(device: DeviceSpec) -> tch::Device {
    match device {
        DeviceSpec::Cpu => tch::Device::Cpu,
        DeviceSpec::Cuda(i) => tch::Device::Cuda(i),
    }
}
