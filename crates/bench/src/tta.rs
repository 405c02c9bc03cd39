//! Test-time augmentation over gene subsets (MapPFN paper §6, spec §1.5): a model trained on `m` genes
//! predicts a screen measured on more genes by running it on several random overlapping `m`-gene subsets
//! and pooling, per gene, the cells predicted by every subset that contains the gene. Differentially
//! expressed genes are then called per gene (Wilcoxon of the pooled predictions against the control
//! cells, Benjamini–Hochberg across all genes) and scored with the DEG AUPRC.
//!
//! Choices the paper leaves open (spec §1.5 recommendations, documented here):
//! - every subset contains the query's gene and the genes of the task's context experiments, so the query
//!   and every context treatment keep their one-hot encoding and K is the same for every subset; the
//!   remaining slots are drawn at random (without replacement) from the other genes;
//! - a gene's pooled sample is the concatenation of its predicted cells over the subsets containing it;
//! - the comparison "without augmentation" uses the first subset alone: genes outside it get no prediction
//!   (score 0), which is what a model of `m` genes can say about a wider panel on its own.

use anyhow::Context;
use cellshift_data::sampler::TaskSampler;
use cellshift_data::split::{Split, SplitConfig};
use cellshift_data::{PerturbationData, Predictor, Task};
use cellshift_metrics::ap::average_precision;
use cellshift_metrics::deg::{deg_labels_scores, deg_scores_pooled};
use ndarray::{Array2, Array3, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_pcg::Pcg64;

use crate::score::{shared_control_tasks, test_queries, ContextTasks};
use cellshift_data::predictor::prediction_cells;

/// Salt of the subset draws, so they do not reuse the task's cell-sampling stream.
const SUBSET_SALT: u64 = 0x7474_615f_7375_6273;

/// Protocol of a test-time-augmentation benchmark.
#[derive(Clone, Debug)]
pub struct TtaConfig {
    /// Random gene subsets per query (the paper: 10).
    pub subsets: usize,
    /// Genes per subset: the model's input width (50 for the shipped models).
    pub subset_size: usize,
    /// Context experiments per task.
    pub k: usize,
    /// Cells per set (observational, context, target and predicted per subset).
    pub n_cells: usize,
    /// Resampling seeds; each redraws cells, context experiments, subsets and sampling noise.
    pub seeds: Vec<u64>,
    /// Condition-level split (test conditions are queried, context experiments come from the train half).
    pub split: SplitConfig,
}

/// DEG AUPRC of one resampling seed, pooled (micro-averaged) over the test queries.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TtaSeedResult {
    /// The resampling seed.
    pub seed: u64,
    /// With augmentation: the pooled predictions of all subsets.
    pub auprc_tta: f64,
    /// Without augmentation: the first subset alone (genes outside it are not predicted).
    pub auprc_single_subset: f64,
    /// Reference: score 1 for the knocked-out gene, 0 elsewhere.
    pub auprc_target_only: f64,
    /// Share of true DEGs among all (query, gene) pairs: the AUPRC of a random ranking.
    pub positive_fraction: f64,
    /// Queries scored.
    pub queries: usize,
}

/// Draws `count` subsets of `size` gene indices out of `n_genes`, each containing every gene of `required`
/// (sorted ascending, so a subset's columns keep the data's gene order).
pub fn gene_subsets(
    n_genes: usize,
    size: usize,
    required: &[usize],
    count: usize,
    rng: &mut Pcg64,
) -> anyhow::Result<Vec<Vec<usize>>> {
    let mut required: Vec<usize> = required.to_vec();
    required.sort_unstable();
    required.dedup();
    if size > n_genes {
        anyhow::bail!(
            "subsets of {size} genes cannot be drawn from {n_genes} genes; give data with more genes than the model's {size}"
        );
    }
    if required.len() > size {
        anyhow::bail!(
            "the query and context genes ({}) do not fit in a subset of {size} genes; use a smaller --k",
            required.len()
        );
    }
    if let Some(&g) = required.iter().find(|&&g| g >= n_genes) {
        anyhow::bail!("required gene index {g} is out of range ({n_genes} genes)");
    }
    let others: Vec<usize> = (0..n_genes)
        .filter(|g| required.binary_search(g).is_err())
        .collect();
    Ok((0..count)
        .map(|_| {
            let mut subset = required.clone();
            subset.extend(others.choose_multiple(rng, size - required.len()).copied());
            subset.sort_unstable();
            subset
        })
        .collect())
}

/// The measured genes a task's treatments target (its context experiments' and its query's), sorted.
pub fn treated_genes(task: &Task) -> Vec<usize> {
    let mut genes: Vec<usize> = task
        .experiments
        .iter()
        .chain(std::iter::once(&task.query))
        .flat_map(|t| t.treatment.target_genes())
        .filter_map(|g| task.genes.iter().position(|x| x == g))
        .collect();
    genes.sort_unstable();
    genes.dedup();
    genes
}

/// `task` restricted to the gene columns `genes` (treatments keep their names, so their encodings follow
/// the subset).
pub fn subset_task(task: &Task, genes: &[usize]) -> Task {
    let cols = |m: &Array2<f32>| m.select(Axis(1), genes);
    let context_cells: Array3<f32> = task.context_cells.select(Axis(2), genes);
    Task {
        genes: std::sync::Arc::new(genes.iter().map(|&g| task.genes[g].clone()).collect()),
        observational: cols(&task.observational),
        context_cells,
        target: task.target.as_ref().map(cols),
        ..task.clone()
    }
}

/// Runs the benchmark: for every seed and every test query, `config.subsets` predictions of
/// `config.subset_size` genes are pooled per gene and scored against the true cells on all genes.
/// The predictor must predict from the task alone (in-context models, the control baseline); it is not fitted.
pub fn tta_benchmark(
    data: &PerturbationData,
    predictor: &dyn Predictor,
    config: &TtaConfig,
) -> anyhow::Result<Vec<TtaSeedResult>> {
    if config.subsets == 0 {
        anyhow::bail!("--subsets must be at least 1");
    }
    let split = Split::new(data, &config.split)?;
    let (sampler, by_context) = test_queries(
        data,
        split,
        config.k,
        config.n_cells,
        config.seeds.first().copied().unwrap_or(0),
    )?;
    let mut results = Vec::new();
    for &seed in &config.seeds {
        let (mut labels, mut tta, mut single, mut target_only) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut queries = 0;
        for context_queries in by_context.values() {
            let scored = score_context(data, &sampler, predictor, context_queries, seed, config)?;
            for q in scored {
                labels.extend(q.labels);
                tta.extend(q.tta);
                single.extend(q.single);
                target_only.extend(q.target_only);
                queries += 1;
            }
        }
        let positives = labels.iter().filter(|&&l| l).count();
        results.push(TtaSeedResult {
            seed,
            auprc_tta: average_precision(&labels, &tta),
            auprc_single_subset: average_precision(&labels, &single),
            auprc_target_only: average_precision(&labels, &target_only),
            positive_fraction: positives as f64 / labels.len().max(1) as f64,
            queries,
        });
    }
    Ok(results)
}

/// Labels and the three score vectors of one query, in gene order.
struct QueryScores {
    labels: Vec<bool>,
    tta: Vec<f64>,
    single: Vec<f64>,
    target_only: Vec<f64>,
}

fn score_context(
    data: &PerturbationData,
    sampler: &TaskSampler<'_>,
    predictor: &dyn Predictor,
    queries: &[usize],
    seed: u64,
    config: &TtaConfig,
) -> anyhow::Result<Vec<QueryScores>> {
    let d = data.n_genes();
    let ContextTasks {
        tasks,
        seeds: task_seeds,
        observational,
    } = shared_control_tasks(sampler, queries, config.k, seed)?;
    let (mut subsets, mut inputs, mut seeds) = (Vec::new(), Vec::new(), Vec::new());
    for (task, &task_seed) in tasks.iter().zip(&task_seeds) {
        let mut rng = Pcg64::seed_from_u64(task_seed ^ SUBSET_SALT);
        let drawn = gene_subsets(
            d,
            config.subset_size,
            &treated_genes(task),
            config.subsets,
            &mut rng,
        )
        .with_context(|| format!("query `{}`", task.query_label()))?;
        for (s, genes) in drawn.iter().enumerate() {
            let mut input = subset_task(task, genes);
            input.target = None;
            inputs.push(input);
            seeds.push(cellshift_data::seed::subset_seed(task_seed, s as u64));
        }
        subsets.push(drawn);
    }
    let predictions = predictor
        .predict_many(&inputs, config.n_cells, &seeds)
        .map_err(|e| anyhow::anyhow!("{} failed: {e}", predictor.name()))?;
    let obs = observational.mapv(f64::from);
    let mut out = Vec::new();
    for (qi, task) in tasks.iter().enumerate() {
        let target = task
            .target
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("task without target cells"))?
            .mapv(f64::from);
        let labels = deg_labels_scores(obs.view(), target.view(), target.view()).labels;
        let mut pooled: Vec<Vec<f64>> = vec![Vec::new(); d];
        let mut first: Vec<Vec<f64>> = vec![Vec::new(); d];
        for (s, genes) in subsets[qi].iter().enumerate() {
            let index = qi * config.subsets + s;
            let cells = prediction_cells(&predictions[index], &inputs[index]);
            for (col, &g) in genes.iter().enumerate() {
                pooled[g].extend(cells.column(col).iter().map(|&v| f64::from(v)));
                if s == 0 {
                    first[g].extend(cells.column(col).iter().map(|&v| f64::from(v)));
                }
            }
        }
        let query_gene = data.gene_index(task.query_label());
        out.push(QueryScores {
            labels,
            tta: deg_scores_pooled(obs.view(), &pooled),
            single: deg_scores_pooled(obs.view(), &first),
            target_only: (0..d)
                .map(|g| if Some(g) == query_gene { 1.0 } else { 0.0 })
                .collect(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_hold_the_required_genes_and_have_the_requested_size() {
        let mut rng = Pcg64::seed_from_u64(7);
        let subsets = gene_subsets(100, 50, &[3, 97, 3], 10, &mut rng).unwrap();
        assert_eq!(subsets.len(), 10);
        for s in &subsets {
            assert_eq!(s.len(), 50);
            assert!(s.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
            assert!(s.contains(&3) && s.contains(&97));
        }
        // Random fill: the subsets are not all the same, and together they cover most genes.
        assert!(subsets.windows(2).any(|w| w[0] != w[1]));
        let covered: std::collections::BTreeSet<usize> =
            subsets.iter().flatten().copied().collect();
        assert!(covered.len() > 95, "{} genes covered", covered.len());
    }

    #[test]
    fn impossible_subsets_are_clear_errors() {
        let mut rng = Pcg64::seed_from_u64(1);
        let err = gene_subsets(40, 50, &[], 2, &mut rng)
            .unwrap_err()
            .to_string();
        assert!(err.contains("40 genes"), "{err}");
        let err = gene_subsets(100, 2, &[1, 2, 3], 2, &mut rng)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--k"), "{err}");
    }

    #[test]
    fn a_subset_task_keeps_the_columns_and_reindexes_treatments() {
        use cellshift_data::TaskTreatment;
        let d = 6;
        let task = Task {
            context: "c".into(),
            context_index: 0,
            genes: std::sync::Arc::new((0..d).map(|g| format!("g{g}")).collect()),
            observational: Array2::from_shape_fn((3, d), |(i, j)| (10 * i + j) as f32),
            experiments: vec![TaskTreatment::from_label("g4", "control", 1.0)],
            context_cells: Array3::from_shape_fn((1, 3, d), |(_, i, j)| (100 + 10 * i + j) as f32),
            query: TaskTreatment::from_label("g1", "control", 1.0),
            target: None,
        };
        assert_eq!(treated_genes(&task), vec![1, 4]);
        let sub = subset_task(&task, &[1, 2, 4]);
        assert_eq!(sub.observational.row(2).to_vec(), vec![21.0, 22.0, 24.0]);
        assert_eq!(sub.context_cells[[0, 1, 2]], 114.0);
        assert_eq!(
            sub.one_hot(&sub.experiments[0]).unwrap().to_vec(),
            vec![0.0, 0.0, 1.0]
        );
        assert_eq!(
            sub.one_hot(&sub.query).unwrap().to_vec(),
            vec![1.0, 0.0, 0.0]
        );
    }

    /// A screen where every knock-out lowers its own gene and raises the whole "program" of high-baseline
    /// genes (the second half), and a predictor that knows exactly that: with augmentation every gene is
    /// predicted and the DEG ranking is nearly perfect; one subset alone misses most of the program.
    #[test]
    fn pooling_over_subsets_recovers_genes_one_subset_cannot_see() {
        use cellshift_data::model::CellAnnotations;
        use cellshift_data::predictor::{PredictError, Prediction};
        use rand::Rng;

        let (d, per_condition) = (60usize, 80usize);
        let genes: Vec<String> = (0..d).map(|g| format!("g{g}")).collect();
        let conditions: Vec<String> = std::iter::once("control".to_string())
            .chain((0..8).map(|g| format!("g{g}")))
            .collect();
        let mut rng = Pcg64::seed_from_u64(11);
        let mut x = Array2::<f32>::zeros((conditions.len() * per_condition, d));
        let mut labels = Vec::new();
        for (c, label) in conditions.iter().enumerate() {
            for i in 0..per_condition {
                let row = c * per_condition + i;
                for g in 0..d {
                    let base = if g >= d / 2 { 5.0 } else { 2.0 };
                    x[[row, g]] = base + rng.gen::<f32>() * 0.5;
                    if c > 0 && g >= d / 2 {
                        x[[row, g]] += 2.0;
                    }
                }
                if c > 0 {
                    x[[row, c - 1]] *= 0.1;
                }
                labels.push(label.clone());
            }
        }
        let data = PerturbationData::new(
            genes,
            x,
            CellAnnotations {
                cell_names: vec![],
                contexts: vec![],
                treatment_labels: labels,
                treatment_values: vec![],
            },
            "control",
        )
        .unwrap();

        struct ProgramPredictor;
        impl Predictor for ProgramPredictor {
            fn name(&self) -> &str {
                "program"
            }
            fn predict(&self, task: &Task, _: usize, _: u64) -> Result<Prediction, PredictError> {
                let mut cells = task.observational.clone();
                let query = task.query_treatment();
                for (col, mut column) in cells.columns_mut().into_iter().enumerate() {
                    let mean = column.mean().unwrap_or(0.0);
                    if query[col] != 0.0 {
                        column.mapv_inplace(|v| v * 0.1);
                    } else if mean > 3.5 {
                        column.mapv_inplace(|v| v + 2.0);
                    }
                }
                Ok(Prediction::Cells(cells))
            }
        }

        let config = TtaConfig {
            subsets: 10,
            subset_size: 20,
            k: 2,
            n_cells: 40,
            seeds: vec![0, 1],
            split: SplitConfig::default(),
        };
        let results = tta_benchmark(&data, &ProgramPredictor, &config).unwrap();
        assert_eq!(results.len(), 2);
        for r in &results {
            assert!(r.queries >= 3, "{r:?}");
            // Positives: the knocked-out gene and the 30 program genes of each query.
            assert!((r.positive_fraction - 31.0 / 60.0).abs() < 0.05, "{r:?}");
            assert!(r.auprc_tta > 0.95, "{r:?}");
            assert!(r.auprc_single_subset < r.auprc_tta - 0.15, "{r:?}");
            assert!(r.auprc_target_only < 0.6, "{r:?}");
        }
    }
}
