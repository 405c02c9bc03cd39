//! The chemical Langevin equation of SERGIO's steady-state mode, integrated by synchronous
//! Euler–Maruyama from the deterministic steady state; cells are snapshots of the single trajectory
//! at time indices drawn uniformly (with replacement) after the burn-in (MapPFN spec §6.6.3–5).

use ndarray::Array2;
use rand::Rng;
use rand_distr::StandardNormal;

use crate::rng::{derive_seed, rng_from_seed};
use crate::sergio::network::Network;

/// Time-stepping settings of one simulation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimSettings {
    /// Cells sampled per cell type.
    pub num_cells: usize,
    /// Burn-in steps before the sampling window.
    pub safety_iter: usize,
    /// Steps per sampled cell (window length = `num_cells · scale_iter`).
    pub scale_iter: usize,
    /// Step size.
    pub dt: f64,
    /// Process-noise scale `s` (0 = deterministic).
    pub noise_s: f64,
}

/// Sub-streams of a simulation seed.
const STREAM_TIMES: u64 = 0x7100;
const STREAM_SDE: u64 = 0x5DE0;

/// Simulates every cell type of `net` and returns the clean expression, cells × spec genes (cell type
/// 0's `num_cells` cells first; genes outside the network are 0). Per step, with the previous state `x`:
/// `p = max(P(x), 0)`, `q = λ x`, `x ← max(0, x + dt (p − q) + s √dt (√p ξ₁ + √q ξ₂))`.
pub fn simulate_network(net: &Network, settings: &SimSettings, seed: u64) -> Array2<f64> {
    let nct = net.n_cell_types;
    let mut out = Array2::<f64>::zeros((settings.num_cells * nct, net.n_total));
    let n = net.genes.len();
    let window = settings.num_cells * settings.scale_iter;
    let total_steps = window + settings.safety_iter;
    let mut x = vec![0.0; n];
    let mut next = vec![0.0; n];
    let sqrt_dt = settings.dt.sqrt();
    for c in 0..nct {
        // Sampled time indices (with replacement), visited in time order; row = draw order.
        let mut times_rng = rng_from_seed(derive_seed(seed, STREAM_TIMES + c as u64));
        let mut schedule: Vec<(usize, usize)> = (0..settings.num_cells)
            .map(|cell| (settings.safety_iter + times_rng.gen_range(0..window), cell))
            .collect();
        schedule.sort_unstable();
        let mut rng = rng_from_seed(derive_seed(seed, STREAM_SDE + c as u64));
        for (i, xi) in x.iter_mut().enumerate() {
            *xi = net.steady_state[i * nct + c];
        }
        let mut cursor = 0;
        let last_needed = schedule
            .last()
            .map(|s| s.0 + 1)
            .unwrap_or(0)
            .min(total_steps);
        for step in 0..last_needed {
            for i in 0..n {
                if net.clamped[i] {
                    next[i] = 0.0;
                    continue;
                }
                let p = net.production(i, c, &x).max(0.0);
                let q = net.decay[i] * x[i];
                let mut v = x[i] + settings.dt * (p - q);
                if settings.noise_s != 0.0 {
                    let z1: f64 = rng.sample(StandardNormal);
                    let z2: f64 = rng.sample(StandardNormal);
                    v += settings.noise_s * sqrt_dt * (p.sqrt() * z1 + q.sqrt() * z2);
                }
                next[i] = v.max(0.0);
            }
            std::mem::swap(&mut x, &mut next);
            while cursor < schedule.len() && schedule[cursor].0 == step {
                let cell = c * settings.num_cells + schedule[cursor].1;
                for (i, &g) in net.genes.iter().enumerate() {
                    out[[cell, g]] = x[i];
                }
                cursor += 1;
            }
        }
    }
    out
}
