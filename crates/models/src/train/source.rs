//! Where training tasks come from: a deterministic, index-addressed source, so that the task of any
//! micro-batch can be regenerated from its index alone (resumable, order-independent training).

use cellshift_data::Task;

use crate::error::Result;

/// A deterministic stream of tasks: `task(i)` always returns the same task for the same `i`.
/// Training uses indices `m·batch_size + j` for task `j` of micro-batch `m`.
pub trait TaskSource: Sync {
    /// The task with index `index` (must include a target).
    fn task(&self, index: u64) -> Result<Task>;

    /// A one-line description stored in checkpoints (prior, its parameters, its seed).
    fn describe(&self) -> String {
        "unspecified task source".to_string()
    }
}
