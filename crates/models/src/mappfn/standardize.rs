//! Optional task standardisation ([`super::MapPfnConfig::standardize_tasks`]): every cell of a task is
//! expressed as its deviation from the task's control cells, per gene, in units of the control's standard
//! deviation. The network then only has to learn deviations from the control, and a knock-out is a large
//! deviation for every expressed gene instead of a small one on the log1p scale. Not in the reference.

use cellshift_data::Task;
use ndarray::{Array1, Array2, Axis};

use super::config::STANDARDIZE_STD_FLOOR;

/// Per-gene location and scale of one task, from its observational set.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskScale {
    mean: Array1<f32>,
    scale: Array1<f32>,
}

impl TaskScale {
    /// The control mean and standard deviation (floored) of every gene of `task`.
    pub fn of(task: &Task) -> TaskScale {
        Self::of_cells(&task.observational, task.n_genes())
    }

    /// The scale `config` asks for ([`super::MapPfnConfig::standardize_reference`]): the control's, or
    /// the pooled context experiments' when the task has any.
    pub fn for_config(task: &Task, config: &super::MapPfnConfig) -> TaskScale {
        let (k, n, d) = task.context_cells.dim();
        if config.standardize_reference == "contexts" && k * n > 0 {
            let pooled = task
                .context_cells
                .to_shape((k * n, d))
                .map(|v| v.to_owned())
                .unwrap_or_else(|_| Array2::zeros((0, d)));
            return Self::of_cells(&pooled, d);
        }
        Self::of(task)
    }

    /// Per-gene mean and floored standard deviation of `cells` (`[n, d]`; unit scale below 2 cells).
    fn of_cells(cells: &Array2<f32>, d: usize) -> TaskScale {
        let mean = cells.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(d));
        let scale = if cells.nrows() > 1 {
            cells
                .std_axis(Axis(0), 0.0)
                .mapv(|s| s.max(STANDARDIZE_STD_FLOOR))
        } else {
            Array1::from_elem(d, 1.0)
        };
        TaskScale { mean, scale }
    }

    /// Cells in standardised units.
    pub fn forward(&self, cells: &Array2<f32>) -> Array2<f32> {
        (cells - &self.mean) / &self.scale
    }

    /// The per-gene affine map `(a, b)` that standardises a value: `z = x·a + b` (`a = 1/scale`,
    /// `b = −mean/scale`).
    pub fn affine(&self) -> (Array1<f32>, Array1<f32>) {
        let a = self.scale.mapv(|s| 1.0 / s);
        let b = -&self.mean * &a;
        (a, b)
    }

    /// Standardised cells back in the data's units.
    pub fn inverse(&self, cells: &Array2<f32>) -> Array2<f32> {
        cells * &self.scale + &self.mean
    }

    /// A copy of `task` with every cell set (observational, context experiments, target) standardised.
    pub fn standardize(&self, task: &Task) -> Task {
        let mut out = task.clone();
        out.observational = self.forward(&task.observational);
        for mut set in out.context_cells.outer_iter_mut() {
            let z = self.forward(&set.to_owned());
            set.assign(&z);
        }
        out.target = task.target.as_ref().map(|t| self.forward(t));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellshift_data::TaskTreatment;
    use ndarray::{array, Array3};
    use std::sync::Arc;

    fn task() -> Task {
        Task {
            context: "c".into(),
            context_index: 0,
            genes: Arc::new(vec!["A".into(), "B".into()]),
            observational: array![[1.0, 5.0], [3.0, 5.0]],
            experiments: vec![],
            context_cells: Array3::zeros((0, 2, 2)),
            query: TaskTreatment::from_label("A", "control", 1.0),
            target: Some(array![[0.0, 6.0], [0.0, 4.0]]),
        }
    }

    #[test]
    fn control_becomes_zero_mean_unit_scale_and_the_inverse_restores_cells() {
        let t = task();
        let s = TaskScale::of(&t);
        let z = s.standardize(&t);
        // Gene A: mean 2, sd 1; gene B is constant in the control: sd floored.
        assert_eq!(z.observational, array![[-1.0, 0.0], [1.0, 0.0]]);
        let target = z.target.clone().unwrap();
        assert_eq!(target.column(0).to_vec(), vec![-2.0, -2.0]);
        assert!((target[[0, 1]] - 1.0 / STANDARDIZE_STD_FLOOR).abs() < 1e-4);
        let back = s.inverse(&target);
        assert!((back - t.target.unwrap()).iter().all(|v| v.abs() < 1e-5));
    }

    #[test]
    fn the_contexts_reference_pools_the_context_experiments_and_falls_back_to_the_control() {
        let mut t = task();
        let mut config = crate::MapPfnConfig::tiny(2);
        config.standardize_reference = "contexts".into();
        // K = 0: the control's scale.
        assert_eq!(TaskScale::for_config(&t, &config), TaskScale::of(&t));
        // Two context experiments of two cells: pooled gene A = {0, 2, 4, 6} (mean 3, sd √5),
        // gene B = {1, 1, 1, 1} (sd floored).
        t.context_cells =
            Array3::from_shape_vec((2, 2, 2), vec![0.0, 1.0, 2.0, 1.0, 4.0, 1.0, 6.0, 1.0])
                .unwrap();
        let s = TaskScale::for_config(&t, &config);
        let (a, b) = s.affine();
        assert!((1.0 / a[0] - 5f32.sqrt()).abs() < 1e-5, "{a}");
        assert!((-b[0] / a[0] - 3.0).abs() < 1e-5, "{b}");
        assert!((1.0 / a[1] - STANDARDIZE_STD_FLOOR).abs() < 1e-6);
        config.standardize_reference = "control".into();
        assert_eq!(TaskScale::for_config(&t, &config), TaskScale::of(&t));
    }
}
