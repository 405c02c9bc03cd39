//! cellshift benchmark suites: score methods and baselines on tasks with the standard protocol,
//! aggregate over seeds, and write tables, plots and reports.

#![deny(missing_docs)]

pub mod auto;
pub mod cross_validation;
pub mod leaderboard;
pub mod leaderboard_report;
pub mod pairing;
pub mod plots;
pub mod score;
pub mod suites;
pub mod tta;

pub use cellshift_metrics::summary::{markdown_table, MetricSummary};
pub use score::{score_predictor, score_predictor_observed, ScoreConfig, ScoreResult, ScoredQuery};
