//! cellshift benchmark suites: score methods and baselines on tasks with the standard protocol,
//! aggregate over seeds, and write tables, plots and reports.

pub mod plots;
pub mod score;
pub mod summary;

pub use score::{prediction_cells, score_predictor, ScoreConfig, ScoreResult};
pub use summary::{markdown_table, MetricSummary};
