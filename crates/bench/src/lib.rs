//! cellshift benchmark suites: score methods and baselines on tasks with the standard protocol,
//! aggregate over seeds, and write tables, plots and reports.

#![deny(missing_docs)]

pub mod auto;
pub mod c3tl;
pub mod cross_validation;
pub mod leaderboard;
pub mod leaderboard_report;
pub mod pairing;
pub mod plots;
pub mod score;
/// The training-task sources (moved to the models crate; re-exported for existing users).
pub use cellshift_models::sources;
pub mod suites;
pub mod summary;
pub mod tta;

pub use score::{score_predictor, score_predictor_observed, ScoreConfig, ScoreResult, ScoredQuery};
pub use summary::{markdown_table, MetricSummary};

/// Inference-task building, now in the data crate (`cellshift_data::inference`); kept here for the
/// commands that have not moved to it yet.
pub use cellshift_data::inference;
/// Cells of a prediction, now in the data crate.
pub use cellshift_data::predictor::prediction_cells;
/// Data preparation for a checkpoint, now in the models crate (`cellshift_models::prepare`); kept here
/// for the commands that have not moved to it yet.
pub use cellshift_models::prepare;
