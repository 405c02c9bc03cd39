//! What a method is to the rest of the workspace: its registry entry ([`MethodEntry`]: name, create,
//! load, pre-train, capabilities), the requests and options those functions take, the model behind the
//! common interface, and the device mapping. Method folders implement these; the table of methods is
//! [`crate::registry`], which imports this module (never the other way round).

use std::path::Path;

use cellshift_data::{DeviceSpec, PerturbationData, Predictor};

use crate::error::{ModelError, Result};
use crate::flow::SamplerConfig;
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

/// Applies `KEY=VALUE` settings to a method's configuration through its JSON form: `VALUE` is read as
/// JSON (`true`, `0.1`, `[1,2]`) and else as a string; `a.b=…` sets field `b` of section `a`. Unknown keys (the configuration must deny unknown
/// fields) and values of the wrong type are errors that name the option.
pub fn apply_model_options<T>(config: &T, options: &[String]) -> Result<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let mut json = serde_json::to_value(config)
        .map_err(|e| ModelError::Config(format!("model options: {e}")))?;
    for option in options {
        let (key, value) = option.split_once('=').ok_or_else(|| {
            ModelError::Config(format!(
                "model option `{option}` is not KEY=VALUE; e.g. --model-option standardize_tasks=true"
            ))
        })?;
        let value = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        let mut path: Vec<&str> = key.trim().split('.').collect();
        let last = path.pop().unwrap_or_default();
        let mut node = &mut json;
        for part in &path {
            node = node
                .get_mut(*part)
                .filter(|n| n.is_object())
                .ok_or_else(|| {
                    ModelError::Config(format!(
                        "model option `{option}`: the configuration has no section `{part}`"
                    ))
                })?;
        }
        node.as_object_mut()
            .ok_or_else(|| ModelError::Config("the configuration is not a JSON object".into()))?
            .insert(last.to_string(), value);
    }
    serde_json::from_value(json)
        .map_err(|e| ModelError::Config(format!("model options {}: {e}", options.join(" "))))
}

/// The torch device of a device specification.
pub fn torch_device(device: DeviceSpec) -> tch::Device {
    match device {
        DeviceSpec::Cpu => tch::Device::Cpu,
        DeviceSpec::Cuda(i) => tch::Device::Cuda(i),
    }
}
