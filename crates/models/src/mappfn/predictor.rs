//! MapPFN as a [`Predictor`]: loads a checkpoint (EMA weights by default) and samples the query's cells
//! by integrating the guided velocity field from Gaussian noise (spec §4.1, Appendix C).

use std::path::{Path, PathBuf};

use cellshift_data::{
    Capabilities, FitContext, PerturbationData, PredictError, Prediction, Predictor, Task,
};
use ndarray::Array2;
use tch::{Device, Kind, Tensor};

use super::config::{MapPfnConfig, SamplerConfig};
use super::model::{ConditionedNet, MapPfnNet};
use super::standardize::TaskScale;
use crate::error::{ModelError, Result};
use crate::flow::{guided_velocity, solve};
use crate::rng;
use crate::train::checkpoint::{self, CheckpointMeta};
use crate::train::trainer::load_weights;
use crate::train::Preprocessing;

/// Queries solved together by default in [`Predictor::predict_many`].
pub const DEFAULT_MAX_BATCH: usize = 16;

/// Which weights of a checkpoint to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightSet {
    /// The EMA weights (used for validation, test and inference in the reference).
    Ema,
    /// The raw training weights.
    Raw,
}

/// Cells sampled for one query, with solver statistics.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Generated cells, `n × d`.
    pub cells: Array2<f32>,
    /// Guided velocity evaluations (each one batched forward of the conditional and unconditional branch).
    pub evaluations: usize,
    /// ODE steps taken.
    pub steps: usize,
}

/// A trained (or freshly initialised) MapPFN ready to predict.
#[derive(Debug)]
pub struct MapPfn {
    net: MapPfnNet,
    sampler: SamplerConfig,
    max_batch: usize,
    preprocessing: Preprocessing,
    meta: Option<CheckpointMeta>,
    checkpoint: Option<PathBuf>,
}

impl MapPfn {
    /// Wraps a network (e.g. an untrained one) with the default sampler.
    pub fn from_net(net: MapPfnNet, preprocessing: Preprocessing) -> MapPfn {
        MapPfn {
            net,
            sampler: SamplerConfig::default(),
            max_batch: DEFAULT_MAX_BATCH,
            preprocessing,
            meta: None,
            checkpoint: None,
        }
    }

    /// Loads the EMA weights of the checkpoint at `path` (a checkpoint directory or a run directory with a
    /// `LATEST` file) onto the CPU.
    pub fn load(path: &Path) -> Result<MapPfn> {
        MapPfn::load_with(path, WeightSet::Ema, Device::Cpu)
    }

    /// Loads the chosen weights of a checkpoint onto `device`.
    pub fn load_with(path: &Path, weights: WeightSet, device: Device) -> Result<MapPfn> {
        let ck = checkpoint::read_checkpoint(path)?;
        let config: MapPfnConfig = ck.model_config("mappfn")?;
        let net = MapPfnNet::new(config, 0, device)?;
        load_weights(net.var_store(), &ck, weights == WeightSet::Ema)?;
        Ok(MapPfn {
            net,
            sampler: SamplerConfig::default(),
            max_batch: DEFAULT_MAX_BATCH,
            preprocessing: ck.meta.preprocessing.clone(),
            meta: Some(ck.meta),
            checkpoint: Some(ck.dir),
        })
    }

    /// Replaces the sampler settings.
    pub fn with_sampler(mut self, sampler: SamplerConfig) -> Result<MapPfn> {
        sampler.validate()?;
        self.sampler = sampler;
        Ok(self)
    }

    /// Solve at most `max_batch` queries together in [`Predictor::predict_many`] (1 = one by one).
    pub fn with_max_batch(mut self, max_batch: usize) -> MapPfn {
        self.max_batch = max_batch.max(1);
        self
    }

    /// The sampler settings.
    pub fn sampler(&self) -> &SamplerConfig {
        &self.sampler
    }

    /// The preprocessing inputs must have (as recorded at training time).
    pub fn preprocessing(&self) -> &Preprocessing {
        &self.preprocessing
    }

    /// The network.
    pub fn net(&self) -> &MapPfnNet {
        &self.net
    }

    /// The sidecar of the checkpoint it was loaded from.
    pub fn checkpoint_meta(&self) -> Option<&CheckpointMeta> {
        self.meta.as_ref()
    }

    /// The checkpoint directory it was loaded from.
    pub fn checkpoint_dir(&self) -> Option<&Path> {
        self.checkpoint.as_deref()
    }

    /// Samples `n_cells` cells of the task's query from noise drawn from `seed`.
    pub fn sample(&self, task: &Task, n_cells: usize, seed: u64) -> Result<Sample> {
        let mut samples = self.sample_batch(&[task], n_cells, &[seed])?;
        Ok(samples.remove(0))
    }

    /// Samples several queries in one batched ODE solve (task `i` from noise drawn from `seeds[i]`, the same
    /// noise [`MapPfn::sample`] would draw). The tasks must share K and their set sizes. With a fixed-step
    /// solver every query equals its own solve; with the adaptive solver the step sizes are shared, chosen
    /// for the hardest query (each query stays within the tolerances).
    ///
    /// With `populations = P > 1` (see [`SamplerConfig::populations`]) each query is sampled P times, the
    /// first from `seeds[i]` and the others from seeds derived from it, and its cells are pooled: cell r
    /// comes from population `r mod P`. With `nonnegative` the cells are clamped at zero.
    pub fn sample_batch(
        &self,
        tasks: &[&Task],
        n_cells: usize,
        seeds: &[u64],
    ) -> Result<Vec<Sample>> {
        self.sampler.validate()?;
        let mut samples = self.sample_populations(tasks, n_cells, seeds)?;
        if self.sampler.nonnegative {
            for s in &mut samples {
                s.cells.mapv_inplace(|v| v.max(0.0));
            }
        }
        Ok(samples)
    }

    /// [`MapPfn::sample_batch`] before the optional clamp at zero.
    fn sample_populations(
        &self,
        tasks: &[&Task],
        n_cells: usize,
        seeds: &[u64],
    ) -> Result<Vec<Sample>> {
        let p = self.sampler.populations;
        if p == 1 {
            return self.sample_sets(tasks, n_cells, seeds);
        }
        let replicated: Vec<&Task> = tasks
            .iter()
            .flat_map(|t| std::iter::repeat_n(*t, p))
            .collect();
        let population_seeds: Vec<u64> = seeds
            .iter()
            .flat_map(|&s| (0..p).map(move |j| population_seed(s, j)))
            .collect();
        let sets = self.sample_sets(&replicated, n_cells, &population_seeds)?;
        Ok(sets
            .chunks(p)
            .map(|populations| pool_populations(populations, n_cells))
            .collect())
    }

    /// One sampled set per task (the reference sampler; see [`MapPfn::sample_batch`]).
    fn sample_sets(&self, tasks: &[&Task], n_cells: usize, seeds: &[u64]) -> Result<Vec<Sample>> {
        if tasks.is_empty() || tasks.len() != seeds.len() {
            return Err(ModelError::Input(format!(
                "sample_batch needs one seed per task and at least one task (got {} tasks, {} seeds)",
                tasks.len(),
                seeds.len()
            )));
        }
        if n_cells == 0 {
            return Err(ModelError::Input("n_cells must be at least 1".into()));
        }
        let layout = MapPfnNet::layout_of(tasks[0], n_cells);
        for task in tasks {
            self.net.check_task(task, false)?;
            if MapPfnNet::layout_of(task, n_cells) != layout {
                return Err(ModelError::Input(
                    "queries solved together must share K and the sizes of their cell sets; solve them separately".into(),
                ));
            }
        }
        let d = self.net.config().n_genes;
        let b = tasks.len();
        // Optional task standardisation: the network works on standardised tasks, cells are mapped back.
        let scales: Option<Vec<TaskScale>> = self.net.config().standardize_tasks.then(|| {
            tasks
                .iter()
                .map(|t| TaskScale::for_config(t, self.net.config()))
                .collect()
        });
        let standardized: Vec<Task>;
        let tasks: Vec<&Task> = match &scales {
            Some(scales) => {
                standardized = tasks
                    .iter()
                    .zip(scales)
                    .map(|(t, s)| s.standardize(t))
                    .collect();
                standardized.iter().collect()
            }
            None => tasks.to_vec(),
        };
        let tasks = tasks.as_slice();
        tch::no_grad(|| {
            let cond = self
                .net
                .encode_tasks_scaled(tasks, &layout, scales.as_deref())?;
            let field = ConditionedNet {
                net: &self.net,
                cond: &cond,
                compact_unconditional: true,
            };
            let mut noise = Vec::with_capacity(b * n_cells * d);
            for &seed in seeds {
                let mut stream = rng::stream(seed, "mappfn-sample", 0);
                let temperature = self.sampler.temperature as f32;
                noise.extend(
                    rng::normals(&mut stream, n_cells * d)
                        .into_iter()
                        .map(|z| z * temperature),
                );
            }
            let x0 = Tensor::from_slice(&noise)
                .reshape([b as i64, n_cells as i64, d as i64])
                .to_device(self.net.device());
            let omega = self.sampler.guidance;
            let sol = solve(
                &self.sampler.solver,
                |t, x| guided_velocity(&field, x, t, omega),
                &x0,
                0.0,
                1.0,
            )?;
            let flat: Vec<f32> = Vec::<f32>::try_from(
                sol.x
                    .to_kind(Kind::Float)
                    .to_device(Device::Cpu)
                    .reshape([-1]),
            )?;
            flat.chunks(n_cells * d)
                .enumerate()
                .map(|(i, chunk)| {
                    let cells = Array2::from_shape_vec((n_cells, d), chunk.to_vec())
                        .map_err(|e| ModelError::Input(format!("internal shape error: {e}")))?;
                    let cells = match &scales {
                        Some(scales) => scales[i].inverse(&cells),
                        None => cells,
                    };
                    Ok(Sample {
                        cells,
                        evaluations: sol.evaluations,
                        steps: sol.steps,
                    })
                })
                .collect()
        })
    }
}

/// The noise seed of population `j` of a query sampled from `seed` (population 0 is the query's own).
pub fn population_seed(seed: u64, j: usize) -> u64 {
    if j == 0 {
        seed
    } else {
        rng::stream_seed(seed, "mappfn-population", j as u64)
    }
}

/// Pools equally sized sets sampled in one solve: cell r of the result is cell r of set `r mod P`; the
/// solver statistics are those of the shared solve.
fn pool_populations(populations: &[Sample], n_cells: usize) -> Sample {
    let p = populations.len();
    let d = populations[0].cells.ncols();
    let mut cells = Array2::<f32>::zeros((n_cells, d));
    for (r, mut row) in cells.rows_mut().into_iter().enumerate() {
        row.assign(&populations[r % p].cells.row(r));
    }
    Sample {
        cells,
        evaluations: populations[0].evaluations,
        steps: populations[0].steps,
    }
}

impl Predictor for MapPfn {
    fn name(&self) -> &str {
        "mappfn"
    }

    /// MapPFN adapts in context, so fitting does nothing — unless `ctx` names a run directory, in which
    /// case the checkpoint is fine-tuned there on the train conditions (see [`MapPfn::finetune_in_place`]).
    fn fit(
        &mut self,
        data: &PerturbationData,
        train_conditions: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> Result<(), PredictError> {
        Ok(self.finetune_in_place(data, train_conditions, ctx)?)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            k_max: Some(self.net.config().max_context()),
            needs_measured_targets: true,
            ..Capabilities::default()
        }
    }

    fn predict(&self, task: &Task, n_cells: usize, seed: u64) -> Result<Prediction, PredictError> {
        Ok(Prediction::Cells(self.sample(task, n_cells, seed)?.cells))
    }

    /// Queries with the same layout are solved together in batches of at most `max_batch` queries.
    fn predict_many(
        &self,
        tasks: &[Task],
        n_cells: usize,
        seeds: &[u64],
    ) -> Result<Vec<Prediction>, PredictError> {
        if tasks.len() != seeds.len() {
            return Err(ModelError::Input(format!(
                "predict_many got {} tasks but {} seeds",
                tasks.len(),
                seeds.len()
            ))
            .into());
        }
        let mut out: Vec<Option<Prediction>> = vec![None; tasks.len()];
        let mut groups: Vec<(crate::mappfn::TaskLayout, Vec<usize>)> = Vec::new();
        for (i, t) in tasks.iter().enumerate() {
            let layout = MapPfnNet::layout_of(t, n_cells);
            match groups
                .iter_mut()
                .find(|(l, g)| *l == layout && g.len() < self.max_batch)
            {
                Some((_, g)) => g.push(i),
                None => groups.push((layout, vec![i])),
            }
        }
        for (_, group) in groups {
            let refs: Vec<&Task> = group.iter().map(|&i| &tasks[i]).collect();
            let group_seeds: Vec<u64> = group.iter().map(|&i| seeds[i]).collect();
            let samples = self.sample_batch(&refs, n_cells, &group_seeds)?;
            for (i, s) in group.into_iter().zip(samples) {
                out[i] = Some(Prediction::Cells(s.cells));
            }
        }
        Ok(out.into_iter().flatten().collect())
    }
}
