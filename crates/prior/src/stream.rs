//! Background generation of prior data sets for training: worker threads produce data sets into a
//! bounded channel, in index order, each from a seed derived from `(base_seed, index)`, so a run is
//! reproducible, never waits on disk, and can resume from any index.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use cellshift_data::PerturbationData;

use crate::error::PriorError;
use crate::normalize::normalize_dataset;
use crate::rng::derive_seed;
use crate::scm::LinearScmPrior;
use crate::sergio::prior::SergioPrior;
use cellshift_data::preprocess::NormalizeTarget;

/// Something that turns `(index, seed)` into one data set. Implemented by the priors.
pub trait DatasetSource: Send + Sync + 'static {
    /// Produces data set number `index` from `seed` (deterministic in `seed`).
    fn sample(&self, index: u64, seed: u64) -> Result<PerturbationData, PriorError>;
}

impl DatasetSource for LinearScmPrior {
    fn sample(&self, index: u64, seed: u64) -> Result<PerturbationData, PriorError> {
        LinearScmPrior::sample_named(&self.config, seed, &format!("scm_{index:06}"))
    }
}

impl DatasetSource for SergioPrior {
    fn sample(&self, index: u64, seed: u64) -> Result<PerturbationData, PriorError> {
        SergioPrior::sample_named(&self.config, seed, &format!("grn_{index:06}"))
    }
}

/// A source whose data sets are normalised (spec §6.8) before they are handed out.
pub struct Normalized<S> {
    /// The wrapped source.
    pub inner: S,
    /// The normalisation target.
    pub target: Option<NormalizeTarget>,
}

impl<S: DatasetSource> DatasetSource for Normalized<S> {
    fn sample(&self, index: u64, seed: u64) -> Result<PerturbationData, PriorError> {
        normalize_dataset(&self.inner.sample(index, seed)?, self.target)
    }
}

/// Settings of a [`PriorStream`].
#[derive(Clone, Debug, PartialEq)]
pub struct StreamConfig {
    /// Base seed; data set `i` uses `derive_seed(base_seed, i)`.
    pub base_seed: u64,
    /// First index (resume point).
    pub start_index: u64,
    /// Number of data sets to produce (`None` = endless).
    pub count: Option<u64>,
    /// Worker threads.
    pub workers: usize,
    /// Data sets produced ahead of the consumer at most (channel bound).
    pub capacity: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            base_seed: 42,
            start_index: 0,
            count: None,
            workers: 2,
            capacity: 8,
        }
    }
}

/// Seed of data set `index` under `base_seed`.
pub fn dataset_seed(base_seed: u64, index: u64) -> u64 {
    derive_seed(base_seed, index)
}

struct Gate {
    /// Next index a worker may claim.
    next: u64,
    /// Index the consumer will receive next.
    delivered: u64,
}

/// Data sets generated on worker threads, delivered in index order. Dropping the stream stops the
/// workers.
pub struct PriorStream {
    receiver: Receiver<(u64, Result<PerturbationData, PriorError>)>,
    pending: BTreeMap<u64, Result<PerturbationData, PriorError>>,
    next_index: u64,
    end: Option<u64>,
    gate: Arc<(Mutex<Gate>, Condvar)>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl PriorStream {
    /// Starts `config.workers` threads producing data sets of `source`.
    pub fn new<S: DatasetSource>(
        source: S,
        config: StreamConfig,
    ) -> Result<PriorStream, PriorError> {
        if config.workers == 0 || config.capacity == 0 {
            return Err(PriorError::invalid(
                "workers / capacity",
                format!("{} / {}", config.workers, config.capacity),
                "a stream needs at least one worker and room for one data set",
                "use workers ≥ 1 and capacity ≥ 1",
            ));
        }
        let source = Arc::new(source);
        let (tx, rx) = sync_channel(config.capacity);
        let gate = Arc::new((
            Mutex::new(Gate {
                next: config.start_index,
                delivered: config.start_index,
            }),
            Condvar::new(),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let end = config.count.map(|c| config.start_index + c);
        let window = config.capacity as u64;
        let workers = (0..config.workers)
            .map(|_| {
                let (source, tx, gate, stop) =
                    (source.clone(), tx.clone(), gate.clone(), stop.clone());
                let base = config.base_seed;
                std::thread::spawn(move || loop {
                    let index = {
                        let (lock, cv) = &*gate;
                        let mut g = match lock.lock() {
                            Ok(g) => g,
                            Err(_) => return,
                        };
                        // Do not run more than `window` data sets ahead of the consumer.
                        while !stop.load(Ordering::Relaxed) && g.next >= g.delivered + window {
                            g = match cv.wait(g) {
                                Ok(g) => g,
                                Err(_) => return,
                            };
                        }
                        if stop.load(Ordering::Relaxed) || end.is_some_and(|e| g.next >= e) {
                            return;
                        }
                        g.next += 1;
                        g.next - 1
                    };
                    let result = source.sample(index, dataset_seed(base, index));
                    if tx.send((index, result)).is_err() {
                        return;
                    }
                })
            })
            .collect();
        Ok(PriorStream {
            receiver: rx,
            pending: BTreeMap::new(),
            next_index: config.start_index,
            end,
            gate,
            stop,
            workers,
        })
    }

    /// Index of the data set the next call to [`PriorStream::next_dataset`] returns (the resume point).
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// The next data set in index order with its index; `None` once `count` data sets were delivered.
    pub fn next_dataset(&mut self) -> Option<(u64, Result<PerturbationData, PriorError>)> {
        if self.end.is_some_and(|e| self.next_index >= e) {
            return None;
        }
        let want = self.next_index;
        let result = loop {
            if let Some(r) = self.pending.remove(&want) {
                break r;
            }
            match self.receiver.recv() {
                Ok((i, r)) => {
                    self.pending.insert(i, r);
                }
                Err(_) => return None,
            }
        };
        self.next_index += 1;
        let (lock, cv) = &*self.gate;
        if let Ok(mut g) = lock.lock() {
            g.delivered = self.next_index;
        }
        cv.notify_all();
        Some((want, result))
    }

    /// Up to `size` consecutive data sets (fewer at the end of a finite stream).
    pub fn next_batch(&mut self, size: usize) -> Vec<(u64, Result<PerturbationData, PriorError>)> {
        (0..size).map_while(|_| self.next_dataset()).collect()
    }
}

impl Drop for PriorStream {
    fn drop(&mut self) {
        {
            // Set the flag under the lock so no worker can miss the wake-up between check and wait.
            let _guard = self.gate.0.lock();
            self.stop.store(true, Ordering::Relaxed);
        }
        self.gate.1.notify_all();
        // Unblock workers waiting on a full channel.
        while self.receiver.try_recv().is_ok() {}
        let workers = std::mem::take(&mut self.workers);
        // Dropping the receiver makes pending sends fail; drain until all workers finished.
        for w in workers {
            while !w.is_finished() {
                while self.receiver.try_recv().is_ok() {}
                std::thread::yield_now();
            }
            let _ = w.join();
        }
    }
}
