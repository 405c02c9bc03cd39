//! `cellshift.bench`: the leaderboard (`cellshift bench suite`) on an AnnData in memory or on the built-in
//! synthetic suites: every chosen method and baseline fitted and scored with the suite's standard split
//! over resampling seeds, ranked by mean RMSE.

use std::path::PathBuf;
use std::time::Instant;

use cellshift_bench::leaderboard::{
    parse_columns, parse_contenders, parse_model_option, run_suite, LeaderboardConfig, Protocol,
    RANK_METRIC,
};
use cellshift_bench::leaderboard_report::{write_leaderboard, Leaderboard, SuiteBoard};
use cellshift_bench::suites::{data_suite, load_suite, Suite, SuiteLoad, SuiteSettings};
use cellshift_data::PerturbationData;
use cellshift_metrics::MetricGroups;
use cellshift_models::registry::InferenceOptions;
use cellshift_prior::SuiteScale;

use crate::runner::Reporter;

/// What to bench: the caller's screen, or built-in suites by name.
pub enum Screens {
    /// The caller's screen and the name it goes by in the table.
    Data(Box<PerturbationData>, String),
    /// Built-in suites (`multi-context`, `combinatorial`, …).
    Suites(Vec<String>),
}

/// The options of `cellshift bench suite`.
pub struct BenchRequest {
    /// What to score.
    pub screens: Screens,
    /// Contenders (`all`, `methods`, `baselines` or comma-separated names).
    pub methods: String,
    /// Synthetic suite size (`tiny`, `small`).
    pub scale: String,
    /// Resampling seeds `0..seeds`.
    pub seeds: u64,
    /// Cells per set (suite default when `None`).
    pub cells: Option<usize>,
    /// Seed of suites, splits and trained methods.
    pub seed: u64,
    /// Metric groups.
    pub metrics: String,
    /// Table columns (`default`, `celleval-paper`, or a list starting with mean_rmse).
    pub columns: String,
    /// `CONTENDER:KEY=VALUE` options of trained contenders.
    pub model_options: Vec<String>,
    /// The bundled MapPFN checkpoint (used for `mappfn`).
    pub bundled: Option<PathBuf>,
    /// Where the real suites' data live.
    pub shared: PathBuf,
    /// Output folder for leaderboard.md/.json/PNGs and runs; `None`: nothing is kept on disk.
    pub out: Option<PathBuf>,
    /// `auto` (cross-validation on real screens, the standard split on synthetic suites), `cv` or
    /// `standard`, as `cellshift bench suite --protocol`.
    pub protocol: String,
    /// Cross-validation folds.
    pub folds: usize,
    /// Bootstrap resamples of each interval.
    pub bootstrap: usize,
}

/// Runs the leaderboard; the board as JSON (the schema of `leaderboard.json`).
pub fn run(request: BenchRequest, reporter: &Reporter) -> anyhow::Result<String> {
    let started = Instant::now();
    let scale = SuiteScale::parse(&request.scale)?;
    let (columns, needed) = parse_columns(&request.columns)?;
    let mut metric_list = request.metrics.clone();
    for group in needed {
        metric_list = format!("{metric_list},{group}");
    }
    let groups = MetricGroups::parse(&metric_list)?;
    let bundled = request.bundled.clone();
    let checkpoint_of = |name: &str| {
        (name == "mappfn")
            .then(|| bundled.clone())
            .flatten()
            .filter(|d| d.exists())
    };
    let contenders = parse_contenders(&request.methods, &checkpoint_of)?;
    let model_options = request
        .model_options
        .iter()
        .map(|o| parse_model_option(o))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Trained contenders write their runs to disk: into `out/runs`, or a folder removed afterwards.
    let temporary = match &request.out {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("cellshift-bench-")
                .tempdir()?,
        ),
    };
    let runs = match (&request.out, &temporary) {
        (Some(out), _) => out.join("runs"),
        (None, Some(temp)) => temp.path().to_path_buf(),
        (None, None) => unreachable!("a temporary folder exists when no output folder is given"),
    };
    let config = LeaderboardConfig {
        seeds: request.seeds.max(1),
        n_cells: request.cells.unwrap_or_else(|| scale.set_cells()),
        groups,
        inference: InferenceOptions::default(),
        runs,
        train_seed: request.seed,
        model_options,
        protocol: Protocol::Standard,
        auto_inner_folds: cellshift_bench::auto::DEFAULT_INNER_FOLDS,
    };
    Protocol::resolve(
        &request.protocol,
        true,
        request.folds,
        request.bootstrap,
        request.seed,
    )?;
    let mut config = config;
    let suites: Vec<SuiteLoad> = match request.screens {
        Screens::Data(data, name) => vec![SuiteLoad::Ready(Box::new(data_suite(
            *data,
            &name,
            &format!("the AnnData `{name}`"),
            request.seed,
        )?))],
        Screens::Suites(names) => {
            let settings = SuiteSettings {
                scale,
                seed: request.seed,
                shared: request.shared.clone(),
            };
            names
                .iter()
                .map(|n| load_suite(n, &settings))
                .collect::<anyhow::Result<_>>()?
        }
    };
    let total = (suites.len() * contenders.len()) as u64;
    let mut done = 0u64;
    let mut boards = Vec::with_capacity(suites.len());
    for load in suites {
        match load {
            SuiteLoad::Skipped(reason) => {
                eprintln!("{reason}");
                done += contenders.len() as u64;
            }
            SuiteLoad::Ready(suite) => {
                config.protocol = Protocol::resolve(
                    &request.protocol,
                    suite.real,
                    request.folds,
                    request.bootstrap,
                    request.seed,
                )?;
                let entries = run_suite(&suite, &contenders, &config, &mut |line| {
                    done += 1;
                    reporter.progress(done, total, line);
                    reporter.stop_if_cancelled();
                });
                boards.push(board(&suite, entries, config.protocol));
            }
        }
    }
    let mut board = Leaderboard {
        command: "cellshift.bench".to_string(),
        scale: scale.name().to_string(),
        seeds: config.seeds,
        cells: config.n_cells,
        rank_metric: RANK_METRIC.to_string(),
        metrics: columns,
        suites: boards,
        seconds: started.elapsed().as_secs_f64(),
    };
    if let Some(out) = &request.out {
        write_leaderboard(out, &mut board)?;
    }
    Ok(serde_json::to_string(&board)?)
}

fn board(
    suite: &Suite,
    entries: Vec<cellshift_bench::leaderboard::Entry>,
    protocol: Protocol,
) -> SuiteBoard {
    SuiteBoard {
        suite: suite.name.clone(),
        skipped: None,
        description: suite.description.clone(),
        split: suite.split_description.clone(),
        protocol,
        k: suite.k,
        shape: (suite.data.n_cells(), suite.data.n_genes()),
        generation_seconds: suite.seconds,
        stats: suite.stats.clone(),
        entries,
        png: None,
    }
}
