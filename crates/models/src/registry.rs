//! The method registry: one table naming every method of the workspace and how to create, load and
//! pre-train it. Every command goes through it (a checkpoint names its method, the registry finds the
//! loader), so adding a method is one folder plus one line of [`METHODS`].

use std::path::Path;

use cellshift_data::{DeviceSpec, PerturbationData, Predictor};

use crate::error::{ModelError, Result};
use crate::flow::SamplerConfig;
use crate::train::checkpoint;
use crate::train::Preprocessing;

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
    /// Whether `cellshift pretrain` applies (pre-training on synthetic priors).
    pub pretrains_on_priors: bool,
}

/// Every method, in the order listings show them.
pub static METHODS: &[&MethodEntry] = &[
    &crate::mappfn::METHOD,
    &crate::c3tl::METHOD,
    &crate::toy::METHOD,
];

/// The entry of a method by name; errors list the valid names.
pub fn method(name: &str) -> Result<&'static MethodEntry> {
    METHODS
        .iter()
        .copied()
        .find(|m| m.name == name)
        .ok_or_else(|| {
            ModelError::Config(format!(
                "unknown method `{name}`; the methods are {}",
                names().join(", ")
            ))
        })
}

/// The method names.
pub fn names() -> Vec<&'static str> {
    METHODS.iter().map(|m| m.name).collect()
}

/// The method that wrote the checkpoint at `path` and its preprocessing, read from the sidecar only.
pub fn checkpoint_method(path: &Path) -> Result<(&'static MethodEntry, Preprocessing)> {
    let (dir, meta) = checkpoint::read_meta(path)?;
    let entry = method(&meta.method).map_err(|_| ModelError::CheckpointCorrupt {
        path: dir,
        reason: format!(
            "it was written by method `{}`, which this build does not know ({})",
            meta.method,
            names().join(", ")
        ),
    })?;
    Ok((entry, meta.preprocessing))
}

/// Loads the model of the checkpoint at `path`, whatever its method.
pub fn load(path: &Path, options: &InferenceOptions) -> Result<MethodModel> {
    let (entry, _) = checkpoint_method(path)?;
    (entry.load)(path, options)
}

/// A fresh, untrained model of method `name`; errors for methods that are pre-trained on priors.
pub fn create(name: &str, request: &CreateRequest<'_>) -> Result<MethodModel> {
    let entry = method(name)?;
    let create = entry.create.ok_or_else(|| {
        ModelError::Config(format!(
            "{} is pre-trained on a synthetic prior, not trained from scratch on a data set; run \
             `cellshift pretrain --method {}` and then `cellshift finetune`",
            entry.name, entry.name
        ))
    })?;
    if !entry.presets.contains(&request.preset) {
        return Err(ModelError::Config(format!(
            "{} has no size `{}`; use one of {}",
            entry.name,
            request.preset,
            entry.presets.join(", ")
        )));
    }
    create(request)
}

/// The torch device of a device specification.
pub fn torch_device(device: DeviceSpec) -> tch::Device {
    match device {
        DeviceSpec::Cpu => tch::Device::Cpu,
        DeviceSpec::Cuda(i) => tch::Device::Cuda(i),
    }
}
