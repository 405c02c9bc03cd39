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

/// Incremental 64-bit FNV-1a hash (stable across platforms and releases; also used as a file checksum).
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a64(pub u64);

impl Default for Fnv1a64 {
    fn default() -> Self {
        Fnv1a64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a64 {
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// 64-bit FNV-1a hash of bytes.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a64::default();
    h.update(bytes);
    h.0
}

/// SplitMix64 finaliser: a bijective mixing of 64 bits.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Seed of the stream `index` within the named `domain` of a run seeded with `seed`.
pub fn stream_seed(seed: u64, domain: &str, index: u64) -> u64 {
    splitmix64(
        splitmix64(seed ^ fnv1a64(domain.as_bytes()))
            ^ splitmix64(index.wrapping_add(0x5851_f42d_4c95_7f2d)),
    )
}

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
