//! scDFM behind the common interface: its registry entry and [`MethodSpec`] (the setup of a data set —
//! vocabulary, perturbation mode, presets — and the fit of [`super::train`]), and sampling: the 3/8-rule
//! RK4 on a 20-point grid from Gaussian noise, each predicted cell conditioned on a control cell of the
//! query's context.

use std::collections::BTreeSet;
use std::path::Path;

use cellshift_data::{Capabilities, FitContext, PerturbationData, Prediction, Task};
use ndarray::{Array2, Axis};
use rand::Rng;
use rand_pcg::Pcg64;
use tch::{Device, Kind, Tensor};

use super::config::{PerturbationMode, ScdfmConfig, ScdfmSetup, ScdfmTraining, PRESETS};
use super::model::ScdfmNet;
use super::train::{self, Fitted};
use super::vocab::{
    compound_labels, genes_mismatch, perturbation_ids, perturbation_mode, vocabulary, SPECIALS,
};
use crate::data_method::{self, DataMethod, MethodSpec};
use crate::error::{ModelError, Result};
use crate::flow::solver::{linspace_f32, odeint_rk4_38};
use crate::method::{InferenceOptions, MethodEntry};
use crate::rng;
use crate::train::checkpoint::LoadedCheckpoint;
use crate::train::trainer::load_weights;

/// Method name in checkpoints and on the command line.
pub const NAME: &str = "scdfm";

/// The registry entry.
pub static METHOD: MethodEntry = MethodEntry {
    name: NAME,
    about: "scDFM: flow matching from noise to perturbed cells with graph-contextualised gene tokens and differential-attention (PAD) blocks",
    presets: PRESETS,
    load: data_method::load::<ScdfmSpec>,
    create: Some(data_method::create::<ScdfmSpec>),
    pretrain: None,
    hooks: super::HOOKS,
};

/// scDFM for the genes and perturbations of one data set.
pub type Scdfm = DataMethod<ScdfmSpec>;

/// scDFM's part of the method skeleton.
pub struct ScdfmSpec;

impl MethodSpec for ScdfmSpec {
    const NAME: &'static str = NAME;
    const TITLE: &'static str = "scDFM";
    type Config = ScdfmSetup;
    type Fitted = Fitted;
    type Report = ();

    /// The vocabulary and perturbation mode of `data`, the preset's network and training settings, and
    /// clamped outputs when the data are non-negative.
    fn config_for_data(data: &PerturbationData, preset: &str) -> Result<ScdfmSetup> {
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
        Ok(ScdfmSetup {
            net,
            genes: data.genes.clone(),
            vocab,
            trained_tokens: Vec::new(),
            training,
            seed: 0,
            compounds: Vec::new(),
        })
    }

    fn set_seed(setup: &mut ScdfmSetup, seed: u64) {
        setup.seed = seed;
    }

    fn preset(setup: &ScdfmSetup) -> &str {
        &setup.net.preset
    }

    fn fitted_config(fitted: &Fitted) -> &ScdfmSetup {
        &fitted.setup
    }

    fn fitted_config_mut(fitted: &mut Fitted) -> &mut ScdfmSetup {
        &mut fitted.setup
    }

    fn fit(
        model: &Scdfm,
        data: &PerturbationData,
        train: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> Result<(Fitted, ())> {
        train::fit(model, data, train, ctx)
    }

    /// The network with the graph mask stored as its frozen variable `graph_mask`.
    fn restore(setup: ScdfmSetup, ck: &LoadedCheckpoint, device: Device) -> Result<Fitted> {
        let mut fitted = Fitted::build(setup, None, device)?;
        load_weights(&fitted.vs, ck, false)?;
        fitted.refresh_mask();
        Ok(fitted)
    }

    fn capabilities(_setup: &ScdfmSetup) -> Capabilities {
        Capabilities::default()
    }

    fn predict_many(
        model: &Scdfm,
        _fitted: &Fitted,
        tasks: &[Task],
        n_cells: usize,
        seeds: &[u64],
    ) -> Result<Vec<Prediction>> {
        Ok(model
            .predict_tasks(tasks, n_cells, seeds)?
            .into_iter()
            .map(Prediction::Cells)
            .collect())
    }
}

impl Scdfm {
    /// The setup (network configuration, vocabulary, training settings).
    pub fn setup(&self) -> &ScdfmSetup {
        self.config()
    }

    /// Mutable setup, for options set before fitting (ablations, step budgets) and sampling settings.
    pub fn setup_mut(&mut self) -> &mut ScdfmSetup {
        self.config_mut()
    }

    /// The network of a fitted model.
    pub fn net(&self) -> Option<&ScdfmNet> {
        self.fitted().ok().map(|f| &f.net)
    }

    /// Predicted cells for each task (task `i` drawn from `seeds[i]`).
    pub fn predict_tasks(
        &self,
        tasks: &[Task],
        n_cells: usize,
        seeds: &[u64],
    ) -> Result<Vec<Array2<f32>>> {
        let f = self.fitted()?;
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
                .to_device(self.device());
            let x0 = Tensor::from_slice(&rng::normals(r, m * g))
                .view([m as i64, g as i64])
                .to_device(self.device());
            let genes = ids.unsqueeze(0).repeat([m as i64, 1]);
            let p = Tensor::from_slice(&pert)
                .unsqueeze(0)
                .repeat([m as i64, 1])
                .to_device(self.device());
            let traj = odeint_rk4_38(
                |t, x| {
                    f.net.forward(
                        &genes,
                        x,
                        &Tensor::from(t).to_device(self.device()),
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

/// Loads a fitted scDFM from a checkpoint (or run) directory.
pub fn load_scdfm(path: &Path, options: &InferenceOptions) -> Result<Scdfm> {
    data_method::load_model::<ScdfmSpec>(path, options)
}
