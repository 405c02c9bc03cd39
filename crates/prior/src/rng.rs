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

/// SplitMix64 finaliser: a bijective mixing of 64-bit values.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derives an independent seed for sub-stream `stream` of `seed` (e.g. data set `i` of a base seed, or
/// the SDE-noise stream of a simulation seed). Deterministic and well mixed; distinct `(seed, stream)`
/// pairs give unrelated seeds.
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    mix64(
        mix64(seed ^ 0x9E37_79B9_7F4A_7C15)
            .wrapping_add(mix64(stream.wrapping_add(0x2545_F491_4F6C_DD1D))),
    )
}

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
