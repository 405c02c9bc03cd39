//! `cellshift demo`: the main job end to end. By default it draws a new gene regulatory network with the
//! project's own SERGIO simulator (one the model never saw), writes and re-reads it as `.h5ad`, normalises
//! it, measures K knock-outs as context experiments, predicts the held-out knock-outs with the bundled
//! MapPFN checkpoint (pre-trained on the SERGIO prior only), scores it and the baselines against the
//! simulated truth, and writes a small report (markdown + PNG plots). With `--data FILE --context C` it does
//! the same on a user's screen: half of the context's perturbations are measured, the other half predicted.

use crate::outputs::{check_outputs, given, Output};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use cellshift_baselines::baseline_by_name;
use cellshift_bench::plots::{histograms_png, scatter_png};
use cellshift_bench::{markdown_table, score_predictor_observed, ScoreConfig, ScoreResult};
use cellshift_data::atomic::write_bytes_atomically;
use cellshift_data::h5ad::{self, PerturbationColumns, ReadOptions, WriteOptions};
use cellshift_data::inference::resolve_context;
use cellshift_data::preprocess::{preprocess, LogBase, NormalizeTarget, PreprocessOptions};
use cellshift_data::{PerturbationData, Predictor};
use cellshift_metrics::MetricGroups;
use cellshift_models::prepare::prepare_for_model;
use cellshift_models::SamplerConfig;
use cellshift_prior::{SergioPrior, SergioPriorConfig};
use ndarray::Axis;

use super::model::{LoadedModel, SamplerArgs};
use super::training::set_threads;
use super::DataArgs;

/// The checkpoint the demo uses when `--model` is not given: the SERGIO-prior model shipped in the repository.
pub const BUNDLED_MODEL: &str = super::model::BUNDLED_CHECKPOINT;

/// Arguments of `cellshift demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Folder for the simulated data, the report and the plots (created if missing).
    #[arg(long, default_value = "cellshift-demo")]
    pub out: PathBuf,
    /// Seed of the new network and of every resampling.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Context experiments (measured knock-outs) per prediction.
    #[arg(long, default_value_t = 8)]
    pub k: usize,
    /// Cells per set (64, as in the bundled model's pre-training).
    #[arg(long, default_value_t = 64)]
    pub cells: usize,
    /// Resampling seeds for mean ± std.
    #[arg(long, default_value_t = 2)]
    pub seeds: u64,
    /// Checkpoint of any method (default: the bundled SERGIO-prior MapPFN, `checkpoints/mappfn-sergio-small`).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Score the baselines only.
    #[arg(long, conflicts_with = "model")]
    pub no_model: bool,
    /// Your own screen (`.h5ad`) instead of a simulated network; raw counts are normalised as the model expects.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// With --data: the context (cell line, condition) to predict in; needed when the file has several.
    #[arg(long, requires = "data")]
    pub context: Option<String>,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub sampler: SamplerArgs,
    #[command(flatten)]
    pub columns: DataArgs,
}

/// Baselines scored next to MapPFN.
const BASELINES: [&str; 4] = ["control", "context_mean", "linear", "oracle"];
const TABLE_METRICS: [&str; 7] = [
    "w2",
    "mmd",
    "mean_rmse",
    "pds",
    "mag_ratio",
    "deg_auprc",
    "pearson_delta",
];

/// Where the data came from, for the report.
enum Source {
    Simulated {
        genes: usize,
        cells_per_condition: usize,
    },
    User {
        path: PathBuf,
        context: String,
    },
}

/// Runs `cellshift demo`.
pub fn run(args: Args) -> anyhow::Result<()> {
    check_outputs(
        &given(&[&args.model, &args.data]),
        &[Output::Folder(&args.out)],
    )?;
    let start = Instant::now();
    set_threads(args.threads);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let model = load_model(&args)?;
    let genes = model.as_ref().map_or(50, |m| m.preprocessing.n_genes);

    let (data, source) = match &args.data {
        None => simulated_network(&args, genes)?,
        Some(path) => user_screen(&args, path, model.as_ref())?,
    };

    println!("3. half of the knock-outs are measured (context experiments), the other half are predicted");
    let score_config = ScoreConfig {
        k: args.k,
        n_cells: args.cells,
        seeds: (0..args.seeds.max(1))
            .map(|s| cellshift_data::seed::offset_seed(args.seed, s))
            .collect(),
        groups: MetricGroups::parse("mappfn,celleval")?,
        split: cellshift_bench::score::all_holdout_split(args.seed),
    };
    let sampler = model.as_ref().map(|m| m.sampler);
    let mut predictors: Vec<Box<dyn Predictor>> = Vec::new();
    if let Some(model) = model {
        predictors.push(model.model);
    }
    for name in BASELINES {
        predictors.push(baseline_by_name(name)?);
    }
    let mut results: Vec<ScoreResult> = Vec::new();
    for predictor in predictors.iter_mut() {
        let begun = Instant::now();
        let bar = crate::progress::bar(
            (score_config.seeds.len() * data.treatments.len()) as u64,
            &format!("   predicting with {}", predictor.name()),
        );
        let result =
            score_predictor_observed(&data, predictor.as_mut(), &score_config, &|done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })?;
        bar.finish();
        println!(
            "   {:<14} scored in {:.1} s",
            result.method,
            begun.elapsed().as_secs_f64()
        );
        results.push(result);
    }
    let rows: Vec<(String, Vec<_>)> = results
        .iter()
        .map(|r| (r.method.clone(), r.summary.clone()))
        .collect();
    let table = markdown_table(&rows, &TABLE_METRICS);
    println!("\n{table}");

    let shown = if results.first().map(|r| r.method.as_str())
        == Some(cellshift_models::registry::DEFAULT_PRETRAINED)
    {
        0
    } else {
        let best = pick_best_non_oracle(&results);
        results.iter().position(|r| r.method == best).unwrap_or(0)
    };
    let shown_name = results[shown].method.clone();
    println!("4. writing the report (plots for `{shown_name}`)");
    let plots = write_plots(&data, &results[shown], &args.out)?;
    let report = report_markdown(
        &args,
        &source,
        &data,
        &Outcome {
            table: &table,
            shown: &shown_name,
            plots: &plots,
            sampler: sampler.as_ref(),
            seconds: start.elapsed().as_secs_f64(),
        },
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

/// The model to demonstrate: `--model`, else the bundled checkpoint; `None` with `--no-model` or when
/// no checkpoint is bundled (a note says so). Loaded through the method registry with the sampler options
/// over the checkpoint's recommended settings (adaptive Dopri5 at 1e-3 by default, validated against the
/// reference sampler in BENCHMARKS.md).
fn load_model(args: &Args) -> anyhow::Result<Option<LoadedModel>> {
    if args.no_model {
        return Ok(None);
    }
    let dir = match &args.model {
        Some(dir) => dir.clone(),
        None => {
            let bundled = PathBuf::from(BUNDLED_MODEL);
            if !bundled.exists() {
                eprintln!(
                    "note: no bundled checkpoint at {}; scoring the baselines only (give --model DIR)",
                    bundled.display()
                );
                return Ok(None);
            }
            bundled
        }
    };
    let model = super::model::load_model(&dir, &args.sampler)?;
    let caps = model.model.capabilities();
    println!(
        "0. {} checkpoint {} ({} genes, up to K = {})",
        model.method,
        dir.display(),
        model.preprocessing.n_genes,
        caps.k_max.map_or("any".to_string(), |k| k.to_string())
    );
    Ok(Some(model))
}

/// Normalisation to the median total and natural log1p (scanpy conventions; the prior's normalisation).
fn median_log1p() -> PreprocessOptions {
    PreprocessOptions {
        min_cells_per_treatment: None,
        normalize: Some(NormalizeTarget::MedianOfTotals),
        log1p: Some(LogBase::Natural),
        hvg: None,
        panel: None,
        pseudobulk: false,
    }
}

/// Steps 1–2 on a new simulated network of `genes` genes.
fn simulated_network(args: &Args, genes: usize) -> anyhow::Result<(PerturbationData, Source)> {
    println!(
        "1. drawing a new regulatory network ({genes} genes, seed {}) and simulating it with SERGIO",
        args.seed
    );
    // Twice the cells of a set are simulated per condition, so every resampling seed draws new cells
    // (with exactly n cells per condition, as in the MapPFN prior, all seeds would see the same sets).
    let cells_per_condition = 2 * args.cells;
    let config = SergioPriorConfig {
        n_genes: genes,
        n_cells: cells_per_condition,
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
    let options = median_log1p();
    Ok((
        preprocess(&raw, &options)?.data,
        Source::Simulated {
            genes,
            cells_per_condition,
        },
    ))
}

/// Steps 1–2 on the user's screen: one context, brought to the model's genes and normalisation.
fn user_screen(
    args: &Args,
    path: &Path,
    model: Option<&LoadedModel>,
) -> anyhow::Result<(PerturbationData, Source)> {
    println!("1. reading {}", path.display());
    let raw = args.columns.read(path)?;
    let context = resolve_context(&raw, args.context.as_deref())?;
    let cells: Vec<usize> = raw
        .conditions()
        .iter()
        .filter(|c| c.context == context)
        .flat_map(|c| c.cells.iter().copied())
        .collect();
    let name = raw.contexts[context].clone();
    let one_context = raw.select_cells(&cells)?;
    println!(
        "   context `{name}`: {} cells × {} genes, {} conditions",
        one_context.n_cells(),
        one_context.n_genes(),
        one_context.conditions().len()
    );
    let data = match model {
        Some(model) => {
            println!("2. bringing the screen to the model's genes and normalisation");
            let (data, report) = prepare_for_model(&one_context, &model.preprocessing)
                .with_context(|| format!("preparing {} for the model", path.display()))?;
            for note in &report.notes {
                println!("   note: {note}");
            }
            data
        }
        None => {
            println!(
                "2. normalising to the median total and log1p when the screen holds raw counts"
            );
            let options = median_log1p();
            match one_context.scale {
                cellshift_data::ExpressionScale::RawCounts => {
                    preprocess(&one_context, &options)?.data
                }
                _ => one_context,
            }
        }
    };
    Ok((
        data,
        Source::User {
            path: path.to_path_buf(),
            context: name,
        },
    ))
}

/// The non-oracle predictor with the lowest mean RMSE.
fn pick_best_non_oracle(results: &[ScoreResult]) -> &str {
    results
        .iter()
        .filter(|r| r.method != "oracle")
        .filter_map(|r| {
            cellshift_metrics::summary::find(&r.summary, "mean_rmse")
                .map(|m| (r.method.as_str(), m.mean))
        })
        .filter(|(_, v)| v.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(name, _)| name)
        .unwrap_or("control")
}

/// Plots for one scored predictor (its first seed's queries): per-gene mean shifts, predicted vs true, over
/// all queries, and the distributions of the first query's most shifted genes.
fn write_plots(
    data: &PerturbationData,
    result: &ScoreResult,
    out: &Path,
) -> anyhow::Result<Vec<String>> {
    let name = result.method.as_str();
    let mut points = Vec::new();
    let mut files = Vec::new();
    for (i, query) in result.examples.iter().enumerate() {
        let mean = |m: &ndarray::Array2<f32>| {
            m.mean_axis(Axis(0))
                .ok_or_else(|| anyhow::anyhow!("an empty set of cells for `{}`", query.label))
        };
        let control_mean = mean(&query.observational)?;
        let true_shift = mean(&query.target)? - &control_mean;
        let pred_shift = mean(&query.predicted)? - &control_mean;
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
                let column = |m: &ndarray::Array2<f32>| -> Vec<f64> {
                    m.column(g).iter().map(|&v| v as f64).collect()
                };
                let file = format!("gene_{}_{}.png", query.label, data.genes[g]);
                let series: [(&str, Vec<f64>); 3] = [
                    ("control", column(&query.observational)),
                    ("true", column(&query.target)),
                    ("predicted", column(&query.predicted)),
                ];
                let refs: Vec<(&str, &[f64])> =
                    series.iter().map(|(l, v)| (*l, v.as_slice())).collect();
                let title = format!("{} knock-out: {} ({name})", query.label, data.genes[g]);
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

/// What the demo produced, for its report.
struct Outcome<'a> {
    /// The scores as a markdown table.
    table: &'a str,
    /// The method whose predictions are plotted.
    shown: &'a str,
    /// The plot files, relative to the report.
    plots: &'a [String],
    /// The model's resolved sampler (`None` without a model).
    sampler: Option<&'a SamplerConfig>,
    /// Wall time of the whole job.
    seconds: f64,
}

fn report_markdown(
    args: &Args,
    source: &Source,
    data: &PerturbationData,
    outcome: &Outcome,
) -> String {
    let Outcome {
        table,
        shown,
        plots,
        sampler,
        seconds,
    } = *outcome;
    let mut md = String::from("# cellshift demo report\n\n");
    let perturbations = data.treatments.iter().filter(|t| !t.is_control()).count();
    md += &match source {
        Source::Simulated {
            genes,
            cells_per_condition,
        } => format!(
            "A new regulatory network of {genes} genes (seed {}) simulated with cellshift's SERGIO simulator: \
             control and {perturbations} knock-outs, {cells_per_condition} cells each, technical noise, \
             normalised to the median total and log1p. ",
            args.seed
        ),
        Source::User { path, context } => format!(
            "The screen `{}`, context `{context}`: control and {perturbations} perturbations, {} genes. ",
            path.display(),
            data.n_genes()
        ),
    };
    md += &format!(
        "Half of the perturbations are measured context experiments (K = {} per prediction); the other half \
         are predicted and scored against the measured cells, {} cells per set. Mean ± std over {} resampling \
         seeds.\n\n",
        args.k, args.cells, args.seeds
    );
    if let Some(s) = sampler {
        md += &format!(
            "The model samples with ω = {}, {} pooled population(s), source-noise temperature {}{}, ODE \
             solver {} (`--reference-sampler` for the reference: ω = 2, 1 population, temperature 1, no \
             clamp).\n\n",
            s.guidance,
            s.populations,
            s.temperature,
            if s.nonnegative {
                ", predictions clamped at 0"
            } else {
                ""
            },
            s.solver.describe()
        );
    }
    md += "## Scores\n\n";
    md += table;
    md += "\nw2: Sinkhorn divergence (ε = 0.1); mmd: RBF MMD²; mean_rmse: RMSE of per-gene means; pds: \
           perturbation discrimination (0 best); mag_ratio: predicted / true effect size (1 best); deg_auprc: \
           pooled DEG AUPRC; pearson_delta: Pearson correlation of mean shifts. `mappfn` is the pre-trained \
           model predicting in context (no training on these data); `oracle` resamples the true cells (the \
           noise floor); `control` predicts no effect.\n\n";
    md += &format!("## Plots (`{shown}`)\n\n");
    for file in plots {
        md += &format!("![{file}]({file})\n\n");
    }
    md += &format!("Run time: {seconds:.1} s.\n");
    md
}
