//! Writes the leaderboard: one markdown file and one JSON file for every suite, and a PNG per suite
//! (methods × metrics heat-map with the values, n/a rows in grey). Every file is written atomically.

use std::path::{Path, PathBuf};

use cellshift_data::atomic::write_bytes_atomically;

use crate::leaderboard::{
    goodness, metric_direction, Better, Entry, Outcome, Protocol, RANK_METRIC,
};
use crate::plots::{table_heatmap_png, HeatmapCell};
use cellshift_metrics::summary::fmt;

/// One suite's part of the leaderboard.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SuiteBoard {
    /// Suite name.
    pub suite: String,
    /// Why the suite was skipped (absent data); `None` when it ran.
    pub skipped: Option<String>,
    /// What the suite tests.
    pub description: String,
    /// The split used.
    pub split: String,
    /// How its perturbations were tested (the suite's split, or cross-validation folds of it).
    pub protocol: Protocol,
    /// Context experiments per task.
    pub k: usize,
    /// Cells × genes of the suite.
    pub shape: (usize, usize),
    /// Seconds to generate or read the suite.
    pub generation_seconds: f64,
    /// Suite statistics (synthetic suites).
    pub stats: serde_json::Value,
    /// Ranked rows.
    pub entries: Vec<Entry>,
    /// The heat-map file name (in the output folder).
    pub png: Option<String>,
}

/// The whole leaderboard.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Leaderboard {
    /// The command that produced it.
    pub command: String,
    /// Suite scale (`tiny`, `small`).
    pub scale: String,
    /// Resampling seeds per suite.
    pub seeds: u64,
    /// Cells per set.
    pub cells: usize,
    /// The metric that ranks methods.
    pub rank_metric: String,
    /// The metrics of the tables.
    pub metrics: Vec<String>,
    /// Per suite.
    pub suites: Vec<SuiteBoard>,
    /// Wall time of the whole run, seconds.
    pub seconds: f64,
}

/// Writes `leaderboard.md`, `leaderboard.json` and `<suite>.png` into `dir` (created when absent) and
/// returns the paths written.
pub fn write_leaderboard(dir: &Path, board: &mut Leaderboard) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create the output folder {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for suite in board.suites.iter_mut() {
        if suite.skipped.is_some() || suite.entries.is_empty() {
            continue;
        }
        let name = format!("{}.png", suite.suite);
        let path = dir.join(&name);
        suite_png(&path, suite, &board.metrics)?;
        suite.png = Some(name);
        written.push(path);
    }
    let json = dir.join("leaderboard.json");
    write_bytes_atomically(&json, serde_json::to_string_pretty(board)?.as_bytes())?;
    written.push(json);
    let md = dir.join("leaderboard.md");
    write_bytes_atomically(&md, markdown(board).as_bytes())?;
    written.push(md);
    Ok(written)
}

/// The leaderboard as markdown: per suite, its description, split, statistics and a ranked table with
/// mean ± std over seeds, n/a rows with their reason.
pub fn markdown(board: &Leaderboard) -> String {
    let mut out = format!(
        "# Leaderboard\n\n`{}`\n\nScale `{}`, {} resampling seeds, {} cells per set; ranked by `{}` (lower is \
         better). Standard protocol: mean ± std over seeds. Cross-validation: mean over perturbations \
         [bootstrap 95 % interval]; `=` marks ranks shared by overlapping intervals. {:.0} s in total.\n",
        board.command, board.scale, board.seeds, board.cells, board.rank_metric, board.seconds
    );
    for suite in &board.suites {
        out += &format!("\n## {}\n\n", suite.suite);
        if let Some(reason) = &suite.skipped {
            out += &format!("Skipped: {reason}\n");
            continue;
        }
        out += &format!(
            "{}. {} cells × {} genes, built in {:.2} s; {}; K = {}; {}.\n",
            suite.description,
            suite.shape.0,
            suite.shape.1,
            suite.generation_seconds,
            suite.split,
            suite.k,
            protocol_description(&suite.protocol)
        );
        if let Some(stats) = suite.stats.as_object() {
            let parts: Vec<String> = stats
                .iter()
                .map(|(k, v)| match v.as_f64() {
                    Some(x) if !v.is_u64() => format!("{k} {}", fmt(x)),
                    _ => format!("{k} {v}"),
                })
                .collect();
            out += &format!("Statistics: {}.\n", parts.join(", "));
        }
        out += "\n";
        out += &table(&suite.entries, &board.metrics);
        out += &auto_choices(&suite.entries);
        if let Some(png) = &suite.png {
            out += &format!("\n![{}]({png})\n", suite.suite);
        }
    }
    out
}

/// What `auto` chose in each of its fits, with the inner mean RMSE of every candidate ("" without `auto`).
fn auto_choices(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries.iter().filter(|e| !e.choices.is_empty()) {
        let fits: Vec<String> = e
            .choices
            .iter()
            .map(|c| {
                let inner: Vec<String> = c
                    .inner
                    .iter()
                    .map(|s| match s.mean_rmse {
                        Some(v) => format!("{} {}", s.name, fmt(v)),
                        None => format!("{} n/a", s.name),
                    })
                    .collect();
                format!("**{}** ({})", c.chosen, inner.join(", "))
            })
            .collect();
        out += &format!(
            "\n`{}` chose, per fit (inner mean_rmse of each candidate on the training perturbations): {}.\n",
            e.method,
            fits.join("; ")
        );
    }
    out
}

/// One phrase saying how a suite's perturbations were tested.
fn protocol_description(protocol: &Protocol) -> String {
    match protocol {
        Protocol::Standard => "standard protocol (the split above)".into(),
        Protocol::CrossValidation {
            folds,
            bootstrap,
            seed,
        } => format!(
            "cross-validation: the split's perturbations in {folds} folds (seed {seed}), each predicted \
             once; {bootstrap} bootstrap resamples over perturbations"
        ),
    }
}

fn table(entries: &[Entry], columns: &[String]) -> String {
    let metrics: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut out = format!(
        "| rank | method | kind | {} |\n|---|---|---|{}\n",
        metrics.join(" | "),
        "---|".repeat(metrics.len())
    );
    for e in entries {
        let rank = match e.rank {
            Some(r) if e.tied => format!("{r}="),
            Some(r) => r.to_string(),
            None => "–".into(),
        };
        match &e.outcome {
            Outcome::Scored { .. } => {
                let cells: Vec<String> = metrics
                    .iter()
                    .map(|m| match e.metric(m) {
                        Some(s) if s.mean.is_finite() => match (s.ci_low, s.ci_high) {
                            (Some(lo), Some(hi)) => {
                                format!("{} [{}, {}]", fmt(s.mean), fmt(lo), fmt(hi))
                            }
                            _ => format!("{} ± {}", fmt(s.mean), fmt(s.std)),
                        },
                        _ => "n/a".into(),
                    })
                    .collect();
                out += &format!(
                    "| {rank} | {} | {} | {} |\n",
                    e.method,
                    e.kind,
                    cells.join(" | ")
                );
            }
            Outcome::NotApplicable { reason, .. } => {
                let reason = reason.replace('|', "/").replace('\n', " ");
                out += &format!(
                    "| {rank} | {} | {} | n/a: {reason} |{}\n",
                    e.method,
                    e.kind,
                    " |".repeat(metrics.len() - 1)
                );
            }
        }
    }
    out
}

fn suite_png(path: &Path, suite: &SuiteBoard, columns: &[String]) -> anyhow::Result<()> {
    let rows: Vec<String> = suite
        .entries
        .iter()
        .map(|e| match e.rank {
            Some(r) => format!("{r}. {}", e.method),
            None => format!("–  {}", e.method),
        })
        .collect();
    let directions: Vec<(&str, Better)> = columns
        .iter()
        .map(|m| (m.as_str(), metric_direction(m).unwrap_or(Better::Higher)))
        .collect();
    let mut cells: Vec<Vec<HeatmapCell>> = Vec::with_capacity(rows.len());
    for e in &suite.entries {
        let row = directions
            .iter()
            .map(|(m, _)| match (&e.outcome, e.metric(m)) {
                (Outcome::NotApplicable { .. }, _) => HeatmapCell {
                    text: "n/a".into(),
                    shade: None,
                },
                (_, Some(s)) if s.mean.is_finite() => HeatmapCell {
                    text: fmt(s.mean),
                    shade: None,
                },
                _ => HeatmapCell {
                    text: "n/a".into(),
                    shade: None,
                },
            })
            .collect();
        cells.push(row);
    }
    // Shade per column: 1 for the best scored value, 0 for the worst.
    for (j, (m, better)) in directions.iter().enumerate() {
        let values: Vec<Option<f64>> = suite
            .entries
            .iter()
            .map(|e| {
                e.metric(m)
                    .map(|s| s.mean)
                    .filter(|v| v.is_finite())
                    .map(|v| goodness(*better, v))
            })
            .collect();
        let (lo, hi) = values
            .iter()
            .flatten()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        for (i, v) in values.iter().enumerate() {
            if let Some(v) = v {
                cells[i][j].shade = Some(if hi > lo { (v - lo) / (hi - lo) } else { 1.0 });
            }
        }
    }
    let title = format!(
        "{}: methods × metrics (green = best of the column; ranked by {RANK_METRIC})",
        suite.suite
    );
    table_heatmap_png(path, &title, &rows, columns, &cells)?;
    Ok(())
}
