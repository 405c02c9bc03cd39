//! Issue 13 diagnosis: does the knocked-out gene go to zero in the SERGIO tasks MapPFN is trained and
//! benchmarked on, does its treatment encoding point at that gene's column, how large is the direct effect
//! next to the rest of the response, and how much of it a trained model predicts.
//!
//! ```text
//! cargo run --release -p cellshift-bench --example knockout_diagnosis -- [MODEL_DIR] [N_TASKS]
//! ```

use std::path::PathBuf;

use cellshift_data::h5ad::{self, PerturbationColumns, ReadOptions, WriteOptions};
use cellshift_data::preprocess::NormalizeTarget;
use cellshift_data::Task;
use cellshift_models::flow::OdeSolver;
use cellshift_models::registry::{self, InferenceOptions};
use cellshift_models::sources::{heldout_dataset_seed, task_from_single_context, SergioTasks};
use cellshift_models::{SamplerConfig, TaskSource};
use cellshift_prior::{normalize_dataset, SergioPrior, SergioPriorConfig};
use ndarray::Axis;
use rand::SeedableRng;
use rand_pcg::Pcg64;

/// Per-task facts about the query's knocked-out gene.
struct KnockoutFacts {
    /// The one-hot's column.
    gene: usize,
    /// Whether every target cell is exactly 0 in that column.
    target_zero: bool,
    /// Whether each context experiment's cells are 0 in its own one-hot column.
    context_zero: bool,
    /// Control mean of the gene (the size of the direct effect, since the target is 0).
    control_mean: f32,
    /// Mean |Δ mean| over the other genes (the indirect response).
    other_shift: f32,
    /// Mean over control cells of the gene's squared value: the most a model can lower the per-element
    /// flow-matching loss of this gene by knowing that its target is 0.
    control_second_moment: f32,
}

fn facts(task: &Task) -> KnockoutFacts {
    let q = task.query_treatment();
    let gene = q.iter().position(|&v| v != 0.0).expect("a knock-out query");
    let target = task.target.as_ref().expect("training tasks carry targets");
    let target_zero = target.column(gene).iter().all(|&v| v == 0.0);
    let context_zero = task.experiments.iter().enumerate().all(|(k, t)| {
        let hot = task.one_hot(t).unwrap();
        let g = hot.iter().position(|&v| v != 0.0).unwrap();
        task.context_cells
            .index_axis(Axis(0), k)
            .column(g)
            .iter()
            .all(|&v| v == 0.0)
    });
    let control = task.observational.mean_axis(Axis(0)).unwrap();
    let treated = target.mean_axis(Axis(0)).unwrap();
    let other: Vec<f32> = (0..control.len())
        .filter(|&g| g != gene)
        .map(|g| (treated[g] - control[g]).abs())
        .collect();
    KnockoutFacts {
        gene,
        target_zero,
        context_zero,
        control_mean: control[gene],
        other_shift: other.iter().sum::<f32>() / other.len() as f32,
        control_second_moment: task
            .observational
            .column(gene)
            .mapv(|v| v * v)
            .mean()
            .unwrap_or(0.0),
    }
}

fn quantiles(mut v: Vec<f32>) -> String {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    format!(
        "5%/25%/50%/75%/95% = {:.2} / {:.2} / {:.2} / {:.2} / {:.2}",
        q(0.05),
        q(0.25),
        q(0.5),
        q(0.75),
        q(0.95)
    )
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let model_dir = args.get(1).map(PathBuf::from);
    let n_tasks: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(160);

    // 1. The training tasks, exactly as `cellshift pretrain --prior sergio` draws them.
    let source = SergioTasks {
        prior: SergioPriorConfig::default(),
        k: 8,
        k_min: Some(0),
        n_cells: 64,
        seed: 0,
        tasks_per_network: 8,
        normalization: Some(NormalizeTarget::MedianOfTotals),
        cache: Default::default(),
    };
    let all: Vec<KnockoutFacts> = (0..n_tasks)
        .map(|i| source.task(i).map(|t| facts(&t)))
        .collect::<Result<_, _>>()?;
    let n = all.len() as f32;
    println!("training tasks ({}): {n_tasks} tasks", source.describe());
    println!(
        "  target column of the one-hot's gene exactly 0: {:.1} %; context experiments' own column 0: {:.1} %",
        100.0 * all.iter().filter(|f| f.target_zero).count() as f32 / n,
        100.0 * all.iter().filter(|f| f.context_zero).count() as f32 / n
    );
    println!(
        "  control mean of the knocked-out gene (= |direct effect|): {}",
        quantiles(all.iter().map(|f| f.control_mean).collect())
    );
    println!(
        "  knock-outs with control mean < 0.1 (no visible direct effect): {:.1} %",
        100.0 * all.iter().filter(|f| f.control_mean < 0.1).count() as f32 / n
    );
    println!(
        "  mean |Δ mean| of the other genes: {}",
        quantiles(all.iter().map(|f| f.other_shift).collect())
    );
    let direct_sq: f32 = all.iter().map(|f| f.control_mean.powi(2)).sum::<f32>() / n;
    let other_sq: f32 = all
        .iter()
        .map(|f| 49.0 * f.other_shift.powi(2))
        .sum::<f32>()
        / n;
    println!(
        "  share of the squared mean response carried by the knocked-out gene: {:.1} %",
        100.0 * direct_sq / (direct_sq + other_sq)
    );

    let d = task_genes(&source)? as f32;
    println!(
        "  loss the direct effect can remove, per element of the flow-matching loss: at most {:.4} (E[x_j²] / d)",
        all.iter().map(|f| f.control_second_moment).sum::<f32>() / n / d
    );

    // 2. The demo / bench path: simulate, write raw counts to .h5ad, read back, normalise.
    let dir = tempfile_dir()?;
    let config = SergioPriorConfig {
        n_cells: 128,
        ..SergioPriorConfig::default()
    };
    let simulated = SergioPrior::sample_named(&config, 2026, "demo_grn")?;
    let path = dir.join("demo.h5ad");
    let columns = PerturbationColumns {
        context: Some("context".into()),
        ..PerturbationColumns::default()
    };
    h5ad::write_perturbation_data(&path, &simulated, &columns, &WriteOptions::default())?;
    let read = h5ad::read_perturbation_data(&path, &columns, &ReadOptions::matrix_only())?;
    let data = normalize_dataset(&read, Some(NormalizeTarget::MedianOfTotals))?;
    let mut rng = Pcg64::seed_from_u64(7);
    let demo: Vec<KnockoutFacts> = (0..100)
        .map(|_| task_from_single_context(&data, 8, 64, &mut rng).map(|t| facts(&t)))
        .collect::<Result<_, _>>()?;
    println!(
        "demo path (simulate → .h5ad → read → normalise), 100 tasks: target column 0 in {:.0} %, context columns 0 in {:.0} %",
        demo.iter().filter(|f| f.target_zero).count() as f32,
        demo.iter().filter(|f| f.context_zero).count() as f32
    );
    std::fs::remove_dir_all(&dir).ok();

    // 3. What a trained model predicts for the knocked-out gene on new networks.
    let Some(model_dir) = model_dir else {
        return Ok(());
    };
    let options = InferenceOptions {
        sampler: SamplerConfig {
            solver: OdeSolver::Dopri5Adaptive {
                rtol: 1e-3,
                atol: 1e-3,
                dt0: 0.05,
                max_steps: 10_000,
            },
            guidance: 2.0,
            ..SamplerConfig::default()
        },
        ..InferenceOptions::default()
    };
    let model = registry::load(&model_dir, &options)?;
    struct Row {
        control: f32,
        predicted: f32,
        predicted_offset: f32,
        true_offset: f32,
        other_rmse: f32,
    }
    let mut rows = Vec::new();
    for net in 0..3u64 {
        let raw = SergioPrior::sample_named(
            &SergioPriorConfig::default(),
            heldout_dataset_seed(0, net),
            "heldout",
        )?;
        let data = normalize_dataset(&raw, Some(NormalizeTarget::MedianOfTotals))?;
        let mut rng = Pcg64::seed_from_u64(net);
        for i in 0..10u64 {
            let task = task_from_single_context(&data, 8, 64, &mut rng)?;
            let f = facts(&task);
            if f.control_mean < 0.2 {
                continue;
            }
            let predicted = model
                .predict(&task, 64, i)
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .mean_profile();
            let control = task.observational.mean_axis(Axis(0)).unwrap();
            let truth = task.target.as_ref().unwrap().mean_axis(Axis(0)).unwrap();
            let others = |profile: &ndarray::Array1<f32>| -> f32 {
                (0..control.len())
                    .filter(|&g| g != f.gene)
                    .map(|g| profile[g] - control[g])
                    .sum::<f32>()
                    / (control.len() - 1) as f32
            };
            rows.push(Row {
                control: f.control_mean,
                predicted: predicted[f.gene],
                predicted_offset: others(&predicted),
                true_offset: others(&truth),
                other_rmse: ((0..control.len())
                    .filter(|&g| g != f.gene)
                    .map(|g| (predicted[g] - truth[g]).powi(2))
                    .sum::<f32>()
                    / (control.len() - 1) as f32)
                    .sqrt(),
            });
        }
    }
    let mean = |f: &dyn Fn(&Row) -> f32| rows.iter().map(f).sum::<f32>() / rows.len() as f32;
    println!(
        "model {}: {} knock-outs with control mean ≥ 0.2 on 3 new networks",
        model_dir.display(),
        rows.len()
    );
    println!(
        "  knocked-out gene: mean control level {:.3}, mean predicted level {:.3} (truth 0)",
        mean(&|r| r.control),
        mean(&|r| r.predicted)
    );
    println!(
        "  other genes: mean predicted shift {:+.3} (true {:+.3}), RMSE of their predicted means {:.3}",
        mean(&|r| r.predicted_offset),
        mean(&|r| r.true_offset),
        mean(&|r| r.other_rmse)
    );
    println!(
        "  specific direct effect (knocked-out gene's predicted drop beyond the common shift) / control level: {}",
        quantiles(
            rows.iter()
                .map(|r| (r.control + r.predicted_offset - r.predicted) / r.control)
                .collect()
        )
    );
    Ok(())
}

fn task_genes(source: &SergioTasks) -> anyhow::Result<usize> {
    Ok(source.task(0)?.n_genes())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("cellshift-ko-diagnosis-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
