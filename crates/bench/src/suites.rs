//! The benchmark suites of the leaderboard and their standard splits: two synthetic suites with known
//! ground truth simulated by the SERGIO prior (`multi-context`, `combinatorial`) and three real screens
//! read from the shared data folder (`papalexi`, `perturbench-norman`, `perturbench-glioma`), each brought
//! to the log-normalised scale (median total, natural log1p) every method is scored on. A real suite
//! whose file is absent is skipped with a message naming the file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use cellshift_data::h5ad::{self, PerturbationColumns, ReadOptions};
use cellshift_data::preprocess::{preprocess, PreprocessOptions};
use cellshift_data::{PerturbationData, Split, SplitConfig, SplitMode, SplitRole, Treatment};
use cellshift_prior::{
    combinatorial_suite, multi_context_suite, normalize_dataset, CombinatorialConfig,
    MultiContextConfig, SuiteScale,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_pcg::Pcg64;

/// Every suite name, in leaderboard order.
pub const SUITE_NAMES: &[&str] = &[
    "multi-context",
    "combinatorial",
    "papalexi",
    "perturbench-norman",
    "perturbench-glioma",
];

/// Where the real suites' files are, relative to the shared data folder.
const PAPALEXI_FILE: &str = "data/papalexi2021/thp1_subset.h5ad";
const PERTURBENCH_FILE: &str = "data/perturbench/devel.h5ad";

/// How suites are built.
#[derive(Clone, Debug)]
pub struct SuiteSettings {
    /// Size of the synthetic suites and of the cell sets.
    pub scale: SuiteScale,
    /// Seed of the synthetic suites, of their splits and of the Norman double split (the real hold-out-
    /// context splits use the reference seed 42).
    pub seed: u64,
    /// The shared reference folder (holding `data/papalexi2021`, `data/perturbench`).
    pub shared: PathBuf,
}

/// A suite ready to be scored.
#[derive(Clone, Debug)]
pub struct Suite {
    /// Suite name (one of [`SUITE_NAMES`]).
    pub name: String,
    /// One sentence: what the suite tests and where its data come from.
    pub description: String,
    /// Log-normalised cells.
    pub data: PerturbationData,
    /// The suite's standard split.
    pub split: Split,
    /// One line describing the split.
    pub split_description: String,
    /// Context experiments per task.
    pub k: usize,
    /// Seconds to generate (synthetic) or read and preprocess (real) the suite.
    pub seconds: f64,
    /// Statistics of the synthetic suites (how different the contexts are, how non-additive the
    /// doubles are); `Null` for real suites.
    pub stats: serde_json::Value,
    /// Measured cells (a real screen) rather than a simulation: cross-validation is its default protocol.
    pub real: bool,
}

/// A suite, or why it was skipped.
#[derive(Clone, Debug)]
pub enum SuiteLoad {
    /// Ready to score.
    Ready(Box<Suite>),
    /// Not available here (e.g. its data file is absent); the message names what is missing.
    Skipped(String),
}

/// Parses a comma-separated list of suite names (`all` for every suite); errors list the valid names.
pub fn parse_suites(text: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part == "all" {
            out.extend(SUITE_NAMES.iter().map(|s| s.to_string()));
        } else if SUITE_NAMES.contains(&part) {
            out.push(part.to_string());
        } else {
            anyhow::bail!(
                "unknown suite `{part}`; the suites are {} (or `all`)",
                SUITE_NAMES.join(", ")
            );
        }
    }
    out.dedup();
    if out.is_empty() {
        anyhow::bail!("no suite given; use --suites {}", SUITE_NAMES.join(","));
    }
    Ok(out)
}

/// Builds the suite `name`.
pub fn load_suite(name: &str, settings: &SuiteSettings) -> anyhow::Result<SuiteLoad> {
    let started = Instant::now();
    let mut suite = match name {
        "multi-context" => multi_context(settings)?,
        "combinatorial" => combinatorial(settings)?,
        "papalexi" => {
            let path = settings.shared.join(PAPALEXI_FILE);
            if !path.exists() {
                return Ok(skipped(name, &path));
            }
            papalexi(&path)?
        }
        "perturbench-norman" | "perturbench-glioma" => {
            let path = settings.shared.join(PERTURBENCH_FILE);
            if !path.exists() {
                return Ok(skipped(name, &path));
            }
            perturbench(name, &path, settings)?
        }
        other => anyhow::bail!(
            "unknown suite `{other}`; the suites are {}",
            SUITE_NAMES.join(", ")
        ),
    };
    suite.seconds = started.elapsed().as_secs_f64();
    Ok(SuiteLoad::Ready(Box::new(suite)))
}

fn skipped(name: &str, path: &Path) -> SuiteLoad {
    SuiteLoad::Skipped(format!(
        "suite `{name}` skipped: its data file {} is absent; give the shared reference folder with --shared DIR",
        path.display()
    ))
}

/// The synthetic suites are raw counts; every suite is scored on median-total, natural-log1p values.
fn log_normalised(raw: &PerturbationData) -> anyhow::Result<PerturbationData> {
    Ok(normalize_dataset(
        raw,
        Some(cellshift_data::preprocess::NormalizeTarget::MedianOfTotals),
    )?)
}

fn multi_context(settings: &SuiteSettings) -> anyhow::Result<Suite> {
    let cfg = MultiContextConfig::at_scale(settings.scale, settings.seed);
    let suite = multi_context_suite(&cfg)?;
    let data = log_normalised(&suite.data)?;
    let split = Split::new(&data, &standard_split(settings.seed))?;
    Ok(Suite {
        name: "multi-context".into(),
        description: format!(
            "SERGIO: one {}-gene network in {} cell types (distinct master-regulator profiles), every single \
             knock-out in each, technical noise; predicting a new cell type's knock-outs",
            cfg.n_genes, cfg.n_cell_types
        ),
        split_description: holdout_description(&split),
        data,
        split,
        k: 8,
        seconds: 0.0,
        stats: serde_json::to_value(&suite.stats)?,
        real: false,
    })
}

fn combinatorial(settings: &SuiteSettings) -> anyhow::Result<Suite> {
    let cfg = CombinatorialConfig::at_scale(settings.scale, settings.seed);
    let suite = combinatorial_suite(&cfg)?;
    let data = log_normalised(&suite.data)?;
    let split = double_split(&data, settings.seed)?;
    let mut stats = serde_json::to_value(&suite.stats)?;
    if let Some(map) = stats.as_object_mut() {
        map.remove("doubles");
    }
    Ok(Suite {
        name: "combinatorial".into(),
        description: format!(
            "SERGIO: one {}-gene network, every single knock-out and {} sampled double knock-outs, technical \
             noise; predicting unseen doubles",
            cfg.n_genes, suite.stats.n_doubles
        ),
        split_description: double_split_description(&data, &split),
        data,
        split,
        k: 8,
        seconds: 0.0,
        stats,
        real: false,
    })
}

fn papalexi(path: &Path) -> anyhow::Result<Suite> {
    let columns = PerturbationColumns {
        control: "non-targeting".into(),
        ..PerturbationColumns::default()
    };
    let raw = h5ad::read_perturbation_data(path, &columns, &ReadOptions::matrix_only())
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    // The MapPFN recipe (scripts/bench_papalexi.sh): treatments with ≥ 200 cells, median total + log1p,
    // the 50-gene panel with the measured targets first; treatments whose target is not a panel gene go.
    let data = preprocess(&raw, &PreprocessOptions::mappfn(50))?.data;
    let split = Split::new(&data, &standard_split(42))?;
    Ok(Suite {
        name: "papalexi".into(),
        description: "Papalexi 2021 THP-1 CRISPR screen (real): MapPFN recipe, 50-gene panel, the \
                      perturbations whose target is a panel gene; predicting held-out knock-outs"
            .into(),
        split_description: holdout_description(&split),
        data,
        split,
        k: 3,
        seconds: 0.0,
        stats: serde_json::Value::Null,
        real: true,
    })
}

fn perturbench(name: &str, path: &Path, settings: &SuiteSettings) -> anyhow::Result<Suite> {
    let obs =
        h5ad::read_obs(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let dataset = obs
        .column("dataset")
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} has no obs column `dataset`; give the PerturBench devel.h5ad",
                path.display()
            )
        })?
        .as_strings();
    let wanted = if name == "perturbench-norman" {
        "norman"
    } else {
        "mcfaline"
    };
    let cells: Vec<usize> = (0..dataset.len())
        .filter(|&i| dataset[i].to_ascii_lowercase().contains(wanted))
        .collect();
    if cells.is_empty() {
        let mut names = dataset.clone();
        names.sort();
        names.dedup();
        anyhow::bail!(
            "{} has no cells whose `dataset` contains `{wanted}` (it has {}); give the PerturBench devel.h5ad",
            path.display(),
            names.join(", ")
        );
    }
    let columns = PerturbationColumns {
        perturbation: "condition".into(),
        context: Some("cell_type".into()),
        ..PerturbationColumns::default()
    };
    let data = h5ad::read_perturbation_data(
        path,
        &columns,
        &ReadOptions {
            cells: Some(cells),
            ..ReadOptions::matrix_only()
        },
    )
    .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    // X is log1p(normalize_total) already (the file's README).
    if name == "perturbench-norman" {
        let split = double_split(&data, settings.seed)?;
        Ok(Suite {
            name: name.into(),
            description:
                "Norman 2019 K562 CRISPRa (real, PerturBench devel subset, 500 HVGs): singles and \
                          doubles; predicting doubles whose singles were measured"
                    .into(),
            split_description: double_split_description(&data, &split),
            data,
            split,
            k: 8,
            seconds: 0.0,
            stats: serde_json::Value::Null,
            real: true,
        })
    } else {
        let split = Split::new(&data, &standard_split(42))?;
        Ok(Suite {
            name: name.into(),
            description: "McFaline-Figueroa 2023 glioblastoma kinase panel (real, PerturBench devel subset, \
                          500 HVGs): 9 perturbations in 3 cell lines; predicting a held-out cell line"
                .into(),
            split_description: holdout_description(&split),
            data,
            split,
            k: 3,
            seconds: 0.0,
            stats: serde_json::Value::Null,
            real: true,
        })
    }
}

/// A suite made of the user's own screen (`bench suite --data FILE.h5ad`), scored with the same outputs as
/// the built-in suites. The data are brought to the scale every method is scored on (raw counts:
/// median total + natural log1p; log-normalised values: as given; anything else: as given, with a
/// warning, and methods that need counts or log1p values refuse it). The split
/// follows what the screen holds: doubles whose singles are measured → predict half of those doubles
/// ([`double_split`]); several contexts → the reference split (a hold-out context, half its perturbations
/// tested); one context → half of its perturbations tested, the other half its context experiments. K is
/// 8, or fewer when the training half of a tested context measures fewer perturbations.
pub fn file_suite(path: &Path, columns: &PerturbationColumns, seed: u64) -> anyhow::Result<Suite> {
    let started = Instant::now();
    let raw = h5ad::read_perturbation_data(path, columns, &ReadOptions::matrix_only())
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let name = path.file_stem().map_or_else(
        || "screen".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut suite = data_suite(raw, &name, &path.display().to_string(), seed)?;
    suite.seconds = started.elapsed().as_secs_f64();
    Ok(suite)
}

/// As [`file_suite`] for a screen already in memory (the Python package's `bench`): `name` names the
/// suite, `source` says where the screen came from in the description and warnings.
pub fn data_suite(
    raw: PerturbationData,
    name: &str,
    source: &str,
    seed: u64,
) -> anyhow::Result<Suite> {
    use cellshift_data::ExpressionScale;
    let started = Instant::now();
    let (data, scale_note) = match raw.scale {
        ExpressionScale::RawCounts => (
            log_normalised(&raw)?,
            "raw counts, log-normalised (median total, natural log1p)",
        ),
        ExpressionScale::LogNormalized => (raw, "log-normalised values, used as given"),
        ExpressionScale::Other => {
            eprintln!(
                "warning: {source} holds {}; used as given (methods trained on counts or log1p values refuse it, \
                 the baselines score it)",
                raw.scale.describe()
            );
            (
                raw,
                "neither counts nor log-normalised (e.g. scaled): used as given",
            )
        }
    };
    let has_doubles = data
        .treatments
        .iter()
        .any(|t| matches!(t, Treatment::Combination { .. }));
    let what = format!(
        "{source} (the user's screen): {} cells × {} genes, {} context(s), {} perturbations; {scale_note}",
        data.n_cells(),
        data.n_genes(),
        data.contexts.len(),
        data.treatments.iter().filter(|t| !t.is_control()).count()
    );
    let (split, split_description, task) = if has_doubles {
        let split = double_split(&data, seed)?;
        let text = double_split_description(&data, &split);
        (split, text, "predicting held-out doubles")
    } else if data.contexts.len() > 1 {
        let split = Split::new(&data, &standard_split(seed))?;
        let text = holdout_description(&split);
        (split, text, "predicting a held-out context's perturbations")
    } else {
        let config = SplitConfig {
            seed: seed & 0xFFFF_FFFF,
            mode: SplitMode::AllContextsHoldout,
            ..SplitConfig::default()
        };
        let split = Split::new(&data, &config)?;
        let text =
            format!(
            "one context (seed {}): {} test perturbations, {} measured ones as context experiments",
            split.seed,
            split.role.iter().filter(|r| **r == SplitRole::Test).count(),
            split.role.iter().filter(|r| **r == SplitRole::Train).count(),
        );
        (
            split,
            text,
            "predicting half of the perturbations from the other half",
        )
    };
    let k = context_experiments_available(&data, &split).min(8);
    Ok(Suite {
        name: name.to_string(),
        description: format!("{what}; {task}"),
        split_description,
        data,
        split,
        k,
        seconds: started.elapsed().as_secs_f64(),
        stats: serde_json::Value::Null,
        real: true,
    })
}

/// The fewest training perturbations measured in a context that has test perturbations (the most
/// context experiments every test query can be given).
fn context_experiments_available(data: &PerturbationData, split: &Split) -> usize {
    let conds = data.conditions();
    let tested: std::collections::BTreeSet<usize> = conds
        .iter()
        .zip(&split.role)
        .filter(|(_, r)| **r == SplitRole::Test)
        .map(|(c, _)| c.context)
        .collect();
    tested
        .iter()
        .map(|&ctx| {
            conds
                .iter()
                .zip(&split.role)
                .filter(|(c, r)| c.context == ctx && **r == SplitRole::Train)
                .count()
        })
        .min()
        .unwrap_or(0)
}

/// The reference split: one hold-out context, half its perturbations tested, the rest trained on.
fn standard_split(seed: u64) -> SplitConfig {
    SplitConfig {
        seed: seed & 0xFFFF_FFFF,
        ..SplitConfig::default()
    }
}

fn holdout_description(split: &Split) -> String {
    format!(
        "standard split (seed {}): hold-out context `{}`, {} test perturbations, {} train conditions",
        split.seed,
        split.holdout_context.as_deref().unwrap_or("-"),
        split.role.iter().filter(|r| **r == SplitRole::Test).count(),
        split.role.iter().filter(|r| **r == SplitRole::Train).count(),
    )
}

/// The combinatorial split: every single knock-out (and every double missing one of its singles) is
/// trained on; the doubles whose singles were both measured in their context are shuffled with `seed` and
/// half of them (at least one) are tested, the other half trained on.
pub fn double_split(data: &PerturbationData, seed: u64) -> anyhow::Result<Split> {
    let conds = data.conditions();
    let mut role = vec![SplitRole::Train; conds.len()];
    let mut eligible = Vec::new();
    for (i, c) in conds.iter().enumerate() {
        match &data.treatments[c.treatment] {
            Treatment::Control => role[i] = SplitRole::Control,
            Treatment::Combination { genes } => {
                let singles_measured = genes.iter().all(|g| {
                    data.treatments
                        .iter()
                        .position(|t| matches!(t, Treatment::Knockout { gene } if gene == g))
                        .is_some_and(|t| data.condition(c.context, t).is_some())
                });
                if singles_measured {
                    eligible.push(i);
                }
            }
            _ => {}
        }
    }
    if eligible.is_empty() {
        anyhow::bail!(
            "the data have no double perturbation whose two singles are measured in the same context; a \
             combinatorial suite needs some"
        );
    }
    eligible.shuffle(&mut Pcg64::seed_from_u64(seed));
    let n_test = eligible.len().div_ceil(2);
    for &i in &eligible[..n_test] {
        role[i] = SplitRole::Test;
    }
    Ok(Split {
        holdout_context: None,
        test_other: vec![false; conds.len()],
        role,
        mode: SplitMode::InDistribution,
        seed,
    })
}

fn double_split_description(data: &PerturbationData, split: &Split) -> String {
    let n_test = split.role.iter().filter(|r| **r == SplitRole::Test).count();
    let n_double_train = split
        .role
        .iter()
        .zip(data.conditions())
        .filter(|(r, c)| {
            **r == SplitRole::Train
                && matches!(data.treatments[c.treatment], Treatment::Combination { .. })
        })
        .count();
    format!(
        "double split (seed {}): {n_test} test doubles (both singles measured), every single and {n_double_train} \
         other doubles trained on",
        split.seed
    )
}
