//! `cellshift bench suite`: every registered method and baseline on every benchmark suite (synthetic
//! suites with known ground truth and the real screens of the shared folder) with each suite's standard
//! split, over resampling seeds, written as one leaderboard (markdown, JSON, a heat-map PNG per suite).

use crate::outputs::{check_outputs, Output};
use std::path::PathBuf;
use std::time::Instant;

use cellshift_bench::leaderboard::{
    parse_columns, parse_contenders, parse_model_option, run_suite, LeaderboardConfig, Protocol,
    RANK_METRIC,
};
use cellshift_bench::leaderboard_report::{markdown, write_leaderboard, Leaderboard, SuiteBoard};
use cellshift_bench::suites::{file_suite, load_suite, parse_suites, SuiteLoad, SuiteSettings};
use cellshift_metrics::MetricGroups;
use cellshift_models::registry::InferenceOptions;
use cellshift_prior::SuiteScale;

use super::model::{SamplerArgs, BUNDLED_CHECKPOINT};
use super::training::set_threads;
use super::DataArgs;

/// Arguments of `cellshift bench suite`.
#[derive(clap::Args)]
pub struct Args {
    /// Suites, comma-separated: multi-context, combinatorial, papalexi, perturbench-norman,
    /// perturbench-glioma, or `all`.
    #[arg(long, default_value = "all")]
    pub suites: String,
    /// Methods, comma-separated names, or `all` (every registered method and every baseline), `methods`,
    /// `baselines`; `auto` chooses among the others listed by cross-validation on the training
    /// perturbations.
    #[arg(long, default_value = "all")]
    pub methods: String,
    /// Size of the synthetic suites: `tiny` (CI, seconds) or `small`.
    #[arg(long, default_value = "tiny")]
    pub scale: String,
    /// Resampling seeds per suite (0..N).
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Cells per set (default: 64 at tiny scale, 128 at small; fewer than a condition has, so that the
    /// oracle's resample is not the scored cells themselves).
    #[arg(long)]
    pub cells: Option<usize>,
    /// Seed of the synthetic suites, their splits and of trained methods.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The shared reference folder holding the real screens (`data/papalexi2021`, `data/perturbench`).
    #[arg(long, default_value = "../shared")]
    pub shared: PathBuf,
    /// Checkpoint of a pre-trained method, `NAME=DIR` (repeatable); MapPFN defaults to the bundled one.
    #[arg(long)]
    pub checkpoint: Vec<String>,
    /// Metric groups computed (the tables show the main ones; the JSON has all).
    #[arg(long, default_value = "mappfn,celleval")]
    pub metrics: String,
    /// Columns of the tables and heat-maps: `default` (mean_rmse, w2, mmd, pearson_delta, pds, deg_auprc,
    /// mag_ratio), `celleval-paper` (mean_rmse, mse, mae, de_spearman_lfc_sig, discrimination_score_l1,
    /// pearson_delta_top20_de: the scDFM paper's table) or a comma-separated list starting with
    /// mean_rmse. The metric groups they need are added to `--metrics`.
    #[arg(long, default_value = "default")]
    pub columns: String,
    /// Seed of trained methods' initial weights and training (default: `--seed`), to repeat a method's
    /// training on the same suites and splits.
    #[arg(long)]
    pub train_seed: Option<u64>,
    /// Configuration option of a trained contender, `CONTENDER:KEY=VALUE` (repeatable), e.g.
    /// `celltarnet:prior.enabled=false` or `c3tl:matmul_precision=bf16`.
    #[arg(long)]
    pub model_option: Vec<String>,
    /// Rank the methods on this screen (`.h5ad`) instead of the built-in suites (`--suites` is then not
    /// used): raw counts are log-normalised; the split follows the screen (held-out doubles, a held-out
    /// context, or half of one context's perturbations). Name its columns with the options below.
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub data_columns: DataArgs,
    /// Output folder: leaderboard.md, leaderboard.json, <suite>.png, runs/ of trained methods.
    #[arg(long, default_value = "leaderboard")]
    pub out: PathBuf,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// How perturbations are tested: `cv` (the suite's eligible perturbations dealt into `--folds` seeded
    /// folds, each predicted once; every metric with a bootstrap 95 % interval over perturbations; ranks
    /// tie when intervals overlap), `standard` (the suite's one split, mean ± std over seeds), or `auto`:
    /// cv on real screens (papalexi, perturbench-*, `--data`), standard on the synthetic suites.
    #[arg(long, default_value = "auto")]
    pub protocol: String,
    /// Cross-validation folds (fewer when fewer perturbations are eligible).
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Inner folds over the training perturbations with which `auto` (in --methods) chooses among the
    /// other listed contenders (baselines and trainable methods, residual variants included).
    #[arg(long, default_value_t = cellshift_bench::auto::DEFAULT_INNER_FOLDS)]
    pub auto_folds: usize,
    /// Bootstrap resamples of each cross-validation interval.
    #[arg(long, default_value_t = cellshift_bench::cross_validation::DEFAULT_BOOTSTRAP)]
    pub bootstrap: usize,
    #[command(flatten)]
    pub sampler: SamplerArgs,
}

/// The protocol of a suite under `--protocol`.
fn protocol_for(args: &Args, real: bool) -> anyhow::Result<Protocol> {
    Protocol::resolve(&args.protocol, real, args.folds, args.bootstrap, args.seed)
}

/// Runs `cellshift bench suite`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut inputs: Vec<&std::path::Path> = vec![&args.shared];
    if let Some(data) = &args.data {
        inputs.push(data);
    }
    check_outputs(&inputs, &[Output::Folder(&args.out)])?;
    set_threads(args.threads);
    let started = Instant::now();
    let scale = SuiteScale::parse(&args.scale)?;
    let suites = parse_suites(&args.suites)?;
    let (columns, needed) = parse_columns(&args.columns)?;
    let mut metric_list = args.metrics.clone();
    for group in needed {
        let present = MetricGroups::parse(&metric_list)?;
        if MetricGroups::parse(&format!("{metric_list},{group}"))? != present {
            eprintln!("note: --columns needs the `{group}` metric group; added it to --metrics");
            metric_list = format!("{metric_list},{group}");
        }
    }
    let groups = MetricGroups::parse(&metric_list)?;
    let mut checkpoints: Vec<(String, PathBuf)> = Vec::new();
    for item in &args.checkpoint {
        let (name, dir) = item.split_once('=').ok_or_else(|| {
            anyhow::anyhow!(
                "--checkpoint `{item}` is not NAME=DIR; e.g. --checkpoint mappfn=runs/my-run"
            )
        })?;
        checkpoints.push((name.trim().to_string(), PathBuf::from(dir.trim())));
    }
    let bundled = PathBuf::from(BUNDLED_CHECKPOINT);
    let checkpoint_of = |name: &str| {
        checkpoints
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.clone())
            .or_else(|| {
                (name == cellshift_models::registry::DEFAULT_PRETRAINED && bundled.exists())
                    .then(|| bundled.clone())
            })
    };
    let contenders = parse_contenders(&args.methods, &checkpoint_of)?;
    for option in &args.model_option {
        let (name, _) = parse_model_option(option)?;
        if !contenders.iter().any(|c| c.name() == name) {
            anyhow::bail!(
                "--model-option `{option}` names `{name}`, which is not among --methods ({})",
                contenders
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let settings = SuiteSettings {
        scale,
        seed: args.seed,
        shared: args.shared.clone(),
    };
    protocol_for(&args, true)?;
    if args.folds < 2 {
        anyhow::bail!(
            "--folds {} is too few; cross-validation needs at least 2",
            args.folds
        );
    }
    let mut config = LeaderboardConfig {
        seeds: args.seeds.max(1),
        n_cells: args.cells.unwrap_or_else(|| scale.set_cells()),
        groups,
        inference: InferenceOptions {
            sampler: args.sampler.config(),
            ..InferenceOptions::default()
        },
        runs: args.out.join("runs"),
        train_seed: args.train_seed.unwrap_or(args.seed),
        model_options: args
            .model_option
            .iter()
            .map(|o| parse_model_option(o))
            .collect::<anyhow::Result<_>>()?,
        protocol: Protocol::Standard,
        auto_inner_folds: args.auto_folds,
    };
    let mut boards = Vec::with_capacity(suites.len());
    let names = match &args.data {
        Some(path) => vec![path.display().to_string()],
        None => suites.clone(),
    };
    for name in &names {
        let load = match &args.data {
            Some(path) => SuiteLoad::Ready(Box::new(file_suite(
                path,
                &args.data_columns.columns(),
                args.seed,
            )?)),
            None => load_suite(name, &settings)?,
        };
        let board = match load {
            SuiteLoad::Skipped(reason) => {
                eprintln!("{reason}");
                SuiteBoard {
                    suite: name.clone(),
                    skipped: Some(reason),
                    description: String::new(),
                    split: String::new(),
                    protocol: Protocol::Standard,
                    k: 0,
                    shape: (0, 0),
                    generation_seconds: 0.0,
                    stats: serde_json::Value::Null,
                    entries: Vec::new(),
                    png: None,
                }
            }
            SuiteLoad::Ready(suite) => {
                eprintln!(
                    "{}: {} cells × {} genes built in {:.2} s; {}",
                    suite.name,
                    suite.data.n_cells(),
                    suite.data.n_genes(),
                    suite.seconds,
                    suite.split_description
                );
                config.protocol = protocol_for(&args, suite.real)?;
                let entries = run_suite(&suite, &contenders, &config, &mut |line| {
                    eprintln!("  {line}")
                });
                SuiteBoard {
                    suite: suite.name.clone(),
                    skipped: None,
                    description: suite.description.clone(),
                    split: suite.split_description.clone(),
                    protocol: config.protocol,
                    k: suite.k,
                    shape: (suite.data.n_cells(), suite.data.n_genes()),
                    generation_seconds: suite.seconds,
                    stats: suite.stats.clone(),
                    entries,
                    png: None,
                }
            }
        };
        boards.push(board);
    }
    let command = std::iter::once("cellshift".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let mut board = Leaderboard {
        command,
        scale: scale.name().to_string(),
        seeds: config.seeds,
        cells: config.n_cells,
        rank_metric: RANK_METRIC.to_string(),
        metrics: columns,
        suites: boards,
        seconds: started.elapsed().as_secs_f64(),
    };
    let written = write_leaderboard(&args.out, &mut board)?;
    print!("{}", markdown(&board));
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}
