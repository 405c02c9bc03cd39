//! Seeded resampling of cell sets, with the task sampler's replacement rule, and the "control cells plus
//! a pseudo-bulk shift" construction that every shift-based baseline returns.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::error::BaselineError;

/// Draws `n` rows of `pool` with a seeded RNG: without replacement (in random order) when the pool has at
/// least `n` rows, otherwise with replacement — the rule of the task sampler (MapPFN spec §1.2). The same
/// `(pool, n, seed)` always gives the same rows, so baselines given the same seed draw the same control
/// cells and their predictions are paired. `what` names the pool in error messages.
pub fn resample_cells(
    pool: ArrayView2<'_, f32>,
    n: usize,
    seed: u64,
    what: &str,
) -> Result<Array2<f32>, BaselineError> {
    if n == 0 {
        return Err(BaselineError::ZeroCells);
    }
    let available = pool.nrows();
    if available == 0 {
        return Err(BaselineError::EmptyCells {
            what: what.to_string(),
        });
    }
    let mut rng = Pcg64::seed_from_u64(seed);
    let rows: Vec<usize> = if available >= n {
        sample(&mut rng, available, n).into_vec()
    } else {
        (0..n).map(|_| rng.gen_range(0..available)).collect()
    };
    Ok(pool.select(Axis(0), &rows))
}

/// The task's control cells, resampled to `n` cells with `seed` (see [`resample_cells`]), each shifted by
/// `shift` (a per-gene pseudo-bulk change). The mean of the result is the resampled control mean plus
/// `shift`, so a pseudo-bulk baseline becomes a cell-level prediction that keeps the control cells'
/// spread.
pub(crate) fn shifted_control_cells(
    observational: ArrayView2<'_, f32>,
    shift: &Array1<f64>,
    n: usize,
    seed: u64,
) -> Result<Array2<f32>, BaselineError> {
    if shift.len() != observational.ncols() {
        return Err(BaselineError::GeneCountMismatch {
            what: "the task's observational cells".into(),
            got: observational.ncols(),
            expected: shift.len(),
        });
    }
    let mut cells = resample_cells(
        observational,
        n,
        seed,
        "the task's observational (control) set",
    )?;
    let shift32 = shift.mapv(|v| v as f32);
    for mut row in cells.rows_mut() {
        row += &shift32;
    }
    Ok(cells)
}

/// Mean over the rows of `cells` in f64 (the pseudo-bulk profile); `None` for an empty set.
pub(crate) fn mean_profile(cells: ArrayView2<'_, f32>) -> Option<Array1<f64>> {
    if cells.nrows() == 0 {
        return None;
    }
    let mut sum = Array1::<f64>::zeros(cells.ncols());
    for row in cells.rows() {
        sum.zip_mut_with(&row, |s, &v| *s += v as f64);
    }
    Some(sum / cells.nrows() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn pool() -> Array2<f32> {
        array![[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]]
    }

    #[test]
    fn without_replacement_when_pool_is_large_enough() {
        let pool = pool();
        let out = resample_cells(pool.view(), 4, 7, "pool").unwrap();
        // A permutation of the pool: every row exactly once.
        let mut firsts: Vec<i32> = out.column(0).iter().map(|&v| v as i32).collect();
        firsts.sort();
        assert_eq!(firsts, vec![0, 2, 4, 6]);
        for row in out.rows() {
            assert_eq!(row[1], row[0] + 1.0, "rows are copied whole");
        }
        let sub = resample_cells(pool.view(), 3, 7, "pool").unwrap();
        let mut firsts: Vec<i32> = sub.column(0).iter().map(|&v| v as i32).collect();
        firsts.sort();
        firsts.dedup();
        assert_eq!(firsts.len(), 3, "no row drawn twice");
    }

    #[test]
    fn with_replacement_when_pool_is_small() {
        let pool = pool();
        let out = resample_cells(pool.view(), 40, 3, "pool").unwrap();
        assert_eq!(out.nrows(), 40);
        for row in out.rows() {
            assert!(
                pool.rows().into_iter().any(|p| p == row),
                "every drawn row is a pool row"
            );
        }
        let mut firsts: Vec<i32> = out.column(0).iter().map(|&v| v as i32).collect();
        firsts.sort();
        firsts.dedup();
        assert!(firsts.len() < 40, "40 draws from 4 rows must repeat rows");
    }

    #[test]
    fn seeded_and_deterministic() {
        let pool = Array2::from_shape_fn((50, 3), |(i, j)| (i * 3 + j) as f32);
        let a = resample_cells(pool.view(), 10, 11, "pool").unwrap();
        let b = resample_cells(pool.view(), 10, 11, "pool").unwrap();
        let c = resample_cells(pool.view(), 10, 12, "pool").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn errors_on_empty_pool_and_zero_cells() {
        let empty = Array2::<f32>::zeros((0, 2));
        let err = resample_cells(empty.view(), 3, 0, "the target").unwrap_err();
        assert!(err.to_string().contains("the target has no cells"), "{err}");
        let err = resample_cells(pool().view(), 0, 0, "pool").unwrap_err();
        assert!(matches!(err, BaselineError::ZeroCells));
    }

    #[test]
    fn shift_is_added_to_every_cell() {
        let pool = pool();
        let shift = array![10.0, -1.0];
        let out = shifted_control_cells(pool.view(), &shift, 4, 1).unwrap();
        let mean = mean_profile(out.view()).unwrap();
        assert!(
            (mean[0] - 13.0).abs() < 1e-9 && (mean[1] - 3.0).abs() < 1e-9,
            "{mean}"
        );
        let bad = array![1.0];
        assert!(matches!(
            shifted_control_cells(pool.view(), &bad, 4, 1),
            Err(BaselineError::GeneCountMismatch { .. })
        ));
    }
}
