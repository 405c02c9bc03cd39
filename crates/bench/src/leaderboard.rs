//! One leaderboard for every method on every suite: each contender (a baseline, or a registered method —
//! pre-trained ones from their checkpoint, trainable ones fitted on the suite's train conditions) is
//! scored on each [`Suite`] with the suite's standard split over several resampling seeds, through the
//! shared scoring protocol ([`crate::score::score_on_split`]). A contender that cannot apply gets "n/a"
//! with the reason: declared up front from its [`Capabilities`] (context size K, targets that must be
//! measured genes, the checkpoint's gene panel), or the error its fit or prediction gave.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cellshift_baselines::{baseline_by_name, ControlBaseline, Residual, BASELINE_NAMES};
use cellshift_data::{
    Capabilities, FitContext, OutputKind, PerturbationData, Predictor, SplitRole,
};
use cellshift_metrics::MetricGroups;
use cellshift_models::registry::{self, CreateRequest, InferenceOptions};
use cellshift_models::Preprocessing;

use crate::auto::{Auto, AutoReport, Candidate};
use crate::cross_validation::{fold_scores, summarise_folds};
use crate::score::{score_on_split, ScoreConfig};
use crate::suites::Suite;
use cellshift_metrics::summary::{find, MetricSummary};
use cellshift_models::prepare::{data_preprocessing, prepare_for_model};

/// Which way a metric is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Better {
    /// Smaller is better (distances, errors).
    Lower,
    /// Larger is better (correlations, precision).
    Higher,
    /// Closer to 1 is better (magnitude ratio).
    NearOne,
}

/// The leaderboard's metrics (all others are in the JSON): key, direction. The first ranks the methods.
pub const LEADERBOARD_METRICS: &[(&str, Better)] = &[
    ("mean_rmse", Better::Lower),
    ("w2", Better::Lower),
    ("mmd", Better::Lower),
    ("pearson_delta", Better::Higher),
    ("pds", Better::Lower),
    ("deg_auprc", Better::Higher),
    ("mag_ratio", Better::NearOne),
];

/// Other metrics a leaderboard can show as columns (`cellshift bench suite --columns`): key, direction.
/// Their metric groups must be computed (see [`column_groups`]).
pub const EXTRA_COLUMNS: &[(&str, Better)] = &[
    ("mse", Better::Lower),
    ("mae", Better::Lower),
    ("mse_delta", Better::Lower),
    ("mae_delta", Better::Lower),
    ("pearson_delta_top20_de", Better::Higher),
    ("discrimination_score_l1", Better::Higher),
    ("discrimination_score_l2", Better::Higher),
    ("discrimination_score_cosine", Better::Higher),
    ("de_spearman_lfc_sig", Better::Higher),
    ("de_direction_match", Better::Higher),
    ("de_sig_genes_recall", Better::Higher),
    ("pr_auc", Better::Higher),
    ("roc_auc", Better::Higher),
    ("overlap_at_N", Better::Higher),
    ("precision_at_N", Better::Higher),
    ("energy_distance", Better::Lower),
    ("rmse_average", Better::Lower),
    ("cosine_logfc", Better::Higher),
    ("centroid_accuracy", Better::Higher),
    ("corr_20de_allpert", Better::Higher),
    ("heldout_log_likelihood_per_gene", Better::Higher),
    (VCC_SCORE, Better::Higher),
];

/// Key of the VCC-style scaled score ([`add_vcc_scores`]).
pub const VCC_SCORE: &str = "vcc_score";

/// The cell-mean baseline the VCC score is scaled against: cell-eval's baseline is the mean of the
/// training perturbations' pseudo-bulks repeated for every perturbation (`build_base_mean_adata`), which is
/// the leaderboard's `context_mean`.
pub const VCC_BASELINE: &str = "context_mean";

/// The metrics of cell-eval's `vcc` profile and whether lower is better for each.
const VCC_METRICS: [(&str, Better); 3] = [
    ("mae", Better::Lower),
    ("discrimination_score_l1", Better::Higher),
    ("overlap_at_N", Better::Higher),
];

/// Adds the VCC-style scaled score to every scored entry of a suite that also scored [`VCC_BASELINE`],
/// as cell-eval's `score` normalises the `vcc` profile against the cell-mean baseline (cell-eval
/// `score_agg_metrics`; the Virtual Cell Challenge's overall score): per metric, a lower-is-better one
/// scores `1 − model/base` and a higher-is-better one (best 1) `(model − base)/(1 − base)`; NaN counts as 0;
/// each is clipped at 0; the score is their mean (0 = no better than the baseline, 1 = perfect). It is
/// computed from the means over seeds (its std is reported as 0). Entries missing one of the three
/// metrics get no score.
///
/// Under cross-validation (`bootstrap = Some((resamples, seed))` and per-perturbation values on both
/// entries) the score also gets a paired bootstrap 95 % interval: perturbations measured for both are
/// resampled together and the score recomputed from the resampled means of model and baseline.
pub fn add_vcc_scores(entries: &mut [Entry], bootstrap: Option<(usize, u64)>) {
    let Some((base, base_perts)) = entries.iter().find(|e| e.method == VCC_BASELINE).map(|e| {
        (
            VCC_METRICS.map(|(m, _)| e.metric(m).map(|s| s.mean)),
            e.per_perturbation.clone(),
        )
    }) else {
        return;
    };
    for entry in entries.iter_mut() {
        let mut model = [0.0; 3];
        let mut base_means = [0.0; 3];
        let mut seeds = usize::MAX;
        let mut complete = true;
        for (i, ((metric, _), base)) in VCC_METRICS.iter().zip(base).enumerate() {
            let (Some(m), Some(b)) = (entry.metric(metric), base) else {
                complete = false;
                break;
            };
            seeds = seeds.min(m.n);
            model[i] = m.mean;
            base_means[i] = b;
        }
        if !complete {
            continue;
        }
        let interval = bootstrap.and_then(|(reps, seed)| {
            paired_vcc_interval(&entry.per_perturbation, &base_perts, reps, seed)
        });
        if let Outcome::Scored { summary } = &mut entry.outcome {
            summary.retain(|m| m.metric != VCC_SCORE);
            summary.push(MetricSummary {
                metric: VCC_SCORE.to_string(),
                mean: vcc_score(&model, &base_means),
                std: 0.0,
                n: seeds,
                ci_low: interval.map(|i| i.0),
                ci_high: interval.map(|i| i.1),
            });
        }
    }
}

/// The VCC-style score of a model's means of [`VCC_METRICS`] against the baseline's (see
/// [`add_vcc_scores`]).
fn vcc_score(model: &[f64; 3], base: &[f64; 3]) -> f64 {
    let parts = VCC_METRICS.iter().enumerate().map(|(i, (_, better))| {
        let scaled = match better {
            Better::Lower => 1.0 - model[i] / base[i],
            // The vcc profile has no near-one metric; treat any other as higher-is-better.
            Better::Higher | Better::NearOne => (model[i] - base[i]) / (1.0 - base[i]),
        };
        if scaled.is_nan() {
            0.0
        } else {
            scaled.max(0.0)
        }
    });
    parts.sum::<f64>() / VCC_METRICS.len() as f64
}

/// The paired bootstrap interval of the VCC score over the perturbations both entries measured; `None`
/// when they share none.
fn paired_vcc_interval(
    model: &crate::cross_validation::PerPerturbation,
    base: &crate::cross_validation::PerPerturbation,
    reps: usize,
    seed: u64,
) -> Option<(f64, f64)> {
    let value = |p: &std::collections::BTreeMap<String, f64>, i: usize| {
        p.get(VCC_METRICS[i].0).copied().unwrap_or(f64::NAN)
    };
    let shared: Vec<([f64; 3], [f64; 3])> = model
        .iter()
        .filter_map(|(pert, m)| {
            let b = base.get(pert)?;
            Some((
                [0, 1, 2].map(|i| value(m, i)),
                [0, 1, 2].map(|i| value(b, i)),
            ))
        })
        .collect();
    let mean_of = |idx: &[usize], pick: &dyn Fn(&([f64; 3], [f64; 3])) -> f64| {
        let (s, n) = idx
            .iter()
            .map(|&i| pick(&shared[i]))
            .filter(|v| v.is_finite())
            .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
        if n == 0 {
            f64::NAN
        } else {
            s / n as f64
        }
    };
    crate::cross_validation::bootstrap_interval(
        shared.len(),
        reps,
        seed,
        cellshift_data::seed::fnv1a64(VCC_SCORE.as_bytes()),
        &|idx| {
            let model = [0, 1, 2].map(|k| mean_of(idx, &|p| p.0[k]));
            let base = [0, 1, 2].map(|k| mean_of(idx, &|p| p.1[k]));
            vcc_score(&model, &base)
        },
    )
}

/// The columns of the scDFM / cell-eval papers' tables (`--columns celleval-paper`): MSE, MAE,
/// DE-Spearman (cell-eval's `de_spearman_lfc_sig`), discrimination score (L1) and Pearson Δ on the top-20
/// DE genes, after the ranking metric.
pub const CELLEVAL_PAPER_COLUMNS: &[&str] = &[
    "mean_rmse",
    "mse",
    "mae",
    "de_spearman_lfc_sig",
    "discrimination_score_l1",
    "pearson_delta_top20_de",
];

/// Which direction is better for a metric the leaderboard knows (`None` for an unknown key).
pub fn metric_direction(key: &str) -> Option<Better> {
    LEADERBOARD_METRICS
        .iter()
        .chain(EXTRA_COLUMNS)
        .find(|(m, _)| *m == key)
        .map(|(_, b)| *b)
}

/// The metric groups that compute a column, as [`MetricGroups::parse`] names them (none: computed by the
/// method itself, e.g. a likelihood).
pub fn column_groups(key: &str) -> &'static [&'static str] {
    match key {
        "heldout_log_likelihood_per_gene" => &[],
        VCC_SCORE => &["celleval", "de"],
        "mean_rmse" | "w2" | "mmd" | "pds" | "deg_auprc" | "mag_ratio" => {
            &[MetricGroups::MAPPFN_NAME]
        }
        "energy_distance" => &["distribution"],
        "rmse_average" | "cosine_logfc" => &["perturbench"],
        "centroid_accuracy" | "corr_20de_allpert" => &["systema"],
        k if k.starts_with("de_") || k.starts_with("pr_") || k.starts_with("roc_") => &["de"],
        k if k.starts_with("overlap_") || k.starts_with("precision_") => &["de"],
        _ => &["celleval"],
    }
}

/// Parses `--columns`: `default` (the [`LEADERBOARD_METRICS`]), `celleval-paper`
/// ([`CELLEVAL_PAPER_COLUMNS`]) or a comma-separated list of known metric keys. Returns the columns and
/// the metric groups they need, so that the caller can add any that are missing.
pub fn parse_columns(spec: &str) -> anyhow::Result<(Vec<String>, Vec<&'static str>)> {
    let columns: Vec<String> = match spec.trim() {
        "" | "default" => LEADERBOARD_METRICS
            .iter()
            .map(|(m, _)| m.to_string())
            .collect(),
        "celleval-paper" => CELLEVAL_PAPER_COLUMNS
            .iter()
            .map(|m| m.to_string())
            .collect(),
        list => list
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect(),
    };
    let mut groups = Vec::new();
    for c in &columns {
        if metric_direction(c).is_none() {
            let known: Vec<&str> = LEADERBOARD_METRICS
                .iter()
                .chain(EXTRA_COLUMNS)
                .map(|(m, _)| *m)
                .collect();
            anyhow::bail!(
                "--columns: unknown metric `{c}`; known: {} (or `default`, `celleval-paper`)",
                known.join(", ")
            );
        }
        for &g in column_groups(c) {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    if columns.first().map(String::as_str) != Some(RANK_METRIC) {
        anyhow::bail!(
            "--columns must start with the ranking metric `{RANK_METRIC}` (got `{}`)",
            columns.first().map(String::as_str).unwrap_or("")
        );
    }
    Ok((columns, groups))
}

/// The metric that ranks the methods of a suite: the RMSE of the predicted per-gene means.
pub const RANK_METRIC: &str = "mean_rmse";

/// Metric key prefixes that describe a cell distribution; not reported for methods that predict a
/// pseudo-bulk profile only ([`OutputKind::PseudoBulk`]).
pub const CELL_LEVEL_METRICS: &[&str] = &[
    "w2",
    "mmd",
    "mag_ratio",
    "deg_",
    "discrimination",
    "energy",
    "edistance",
];

/// How good `value` of a metric is, as a number where larger is better (for colouring and ranking).
pub fn goodness(better: Better, value: f64) -> f64 {
    match better {
        Better::Lower => -value,
        Better::Higher => value,
        Better::NearOne => -(value - 1.0).abs(),
    }
}

/// Something that is put on the leaderboard.
#[derive(Clone, Debug, PartialEq)]
pub enum Contender {
    /// A baseline by its registry name.
    Baseline(String),
    /// A registered method; pre-trained methods need a checkpoint (`None`: n/a, with the reason).
    Method {
        /// The method's registry name.
        name: String,
        /// Its checkpoint (pre-trained methods).
        checkpoint: Option<PathBuf>,
    },
    /// `auto` ([`crate::auto`]): chooses among the other contenders by cross-validation on the training
    /// perturbations, then refits the winner.
    Auto,
}

impl Contender {
    /// The name shown on the leaderboard.
    pub fn name(&self) -> &str {
        match self {
            Contender::Baseline(n) => n,
            Contender::Method { name, .. } => name,
            Contender::Auto => AUTO,
        }
    }

    /// `baseline` or `method`.
    pub fn kind(&self) -> &'static str {
        match self {
            Contender::Baseline(_) => "baseline",
            Contender::Method { .. } => "method",
            Contender::Auto => AUTO,
        }
    }
}

/// Parses `--methods`: `all` (every registered method, then every baseline), `methods`, `baselines`, or
/// comma-separated names; `checkpoint_of(name)` gives a pre-trained method's checkpoint. Errors list the
/// valid names.
pub fn parse_contenders(
    text: &str,
    checkpoint_of: &dyn Fn(&str) -> Option<PathBuf>,
) -> anyhow::Result<Vec<Contender>> {
    let method = |name: &str| Contender::Method {
        name: name.to_string(),
        checkpoint: checkpoint_of(name.split_once(RESIDUAL_SUFFIX).map_or(name, |(m, _)| m)),
    };
    let mut out: Vec<Contender> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "all" => {
                out.extend(registry::names().into_iter().map(method));
                out.extend(
                    BASELINE_NAMES
                        .iter()
                        .map(|b| Contender::Baseline(b.to_string())),
                );
            }
            "methods" => out.extend(registry::names().into_iter().map(method)),
            "baselines" => out.extend(
                BASELINE_NAMES
                    .iter()
                    .map(|b| Contender::Baseline(b.to_string())),
            ),
            name if BASELINE_NAMES.contains(&name) => out.push(Contender::Baseline(name.into())),
            AUTO => out.push(Contender::Auto),
            name if registry::names().contains(&name) => out.push(method(name)),
            // `method:preset`, e.g. `scdfm:tiny-no-mmd` (a trained method at a named preset), optionally
            // `+residual=BASELINE` (the method as a residual of a baseline).
            name if {
                let base = name.split_once(RESIDUAL_SUFFIX).map_or(name, |(m, _)| m);
                let method = base.split_once(':').map_or(base, |(m, _)| m);
                registry::names().contains(&method)
            } =>
            {
                out.push(method(name))
            }
            other => anyhow::bail!(
                "unknown method `{other}`; use all, methods, baselines, or names among {}, {}",
                registry::names().join(", "),
                BASELINE_NAMES.join(", ")
            ),
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|c| seen.insert(c.name().to_string()));
    if out.is_empty() {
        anyhow::bail!("no method given; use --methods all");
    }
    Ok(out)
}

/// The name of the [`Contender::Auto`] contender.
pub const AUTO: &str = "auto";

/// Whether `auto` may choose `contender`, by its capabilities and registry entry: not a contender that
/// reads the task's target (the oracle reads the answer), not `auto` itself, not a pre-trained method (its
/// checkpoint's preprocessing is not the suite's).
pub fn auto_may_choose(contender: &Contender) -> bool {
    match contender {
        Contender::Baseline(name) => {
            baseline_by_name(name).is_ok_and(|b| !b.capabilities().reads_target)
        }
        Contender::Method { name, .. } => {
            let name = name
                .split_once(RESIDUAL_SUFFIX)
                .map_or(name.as_str(), |(m, _)| m);
            let method = name.split_once(':').map_or(name, |(m, _)| m);
            registry::method(method).is_ok_and(|entry| entry.create.is_some())
        }
        Contender::Auto => false,
    }
}

/// How every contender is scored.
#[derive(Clone, Debug)]
pub struct LeaderboardConfig {
    /// Resampling seeds `0..seeds`.
    pub seeds: u64,
    /// Cells per set.
    pub n_cells: usize,
    /// Metric families computed (the JSON holds them all).
    pub groups: MetricGroups,
    /// How loaded methods predict (ODE solver, device).
    pub inference: InferenceOptions,
    /// Where trainable methods write their runs (`<runs>/<suite>/<method>`).
    pub runs: PathBuf,
    /// Seed of trainable methods' initial weights and training (`--train-seed`; by default `seed`).
    pub train_seed: u64,
    /// Configuration options of trained contenders: (contender name, `KEY=VALUE`), from
    /// [`parse_model_option`].
    pub model_options: Vec<(String, String)>,
    /// How test perturbations are chosen: the suite's split, or cross-validation folds of it.
    pub protocol: Protocol,
    /// Inner folds of `auto`'s choice ([`crate::auto::DEFAULT_INNER_FOLDS`] by default).
    pub auto_inner_folds: usize,
}

impl Protocol {
    /// The protocol named `name` for a suite: `cv`, `standard`, or `auto` (cross-validation on a real
    /// screen, the standard split on a synthetic suite); errors name the choices.
    pub fn resolve(
        name: &str,
        real: bool,
        folds: usize,
        bootstrap: usize,
        seed: u64,
    ) -> anyhow::Result<Protocol> {
        if folds < 2 {
            anyhow::bail!("--folds {folds} is too few; cross-validation needs at least 2");
        }
        let cv = Protocol::CrossValidation {
            folds,
            bootstrap,
            seed,
        };
        Ok(match name {
            "cv" => cv,
            "standard" => Protocol::Standard,
            "auto" if real => cv,
            "auto" => Protocol::Standard,
            other => anyhow::bail!("unknown protocol `{other}`; use auto, cv or standard"),
        })
    }
}

/// How a suite's perturbations are tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "protocol", rename_all = "snake_case")]
pub enum Protocol {
    /// The suite's one split; metrics as mean ± std over resampling seeds.
    Standard,
    /// The eligible perturbations of the suite's split dealt into seeded folds, each predicted once;
    /// metrics as mean over perturbations with a bootstrap 95 % interval
    /// ([`crate::cross_validation`]); ranks tie when intervals overlap.
    CrossValidation {
        /// Number of folds (fewer when fewer perturbations are eligible).
        folds: usize,
        /// Bootstrap resamples of each interval.
        bootstrap: usize,
        /// Seed of the fold assignment and of the bootstrap.
        seed: u64,
    },
}

impl LeaderboardConfig {
    /// The `KEY=VALUE` options given for the contender named `name`.
    pub fn model_options_of(&self, name: &str) -> Vec<String> {
        self.model_options
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, o)| o.clone())
            .collect()
    }
}

/// Parses a leaderboard `--model-option CONTENDER:KEY=VALUE` (the contender as named in `--methods`,
/// which may itself hold a `:`, e.g. `scdfm:tiny-no-mmd:training.steps=2000`).
pub fn parse_model_option(spec: &str) -> anyhow::Result<(String, String)> {
    let (head, value) = spec.split_once('=').ok_or_else(|| {
        anyhow::anyhow!(
            "--model-option `{spec}` is not CONTENDER:KEY=VALUE; e.g. celltarnet:prior.enabled=false"
        )
    })?;
    let (name, key) = head.rsplit_once(':').ok_or_else(|| {
        anyhow::anyhow!(
            "--model-option `{spec}` names no contender; write CONTENDER:KEY=VALUE, e.g. \
             celltarnet:prior.enabled=false"
        )
    })?;
    if name.trim().is_empty() || key.trim().is_empty() {
        anyhow::bail!("--model-option `{spec}` is not CONTENDER:KEY=VALUE");
    }
    Ok((name.trim().to_string(), format!("{}={value}", key.trim())))
}

/// What happened to one contender on one suite.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Scored: mean ± std over seeds of every metric.
    Scored {
        /// Per metric.
        summary: Vec<MetricSummary>,
    },
    /// Could not be scored on this suite.
    NotApplicable {
        /// Why (names the problem).
        reason: String,
        /// True when known before running (capabilities, gene panel, missing checkpoint); false when the
        /// fit or the prediction refused the suite.
        declared: bool,
    },
}

/// One row of a suite's leaderboard.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Entry {
    /// Contender name.
    pub method: String,
    /// `baseline` or `method`.
    pub kind: String,
    /// 1-based rank by [`RANK_METRIC`] among the scored entries; `None` for n/a. Under cross-validation
    /// a rank is 1 + the number of entries whose interval lies entirely on the better side of this one's,
    /// so entries with overlapping intervals can share a rank.
    pub rank: Option<usize>,
    /// True when another entry has the same rank (overlapping intervals under cross-validation).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tied: bool,
    /// Wall time of fitting and scoring, seconds.
    pub seconds: f64,
    /// The scores or why there are none.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Cross-validation: every perturbation's metric values (for paired statistics such as the VCC
    /// score's interval); empty under the standard protocol.
    #[serde(skip)]
    pub per_perturbation: crate::cross_validation::PerPerturbation,
    /// `auto`: what it chose in each fit (one per fold under cross-validation) with the inner scores.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<AutoReport>,
}

impl Entry {
    /// The summary of a metric, when scored.
    pub fn metric(&self, key: &str) -> Option<&MetricSummary> {
        match &self.outcome {
            Outcome::Scored { summary } => find(summary, key),
            Outcome::NotApplicable { .. } => None,
        }
    }
}

/// Scores every contender on `suite` and ranks the scored ones; `progress` hears one line per contender.
pub fn run_suite(
    suite: &Suite,
    contenders: &[Contender],
    config: &LeaderboardConfig,
    progress: &mut dyn FnMut(&str),
) -> Vec<Entry> {
    let score_config = ScoreConfig {
        k: suite.k,
        n_cells: config.n_cells,
        seeds: (0..config.seeds.max(1)).collect(),
        groups: config.groups,
        split: cellshift_data::SplitConfig::default(),
    };
    let mut entries: Vec<Entry> = contenders
        .iter()
        .map(|contender| {
            let started = Instant::now();
            let mut choices = Vec::new();
            let (outcome, per_perturbation) = score_contender(
                suite,
                contender,
                contenders,
                config,
                &score_config,
                &mut choices,
                progress,
            );
            let seconds = started.elapsed().as_secs_f64();
            progress(&match &outcome {
                Outcome::Scored { summary } => format!(
                    "{}: {} {} = {} ({seconds:.1} s)",
                    suite.name,
                    contender.name(),
                    RANK_METRIC,
                    find(summary, RANK_METRIC)
                        .map(|m| cellshift_metrics::summary::fmt(m.mean))
                        .unwrap_or_else(|| "n/a".into())
                ),
                Outcome::NotApplicable { reason, .. } => {
                    format!("{}: {} n/a — {reason}", suite.name, contender.name())
                }
            });
            Entry {
                method: contender.name().to_string(),
                kind: contender.kind().to_string(),
                rank: None,
                tied: false,
                seconds,
                outcome,
                per_perturbation,
                choices,
            }
        })
        .collect();
    let bootstrap = match config.protocol {
        Protocol::CrossValidation {
            bootstrap, seed, ..
        } => Some((bootstrap, seed)),
        Protocol::Standard => None,
    };
    add_vcc_scores(&mut entries, bootstrap);
    rank(&mut entries);
    entries
}

/// Sorts scored entries by [`RANK_METRIC`] (best first, NaN last), then the n/a ones, and numbers them.
/// When every scored entry has an interval for the metric (cross-validation), an entry's rank is 1 + the
/// number of entries whose whole interval is better than its whole interval, so overlapping intervals
/// share ranks (`tied`); otherwise ranks are 1, 2, 3, … in order.
pub fn rank(entries: &mut [Entry]) {
    let key = |e: &Entry| {
        e.metric(RANK_METRIC)
            .map(|m| m.mean)
            .filter(|v| v.is_finite())
    };
    entries.sort_by(|a, b| match (key(a), key(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let better = metric_direction(RANK_METRIC).unwrap_or(Better::Lower);
    // Each scored entry's interval on the goodness scale (larger is better): (worst end, best end).
    let intervals: Vec<Option<(f64, f64)>> = entries
        .iter()
        .filter(|e| key(e).is_some())
        .map(|e| {
            let m = e.metric(RANK_METRIC)?;
            let (a, b) = (goodness(better, m.ci_low?), goodness(better, m.ci_high?));
            Some((a.min(b), a.max(b)))
        })
        .collect();
    let with_intervals: Option<Vec<(f64, f64)>> = intervals.iter().copied().collect();
    // With intervals, another entry is better when its worst end beats this entry's best end.
    let ranks: Vec<usize> = match &with_intervals {
        Some(iv) if !iv.is_empty() => iv
            .iter()
            .map(|&(_, best)| {
                1 + iv
                    .iter()
                    .filter(|&&(other_worst, _)| other_worst > best)
                    .count()
            })
            .collect(),
        _ => (1..=intervals.len()).collect(),
    };
    for (i, e) in entries.iter_mut().enumerate() {
        e.rank = ranks.get(i).copied().filter(|_| key(e).is_some());
    }
    let shared: Vec<bool> = entries
        .iter()
        .map(|e| e.rank.is_some() && entries.iter().filter(|o| o.rank == e.rank).count() > 1)
        .collect();
    for (e, tied) in entries.iter_mut().zip(shared) {
        e.tied = tied;
    }
}

fn not_applicable(reason: String, declared: bool) -> Outcome {
    Outcome::NotApplicable { reason, declared }
}

/// Scores one contender on a suite under the configured protocol; the pooled per-perturbation values come
/// with it under cross-validation.
#[allow(clippy::too_many_arguments)]
fn score_contender(
    suite: &Suite,
    contender: &Contender,
    all: &[Contender],
    config: &LeaderboardConfig,
    score_config: &ScoreConfig,
    choices: &mut Vec<AutoReport>,
    progress: &mut dyn FnMut(&str),
) -> (Outcome, crate::cross_validation::PerPerturbation) {
    let mut score_on = |split: &cellshift_data::Split, fold: Option<&str>| {
        let scored = score_on(suite, split, fold, contender, all, config, score_config);
        if let Ok((_, _, Some(report))) = &scored {
            choices.push(report.clone());
        }
        scored.map(|(result, bulk, _)| (result, bulk))
    };
    match config.protocol {
        Protocol::Standard => match score_on(&suite.split, None) {
            Ok((result, pseudo_bulk)) => (
                Outcome::Scored {
                    summary: cell_level_filtered(result.summary, pseudo_bulk),
                },
                Default::default(),
            ),
            Err(outcome) => (outcome, Default::default()),
        },
        Protocol::CrossValidation {
            folds,
            bootstrap,
            seed,
        } => {
            let splits = match suite.split.cross_validation_folds(&suite.data, folds, seed) {
                Ok(s) => s,
                Err(e) => return (not_applicable(e.to_string(), true), Default::default()),
            };
            let mut scores = Vec::with_capacity(splits.len());
            let mut pseudo_bulk = false;
            for (f, split) in splits.iter().enumerate() {
                let name = format!("fold-{}", f + 1);
                match score_on(split, Some(&name)) {
                    Ok((result, bulk)) => {
                        pseudo_bulk = bulk;
                        scores.push(fold_scores(&result, &score_config.seeds));
                        progress(&format!(
                            "{}: {} fold {} of {} done ({} perturbations)",
                            suite.name,
                            contender.name(),
                            f + 1,
                            splits.len(),
                            split.test_conditions().len()
                        ));
                    }
                    Err(Outcome::NotApplicable { reason, declared }) => {
                        let reason = if declared {
                            reason
                        } else {
                            format!("fold {} of {}: {reason}", f + 1, splits.len())
                        };
                        return (not_applicable(reason, declared), Default::default());
                    }
                    Err(other) => return (other, Default::default()),
                }
            }
            let (summary, per_perturbation) = summarise_folds(&scores, bootstrap, seed);
            (
                Outcome::Scored {
                    summary: cell_level_filtered(summary, pseudo_bulk),
                },
                per_perturbation,
            )
        }
    }
}

/// A mean profile has no cell distribution: cell-level metrics of the shifted control cells it is scored
/// as would describe the control's spread, not the method; they are left out for pseudo-bulk predictors.
fn cell_level_filtered(summary: Vec<MetricSummary>, pseudo_bulk: bool) -> Vec<MetricSummary> {
    summary
        .into_iter()
        .filter(|m| !(pseudo_bulk && CELL_LEVEL_METRICS.iter().any(|p| m.metric.starts_with(p))))
        .collect()
}

/// Fits a fresh copy of `contender` on `split`'s train conditions and scores it on its test conditions;
/// the result and whether the contender predicts pseudo-bulk profiles. `fold` names the run sub-folder of
/// a trainable contender.
fn score_on(
    suite: &Suite,
    split: &cellshift_data::Split,
    fold: Option<&str>,
    contender: &Contender,
    all: &[Contender],
    config: &LeaderboardConfig,
    score_config: &ScoreConfig,
) -> Result<(crate::score::ScoreResult, bool, Option<AutoReport>), Outcome> {
    let report = Arc::new(Mutex::new(AutoReport::default()));
    let Prepared {
        mut predictor,
        preprocessing,
        run_dir,
    } = match contender {
        Contender::Auto => build_auto(suite, split, fold, all, config, score_config, &report)?,
        _ => build(suite, contender, config, fold)?,
    };
    let caps = predictor.capabilities();
    if let Some(reason) = declared_not_applicable(&caps, suite, &suite.data) {
        return Err(not_applicable(reason, true));
    }
    let pseudo_bulk = caps.output == OutputKind::PseudoBulk;
    let prepared_data;
    let data = match &preprocessing {
        None => &suite.data,
        Some((path, preprocessing)) => match prepare_for_model(&suite.data, preprocessing) {
            Ok((d, _)) => {
                prepared_data = d;
                &prepared_data
            }
            Err(e) => {
                return Err(not_applicable(
                    format!(
                        "the checkpoint {} does not fit this suite: {e}",
                        path.display()
                    ),
                    true,
                ))
            }
        },
    };
    let mut fit = FitContext {
        run_dir,
        seed: config.train_seed,
        ..FitContext::default()
    };
    score_on_split(
        data,
        predictor.as_mut(),
        split.clone(),
        score_config,
        &mut fit,
    )
    .map(|result| {
        let auto = matches!(contender, Contender::Auto)
            .then(|| report.lock().map(|r| r.clone()).ok())
            .flatten();
        (result, pseudo_bulk, auto)
    })
    .map_err(|e| not_applicable(format!("{e:#}"), false))
}

/// `auto` for one split: a fresh predictor of every candidate among `all` ([`auto_may_choose`]) per inner
/// fold and for the refit, with their run folders under `<runs>/<suite>/auto[/<fold>]/<candidate>/`.
fn build_auto(
    suite: &Suite,
    split: &cellshift_data::Split,
    fold: Option<&str>,
    all: &[Contender],
    config: &LeaderboardConfig,
    score_config: &ScoreConfig,
    report: &Arc<Mutex<AutoReport>>,
) -> Result<Prepared, Outcome> {
    let inner_folds = config.auto_inner_folds;
    let mut candidates = Vec::new();
    // Baselines first, so that a tie goes to the simpler candidate.
    let mut ordered: Vec<&Contender> = all.iter().filter(|c| auto_may_choose(c)).collect();
    ordered.sort_by_key(|c| c.kind() != "baseline");
    for contender in ordered {
        let sub = |part: &str| {
            let mut path = PathBuf::from(AUTO);
            if let Some(f) = fold {
                path = path.join(f);
            }
            path.join(contender.name().replace(':', "_"))
                .join(part)
                .to_string_lossy()
                .into_owned()
        };
        let mut per_fold = Vec::with_capacity(inner_folds);
        let mut usable = true;
        for i in 0..inner_folds {
            match build(
                suite,
                contender,
                config,
                Some(&sub(&format!("inner-{}", i + 1))),
            ) {
                Ok(p) if p.preprocessing.is_none() => per_fold.push((p.predictor, p.run_dir)),
                _ => {
                    usable = false;
                    break;
                }
            }
        }
        if !usable {
            continue;
        }
        let Ok(refit) = build(suite, contender, config, Some(&sub("refit"))) else {
            continue;
        };
        candidates.push(Candidate {
            name: contender.name().to_string(),
            per_fold,
            refit: (refit.predictor, refit.run_dir),
            baseline: matches!(contender, Contender::Baseline(_)),
        });
    }
    if candidates.is_empty() {
        return Err(not_applicable(
            "auto has no candidate: list baselines or trainable methods beside it in --methods"
                .into(),
            true,
        ));
    }
    Ok(Prepared {
        predictor: Box::new(Auto::new(
            candidates,
            split.query_kinds(&suite.data),
            score_config,
            inner_folds,
            report.clone(),
        )),
        preprocessing: None,
        run_dir: None,
    })
}

/// A contender ready to be fitted and scored: the predictor, the checkpoint and preprocessing the suite's
/// data must be brought to (pre-trained methods), and the run directory of a trainable method.
struct Prepared {
    predictor: Box<dyn Predictor>,
    preprocessing: Option<(PathBuf, Preprocessing)>,
    run_dir: Option<PathBuf>,
}

/// The contender as configured: its predictor, made a residual of a baseline when its model options
/// hold `residual=BASELINE` ([`Residual`]).
fn build(
    suite: &Suite,
    contender: &Contender,
    config: &LeaderboardConfig,
    fold: Option<&str>,
) -> Result<Prepared, Outcome> {
    let residual = config
        .model_options_of(contender.name())
        .iter()
        .filter_map(|o| o.strip_prefix(RESIDUAL_OPTION).map(str::to_string))
        .next_back()
        .or_else(|| {
            contender
                .name()
                .split_once(RESIDUAL_SUFFIX)
                .map(|(_, b)| b.to_string())
        });
    let mut prepared = build_plain(suite, contender, config, fold)?;
    if let Some(baseline) = residual {
        if let Contender::Baseline(name) = contender {
            return Err(not_applicable(
                format!(
                    "residual={baseline} applies to learned methods, not to the baseline {name}"
                ),
                true,
            ));
        }
        let inner = std::mem::replace(&mut prepared.predictor, Box::new(ControlBaseline::new()));
        prepared.predictor = Box::new(
            Residual::new(inner, &baseline).map_err(|e| not_applicable(e.to_string(), true))?,
        );
    }
    Ok(prepared)
}

/// The model option that makes a method a residual of a baseline: `CONTENDER:residual=BASELINE`.
pub const RESIDUAL_OPTION: &str = "residual=";

/// The contender-name suffix that does the same: `--methods scdfm+residual=additive` (so that a method
/// and its residual variants are listed side by side).
pub const RESIDUAL_SUFFIX: &str = "+residual=";

fn build_plain(
    suite: &Suite,
    contender: &Contender,
    config: &LeaderboardConfig,
    fold: Option<&str>,
) -> Result<Prepared, Outcome> {
    match contender {
        Contender::Auto => Err(not_applicable(
            "auto is built from the other contenders (build_auto)".into(),
            true,
        )),
        Contender::Baseline(name) => {
            let predictor =
                baseline_by_name(name).map_err(|e| not_applicable(e.to_string(), true))?;
            Ok(Prepared {
                predictor,
                preprocessing: None,
                run_dir: None,
            })
        }
        Contender::Method { name, checkpoint } => {
            let name = name
                .split_once(RESIDUAL_SUFFIX)
                .map_or(name.as_str(), |(m, _)| m);
            let (name, preset) = match name.split_once(':') {
                Some((m, p)) => (m, Some(p)),
                None => (name, None),
            };
            let entry = registry::method(name).map_err(|e| not_applicable(e.to_string(), true))?;
            if entry.create.is_none() {
                let path = checkpoint.as_ref().ok_or_else(|| {
                    not_applicable(
                        format!(
                            "{name} is pre-trained on a synthetic prior and no checkpoint was given; pass \
                             --checkpoint {name}=DIR"
                        ),
                        true,
                    )
                })?;
                let (_, preprocessing) = registry::checkpoint_method(path)
                    .map_err(|e| not_applicable(e.to_string(), true))?;
                let predictor = registry::load(path, &config.inference)
                    .map_err(|e| not_applicable(e.to_string(), false))?;
                Ok(Prepared {
                    predictor,
                    preprocessing: Some((path.clone(), preprocessing)),
                    run_dir: None,
                })
            } else {
                let request = CreateRequest {
                    preset: preset.unwrap_or(entry.presets.first().copied().unwrap_or("tiny")),
                    data: &suite.data,
                    preprocessing: data_preprocessing(&suite.data),
                    inference: config.inference.clone(),
                    seed: config.train_seed,
                    model_options: &config
                        .model_options_of(contender.name())
                        .into_iter()
                        .filter(|o| !o.starts_with(RESIDUAL_OPTION))
                        .collect::<Vec<_>>(),
                };
                let predictor = registry::create(name, &request)
                    .map_err(|e| not_applicable(e.to_string(), false))?;
                let mut run_dir = config
                    .runs
                    .join(&suite.name)
                    .join(contender.name().replace(':', "_"));
                if let Some(fold) = fold {
                    run_dir = run_dir.join(fold);
                }
                // A fresh run: the leaderboard owns this folder and retrains from scratch.
                if run_dir.exists() {
                    std::fs::remove_dir_all(&run_dir).map_err(|e| {
                        not_applicable(
                            format!("cannot clear the run folder {}: {e}", run_dir.display()),
                            false,
                        )
                    })?;
                }
                Ok(Prepared {
                    predictor,
                    preprocessing: None,
                    run_dir: Some(run_dir),
                })
            }
        }
    }
}

/// Why a predictor with `caps` cannot be scored on `suite`, judged before running: the suite's K is
/// outside the K it accepts, or it needs measured targets and some test perturbation targets a gene that
/// is not measured.
pub fn declared_not_applicable(
    caps: &Capabilities,
    suite: &Suite,
    data: &PerturbationData,
) -> Option<String> {
    if !caps.supports_k(suite.k) {
        return Some(format!(
            "accepts K = {}..{} context experiments, the suite uses K = {}",
            caps.k_min,
            caps.k_max
                .map(|k| k.to_string())
                .unwrap_or_else(|| "∞".into()),
            suite.k
        ));
    }
    if caps.needs_measured_targets {
        let mut unmeasured: Vec<String> = Vec::new();
        let mut n_test = 0;
        for (c, role) in data.conditions().iter().zip(&suite.split.role) {
            if *role != SplitRole::Test {
                continue;
            }
            n_test += 1;
            let t = &data.treatments[c.treatment];
            if t.target_genes()
                .iter()
                .any(|g| data.gene_index(g).is_none())
            {
                unmeasured.push(t.label(&data.control_label));
            }
        }
        if !unmeasured.is_empty() {
            unmeasured.sort();
            unmeasured.dedup();
            let shown: Vec<&str> = unmeasured.iter().take(4).map(String::as_str).collect();
            return Some(format!(
                "encodes a perturbation as a one-hot over the measured genes, but {} of the {n_test} test \
                 perturbations target genes that are not measured ({}{})",
                unmeasured.len(),
                shown.join(", "),
                if unmeasured.len() > shown.len() { ", …" } else { "" }
            ));
        }
    }
    None
}

#[cfg(test)]
mod contender_tests {
    use super::*;

    #[test]
    fn method_colon_preset_names_a_trained_method_at_a_preset() {
        let c = parse_contenders("scdfm:tiny-no-mmd,additive", &|_| None).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].name(), "scdfm:tiny-no-mmd");
        assert_eq!(c[0].kind(), "method");
        let e = parse_contenders("nosuch:tiny", &|_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown method `nosuch:tiny`"), "{e}");
    }
}

#[cfg(test)]
mod column_tests {
    use super::*;

    #[test]
    fn columns_parse_presets_lists_and_their_metric_groups() {
        let (cols, groups) = parse_columns("default").unwrap();
        assert_eq!(cols.len(), LEADERBOARD_METRICS.len());
        assert_eq!(groups, vec![MetricGroups::MAPPFN_NAME, "celleval"]);
        let (cols, groups) = parse_columns("celleval-paper").unwrap();
        assert_eq!(cols[3], "de_spearman_lfc_sig");
        assert_eq!(groups, vec![MetricGroups::MAPPFN_NAME, "celleval", "de"]);
        let (cols, groups) =
            parse_columns("mean_rmse, mse ,heldout_log_likelihood_per_gene").unwrap();
        assert_eq!(
            cols,
            vec!["mean_rmse", "mse", "heldout_log_likelihood_per_gene"]
        );
        assert_eq!(groups, vec![MetricGroups::MAPPFN_NAME, "celleval"]);
        assert_eq!(
            metric_direction("de_spearman_lfc_sig"),
            Some(Better::Higher)
        );
        assert_eq!(metric_direction("mae"), Some(Better::Lower));
    }

    #[test]
    fn model_options_name_their_contender() {
        assert_eq!(
            parse_model_option("a-method:prior.enabled=false").unwrap(),
            ("a-method".into(), "prior.enabled=false".into())
        );
        assert_eq!(
            parse_model_option("scdfm:tiny-no-mmd:training.steps=20").unwrap(),
            ("scdfm:tiny-no-mmd".into(), "training.steps=20".into())
        );
        assert!(parse_model_option("prior.enabled=false").is_err());
        assert!(parse_model_option("celltarnet:prior").is_err());
    }

    #[test]
    fn columns_reject_unknown_metrics_and_a_missing_rank_metric() {
        let err = parse_columns("mean_rmse,de_spearman")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown metric `de_spearman`"), "{err}");
        assert!(err.contains("de_spearman_lfc_sig"), "{err}");
        let err = parse_columns("mse,mae").unwrap_err().to_string();
        assert!(err.contains("must start with the ranking metric"), "{err}");
    }
}

#[cfg(test)]
mod vcc_tests {
    use super::*;

    fn entry(method: &str, metrics: &[(&str, f64)]) -> Entry {
        Entry {
            method: method.into(),
            kind: "baseline".into(),
            rank: None,
            tied: false,
            per_perturbation: Default::default(),
            choices: Vec::new(),
            seconds: 0.0,
            outcome: Outcome::Scored {
                summary: metrics
                    .iter()
                    .map(|(m, v)| MetricSummary {
                        metric: m.to_string(),
                        mean: *v,
                        std: 0.0,
                        n: 3,
                        ci_low: None,
                        ci_high: None,
                    })
                    .collect(),
            },
        }
    }

    fn vcc(e: &Entry) -> Option<f64> {
        e.metric(VCC_SCORE).map(|m| m.mean)
    }

    #[test]
    fn the_vcc_score_scales_each_metric_against_the_cell_mean_baseline() {
        let base = [
            ("mae", 0.2),
            ("discrimination_score_l1", 0.5),
            ("overlap_at_N", 0.2),
        ];
        let mut entries = vec![
            entry(VCC_BASELINE, &base),
            // mae 0.1 → 1 − 0.1/0.2 = 0.5; discrimination 0.75 → 0.25/0.5 = 0.5; overlap 0.6 → 0.4/0.8 = 0.5.
            entry(
                "good",
                &[
                    ("mae", 0.1),
                    ("discrimination_score_l1", 0.75),
                    ("overlap_at_N", 0.6),
                ],
            ),
            // Worse than the baseline on every metric: each part clips at 0.
            entry(
                "worse",
                &[
                    ("mae", 0.4),
                    ("discrimination_score_l1", 0.3),
                    ("overlap_at_N", 0.1),
                ],
            ),
            // A NaN part counts as 0: (0.5 + 0 + 0.5) / 3.
            entry(
                "nan",
                &[
                    ("mae", 0.1),
                    ("discrimination_score_l1", f64::NAN),
                    ("overlap_at_N", 0.6),
                ],
            ),
            // A missing metric: no score.
            entry("partial", &[("mae", 0.1)]),
        ];
        add_vcc_scores(&mut entries, None);
        assert_eq!(vcc(&entries[0]), Some(0.0), "the baseline scores 0");
        assert!((vcc(&entries[1]).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(vcc(&entries[2]), Some(0.0));
        assert!((vcc(&entries[3]).unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(vcc(&entries[4]), None);
        // Without the baseline nothing is scored.
        let mut alone = vec![entry("good", &[("mae", 0.1)])];
        add_vcc_scores(&mut alone, None);
        assert_eq!(vcc(&alone[0]), None);
    }

    #[test]
    fn the_vcc_column_asks_for_the_groups_it_needs() {
        let (_, groups) = parse_columns("mean_rmse,vcc_score").unwrap();
        assert!(
            groups.contains(&"celleval") && groups.contains(&"de"),
            "{groups:?}"
        );
    }

    #[test]
    fn overlapping_intervals_share_ranks_and_separate_ones_do_not() {
        let with_ci = |method: &str, mean: f64, lo: f64, hi: f64| {
            let mut e = entry(method, &[(RANK_METRIC, mean)]);
            if let Outcome::Scored { summary } = &mut e.outcome {
                summary[0].ci_low = Some(lo);
                summary[0].ci_high = Some(hi);
            }
            e
        };
        let mut entries = vec![
            with_ci("c", 3.8, 3.5, 4.0),
            with_ci("b", 2.4, 1.8, 3.0),
            with_ci("a", 1.5, 1.0, 2.0),
            with_ci("d", 3.2, 2.9, 3.6),
        ];
        rank(&mut entries);
        let got: Vec<(&str, Option<usize>, bool)> = entries
            .iter()
            .map(|e| (e.method.as_str(), e.rank, e.tied))
            .collect();
        // a and b overlap (rank 1 both); d overlaps b but lies wholly above a (rank 2); c lies above a and
        // b but overlaps d (rank 3).
        assert_eq!(
            got,
            [
                ("a", Some(1), true),
                ("b", Some(1), true),
                ("d", Some(2), false),
                ("c", Some(3), false)
            ]
        );
        // Without intervals ranks are 1, 2, 3, … by the mean.
        let mut plain = vec![
            entry("x", &[(RANK_METRIC, 2.0)]),
            entry("y", &[(RANK_METRIC, 1.0)]),
        ];
        rank(&mut plain);
        assert_eq!(
            (plain[0].rank, plain[0].tied, plain[1].rank),
            (Some(1), false, Some(2))
        );
    }
}
