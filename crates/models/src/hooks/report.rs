//! What a benchmark hook hands back: the text to print, the JSON to write and an optional heat map.

use ndarray::Array2;

/// A benchmark hook's result; the command prints `text`, draws `heatmap` to `--plot` and writes `json`
/// to `--json`.
pub struct HookReport {
    /// Tables and notes for standard output.
    pub text: String,
    /// Everything, for `--json`.
    pub json: serde_json::Value,
    /// A heat map for `--plot`, when the benchmark has one.
    pub heatmap: Option<Heatmap>,
}

/// A heat map: `values[(row, column)]`, NaN where undefined.
pub struct Heatmap {
    /// The values.
    pub values: Array2<f64>,
    /// Row labels.
    pub rows: Vec<String>,
    /// Column labels.
    pub columns: Vec<String>,
    /// Axis titles: (columns, rows).
    pub axes: (String, String),
    /// Title.
    pub title: String,
}
