//! `cellshift demo`: the main job end to end on a network nobody has seen. It draws a new gene regulatory
//! network with the project's own SERGIO simulator, writes and re-reads it as `.h5ad`, normalises it,
//! measures K knock-outs as context experiments, predicts the held-out knock-outs, scores every
//! predictor against the simulated truth and writes a small report (markdown + PNG plots).
//!
//! Until a pre-trained MapPFN checkpoint ships, the predictors are the baselines.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use cellshift_baselines::baseline_by_name;
use cellshift_bench::plots::{histograms_png, scatter_png};
use cellshift_bench::{
    markdown_table, prediction_cells, score_predictor, ScoreConfig, ScoreResult,
};
use cellshift_data::atomic::write_bytes_atomically;
use cellshift_data::h5ad::{self, PerturbationColumns, ReadOptions, WriteOptions};
use cellshift_data::preprocess::{preprocess, LogBase, NormalizeTarget, PreprocessOptions};
use cellshift_data::sampler::{CellReplacement, SamplerConfig, TaskSampler};
use cellshift_data::split::{Split, SplitRole};
use cellshift_data::PerturbationData;
use cellshift_metrics::MetricGroups;
use cellshift_prior::{SergioPrior, SergioPriorConfig};
use ndarray::Axis;

/// Arguments of `cellshift demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Folder for the simulated data, the report and the plots (created if missing).
    #[arg(long, default_value = "cellshift-demo")]
    pub out: PathBuf,
    /// Seed of the new network and of every resampling.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Genes of the simulated network.
    #[arg(long, default_value_t = 50)]
    pub genes: usize,
    /// Context experiments (measured knock-outs) per prediction.
    #[arg(long, default_value_t = 8)]
    pub k: usize,
    /// Cells per set.
    #[arg(long, default_value_t = 200)]
    pub cells: usize,
    /// Resampling seeds for mean ± std.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
}

const PREDICTORS: [&str; 4] = ["control", "context_mean", "linear", "oracle"];
const TABLE_METRICS: [&str; 7] = [
    "w2",
    "mmd",
    "mean_rmse",
    "pds",
    "mag_ratio",
    "deg_auprc",
    "pearson_delta",
];

/// Runs `cellshift demo`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let start = Instant::now();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;

    println!(
        "1. drawing a new regulatory network ({} genes, seed {}) and simulating it with SERGIO",
        args.genes, args.seed
    );
    // Twice the cells of a set are simulated per condition, so every resampling seed draws new cells
    // (with exactly n cells per condition, as in the MapPFN prior, all seeds would see the same sets).
    let config = SergioPriorConfig {
        n_genes: args.genes,
        n_cells: 2 * args.cells,
        ..SergioPriorConfig::default()
    };
    let simulated = SergioPrior::sample_named(&config, args.seed, "demo_grn")?;
    let raw_path = args.out.join("simulated_counts.h5ad");
    let columns = PerturbationColumns {
        context: Some("context".into()),
        ..PerturbationColumns::default()
    };
    h5ad::write_perturbation_data(
        &raw_path,
        &simulated,
        &columns,
        &WriteOptions {
            gzip: Some(4),
            sparse_x: true,
        },
    )?;
    let raw = h5ad::read_perturbation_data(&raw_path, &columns, &ReadOptions::matrix_only())?;
    println!(
        "   {} cells × {} genes, control + {} knock-outs, {} → {}",
        raw.n_cells(),
        raw.n_genes(),
        raw.treatments.len() - 1,
        raw.scale.describe(),
        raw_path.display()
    );

    println!("2. normalising to the median total and log1p (scanpy conventions)");
    let options = PreprocessOptions {
        min_cells_per_treatment: None,
        normalize: Some(NormalizeTarget::MedianOfTotals),
        log1p: Some(LogBase::Natural),
        hvg: None,
        panel: None,
        pseudobulk: false,
    };
    let data = preprocess(&raw, &options)?.data;

    println!("3. half of the knock-outs are measured (context experiments), the other half are predicted");
    let score_config = ScoreConfig {
        k: args.k,
        n_cells: args.cells,
        seeds: (0..args.seeds).map(|s| args.seed.wrapping_add(s)).collect(),
        groups: MetricGroups::parse("mappfn,celleval")?,
        split: cellshift_bench::score::all_holdout_split(args.seed),
    };
    let mut results: Vec<ScoreResult> = Vec::new();
    for name in PREDICTORS {
        let mut predictor = baseline_by_name(name)?;
        results.push(score_predictor(&data, predictor.as_mut(), &score_config)?);
    }
    let rows: Vec<(String, Vec<_>)> = results
        .iter()
        .map(|r| (r.method.clone(), r.summary.clone()))
        .collect();
    let table = markdown_table(&rows, &TABLE_METRICS);
    println!("\n{table}");

    let best = pick_best_non_oracle(&results);
    println!("4. writing the report (plots for `{best}`)");
    let plots = write_plots(&data, &score_config, best, &args.out)?;
    let report = report_markdown(
        &args,
        &data,
        &table,
        best,
        &plots,
        start.elapsed().as_secs_f64(),
    );
    let report_path = args.out.join("report.md");
    write_bytes_atomically(&report_path, report.as_bytes())?;
    println!(
        "   wrote {} ({:.1} s in all)",
        report_path.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The non-oracle predictor with the lowest mean RMSE.
fn pick_best_non_oracle(results: &[ScoreResult]) -> &str {
    results
        .iter()
        .filter(|r| r.method != "oracle")
        .filter_map(|r| {
            cellshift_bench::summary::find(&r.summary, "mean_rmse")
                .map(|m| (r.method.as_str(), m.mean))
        })
        .filter(|(_, v)| v.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(name, _)| name)
        .unwrap_or("control")
}

/// Plots for one predictor: per-gene mean shifts (predicted vs true) over all queries, and the
/// distributions of the query's most shifted genes for the first query.
fn write_plots(
    data: &PerturbationData,
    config: &ScoreConfig,
    name: &str,
    out: &Path,
) -> anyhow::Result<Vec<String>> {
    let split = Split::new(data, &config.split)?;
    let mut predictor = baseline_by_name(name)?;
    predictor
        .fit(data, &split.train_conditions())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let sampler = TaskSampler::new(
        data,
        split,
        SamplerConfig {
            k: config.k,
            n_cells: config.n_cells,
            with_replacement_policy: CellReplacement::WhenTooFew,
            seed: config.seeds[0],
            query_role: SplitRole::Test,
            require_k_available: false,
        },
    )?;
    let mut points = Vec::new();
    let mut files = Vec::new();
    for (i, &q) in sampler.queries().iter().enumerate() {
        let task = sampler.task_for(q, config.k, config.seeds[0].wrapping_add(i as u64))?;
        let predicted = prediction_cells(
            &predictor
                .predict(&task, config.n_cells, i as u64)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            &task,
        );
        let target = task
            .target
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("task without target"))?;
        let control_mean = task
            .observational
            .mean_axis(Axis(0))
            .ok_or_else(|| anyhow::anyhow!("empty control"))?;
        let true_shift = target
            .mean_axis(Axis(0))
            .ok_or_else(|| anyhow::anyhow!("empty target"))?
            - &control_mean;
        let pred_shift = predicted
            .mean_axis(Axis(0))
            .ok_or_else(|| anyhow::anyhow!("empty prediction"))?
            - &control_mean;
        points.extend(
            true_shift
                .iter()
                .zip(pred_shift.iter())
                .map(|(&t, &p)| (t as f64, p as f64)),
        );
        if i == 0 {
            let mut order: Vec<usize> = (0..true_shift.len()).collect();
            order.sort_by(|&a, &b| true_shift[b].abs().total_cmp(&true_shift[a].abs()));
            for &g in order.iter().take(3) {
                let file = format!("gene_{}_{}.png", task.query_label(), data.genes[g]);
                let series: [(&str, Vec<f64>); 3] = [
                    (
                        "control",
                        task.observational
                            .column(g)
                            .iter()
                            .map(|&v| v as f64)
                            .collect(),
                    ),
                    ("true", target.column(g).iter().map(|&v| v as f64).collect()),
                    (
                        "predicted",
                        predicted.column(g).iter().map(|&v| v as f64).collect(),
                    ),
                ];
                let refs: Vec<(&str, &[f64])> =
                    series.iter().map(|(l, v)| (*l, v.as_slice())).collect();
                let title = format!(
                    "{} knock-out: {} ({name})",
                    task.query_label(),
                    data.genes[g]
                );
                histograms_png(&out.join(&file), &refs, &title, "log1p expression")?;
                files.push(file);
            }
        }
    }
    let scatter = "mean_shifts.png".to_string();
    scatter_png(
        &out.join(&scatter),
        &points,
        &format!("per-gene mean shift, {name}"),
        "true shift",
        "predicted shift",
    )?;
    files.insert(0, scatter);
    Ok(files)
}

fn report_markdown(
    args: &Args,
    data: &PerturbationData,
    table: &str,
    best: &str,
    plots: &[String],
    seconds: f64,
) -> String {
    let mut md = String::from("# cellshift demo report\n\n");
    md += &format!(
        "A new regulatory network of {} genes (seed {}) simulated with cellshift's SERGIO simulator: control \
         and {} knock-outs, {} cells each, technical noise, normalised to the median total and log1p. Half \
         of the knock-outs are measured context experiments (K = {} per prediction); the other half are \
         predicted and scored against the simulated cells, {} cells per set. Mean ± std over {} resampling \
         seeds.\n\n",
        args.genes,
        args.seed,
        data.treatments.len() - 1,
        2 * args.cells,
        args.k,
        args.cells,
        args.seeds
    );
    md += "## Scores\n\n";
    md += table;
    md += "\nw2: Sinkhorn divergence (ε = 0.1); mmd: RBF MMD²; mean_rmse: RMSE of per-gene means; pds: \
           perturbation discrimination (0 best); mag_ratio: predicted / true effect size (1 best); deg_auprc: \
           pooled DEG AUPRC; pearson_delta: Pearson correlation of mean shifts. `oracle` resamples the true \
           cells (the noise floor); `control` predicts no effect.\n\n";
    md += &format!("## Plots (`{best}`, the best non-oracle predictor by mean RMSE)\n\n");
    for file in plots {
        md += &format!("![{file}]({file})\n\n");
    }
    md += &format!("Run time: {seconds:.1} s.\n");
    md
}
