//! Random-number plumbing shared by the priors: the generator type, deterministic seed derivation and
//! the uniform / Bernoulli draws of rand 0.8 that the SERGIO master-regulator profile relies on.

use rand::{Rng, SeedableRng};

/// The generator used everywhere in this crate: PCG XSL RR 128/64 (`rand_pcg::Lcg128Xsl64`), the same
/// generator sergio-rs uses, seeded through `rand_core`'s `seed_from_u64`.
pub type PriorRng = rand_pcg::Lcg128Xsl64;

/// A fresh generator for a 64-bit seed (`seed_from_u64`, i.e. the PCG32 seed expansion of rand_core 0.6).
pub fn rng_from_seed(seed: u64) -> PriorRng {
    PriorRng::seed_from_u64(seed)
}

pub use cellshift_data::seed::derive_seed;

/// Uniform draw on `[low, high)` exactly as rand 0.8's `UniformFloat<f64>::sample` computes it:
/// `low + (high − low) · ((u64 >> 12) · 2⁻⁵²)`.
pub fn uniform_f64<R: Rng + ?Sized>(rng: &mut R, low: f64, high: f64) -> f64 {
    let bits = rng.next_u64() >> 12;
    let unit = bits as f64 * (1.0 / (1u64 << 52) as f64);
    unit * (high - low) + low
}

/// Fair coin exactly as rand 0.8's `Bernoulli::new(0.5)`: true when a `u64` draw is below 2⁶³.
pub fn coin<R: Rng + ?Sized>(rng: &mut R) -> bool {
    rng.next_u64() < (1u64 << 63)
}
