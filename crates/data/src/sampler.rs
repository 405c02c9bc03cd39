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

use rand::seq::SliceRandom;
use rand_pcg::Pcg64;

use crate::error::DataError;
use crate::model::PerturbationData;
use crate::seed::rng_from_parts as derived_rng;
use crate::split::{Split, SplitRole};
use crate::task::Task;
use crate::task_builder::{Query, TaskBuilder};

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
    builder: TaskBuilder<'a>,
    split: Split,
    config: SamplerConfig,
    queries: Vec<usize>,
    pool: Vec<Vec<usize>>,
    /// The most recently used epoch order (an epoch's tasks are usually drawn together).
    epoch_cache: Mutex<Option<(u64, Arc<Vec<usize>>)>>,
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
        let builder = TaskBuilder::new(data, config.n_cells)?;
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
            builder,
            split,
            config,
            queries,
            pool,
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
    /// `None`. Errors for a treatment no method could represent (see [`TaskBuilder::unmeasured_query`]).
    pub fn inference_task(
        &self,
        context: &str,
        treatment: &str,
        k: usize,
        seed: u64,
    ) -> Result<Task, DataError> {
        let ci = self.data.context_index(context)?;
        let query = self.builder.unmeasured_query(treatment, 1.0)?;
        let ti = self
            .data
            .treatments
            .iter()
            .position(|x| *x == query.treatment);
        let mut rng = derived_rng(&[seed, STREAM_QUERY, u64::MAX, ci as u64, k as u64]);
        self.assemble(ci, ti, Query::Unmeasured(query), k, &mut rng)
    }

    fn build(&self, query: usize, k: usize, rng: &mut Pcg64) -> Result<Task, DataError> {
        let c = &self.data.conditions()[query];
        self.assemble(
            c.context,
            Some(c.treatment),
            Query::Condition(query),
            k,
            rng,
        )
    }

    /// K context experiments drawn from the context's train pool (never the query's treatment), then the
    /// task's cells.
    fn assemble(
        &self,
        context: usize,
        query_treatment: Option<usize>,
        query: Query,
        k: usize,
        rng: &mut Pcg64,
    ) -> Result<Task, DataError> {
        let conds = self.data.conditions();
        if self.builder.control_of(context).is_none() {
            return Err(DataError::EmptyCondition {
                condition: format!(
                    "({}, {})",
                    self.data.contexts[context], self.data.control_label
                ),
            });
        }
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
        self.builder.assemble(context, &chosen, &query, rng)
    }
}
