//! Optional hooks of a method's registry entry ([`MethodHooks`]): the commands that used to name a method
//! (`import`, `bench speed`, `bench sweep`, the method-specific `--split` choices) call these instead, so
//! that a method's reference importer, speed benchmark, sweeps and splits live in the method's folder.
//! Each submodule holds one hook's request and signature; [`kit`] holds the scoring machinery the commands
//! lend to the hooks (implemented outside this crate, by the benchmark code).

pub mod import;
pub mod kit;
pub mod options;
pub mod report;
pub mod speed;
pub mod split;
pub mod sweep;

pub use import::{ImportFn, ImportRequest};
pub use kit::{BenchKit, ScoreSetup};
pub use options::{comma_list, parse_options};
pub use report::{Heatmap, HookReport};
pub use speed::{SpeedFn, SpeedRequest};
pub use split::{SplitFn, SplitParams, Splits};
pub use sweep::{SweepFn, SweepInput, SweepRequest};

/// The optional hooks of a method (`None`: the method has no such command).
#[derive(Clone, Copy)]
pub struct MethodHooks {
    /// Imports the authors' reference weights as a checkpoint (`cellshift import --method M`).
    pub import: Option<ImportFn>,
    /// The method's speed benchmark (`cellshift bench speed --method M`).
    pub speed: Option<SpeedFn>,
    /// The method's own benchmark and sweeps (`cellshift bench sweep --method M`).
    pub sweep: Option<SweepFn>,
    /// Splits of the method's paper that any method may train and be scored on (`--split NAME`).
    pub splits: Option<Splits>,
}

impl MethodHooks {
    /// No hook.
    pub const NONE: MethodHooks = MethodHooks {
        import: None,
        speed: None,
        sweep: None,
        splits: None,
    };
}
