//! A simple, exactly known task source for tests and demos: Gaussian mean-shift tasks.
//!
//! Task `i` (seeded by `(seed, i)`) draws a context mean `μ ~ N(0, context_scale²·I)`; control cells are
//! `N(μ, I)`; a knock-out of gene `j` shifts the mean by `s_j`: `−shift` on gene `j` and `±shift/2`
//! (alternating signs) on the `linked` genes `j+1, j+2, …` (mod d). The query and the K context treatments
//! are distinct genes drawn without replacement; treatments are one-hot (`τ = e_j`). A model that reads the
//! observational set and the treatment can predict the target distribution `N(μ + s_q, I)` exactly.

use cellshift_data::{Task, TaskTreatment};
use ndarray::{Array1, Array2, Array3};
use rand::seq::index::sample;
use rand_distr::{Distribution, Normal};

use crate::error::{ModelError, Result};
use crate::rng;
use crate::train::TaskSource;

/// Gaussian mean-shift tasks (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianShiftSource {
    /// Genes d.
    pub n_genes: usize,
    /// Cells per set n.
    pub n_cells: usize,
    /// Context experiments K per task.
    pub k: usize,
    /// Seed of the source.
    pub seed: u64,
    /// Standard deviation of the context means.
    pub context_scale: f64,
    /// Size of the knock-out effect on the targeted gene.
    pub shift: f64,
    /// Number of genes downstream of each gene.
    pub linked: usize,
}

/// The true distribution behind a task.
#[derive(Clone, Debug)]
pub struct TaskTruth {
    /// Context mean μ (the control mean).
    pub control_mean: Array1<f32>,
    /// Mean of the query condition, `μ + s_q`.
    pub target_mean: Array1<f32>,
}

impl GaussianShiftSource {
    /// A source with context scale 2, shift 3 and 2 linked genes.
    pub fn new(n_genes: usize, n_cells: usize, k: usize, seed: u64) -> Result<GaussianShiftSource> {
        if n_genes < k + 1 {
            return Err(ModelError::Config(format!(
                "Gaussian shift tasks need at least K + 1 = {} genes to draw distinct treatments, got {n_genes}",
                k + 1
            )));
        }
        if n_cells == 0 {
            return Err(ModelError::Config(
                "Gaussian shift tasks need at least one cell per set".into(),
            ));
        }
        Ok(GaussianShiftSource {
            n_genes,
            n_cells,
            k,
            seed,
            context_scale: 2.0,
            shift: 3.0,
            linked: 2,
        })
    }

    /// The mean shift `s_j` caused by knocking out gene `j`.
    pub fn effect(&self, gene: usize) -> Array1<f32> {
        let d = self.n_genes;
        let mut s = Array1::zeros(d);
        for l in (1..=self.linked).rev() {
            let sign = if l % 2 == 1 { 0.5 } else { -0.5 };
            s[(gene + l) % d] = (sign * self.shift) as f32;
        }
        s[gene] = -self.shift as f32;
        s
    }

    /// Task `index` and the truth behind it.
    pub fn task_with_truth(&self, index: u64) -> (Task, TaskTruth) {
        let (d, n, k) = (self.n_genes, self.n_cells, self.k);
        let mut r = rng::stream(self.seed, "gaussian-shift-task", index);
        let scale = Normal::new(0.0, self.context_scale.max(0.0))
            .unwrap_or_else(|_| Normal::new(0.0, 1.0).expect("valid"));
        let mu: Array1<f32> = (0..d).map(|_| scale.sample(&mut r) as f32).collect();
        let genes: Vec<usize> = sample(&mut r, d, k + 1).into_vec();
        let cells = |mean: &Array1<f32>, r: &mut rand_pcg::Pcg64| -> Array2<f32> {
            let noise = rng::normals(r, n * d);
            Array2::from_shape_fn((n, d), |(i, g)| mean[g] + noise[i * d + g])
        };
        let observational = cells(&mu, &mut r);
        let mut context_cells = Array3::zeros((k, n, d));
        let mut treatments = Vec::with_capacity(k + 1);
        for (slot, &g) in genes.iter().enumerate() {
            treatments.push(TaskTreatment::from_label(&format!("g{g}"), "control", 1.0));
            if slot < k {
                let mean = &mu + &self.effect(g);
                context_cells
                    .index_axis_mut(ndarray::Axis(0), slot)
                    .assign(&cells(&mean, &mut r));
            }
        }
        let target_mean = &mu + &self.effect(genes[k]);
        let target = cells(&target_mean, &mut r);
        let query = treatments.pop().expect("K + 1 treatments");
        let task = Task {
            context: format!("gaussian-{index}"),
            context_index: 0,
            genes: std::sync::Arc::new((0..d).map(|g| format!("g{g}")).collect()),
            observational,
            experiments: treatments,
            context_cells,
            query,
            target: Some(target),
        };
        (
            task,
            TaskTruth {
                control_mean: mu,
                target_mean,
            },
        )
    }
}

impl TaskSource for GaussianShiftSource {
    fn task(&self, index: u64) -> Result<Task> {
        Ok(self.task_with_truth(index).0)
    }

    fn describe(&self) -> String {
        format!(
            "gaussian-shift(d={}, n={}, K={}, seed={}, context_scale={}, shift={}, linked={})",
            self.n_genes,
            self.n_cells,
            self.k,
            self.seed,
            self.context_scale,
            self.shift,
            self.linked
        )
    }
}
