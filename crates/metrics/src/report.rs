//! The evaluation report: per-perturbation metric values, their mean and NaN-ignoring mean, global
//! metrics and the cell-eval-style block, serialised to the oracle's JSON schema (NaN/inf → null, keys
//! in a fixed order), a readable text table and a per-perturbation CSV.

use crate::error::MetricsError;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// One metric value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    /// A real number (NaN/inf serialise as null).
    Float(f64),
    /// A count.
    Int(i64),
    /// A list of integers (iteration counts, gene indices).
    IntList(Vec<i64>),
    /// A list of flags (convergence of the Sinkhorn sub-problems).
    BoolList(Vec<bool>),
}

impl MetricValue {
    /// The value as a real number if it is a scalar (counts converted).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            MetricValue::Float(v) => Some(*v),
            MetricValue::Int(v) => Some(*v as f64),
            _ => None,
        }
    }
}

fn finite_or_null<S: Serializer>(v: f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(v)
    } else {
        s.serialize_none()
    }
}

impl Serialize for MetricValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MetricValue::Float(v) => finite_or_null(*v, s),
            MetricValue::Int(v) => s.serialize_i64(*v),
            MetricValue::IntList(v) => v.serialize(s),
            MetricValue::BoolList(v) => v.serialize(s),
        }
    }
}

/// An ordered list of (key, value) pairs serialised as a JSON object in insertion order.
#[derive(Debug, Clone, PartialEq)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<V> Ordered<V> {
    /// Appends a key.
    pub fn push(&mut self, k: impl Into<String>, v: V) {
        self.0.push((k.into(), v));
    }
    /// Looks a key up.
    pub fn get(&self, k: &str) -> Option<&V> {
        self.0.iter().find(|(kk, _)| kk == k).map(|(_, v)| v)
    }
    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

struct F(f64);
impl Serialize for F {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        finite_or_null(self.0, s)
    }
}

impl Serialize for Ordered<MetricValue> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl Serialize for Ordered<f64> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, &F(*v))?;
        }
        m.end()
    }
}

/// Metrics of one perturbation.
#[derive(Debug, Clone, PartialEq)]
pub struct PerturbationReport {
    /// Perturbation name.
    pub name: String,
    /// Metric values in output order.
    pub values: Ordered<MetricValue>,
}

impl Serialize for PerturbationReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.values.0.len() + 1))?;
        m.serialize_entry("name", &self.name)?;
        for (k, v) in &self.values.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// The block named like native cell-eval's output (`cell_eval` in the oracle JSON): its column names,
/// per perturbation and their null-ignoring mean, or the reason it was skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct CellEvalBlock {
    /// "ok" or "skipped".
    pub status: String,
    /// Why it was skipped.
    pub reason: Option<String>,
    /// Per perturbation (by name), cell-eval's column names.
    pub per_perturbation: Vec<(String, Ordered<f64>)>,
    /// Mean over perturbations ignoring NaN (polars `describe()` mean).
    pub agg_mean: Ordered<f64>,
}

impl Serialize for CellEvalBlock {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("status", &self.status)?;
        if let Some(r) = &self.reason {
            m.serialize_entry("reason", r)?;
        }
        if self.status == "ok" {
            struct Per<'a>(&'a [(String, Ordered<f64>)]);
            impl Serialize for Per<'_> {
                fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    let mut m = s.serialize_map(Some(self.0.len()))?;
                    for (k, v) in self.0 {
                        m.serialize_entry(k, v)?;
                    }
                    m.end()
                }
            }
            m.serialize_entry("per_perturbation", &Per(&self.per_perturbation))?;
            m.serialize_entry("agg_mean", &self.agg_mean)?;
        }
        m.end()
    }
}

/// The result of [`crate::evaluate`]; serialises to the oracle's JSON schema.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    /// Case label (file name) if known.
    pub case: Option<String>,
    /// Number of control cells.
    pub n_obs: usize,
    /// Number of genes.
    pub n_genes: usize,
    /// Number of perturbations.
    pub n_perts: usize,
    /// Per-perturbation metrics, in case order.
    pub per_perturbation: Vec<PerturbationReport>,
    /// Plain (NaN-propagating) mean over perturbations of each scalar metric.
    pub mean: Ordered<f64>,
    /// NaN-ignoring mean (NaN only if all values are NaN).
    pub nanmean: Ordered<f64>,
    /// Metrics computed jointly over perturbations.
    pub global: Ordered<MetricValue>,
    /// cell-eval-style block (when the cell-eval and DE groups are selected).
    pub cell_eval: Option<CellEvalBlock>,
    /// Wall-clock seconds per stage.
    pub timing: Ordered<f64>,
}

impl Serialize for EvalReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(c) = &self.case {
            m.serialize_entry("case", c)?;
        }
        m.serialize_entry("n_obs", &self.n_obs)?;
        m.serialize_entry("n_genes", &self.n_genes)?;
        m.serialize_entry("n_perts", &self.n_perts)?;
        m.serialize_entry("per_perturbation", &self.per_perturbation)?;
        m.serialize_entry("mean", &self.mean)?;
        m.serialize_entry("nanmean", &self.nanmean)?;
        if let Some(c) = &self.cell_eval {
            m.serialize_entry("cell_eval", c)?;
        }
        m.serialize_entry("timing", &self.timing)?;
        m.serialize_entry("global", &self.global)?;
        m.end()
    }
}

fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else if v == v.trunc() && v.abs() < 1e9 {
        format!("{v:.0}")
    } else if v.abs() >= 1e-3 && v.abs() < 1e5 {
        format!("{v:.6}")
    } else {
        format!("{v:.4e}")
    }
}

fn fmt_value(v: &MetricValue) -> String {
    match v {
        MetricValue::Float(x) => fmt_num(*x),
        MetricValue::Int(i) => i.to_string(),
        MetricValue::IntList(l) => l
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        MetricValue::BoolList(l) => l
            .iter()
            .map(|&b| if b { "T" } else { "F" })
            .collect::<Vec<_>>()
            .join(""),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Perturbation columns are shown in the text table up to this many perturbations.
pub const TABLE_MAX_PERT_COLUMNS: usize = 8;

impl EvalReport {
    /// Serialises to pretty JSON in the oracle's schema.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// Writes the JSON atomically (temporary file in the same folder, then rename).
    pub fn write_json(&self, path: impl AsRef<Path>) -> Result<(), MetricsError> {
        write_atomic(path.as_ref(), self.to_json().as_bytes())
    }

    /// Value of `key` for perturbation `name`.
    pub fn value(&self, name: &str, key: &str) -> Option<&MetricValue> {
        self.per_perturbation
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.values.get(key))
    }

    /// Scalar metric keys in output order (the rows of the table and the CSV columns).
    pub fn scalar_keys(&self) -> Vec<String> {
        self.mean.keys().map(|k| k.to_string()).collect()
    }

    /// A readable, aligned text table: one row per metric with its mean (NaN-ignoring mean in
    /// brackets when it differs), one column per perturbation when there are at most
    /// [`TABLE_MAX_PERT_COLUMNS`], followed by the global metrics.
    pub fn to_table(&self) -> String {
        let show_perts = self.per_perturbation.len() <= TABLE_MAX_PERT_COLUMNS;
        let mut header = vec!["metric".to_string(), "mean".to_string()];
        if show_perts {
            header.extend(self.per_perturbation.iter().map(|p| p.name.clone()));
        }
        let mut rows = vec![header];
        for (k, m) in &self.mean.0 {
            let nm = self.nanmean.get(k).copied().unwrap_or(f64::NAN);
            let mean = if m.is_nan() && !nm.is_nan() {
                format!("NaN [{}]", fmt_num(nm))
            } else {
                fmt_num(*m)
            };
            let mut row = vec![k.clone(), mean];
            if show_perts {
                for p in &self.per_perturbation {
                    row.push(p.values.get(k).map(fmt_value).unwrap_or_else(|| "-".into()));
                }
            }
            rows.push(row);
        }
        let ncol = rows[0].len();
        let widths: Vec<usize> = (0..ncol)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        out.push_str(&format!(
            "{} perturbations, {} genes, {} control cells\n",
            self.n_perts, self.n_genes, self.n_obs
        ));
        for (i, r) in rows.iter().enumerate() {
            let line: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(c, s)| {
                    if c == 0 {
                        format!("{:<w$}", s, w = widths[c])
                    } else {
                        format!("{:>w$}", s, w = widths[c])
                    }
                })
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
            if i == 0 {
                out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (ncol - 1)));
                out.push('\n');
            }
        }
        if !self.global.0.is_empty() {
            out.push_str("\nglobal\n");
            let w = self.global.keys().map(|k| k.len()).max().unwrap_or(0);
            for (k, v) in &self.global.0 {
                out.push_str(&format!("{:<w$}  {}\n", k, fmt_value(v), w = w));
            }
        }
        out
    }

    /// CSV with one row per perturbation (`name` then every scalar metric; NaN as empty field).
    pub fn to_csv(&self) -> String {
        let keys = self.scalar_keys();
        let mut out = String::from("name");
        for k in &keys {
            out.push(',');
            out.push_str(&csv_field(k));
        }
        out.push('\n');
        for p in &self.per_perturbation {
            out.push_str(&csv_field(&p.name));
            for k in &keys {
                out.push(',');
                if let Some(v) = p.values.get(k).and_then(|v| v.as_f64()) {
                    if v.is_finite() {
                        out.push_str(&format!("{v}"));
                    } else if v.is_infinite() {
                        out.push_str(if v > 0.0 { "inf" } else { "-inf" });
                    }
                }
            }
            out.push('\n');
        }
        out
    }
}

/// Writes bytes to `path` atomically: a temporary file next to it, flushed, then renamed over it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MetricsError> {
    let err = |e: std::io::Error| MetricsError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let fname = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{fname}.{}.partial", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}
