//! Synthetic C3TL tables with a known additive structure, for tests and the speed benchmark:
//! `x_p^c = a_p + b_c` with i.i.d. standard normal gene vectors `a_p` (per perturbation) and `b_c` (per
//! context), scaled by `0.1`, every entry observed. Perturbation-mean prediction misses `b_c − mean b`; a
//! model that recovers the context latent does not.

use ndarray::Array2;

use super::table::{DeltaTable, Entry};
use crate::rng;

/// A synthetic table with its names.
#[derive(Clone, Debug)]
pub struct SyntheticTable {
    /// Gene names `g0…`.
    pub genes: Vec<String>,
    /// Perturbation labels `p0…`.
    pub perturbations: Vec<String>,
    /// Context names `c0…`.
    pub contexts: Vec<String>,
    /// Every (perturbation, context) entry, context-major.
    pub table: DeltaTable,
}

/// The additive table of `n_contexts × n_perturbations` entries over `n_genes` genes, drawn from `seed`.
pub fn additive_table(
    n_contexts: usize,
    n_perturbations: usize,
    n_genes: usize,
    seed: u64,
) -> SyntheticTable {
    let a = rng::normals(
        &mut rng::stream(seed, "c3tl-synthetic-a", 0),
        n_perturbations * n_genes,
    );
    let b = rng::normals(
        &mut rng::stream(seed, "c3tl-synthetic-b", 0),
        n_contexts * n_genes,
    );
    let entries: Vec<Entry> = (0..n_contexts)
        .flat_map(|c| {
            (0..n_perturbations).map(move |p| Entry {
                perturbation: p,
                context: c,
            })
        })
        .collect();
    let deltas = Array2::from_shape_fn((entries.len(), n_genes), |(i, g)| {
        let e = entries[i];
        0.1 * (a[e.perturbation * n_genes + g] + b[e.context * n_genes + g])
    });
    let names = |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}{i}")).collect();
    SyntheticTable {
        genes: names("g", n_genes),
        perturbations: names("p", n_perturbations),
        contexts: names("c", n_contexts),
        table: DeltaTable { entries, deltas },
    }
}
