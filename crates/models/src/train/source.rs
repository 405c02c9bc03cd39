//! Where training tasks come from: a deterministic, index-addressed source, so that the task of any
//! micro-batch can be regenerated from its index alone (resumable, order-independent training).

use cellshift_data::Task;

use crate::error::Result;

/// A deterministic stream of micro-batches of a method's batch type: `batch(m, size)` always returns the
/// same batch for the same `(m, size)`.
pub trait BatchSource<B>: Sync {
    /// Micro-batch `micro_batch` with `size` items.
    fn batch(&self, micro_batch: u64, size: usize) -> Result<B>;
    /// A one-line description stored in checkpoints.
    fn describe(&self) -> String;
}

/// Every task source is a batch source of `Vec<Task>`: task `j` of micro-batch `m` is
/// `task(m·size + j)`.
impl<S: TaskSource + ?Sized> BatchSource<Vec<Task>> for S {
    fn batch(&self, micro_batch: u64, size: usize) -> Result<Vec<Task>> {
        let b = size as u64;
        (0..b).map(|j| self.task(micro_batch * b + j)).collect()
    }

    fn describe(&self) -> String {
        TaskSource::describe(self)
    }
}

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
