//! The benchmark-and-sweeps hook (`cellshift bench sweep --method M`).

use cellshift_data::{PerturbationData, Split, TrainOverrides};

use super::{BenchKit, HookReport};

/// One data set of a sweep: a file (`--data`) or a benchmark suite (`--suites`).
pub struct SweepInput {
    /// The file's path or the suite's name.
    pub name: String,
    /// What it tests (suites), empty for files.
    pub description: String,
    /// Log-normalised cells.
    pub data: PerturbationData,
    /// The suite's standard split and its description (files: none).
    pub split: Option<(Split, String)>,
    /// Context experiments per task of the suite (files: none).
    pub k: Option<usize>,
    /// Cells per set of the suite's scale (files: none).
    pub cells: Option<usize>,
}

/// What `cellshift bench sweep` hands a method's benchmark (each uses what applies to it).
pub struct SweepRequest<'a> {
    /// The data sets.
    pub inputs: &'a [SweepInput],
    /// Model size (`None`: the benchmark's default).
    pub preset: Option<&'a str>,
    /// Baselines scored beside the method (`None`: the benchmark's default).
    pub baselines: Option<&'a [String]>,
    /// Seed of the splits and the model's weights.
    pub seed: u64,
    /// Resampling seeds 0..N (`None`: the benchmark's default).
    pub seeds: Option<u64>,
    /// Cells per set (`None`: the input's or the benchmark's default).
    pub cells: Option<usize>,
    /// Training overrides (steps, batch size, learning rate).
    pub train: TrainOverrides,
    /// `KEY=VALUE` settings of the model's configuration (`--model-option`).
    pub model_options: &'a [String],
    /// The benchmark's own `KEY=VALUE` settings (`--option`, read with [`super::parse_options`]).
    pub options: &'a [String],
    /// Scoring machinery of the benchmark code.
    pub kit: &'a dyn BenchKit,
}

/// A method's benchmark and sweeps.
pub type SweepFn = fn(&SweepRequest<'_>) -> anyhow::Result<HookReport>;
