//! cellshift benchmark suites: score methods and baselines on tasks with the standard protocol,
//! aggregate over seeds, and write tables, plots and reports.

#![deny(missing_docs)]

pub mod auto;
pub mod cross_validation;
pub mod inference;
pub mod leaderboard;
pub mod leaderboard_report;
pub mod pairing;
pub mod plots;
pub mod prepare;
pub mod score;
/// The training-task sources (moved to the models crate; re-exported for existing users).
pub use cellshift_models::sources;
pub mod suites;
/// Mean ± std over seeds and markdown tables (moved to the metrics crate; re-exported for existing users).
pub use cellshift_metrics::summary;
pub mod tta;

pub use score::{
    prediction_cells, score_predictor, score_predictor_observed, ScoreConfig, ScoreResult,
    ScoredQuery,
};
pub use summary::{markdown_table, MetricSummary};
