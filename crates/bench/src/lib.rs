//! cellshift benchmark suites: score methods and baselines on tasks with the standard protocol,
//! aggregate over seeds, and write tables, plots and reports.

pub mod inference;
pub mod plots;
pub mod prepare;
pub mod score;
pub mod sources;
pub mod summary;
pub mod tta;

pub use score::{prediction_cells, score_predictor, ScoreConfig, ScoreResult, ScoredQuery};
pub use summary::{markdown_table, MetricSummary};
