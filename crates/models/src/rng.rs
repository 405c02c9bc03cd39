//! Counter-based random streams: every random draw of the crate is a pure function of a seed and an
//! index (micro-batch number, task number, parameter name), so a run can be resumed from its counters
//! alone and results do not depend on threads, devices or the order in which work is done.
//!
//! Draws are made on the host (PCG-64 from `rand_pcg`) and copied into tensors. tch 0.24 exposes no
//! per-call `torch.Generator`, and libtorch's global generator is shared by every thread of the process,
//! so host-side streams are the only way to keep draws pure; they also make CPU and GPU runs draw the
//! same numbers.

use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_pcg::Pcg64;

pub use cellshift_data::seed::{fnv1a64, splitmix64, stream_seed, Fnv1a64};

/// A random stream for one (seed, domain, index) triple.
pub fn stream(seed: u64, domain: &str, index: u64) -> Pcg64 {
    Pcg64::seed_from_u64(stream_seed(seed, domain, index))
}

/// `n` independent standard normal draws.
pub fn normals(rng: &mut Pcg64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| rng.sample::<f64, _>(StandardNormal) as f32)
        .collect()
}

/// `n` independent uniform draws on `[lo, hi)`.
pub fn uniforms(rng: &mut Pcg64, n: usize, lo: f64, hi: f64) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(lo..hi) as f32).collect()
}
