//! Training-task sources for the model crate's trainer: an endless stream of tasks drawn from the
//! synthetic priors (linear SCM, SERGIO) and tasks drawn from a data file's train conditions (fine-tuning).
//! Every source is deterministic in the task index, so an interrupted run resumes with identical tasks.

use crate::train::TaskSource;
use crate::ModelError;
use cellshift_data::sampler::{SamplerConfig, TaskSampler};
use cellshift_data::seed::splitmix64 as mix;
use cellshift_data::split::{Split, SplitConfig, SplitRole};
use cellshift_data::{PerturbationData, Query, Task, TaskBuilder};
use cellshift_prior::{
    normalize_dataset, LinearScmConfig, LinearScmPrior, SergioPrior, SergioPriorConfig,
};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// Salts that separate the training and held-out data-set seed spaces.
const TRAIN_SALT: u64 = 0x7472_6169_6e00_0001;
const HELDOUT_SALT: u64 = 0x6865_6c64_6f75_7402;

/// The seed of the `index`-th training data set (network) of a prior run with master seed `seed`.
pub fn training_dataset_seed(seed: u64, index: u64) -> u64 {
    mix(mix(seed ^ TRAIN_SALT) ^ index) >> 1
}

/// The seed of the `index`-th held-out data set of master seed `seed`; never equal in practice to a
/// training seed (different salt), so held-out networks are new to a model pre-trained on the same prior.
pub fn heldout_dataset_seed(seed: u64, index: u64) -> u64 {
    mix(mix(seed ^ HELDOUT_SALT) ^ index) >> 1
}

/// Builds one task from a data set of a single context: `n_cells` control cells, `k` context
/// experiments chosen among the perturbations other than the query, and the query's cells as target.
/// Cells are drawn without replacement when a condition has enough of them, else with replacement.
pub fn task_from_single_context(
    data: &PerturbationData,
    k: usize,
    n_cells: usize,
    rng: &mut Pcg64,
) -> Result<Task, ModelError> {
    let err = |e: cellshift_data::DataError| ModelError::Config(e.to_string());
    let conds = data.conditions();
    let builder = TaskBuilder::new(data, n_cells).map_err(err)?;
    let control = conds
        .iter()
        .position(|c| data.treatments[c.treatment].is_control())
        .ok_or_else(|| ModelError::Config("a prior data set has no control condition".into()))?;
    let perturbed: Vec<usize> = (0..conds.len()).filter(|&i| i != control).collect();
    if perturbed.len() < k + 1 {
        return Err(ModelError::Config(format!(
            "a prior data set has {} perturbations, fewer than K + 1 = {}; lower K or simulate more",
            perturbed.len(),
            k + 1
        )));
    }
    let picked = sample(rng, perturbed.len(), k + 1).into_vec();
    let query = perturbed[picked[k]];
    let experiments: Vec<usize> = picked[..k].iter().map(|&p| perturbed[p]).collect();
    builder
        .assemble(
            conds[query].context,
            &experiments,
            &Query::Condition(query),
            rng,
        )
        .map_err(err)
}

/// K for one task: `k`, or uniform on `k_min..=k`.
fn draw_k(k_min: Option<usize>, k: usize, rng: &mut Pcg64) -> usize {
    match k_min {
        Some(lo) if lo < k => rng.gen_range(lo..=k),
        _ => k,
    }
}

fn k_text(k_min: Option<usize>, k: usize) -> String {
    match k_min {
        Some(lo) if lo < k => format!("{lo}..={k}"),
        _ => k.to_string(),
    }
}

/// Tasks from the linear-SCM prior (spec §5): every task draws a new SCM (a new context), simulates its
/// observational set and one intervention per node at the prior's sample size, and samples a query, K
/// context experiments and `n_cells` cells per set from them.
#[derive(Clone, Debug)]
pub struct LinearScmTasks {
    /// The prior (d, edge probability, weights, samples per condition, pairing).
    pub prior: LinearScmConfig,
    /// Context experiments per task (the largest K when `k_min` is set).
    pub k: usize,
    /// Draw K uniformly from `k_min..=k` per task, so one model serves every K (`None`: always `k`).
    pub k_min: Option<usize>,
    /// Cells per set given to the model (subsampled from the prior's `n_samples`).
    pub n_cells: usize,
    /// Master seed.
    pub seed: u64,
    /// Number of distinct training SCMs cycled through (`None`: a new SCM for every task).
    pub n_networks: Option<u64>,
}

impl LinearScmTasks {
    /// The SCM behind task `index`.
    fn network_of(&self, index: u64) -> u64 {
        match self.n_networks {
            Some(n) if n > 0 => index % n,
            _ => index,
        }
    }
}

impl TaskSource for LinearScmTasks {
    fn task(&self, index: u64) -> Result<Task, ModelError> {
        let network = self.network_of(index);
        let dataset_seed = training_dataset_seed(self.seed, network);
        let data = LinearScmPrior::sample_dataset(&self.prior, dataset_seed)
            .map_err(|e| ModelError::Config(e.to_string()))?;
        let mut rng = Pcg64::seed_from_u64(mix(dataset_seed ^ mix(index)));
        let k = draw_k(self.k_min, self.k, &mut rng);
        task_from_single_context(&data, k, self.n_cells, &mut rng)
    }

    fn describe(&self) -> String {
        format!(
            "linear-SCM prior: d={} n_samples={} paired={} K={} n_cells={} seed={} networks={}",
            self.prior.n_nodes,
            self.prior.n_samples,
            self.prior.paired,
            k_text(self.k_min, self.k),
            self.n_cells,
            self.seed,
            self.n_networks
                .map_or("unbounded".to_string(), |n| n.to_string())
        )
    }
}

/// Tasks from the SERGIO biological prior (spec §6): every task (or every `tasks_per_network` consecutive
/// tasks) simulates a new GRN with its control and knock-outs, normalised as the prior's normalisation
/// says, and samples a task from it.
#[derive(Clone, Debug)]
pub struct SergioTasks {
    /// The prior (genes, cells, pairing, technical noise, normalisation).
    pub prior: SergioPriorConfig,
    /// Context experiments per task (the largest K when `k_min` is set).
    pub k: usize,
    /// Draw K uniformly from `k_min..=k` per task (`None`: always `k`).
    pub k_min: Option<usize>,
    /// Cells per set given to the model.
    pub n_cells: usize,
    /// Master seed.
    pub seed: u64,
    /// Consecutive tasks drawn from one simulated network (simulation is the expensive part).
    pub tasks_per_network: u64,
    /// Normalisation of the simulated counts (spec §6.8: total-count normalisation + log1p).
    pub normalization: Option<cellshift_data::preprocess::NormalizeTarget>,
    /// The most recently simulated network, reused by the following tasks of the same network.
    pub cache: NetworkCache,
}

/// Holds the last simulated network of a [`SergioTasks`] source so that the `tasks_per_network` tasks
/// drawn from one network simulate it once (the cache never changes which task an index yields).
#[derive(Debug, Default)]
pub struct NetworkCache(std::sync::Mutex<Option<(u64, std::sync::Arc<PerturbationData>)>>);

impl Clone for NetworkCache {
    fn clone(&self) -> Self {
        NetworkCache::default()
    }
}

impl SergioTasks {
    /// The normalised data set of training network `network`, simulated once and then reused.
    fn network(&self, network: u64) -> Result<std::sync::Arc<PerturbationData>, ModelError> {
        if let Ok(guard) = self.cache.0.lock() {
            if let Some((cached, data)) = guard.as_ref() {
                if *cached == network {
                    return Ok(data.clone());
                }
            }
        }
        let dataset_seed = training_dataset_seed(self.seed, network);
        let data =
            SergioPrior::sample_named(&self.prior, dataset_seed, &format!("grn_{dataset_seed}"))
                .and_then(|raw| normalize_dataset(&raw, self.normalization))
                .map_err(|e| ModelError::Config(e.to_string()))?;
        let data = std::sync::Arc::new(data);
        if let Ok(mut guard) = self.cache.0.lock() {
            *guard = Some((network, data.clone()));
        }
        Ok(data)
    }
}

impl TaskSource for SergioTasks {
    fn task(&self, index: u64) -> Result<Task, ModelError> {
        let network = index / self.tasks_per_network.max(1);
        let dataset_seed = training_dataset_seed(self.seed, network);
        let data = self.network(network)?;
        let mut rng = Pcg64::seed_from_u64(mix(dataset_seed ^ mix(index)));
        let k = draw_k(self.k_min, self.k, &mut rng);
        task_from_single_context(&data, k, self.n_cells, &mut rng)
    }

    fn describe(&self) -> String {
        format!(
            "SERGIO prior: d={} paired={} normalisation={:?} K={} n_cells={} seed={} tasks_per_network={}",
            self.prior.n_genes,
            self.prior.paired,
            self.normalization,
            k_text(self.k_min, self.k), self.n_cells, self.seed, self.tasks_per_network
        )
    }
}

/// Fine-tuning tasks from a data set: queries are its train conditions (standard split), context
/// experiments come from the train half of the same context, as in the reference's train loader.
pub struct DataTasks<'a> {
    sampler: TaskSampler<'a>,
    seed: u64,
}

impl<'a> DataTasks<'a> {
    /// Tasks with `k` context experiments and `n_cells` cells per set from the train conditions of `split`.
    pub fn new(
        data: &'a PerturbationData,
        split: &SplitConfig,
        k: usize,
        n_cells: usize,
        seed: u64,
    ) -> Result<DataTasks<'a>, ModelError> {
        let split = Split::new(data, split).map_err(|e| ModelError::Config(e.to_string()))?;
        DataTasks::from_split(data, split, k, n_cells, seed)
    }

    /// Tasks whose queries are exactly `train_conditions`, with context experiments from the same set.
    pub fn from_conditions(
        data: &'a PerturbationData,
        train_conditions: &[usize],
        k: usize,
        n_cells: usize,
        seed: u64,
    ) -> Result<DataTasks<'a>, ModelError> {
        let err = |e: cellshift_data::DataError| ModelError::Config(e.to_string());
        let split = Split::from_train_conditions(data, train_conditions).map_err(err)?;
        DataTasks::from_split(data, split, k, n_cells, seed)
    }

    fn from_split(
        data: &'a PerturbationData,
        split: Split,
        k: usize,
        n_cells: usize,
        seed: u64,
    ) -> Result<DataTasks<'a>, ModelError> {
        let err = |e: cellshift_data::DataError| ModelError::Config(e.to_string());
        let sampler = TaskSampler::new(
            data,
            split,
            SamplerConfig {
                k,
                n_cells,
                seed,
                query_role: SplitRole::Train,
                require_k_available: false,
                ..SamplerConfig::default()
            },
        )
        .map_err(err)?;
        if sampler.is_empty() {
            return Err(ModelError::Config(
                "the data set has no train perturbations to fine-tune on; it needs perturbations besides the control"
                    .into(),
            ));
        }
        Ok(DataTasks { sampler, seed })
    }

    /// Train query conditions per epoch.
    pub fn epoch_len(&self) -> usize {
        self.sampler.len()
    }
}

impl TaskSource for DataTasks<'_> {
    fn task(&self, index: u64) -> Result<Task, ModelError> {
        let per_epoch = self.sampler.len() as u64;
        self.sampler
            .task(index / per_epoch, (index % per_epoch) as usize)
            .map_err(|e| ModelError::Config(e.to_string()))
    }

    fn describe(&self) -> String {
        format!(
            "data set: {} train queries per epoch, K={}, n_cells={}, seed={}",
            self.sampler.len(),
            self.sampler.config().k,
            self.sampler.config().n_cells,
            self.seed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scm_tasks() -> LinearScmTasks {
        LinearScmTasks {
            prior: LinearScmConfig {
                n_nodes: 6,
                n_samples: 30,
                ..LinearScmConfig::default()
            },
            k: 3,
            k_min: None,
            n_cells: 10,
            seed: 5,
            n_networks: None,
        }
    }

    #[test]
    fn linear_scm_tasks_are_a_pure_function_of_the_index() {
        let source = scm_tasks();
        let (a, b) = (source.task(7).unwrap(), source.task(7).unwrap());
        assert_eq!(a.experiments, b.experiments);
        assert_eq!(a.query, b.query);
        assert_eq!(a.target, b.target);
        assert_eq!(a.context_cells, b.context_cells);
        let c = source.task(8).unwrap();
        assert_ne!(a.context, c.context, "every task draws a new SCM");
        assert_eq!(a.context_cells.dim(), (3, 10, 6));
        assert_eq!(a.experiments.len() + 1, 4);
        // The query is a hard intervention: its gene is constant at the intervention value c ∈ [0.5, 1.5],
        // which is also the query's encoding; no context experiment repeats the query.
        let q = a.query_treatment();
        let gene = q.iter().position(|&v| v != 0.0).unwrap();
        assert!((0.5..=1.5).contains(&q[gene]));
        let target = a.target.as_ref().unwrap();
        assert!(target
            .column(gene)
            .iter()
            .all(|&v| (v - q[gene]).abs() < 1e-6));
        for row in 0..3 {
            assert_eq!(a.one_hot(&a.experiments[row]).unwrap()[gene], 0.0);
        }
        // A bounded pool of SCMs cycles.
        let bounded = LinearScmTasks {
            n_networks: Some(4),
            ..scm_tasks()
        };
        assert_eq!(
            bounded.task(1).unwrap().context,
            bounded.task(5).unwrap().context
        );
    }

    #[test]
    fn a_k_range_draws_every_k_and_stays_deterministic() {
        let source = LinearScmTasks {
            k_min: Some(0),
            ..scm_tasks()
        };
        let ks: Vec<usize> = (0..40).map(|i| source.task(i).unwrap().k()).collect();
        for k in 0..=3 {
            assert!(ks.contains(&k), "K = {k} never drawn: {ks:?}");
        }
        assert_eq!(source.task(11).unwrap().k(), ks[11]);
        assert!(source.describe().contains("K=0..=3"));
    }

    #[test]
    fn too_few_interventions_for_k_is_an_error() {
        let source = LinearScmTasks {
            k: 6,
            ..scm_tasks()
        };
        let err = source.task(0).unwrap_err().to_string();
        assert!(err.contains("fewer than K + 1 = 7"), "{err}");
    }
}
