//! C3TL behind the common interface: its registry entry and [`MethodSpec`] (the configuration of a data
//! set, the fit of [`super::train`], the restore of [`super::fitted`]), and pseudo-bulk prediction: the
//! mean of a query's control cells plus the predicted delta of its (perturbation, context) entry.

use std::path::Path;

use cellshift_data::{
    Capabilities, FitContext, OutputKind, PerturbationData, Prediction, Task, Treatment,
};
use ndarray::{Array1, Array2, Axis};
use tch::Device;

use super::config::{C3tlConfig, PRESETS};
use super::fitted::{self, Fitted};
use super::table::{Entry, Vocabulary};
use super::train::FitHistory;
use crate::data_method::{self, DataMethod, MethodSpec};
use crate::error::{ModelError, Result};
use crate::method::{InferenceOptions, MethodEntry};
use crate::train::checkpoint::LoadedCheckpoint;

/// Method name in checkpoints and on the command line.
pub const NAME: &str = "c3tl";

/// The registry entry.
pub static METHOD: MethodEntry = MethodEntry {
    name: NAME,
    about: "C3TL: pseudo-bulk context transfer (perturbation and context encoders averaged leave-one-out, added, decoded)",
    presets: PRESETS,
    load: data_method::load::<C3tlSpec>,
    create: Some(data_method::create::<C3tlSpec>),
    pretrain: None,
    hooks: super::HOOKS,
};

/// C3TL: a model for the perturbations and contexts of one data set.
pub type C3tl = DataMethod<C3tlSpec>;

/// C3TL's part of the method skeleton.
pub struct C3tlSpec;

impl MethodSpec for C3tlSpec {
    const NAME: &'static str = NAME;
    const TITLE: &'static str = "C3TL";
    type Config = C3tlConfig;
    type Fitted = Fitted;
    type Report = FitHistory;

    /// Every perturbation and context of `data` in the vocabulary.
    fn config_for_data(data: &PerturbationData, preset: &str) -> Result<C3tlConfig> {
        let perturbations: Vec<String> = data
            .treatments
            .iter()
            .filter(|t| !t.is_control())
            .map(|t| t.label(&data.control_label))
            .collect();
        C3tlConfig::preset(
            preset,
            data.genes.clone(),
            perturbations,
            data.contexts.clone(),
        )
    }

    fn validate(config: &C3tlConfig) -> Result<()> {
        config.validate()
    }

    fn set_seed(config: &mut C3tlConfig, seed: u64) {
        config.seed = seed;
    }

    fn preset(config: &C3tlConfig) -> &str {
        &config.preset
    }

    fn fitted_config(fitted: &Fitted) -> &C3tlConfig {
        &fitted.config
    }

    fn fitted_config_mut(fitted: &mut Fitted) -> &mut C3tlConfig {
        &mut fitted.config
    }

    /// Fits with a seeded automatic validation share for early stopping.
    fn fit(
        model: &C3tl,
        data: &PerturbationData,
        train: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> Result<(Fitted, FitHistory)> {
        model.fit_state(data, train, &[], ctx)
    }

    fn restore(config: C3tlConfig, ck: &LoadedCheckpoint, device: Device) -> Result<Fitted> {
        fitted::restore(config, ck, device)
    }

    /// Pseudo-bulk profiles; the task's context experiments are not read (the context is known from the
    /// training table's entries of that context), so any K is accepted.
    fn capabilities(_config: &C3tlConfig) -> Capabilities {
        Capabilities {
            output: OutputKind::PseudoBulk,
            k_min: 0,
            k_max: None,
            ..Capabilities::default()
        }
    }

    /// All queries from one pass of the encoders over the table: the profile is the mean of the task's
    /// control cells plus the predicted delta (zero for a control query). Deterministic: seeds are unused.
    fn predict_many(
        model: &C3tl,
        fitted: &Fitted,
        tasks: &[Task],
        _n_cells: usize,
        _seeds: &[u64],
    ) -> Result<Vec<Prediction>> {
        let vocab = model.vocabulary();
        let d = fitted.config.n_genes();
        let mut entries = Vec::new();
        let mut slots = Vec::with_capacity(tasks.len());
        for task in tasks {
            if task.n_genes() != d {
                return Err(ModelError::Input(format!(
                    "the task has {} genes but the model {d}; bring the data to the model's genes",
                    task.n_genes()
                )));
            }
            if task.observational.nrows() == 0 {
                return Err(ModelError::Input(format!(
                    "the task in context `{}` has no control cells; C3TL predicts a delta on top of the \
                     context's control mean",
                    task.context
                )));
            }
            if matches!(task.query.treatment, Treatment::Control) {
                slots.push(None);
                continue;
            }
            let entry = Entry {
                perturbation: vocab.perturbation(task.query_label())?,
                context: vocab.context(&task.context)?,
            };
            slots.push(Some(entries.len()));
            entries.push(entry);
        }
        let deltas = model.predict_entries(&entries)?;
        Ok(tasks
            .iter()
            .zip(slots)
            .map(|(task, slot)| {
                let control = task
                    .observational
                    .mean_axis(Axis(0))
                    .unwrap_or_else(|| Array1::zeros(d));
                Prediction::PseudoBulk(match slot {
                    Some(i) => control + deltas.row(i),
                    None => control,
                })
            })
            .collect())
    }
}

impl C3tl {
    /// The vocabulary of the model's perturbations and contexts.
    pub fn vocabulary(&self) -> Vocabulary {
        Vocabulary::new(&self.config().perturbations, &self.config().contexts)
    }

    /// What the last fit did.
    pub fn history(&self) -> Option<&FitHistory> {
        self.report()
    }

    /// Predicted deltas (data units) of (perturbation, context) entries, one row each. An entry that is
    /// in the training table is predicted from the other entries only (leave-one-out).
    pub fn predict_entries(&self, entries: &[Entry]) -> Result<Array2<f32>> {
        let fitted = self.fitted()?;
        let d = fitted.config.n_genes();
        if entries.is_empty() {
            return Ok(Array2::zeros((0, d)));
        }
        let pred = fitted.predict_deltas(entries)?.to_device(Device::Cpu);
        let values = Vec::<f32>::try_from(pred.reshape([-1]))?;
        Array2::from_shape_vec((entries.len(), d), values)
            .map_err(|e| ModelError::Input(format!("prediction shape: {e}")))
    }
}

/// Loads a fitted C3TL from a checkpoint (or run) directory.
pub fn load_c3tl(path: &Path, options: &InferenceOptions) -> Result<C3tl> {
    data_method::load_model::<C3tlSpec>(path, options)
}
