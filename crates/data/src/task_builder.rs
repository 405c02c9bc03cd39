//! The one task builder of the workspace: every task — a training task from a prior, a training or test
//! task from a split data set, a true prediction from a user's screen — is assembled here from a context,
//! the conditions of its context experiments and a query.
//!
//! Draw order (fixed, so that tasks are reproducible from their stream): the cells of each context
//! experiment in slot order, then the observational (control) cells, then the target cells. Each set has
//! `n_cells` rows, drawn without replacement when the condition has enough cells, else with replacement
//! (the reference's rule).

use std::sync::Arc;

use ndarray::{Array2, Array3, Axis};
use rand::seq::index::sample;
use rand::Rng;
use rand_pcg::Pcg64;

use crate::error::DataError;
use crate::model::{PerturbationData, Treatment};
use crate::task::{Task, TaskTreatment};

/// Assembles tasks from one data set with `n_cells` cells per set.
#[derive(Clone, Debug)]
pub struct TaskBuilder<'a> {
    data: &'a PerturbationData,
    genes: Arc<Vec<String>>,
    n_cells: usize,
    control: Vec<Option<usize>>,
}

/// The query of a task: a measured condition (its cells become the target) or a treatment without cells
/// in the context (a true prediction).
#[derive(Clone, Debug)]
pub enum Query {
    /// A condition of the data (index into `data.conditions()`).
    Condition(usize),
    /// A treatment to predict; no target.
    Unmeasured(TaskTreatment),
}

impl<'a> TaskBuilder<'a> {
    /// A builder drawing `n_cells` cells per set from `data`; errors when `n_cells` is 0.
    pub fn new(data: &'a PerturbationData, n_cells: usize) -> Result<TaskBuilder<'a>, DataError> {
        if n_cells == 0 {
            return Err(DataError::Invalid(
                "a task needs at least one cell per set (n_cells ≥ 1)".into(),
            ));
        }
        let mut control = vec![None; data.contexts.len()];
        for (i, c) in data.conditions().iter().enumerate() {
            if data.treatments[c.treatment].is_control() {
                control[c.context] = Some(i);
            }
        }
        Ok(TaskBuilder {
            data,
            genes: Arc::new(data.genes.clone()),
            n_cells,
            control,
        })
    }

    /// The data set.
    pub fn data(&self) -> &'a PerturbationData {
        self.data
    }

    /// Cells per set.
    pub fn n_cells(&self) -> usize {
        self.n_cells
    }

    /// The control condition of `context`, if it has control cells.
    pub fn control_of(&self, context: usize) -> Option<usize> {
        self.control.get(context).copied().flatten()
    }

    /// The treatment of a condition, with its value and label.
    pub fn treatment_of(&self, condition: usize) -> TaskTreatment {
        let c = &self.data.conditions()[condition];
        let treatment = self.data.treatments[c.treatment].clone();
        TaskTreatment {
            label: treatment.label(&self.data.control_label),
            treatment,
            value: c.value,
        }
    }

    /// A treatment to predict from its label: errors for the control label, and for a treatment that no
    /// method could represent (never measured in the data and targeting genes that are not measured).
    pub fn unmeasured_query(&self, label: &str, value: f32) -> Result<TaskTreatment, DataError> {
        let query = TaskTreatment::from_label(label, &self.data.control_label, value);
        if query.treatment.is_control() {
            return Err(DataError::Invalid(
                "the control is observed, not predicted; query a perturbation".into(),
            ));
        }
        let seen = self.data.treatments.contains(&query.treatment);
        if !seen {
            if let Treatment::Compound { name, .. } = &query.treatment {
                return Err(DataError::Invalid(format!(
                    "compound `{name}` is not in the data; only treatments of the data can be predicted"
                )));
            }
            if let Some(gene) = query
                .treatment
                .target_genes()
                .into_iter()
                .find(|g| self.data.gene_index(g).is_none())
            {
                return Err(DataError::GeneNotMeasured {
                    gene: gene.to_string(),
                    hint: "the query is neither a treatment of the data nor a knock-out of measured genes, so no \
                           method can represent it; query a measured gene or a treatment of the data"
                        .into(),
                });
            }
        }
        Ok(query)
    }

    /// Assembles the task of `query` in `context` with the given context-experiment conditions (slot
    /// order), drawing cells from `rng` in the module's fixed order.
    pub fn assemble(
        &self,
        context: usize,
        experiments: &[usize],
        query: &Query,
        rng: &mut Pcg64,
    ) -> Result<Task, DataError> {
        let data = self.data;
        let conds = data.conditions();
        let control = self
            .control_of(context)
            .ok_or_else(|| DataError::EmptyCondition {
                condition: format!("({}, {})", data.contexts[context], data.control_label),
            })?;
        let (n, d, k) = (self.n_cells, data.n_genes(), experiments.len());
        let mut context_cells = Array3::<f32>::zeros((k, n, d));
        let mut treatments = Vec::with_capacity(k);
        for (slot, &ci) in experiments.iter().enumerate() {
            let rows = self.draw_cells(&conds[ci].cells, rng);
            let mut dst = context_cells.index_axis_mut(Axis(0), slot);
            for (mut out, &r) in dst.axis_iter_mut(Axis(0)).zip(&rows) {
                out.assign(&data.x.row(r));
            }
            treatments.push(self.treatment_of(ci));
        }
        let observational = self.draw(control, rng);
        let (query, target) = match query {
            Query::Condition(q) => (self.treatment_of(*q), Some(self.draw(*q, rng))),
            Query::Unmeasured(t) => (t.clone(), None),
        };
        Ok(Task {
            context: data.contexts[context].clone(),
            context_index: context,
            genes: self.genes.clone(),
            observational,
            experiments: treatments,
            context_cells,
            query,
            target,
        })
    }

    /// `n_cells` cells of a condition (see [`TaskBuilder::draw_cells`]).
    pub fn draw(&self, condition: usize, rng: &mut Pcg64) -> Array2<f32> {
        let rows = self.draw_cells(&self.data.conditions()[condition].cells, rng);
        self.data.x.select_rows(&rows)
    }

    /// `n_cells` row indices out of `cells`: without replacement when there are enough, else with
    /// replacement.
    pub fn draw_cells(&self, cells: &[usize], rng: &mut Pcg64) -> Vec<usize> {
        draw_rows(cells, self.n_cells, rng)
    }
}

/// `n` row indices out of `cells`: without replacement when there are enough, else with replacement.
pub fn draw_rows(cells: &[usize], n: usize, rng: &mut Pcg64) -> Vec<usize> {
    if cells.len() >= n {
        sample(rng, cells.len(), n)
            .into_iter()
            .map(|i| cells[i])
            .collect()
    } else {
        (0..n)
            .map(|_| cells[rng.gen_range(0..cells.len())])
            .collect()
    }
}
