//! The MapPFN task sampler (spec §1.2): cuts a split data set into tasks — the observational (control)
//! cells of a context, K context experiments of the same context from the train pool, and a query
//! condition whose cells are the target.
//!
//! * Query conditions: the non-control conditions of the query split (`SamplerConfig::query_role`) whose
//!   context has control cells. One epoch is one pass over them in a shuffled order.
//! * Context treatments: K drawn uniformly without replacement from the same context's train conditions,
//!   excluding the query's treatment; fewer if fewer are available. Like the reference, construction
//!   fails if a query context has fewer than K train treatments, unless `require_k_available` is off.
//! * Cells: `n_cells` per set, without replacement when the condition has at least that many cells,
//!   otherwise with replacement (or an error at construction, see [`CellReplacement::Never`]).
//! * Determinism: the task at (seed, epoch, index) comes from its own random stream derived by hashing
//!   (seed, epoch, index), so it does not depend on which tasks were drawn before — a resumed training run
//!   sees bit-identical tasks. (Streams are Pcg64 and rand 0.8 sampling; the pinned Cargo.lock keeps them
//!   stable.) The reference draws from one shared numpy generator instead, so its exact cells differ.

use std::sync::{Arc, Mutex};

use ndarray::{Array1, Array2, Array3, Axis};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::error::DataError;
use crate::model::{encode_treatment, PerturbationData, Treatment};
use crate::split::{Split, SplitRole};
use crate::task::Task;

/// What to do when a condition has fewer cells than a set needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CellReplacement {
    /// Reference behaviour: without replacement if the condition has enough cells, else with replacement.
    WhenTooFew,
    /// Never repeat a cell: construction fails if any needed condition has fewer cells than `n_cells`.
    Never,
}

/// Settings of a [`TaskSampler`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SamplerConfig {
    /// Number of context experiments K (MapPFN: 8; baselines: 0).
    pub k: usize,
    /// Cells per set n (MapPFN real data and SERGIO: 200; linear SCM: 500).
    pub n_cells: usize,
    /// Cell resampling policy.
    pub with_replacement_policy: CellReplacement,
    /// Seed of epoch orders and tasks.
    pub seed: u64,
    /// The split whose conditions are queried (train, val or test).
    pub query_role: SplitRole,
    /// Fail at construction if a query context has fewer than K train treatments (the reference does).
    pub require_k_available: bool,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            k: 8,
            n_cells: 200,
            with_replacement_policy: CellReplacement::WhenTooFew,
            seed: 42,
            query_role: SplitRole::Train,
            require_k_available: true,
        }
    }
}

/// Builds MapPFN tasks from a data set and its split. Shareable across threads (`Sync`).
#[derive(Debug)]
pub struct TaskSampler<'a> {
    data: &'a PerturbationData,
    split: Split,
    config: SamplerConfig,
    queries: Vec<usize>,
    pool: Vec<Vec<usize>>,
    control: Vec<Option<usize>>,
    encodings: Vec<Option<Array1<f32>>>,
    /// The most recently used epoch order (an epoch's tasks are usually drawn together).
    epoch_cache: Mutex<Option<(u64, Arc<Vec<usize>>)>>,
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A random stream derived from a tuple of integers (order-sensitive hash).
fn derived_rng(parts: &[u64]) -> Pcg64 {
    let mut h = 0x6a09_e667_f3bc_c909u64;
    for &p in parts {
        h = splitmix64(h ^ splitmix64(p));
    }
    Pcg64::seed_from_u64(h)
}

const STREAM_EPOCH: u64 = 1;
const STREAM_TASK: u64 = 2;
const STREAM_QUERY: u64 = 3;

impl<'a> TaskSampler<'a> {
    /// Validates the data, split and settings and indexes the query conditions and the train pool.
    pub fn new(
        data: &'a PerturbationData,
        split: Split,
        config: SamplerConfig,
    ) -> Result<Self, DataError> {
        split.check_matches(data)?;
        if config.n_cells == 0 {
            return Err(DataError::Invalid(
                "the sampler needs at least one cell per set (n_cells ≥ 1)".into(),
            ));
        }
        if config.query_role == SplitRole::Control || config.query_role == SplitRole::Excluded {
            return Err(DataError::Invalid(format!(
                "cannot query the `{}` conditions; query train, val or test",
                config.query_role.label()
            )));
        }
        let conds = data.conditions();
        let mut control = vec![None; data.contexts.len()];
        let mut pool = vec![Vec::new(); data.contexts.len()];
        for (i, c) in conds.iter().enumerate() {
            if data.treatments[c.treatment].is_control() {
                control[c.context] = Some(i);
            } else if split.role[i] == SplitRole::Train {
                pool[c.context].push(i);
            }
        }
        let queries: Vec<usize> = (0..conds.len())
            .filter(|&i| split.role[i] == config.query_role && control[conds[i].context].is_some())
            .collect();
        if queries.is_empty() {
            return Err(DataError::Invalid(format!(
                "the `{}` split has no perturbed condition in a context with control cells, so there is nothing \
                 to query; check the split and the control label `{}`",
                config.query_role.label(),
                data.control_label
            )));
        }
        let mut encodings = vec![None; conds.len()];
        let needed = queries.iter().chain(pool.iter().flatten());
        for &i in needed {
            if encodings[i].is_none() {
                encodings[i] = Some(data.treatment_vector(&conds[i])?);
            }
        }
        if config.require_k_available {
            for &q in &queries {
                let ctx = conds[q].context;
                if pool[ctx].len() < config.k {
                    return Err(DataError::Invalid(format!(
                        "context `{}` has {} train treatment(s) but K = {} context experiments are asked for; \
                         lower K or allow fewer (require_k_available = false)",
                        data.contexts[ctx],
                        pool[ctx].len(),
                        config.k
                    )));
                }
            }
        }
        if config.with_replacement_policy == CellReplacement::Never {
            let mut used: Vec<usize> = queries.clone();
            used.extend(pool.iter().flatten());
            used.extend(queries.iter().filter_map(|&q| control[conds[q].context]));
            if let Some(&i) = used
                .iter()
                .find(|&&i| conds[i].cells.len() < config.n_cells)
            {
                return Err(DataError::Invalid(format!(
                    "condition ({}, {}) has {} cells, fewer than the {} per set, and cell replacement is off; \
                     lower n_cells or allow replacement",
                    data.contexts[conds[i].context],
                    data.treatments[conds[i].treatment].label(&data.control_label),
                    conds[i].cells.len(),
                    config.n_cells
                )));
            }
        }
        Ok(TaskSampler {
            data,
            split,
            config,
            queries,
            pool,
            control,
            encodings,
            epoch_cache: Mutex::new(None),
        })
    }

    /// Number of query conditions (tasks per epoch).
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// True if there is no query (never, after a successful construction).
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// The query condition indices (into `data.conditions()`), in condition order.
    pub fn queries(&self) -> &[usize] {
        &self.queries
    }

    /// The split the sampler uses.
    pub fn split(&self) -> &Split {
        &self.split
    }

    /// The settings.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Train-pool condition indices of a context (the candidates for its context experiments).
    pub fn pool_of(&self, context: usize) -> &[usize] {
        self.pool.get(context).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The query conditions of an epoch, in that epoch's shuffled order.
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let mut order = self.queries.clone();
        order.shuffle(&mut derived_rng(&[self.config.seed, STREAM_EPOCH, epoch]));
        order
    }

    fn cached_epoch_order(&self, epoch: u64) -> Arc<Vec<usize>> {
        let mut cache = self.epoch_cache.lock().unwrap_or_else(|e| e.into_inner());
        match &*cache {
            Some((e, order)) if *e == epoch => order.clone(),
            _ => {
                let order = Arc::new(self.epoch_order(epoch));
                *cache = Some((epoch, order.clone()));
                order
            }
        }
    }

    /// The `index`-th task of `epoch`; depends only on (seed, epoch, index).
    pub fn task(&self, epoch: u64, index: usize) -> Result<Task, DataError> {
        if index >= self.queries.len() {
            return Err(DataError::Invalid(format!(
                "task index {index} is out of range; an epoch has {} tasks",
                self.queries.len()
            )));
        }
        let query = self.cached_epoch_order(epoch)[index];
        let mut rng = derived_rng(&[self.config.seed, STREAM_TASK, epoch, index as u64]);
        self.build(query, self.config.k, &mut rng)
    }

    /// A task for one query condition (any split role, e.g. a test condition at inference) with `k`
    /// context experiments; depends only on (query_condition, k, seed).
    pub fn task_for(&self, query_condition: usize, k: usize, seed: u64) -> Result<Task, DataError> {
        let conds = self.data.conditions();
        let c = conds.get(query_condition).ok_or_else(|| {
            DataError::Invalid(format!(
                "condition index {query_condition} is out of range ({} conditions)",
                conds.len()
            ))
        })?;
        if self.data.treatments[c.treatment].is_control() {
            return Err(DataError::Invalid(format!(
                "condition {query_condition} is the control of context `{}`; query a perturbation",
                self.data.contexts[c.context]
            )));
        }
        let mut rng = derived_rng(&[seed, STREAM_QUERY, query_condition as u64, k as u64]);
        self.build(query_condition, k, &mut rng)
    }

    /// [`TaskSampler::task_for`] by labels; errors with [`DataError::EmptyCondition`] if the pair has no
    /// cells (use [`TaskSampler::inference_task`] for a treatment that was never measured there).
    pub fn task_for_label(
        &self,
        context: &str,
        treatment: &str,
        k: usize,
        seed: u64,
    ) -> Result<Task, DataError> {
        let ci = self.data.context_index(context)?;
        let ti = self
            .data
            .treatment_index(treatment)
            .map_err(|_| DataError::EmptyCondition {
                condition: format!("({context}, {treatment})"),
            })?;
        let idx = self
            .data
            .conditions()
            .binary_search_by(|c| (c.context, c.treatment).cmp(&(ci, ti)))
            .map_err(|_| DataError::EmptyCondition {
                condition: format!("({context}, {treatment})"),
            })?;
        self.task_for(idx, k, seed)
    }

    /// A task for a treatment without measured cells in `context` (a true prediction): the target is
    /// `None` and the query's encoding is the one-hot of its target gene(s).
    pub fn inference_task(
        &self,
        context: &str,
        treatment: &str,
        k: usize,
        seed: u64,
    ) -> Result<Task, DataError> {
        let ci = self.data.context_index(context)?;
        let t = Treatment::from_label(treatment, &self.data.control_label);
        if t.is_control() {
            return Err(DataError::Invalid(
                "the control is observed, not predicted; query a perturbation".into(),
            ));
        }
        let encoding = encode_treatment(&self.data.genes, &t, 1.0)?;
        let ti = self.data.treatments.iter().position(|x| *x == t);
        let mut rng = derived_rng(&[seed, STREAM_QUERY, u64::MAX, ci as u64, k as u64]);
        self.assemble(ci, ti, None, encoding, treatment.to_string(), k, &mut rng)
    }

    fn build(&self, query: usize, k: usize, rng: &mut Pcg64) -> Result<Task, DataError> {
        let c = &self.data.conditions()[query];
        let encoding = match &self.encodings[query] {
            Some(e) => e.clone(),
            None => self.data.treatment_vector(c)?,
        };
        let label = self.data.treatments[c.treatment].label(&self.data.control_label);
        self.assemble(
            c.context,
            Some(c.treatment),
            Some(query),
            encoding,
            label,
            k,
            rng,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        &self,
        context: usize,
        query_treatment: Option<usize>,
        query: Option<usize>,
        query_encoding: Array1<f32>,
        query_label: String,
        k: usize,
        rng: &mut Pcg64,
    ) -> Result<Task, DataError> {
        let data = self.data;
        let conds = data.conditions();
        let control = self.control[context].ok_or_else(|| DataError::EmptyCondition {
            condition: format!("({}, {})", data.contexts[context], data.control_label),
        })?;
        let candidates: Vec<usize> = self.pool[context]
            .iter()
            .copied()
            .filter(|&i| Some(conds[i].treatment) != query_treatment)
            .collect();
        let kk = k.min(candidates.len());
        let chosen: Vec<usize> = rand::seq::index::sample(rng, candidates.len(), kk)
            .into_iter()
            .map(|i| candidates[i])
            .collect();
        let (n, d) = (self.config.n_cells, data.n_genes());
        let mut context_cells = Array3::<f32>::zeros((kk, n, d));
        let mut treatments = Array2::<f32>::zeros((kk + 1, d));
        let mut labels = Vec::with_capacity(kk + 1);
        for (slot, &ci) in chosen.iter().enumerate() {
            let rows = self.draw_cells(conds[ci].cells.as_slice(), rng);
            let mut dst = context_cells.index_axis_mut(Axis(0), slot);
            for (mut out, &r) in dst.axis_iter_mut(Axis(0)).zip(&rows) {
                out.assign(&data.x.row(r));
            }
            let enc = match &self.encodings[ci] {
                Some(e) => e.clone(),
                None => data.treatment_vector(&conds[ci])?,
            };
            treatments.row_mut(slot).assign(&enc);
            labels.push(data.treatments[conds[ci].treatment].label(&data.control_label));
        }
        let obs_rows = self.draw_cells(&conds[control].cells, rng);
        let observational = data.x.select(Axis(0), &obs_rows);
        let target = query.map(|q| {
            data.x
                .select(Axis(0), &self.draw_cells(&conds[q].cells, rng))
        });
        treatments.row_mut(kk).assign(&query_encoding);
        labels.push(query_label);
        Ok(Task {
            context: data.contexts[context].clone(),
            observational,
            context_cells,
            treatments,
            treatment_labels: labels,
            target,
        })
    }

    /// `n_cells` rows of a condition: without replacement if it has enough cells, else with replacement.
    fn draw_cells(&self, cells: &[usize], rng: &mut Pcg64) -> Vec<usize> {
        let n = self.config.n_cells;
        if cells.len() >= n {
            rand::seq::index::sample(rng, cells.len(), n)
                .into_iter()
                .map(|i| cells[i])
                .collect()
        } else {
            (0..n)
                .map(|_| cells[rng.gen_range(0..cells.len())])
                .collect()
        }
    }
}
