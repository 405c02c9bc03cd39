//! Small dense linear algebra in f64 for the linear baseline: a symmetric eigensolver (Householder
//! tridiagonalisation + implicit QR), a Cholesky solver for symmetric positive-definite systems, and PCA
//! scores. Sizes are up to a few hundred (the PCA decomposes the smaller of the genes × genes and
//! conditions × conditions Gram matrices).

use ndarray::{s, Array1, Array2, Axis};

use crate::error::BaselineError;

/// Eigen-decomposition of a symmetric matrix: eigenvalues in descending order and the matching
/// orthonormal eigenvectors as the columns of the returned matrix. Only the symmetric part of `a` is used.
///
/// Householder reduction to tridiagonal form, then implicit symmetric QR steps with Wilkinson shifts
/// (Golub & Van Loan, Matrix Computations, §8.3), accumulating the transformations: O(n³) with a small
/// constant (a 400 × 400 matrix takes well under a second).
pub(crate) fn symmetric_eigen(
    a: &Array2<f64>,
) -> Result<(Array1<f64>, Array2<f64>), BaselineError> {
    let n = a.nrows();
    if a.ncols() != n {
        return Err(BaselineError::Numerical(format!(
            "eigen-decomposition of a non-square {}×{} matrix",
            n,
            a.ncols()
        )));
    }
    if a.iter().any(|v| !v.is_finite()) {
        return Err(BaselineError::Numerical(
            "eigen-decomposition of a matrix with non-finite entries".into(),
        ));
    }
    // Row-major working copy of the symmetric part, and Qᵀ (row i = i-th column of Q), so that every
    // update below runs along contiguous rows.
    let mut m: Vec<f64> = Vec::with_capacity(n * n);
    for i in 0..n {
        for j in 0..n {
            m.push(0.5 * (a[[i, j]] + a[[j, i]]));
        }
    }
    let mut qt: Vec<f64> = vec![0.0; n * n];
    for i in 0..n {
        qt[i * n + i] = 1.0;
    }
    let (mut diag, mut off) = tridiagonalize(&mut m, &mut qt, n);
    tridiagonal_qr(&mut diag, &mut off, &mut qt, n)?;
    let mut order: Vec<usize> = (0..n).collect();
    // Descending eigenvalues; ties keep index order so the result is deterministic.
    order.sort_by(|&i, &j| diag[j].total_cmp(&diag[i]).then(i.cmp(&j)));
    let values = Array1::from_iter(order.iter().map(|&i| diag[i]));
    let vectors = Array2::from_shape_fn((n, n), |(row, col)| qt[order[col] * n + row]);
    Ok((values, vectors))
}

/// Reduces the symmetric row-major `m` (n × n) to tridiagonal form T = Hᵀ m H by Householder
/// reflections, multiplying them into `qt` from the left (qt ← Hᵀ qt, i.e. Q ← Q H). Returns T's diagonal
/// and sub-diagonal.
fn tridiagonalize(m: &mut [f64], qt: &mut [f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; n];
    let mut p = vec![0.0; n];
    let mut y = vec![0.0; n];
    for k in 0..n.saturating_sub(2) {
        let lo = k + 1;
        // x = m[lo.., k]; reflect it onto alpha·e₁ with alpha = −sign(x₀)‖x‖.
        let norm = (lo..n)
            .map(|i| m[i * n + k] * m[i * n + k])
            .sum::<f64>()
            .sqrt();
        if norm == 0.0 {
            continue;
        }
        let x0 = m[lo * n + k];
        let alpha = if x0 > 0.0 { -norm } else { norm };
        for i in lo..n {
            v[i] = m[i * n + k];
        }
        v[lo] -= alpha;
        let v_norm = (lo..n).map(|i| v[i] * v[i]).sum::<f64>().sqrt();
        if v_norm == 0.0 {
            continue;
        }
        for vi in v.iter_mut().take(n).skip(lo) {
            *vi /= v_norm;
        }
        // Trailing block B = m[lo.., lo..]: B ← B − 2 v wᵀ − 2 w vᵀ with p = B v, w = p − (vᵀp) v.
        for i in lo..n {
            let row = &m[i * n + lo..i * n + n];
            p[i] = row.iter().zip(&v[lo..n]).map(|(a, b)| a * b).sum();
        }
        let kappa: f64 = (lo..n).map(|i| v[i] * p[i]).sum();
        for i in lo..n {
            p[i] -= kappa * v[i];
        }
        for i in lo..n {
            let (vi, wi) = (v[i], p[i]);
            let row = &mut m[i * n + lo..i * n + n];
            for (j, value) in row.iter_mut().enumerate() {
                *value -= 2.0 * (vi * p[lo + j] + wi * v[lo + j]);
            }
        }
        // Column k below the diagonal becomes (alpha, 0, …), and row k likewise.
        m[lo * n + k] = alpha;
        m[k * n + lo] = alpha;
        for i in lo + 1..n {
            m[i * n + k] = 0.0;
            m[k * n + i] = 0.0;
        }
        // Qᵀ[lo.., :] ← Qᵀ[lo.., :] − 2 v (vᵀ Qᵀ[lo.., :]).
        y.iter_mut().for_each(|e| *e = 0.0);
        for i in lo..n {
            let vi = v[i];
            for (e, q) in y.iter_mut().zip(&qt[i * n..i * n + n]) {
                *e += vi * q;
            }
        }
        for i in lo..n {
            let scale = 2.0 * v[i];
            for (q, e) in qt[i * n..i * n + n].iter_mut().zip(&y) {
                *q -= scale * e;
            }
        }
    }
    let diag = (0..n).map(|i| m[i * n + i]).collect();
    let off = (0..n.saturating_sub(1))
        .map(|i| m[(i + 1) * n + i])
        .collect();
    (diag, off)
}

/// Diagonalises the symmetric tridiagonal matrix (`diag`, `off`) in place by implicit QR steps with
/// Wilkinson shifts, applying every rotation to the rows of `qt`. On return `diag` holds the
/// eigenvalues and row i of `qt` the eigenvector of `diag[i]`.
fn tridiagonal_qr(
    diag: &mut [f64],
    off: &mut [f64],
    qt: &mut [f64],
    n: usize,
) -> Result<(), BaselineError> {
    if n < 2 {
        return Ok(());
    }
    // An off-diagonal entry is dropped when it is negligible next to its diagonal neighbours or to the
    // matrix norm (a perturbation of at most ε‖T‖, within the backward error of the method).
    let norm = (0..n)
        .map(|i| {
            diag[i].abs()
                + if i > 0 { off[i - 1].abs() } else { 0.0 }
                + if i + 1 < n { off[i].abs() } else { 0.0 }
        })
        .fold(0.0f64, f64::max);
    let negligible = |off: f64, a: f64, b: f64| {
        let off = off.abs();
        off <= f64::EPSILON * (a.abs() + b.abs()) || off <= f64::EPSILON * norm
    };
    let mut hi = n - 1;
    let mut iterations = 0usize;
    while hi > 0 {
        if negligible(off[hi - 1], diag[hi - 1], diag[hi]) {
            off[hi - 1] = 0.0;
            hi -= 1;
            continue;
        }
        let mut lo = hi - 1;
        while lo > 0 && !negligible(off[lo - 1], diag[lo - 1], diag[lo]) {
            lo -= 1;
        }
        if lo > 0 {
            off[lo - 1] = 0.0;
        }
        iterations += 1;
        if iterations > 50 * n {
            return Err(BaselineError::Numerical(format!(
                "the symmetric QR iteration did not converge on a {n}×{n} matrix"
            )));
        }
        // Wilkinson shift: the eigenvalue of the trailing 2 × 2 block closer to its last entry.
        let b = off[hi - 1];
        let delta = 0.5 * (diag[hi - 1] - diag[hi]);
        let sign = if delta >= 0.0 { 1.0 } else { -1.0 };
        let mu = diag[hi] - b * b / (delta + sign * delta.hypot(b));
        let mut x = diag[lo] - mu;
        let mut z = off[lo];
        for k in lo..hi {
            // Rotation J on (k, k+1) with c = x/r, s = −z/r, r = hypot(x, z): zeroes z in Jᵀ(x, z).
            let r = x.hypot(z);
            let (c, s) = if r == 0.0 {
                (1.0, 0.0)
            } else {
                (x / r, -z / r)
            };
            if k > lo {
                off[k - 1] = r;
            }
            let (a, d, e) = (diag[k], diag[k + 1], off[k]);
            diag[k] = c * c * a - 2.0 * c * s * e + s * s * d;
            diag[k + 1] = s * s * a + 2.0 * c * s * e + c * c * d;
            off[k] = c * s * (a - d) + (c * c - s * s) * e;
            if k + 1 < hi {
                let next = off[k + 1];
                z = -s * next;
                off[k + 1] = c * next;
                x = off[k];
            }
            // Q ← Q J: rows k, k+1 of Qᵀ.
            let (head, tail) = qt.split_at_mut((k + 1) * n);
            let row_k = &mut head[k * n..];
            let row_k1 = &mut tail[..n];
            for (qk, qk1) in row_k.iter_mut().zip(row_k1.iter_mut()) {
                let (u, w) = (*qk, *qk1);
                *qk = c * u - s * w;
                *qk1 = s * u + c * w;
            }
        }
    }
    Ok(())
}

/// Solves `A X = B` for a symmetric positive-definite `A` by Cholesky factorisation.
pub(crate) fn cholesky_solve(
    a: &Array2<f64>,
    b: &Array2<f64>,
) -> Result<Array2<f64>, BaselineError> {
    let n = a.nrows();
    if a.ncols() != n || b.nrows() != n {
        return Err(BaselineError::Numerical(format!(
            "cannot solve a {}×{} system with a right-hand side of {} rows",
            n,
            a.ncols(),
            b.nrows()
        )));
    }
    let mut l = Array2::<f64>::zeros((n, n));
    for j in 0..n {
        let mut diag = a[[j, j]];
        for k in 0..j {
            diag -= l[[j, k]] * l[[j, k]];
        }
        if !(diag > 0.0) || !diag.is_finite() {
            return Err(BaselineError::Numerical(format!(
                "the {n}×{n} ridge system is not positive definite (pivot {j} is {diag:e}); use a positive ridge penalty"
            )));
        }
        let ljj = diag.sqrt();
        l[[j, j]] = ljj;
        for i in j + 1..n {
            let mut v = a[[i, j]];
            for k in 0..j {
                v -= l[[i, k]] * l[[j, k]];
            }
            l[[i, j]] = v / ljj;
        }
    }
    let mut x = b.clone();
    for mut col in x.columns_mut() {
        // Forward substitution L y = b, then back substitution Lᵀ x = y.
        for i in 0..n {
            let mut v = col[i];
            for k in 0..i {
                v -= l[[i, k]] * col[k];
            }
            col[i] = v / l[[i, i]];
        }
        for i in (0..n).rev() {
            let mut v = col[i];
            for k in i + 1..n {
                v -= l[[k, i]] * col[k];
            }
            col[i] = v / l[[i, i]];
        }
    }
    Ok(x)
}

/// PCA scores of the rows of `x` (observations × variables), as R's `prcomp(x, center = TRUE)` returns
/// them in `$x`: the columns are centred (each variable's mean over the observations is subtracted) and the
/// result is `U_k Σ_k` of the centred matrix, one row per observation, `k` columns. `k` is capped at the
/// smaller dimension of `x`; a component with zero variance has zero scores. The sign of each component
/// is arbitrary (the linear baseline's predictions do not depend on it).
pub(crate) fn pca_scores(x: &Array2<f64>, k: usize) -> Result<Array2<f64>, BaselineError> {
    let (rows, cols) = x.dim();
    let k = k.min(rows).min(cols);
    let column_means = x.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(cols));
    let centred = x - &column_means;
    if rows <= cols {
        // Eigenvectors of the rows × rows Gram matrix are U; scores are U·sqrt(λ).
        let gram = centred.dot(&centred.t());
        let (values, vectors) = symmetric_eigen(&gram)?;
        let mut scores = vectors.slice(s![.., ..k]).to_owned();
        for (j, mut col) in scores.columns_mut().into_iter().enumerate() {
            col *= values[j].max(0.0).sqrt();
        }
        Ok(scores)
    } else {
        // Eigenvectors of the cols × cols covariance are V; scores are X_c·V.
        let gram = centred.t().dot(&centred);
        let (_, vectors) = symmetric_eigen(&gram)?;
        Ok(centred.dot(&vectors.slice(s![.., ..k])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Cyclic Jacobi eigensolver: an independent, simpler (and slower) reference for the tests.
    fn jacobi_eigen(a: &Array2<f64>) -> Result<(Array1<f64>, Array2<f64>), BaselineError> {
        let n = a.nrows();
        if a.ncols() != n {
            return Err(BaselineError::Numerical(format!(
                "eigen-decomposition of a non-square {}×{} matrix",
                n,
                a.ncols()
            )));
        }
        if a.iter().any(|v| !v.is_finite()) {
            return Err(BaselineError::Numerical(
                "eigen-decomposition of a matrix with non-finite entries".into(),
            ));
        }
        let mut m = (a + &a.t()) * 0.5;
        let mut v = Array2::<f64>::eye(n);
        let total: f64 = m.iter().map(|x| x * x).sum();
        let tolerance = (f64::EPSILON * f64::EPSILON) * total;
        let mut converged = n < 2 || total == 0.0;
        for _sweep in 0..100 {
            if converged {
                break;
            }
            let off: f64 = (0..n)
                .flat_map(|p| (0..n).filter(move |&q| q != p).map(move |q| (p, q)))
                .map(|(p, q)| m[[p, q]] * m[[p, q]])
                .sum();
            if off <= tolerance {
                converged = true;
                break;
            }
            for p in 0..n - 1 {
                for q in p + 1..n {
                    let apq = m[[p, q]];
                    if apq == 0.0 {
                        continue;
                    }
                    // Rotation angle that zeroes m[p][q]: t = tan φ is the smaller root of t² + 2θt − 1 = 0.
                    let theta = (m[[q, q]] - m[[p, p]]) / (2.0 * apq);
                    let t = if theta.abs() > 1e150 {
                        0.5 / theta
                    } else {
                        theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt())
                    };
                    let c = 1.0 / (t * t + 1.0).sqrt();
                    let sn = t * c;
                    m[[p, p]] -= t * apq;
                    m[[q, q]] += t * apq;
                    m[[p, q]] = 0.0;
                    m[[q, p]] = 0.0;
                    for r in 0..n {
                        if r != p && r != q {
                            let arp = m[[r, p]];
                            let arq = m[[r, q]];
                            let new_rp = c * arp - sn * arq;
                            let new_rq = sn * arp + c * arq;
                            m[[r, p]] = new_rp;
                            m[[p, r]] = new_rp;
                            m[[r, q]] = new_rq;
                            m[[q, r]] = new_rq;
                        }
                        let vrp = v[[r, p]];
                        let vrq = v[[r, q]];
                        v[[r, p]] = c * vrp - sn * vrq;
                        v[[r, q]] = sn * vrp + c * vrq;
                    }
                }
            }
        }
        if !converged {
            let off: f64 = (0..n)
                .flat_map(|p| (0..n).filter(move |&q| q != p).map(move |q| (p, q)))
                .map(|(p, q)| m[[p, q]] * m[[p, q]])
                .sum();
            if off > tolerance * 1e6 {
                return Err(BaselineError::Numerical(format!(
                    "Jacobi eigensolver did not converge on a {n}×{n} matrix (off-diagonal mass {off:e})"
                )));
            }
        }
        let mut order: Vec<usize> = (0..n).collect();
        // Descending eigenvalues; ties keep index order so the result is deterministic.
        order.sort_by(|&i, &j| m[[j, j]].total_cmp(&m[[i, i]]).then(i.cmp(&j)));
        let values = Array1::from_iter(order.iter().map(|&i| m[[i, i]]));
        let vectors = v.select(Axis(1), &order);
        Ok((values, vectors))
    }

    /// Deterministic pseudo-random matrix (no RNG dependency in the test).
    fn matrix(rows: usize, cols: usize, salt: u64) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            let h = (i as u64 * 7919 + j as u64 * 104_729 + salt * 1_299_709)
                .wrapping_mul(2_654_435_761)
                % 10_007;
            h as f64 / 10_007.0 - 0.5
        })
    }

    #[test]
    fn eigen_of_a_2x2_matches_the_closed_form() {
        // [[2,1],[1,2]] has eigenvalues 3 and 1 with eigenvectors (1,1)/√2 and (1,−1)/√2.
        let (values, vectors) = symmetric_eigen(&array![[2.0, 1.0], [1.0, 2.0]]).unwrap();
        assert!(
            (values[0] - 3.0).abs() < 1e-14 && (values[1] - 1.0).abs() < 1e-14,
            "{values}"
        );
        let h = std::f64::consts::FRAC_1_SQRT_2;
        assert!(
            (vectors[[0, 0]].abs() - h).abs() < 1e-14
                && (vectors[[1, 0]] - vectors[[0, 0]]).abs() < 1e-14
        );
        assert!((vectors[[0, 1]] + vectors[[1, 1]]).abs() < 1e-14);
    }

    #[test]
    fn eigen_reconstructs_a_random_symmetric_matrix() {
        let b = matrix(40, 40, 1);
        let a = &b + &b.t();
        let (values, vectors) = symmetric_eigen(&a).unwrap();
        let identity = vectors.t().dot(&vectors);
        let max_orth = (&identity - &Array2::<f64>::eye(40))
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(
            max_orth < 1e-12,
            "eigenvectors not orthonormal: {max_orth:e}"
        );
        let rebuilt = vectors.dot(&Array2::from_diag(&values)).dot(&vectors.t());
        let max_err = (&rebuilt - &a).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(max_err < 1e-12, "A ≠ VΛVᵀ: {max_err:e}");
        assert!(
            values.windows(2).into_iter().all(|w| w[0] >= w[1]),
            "not descending: {values}"
        );
        // Trace is preserved.
        let trace: f64 = (0..40).map(|i| a[[i, i]]).sum();
        assert!((values.sum() - trace).abs() < 1e-11);
    }

    #[test]
    fn householder_qr_agrees_with_jacobi_including_repeated_eigenvalues() {
        let mut cases = vec![
            matrix(1, 1, 0),
            Array2::<f64>::eye(5),
            Array2::from_diag(&array![3.0, -1.0, 3.0, 0.0]),
        ];
        for (n, salt) in [(2, 1), (3, 2), (17, 3), (64, 4)] {
            let b = matrix(n, n, salt);
            cases.push(&b + &b.t());
            // A rank-2 PSD Gram matrix: n − 2 zero eigenvalues.
            let low = matrix(n, 2, salt + 10);
            cases.push(low.dot(&low.t()));
        }
        // Identity plus a rank-one term: a multiple eigenvalue 1.
        let u = matrix(9, 1, 7);
        cases.push(Array2::<f64>::eye(9) + u.dot(&u.t()));
        for a in cases {
            let n = a.nrows();
            let (values, vectors) = symmetric_eigen(&a).unwrap();
            let (reference, _) = jacobi_eigen(&a).unwrap();
            let scale = a.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for i in 0..n {
                assert!(
                    (values[i] - reference[i]).abs() < 1e-12 * scale * n as f64,
                    "n={n} λ{i}: {} vs {}",
                    values[i],
                    reference[i]
                );
            }
            let rebuilt = vectors.dot(&Array2::from_diag(&values)).dot(&vectors.t());
            let err = (&rebuilt - &a).iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(err < 1e-12 * scale * n as f64, "n={n}: A ≠ VΛVᵀ by {err:e}");
            let orth = (&vectors.t().dot(&vectors) - &Array2::<f64>::eye(n))
                .iter()
                .fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(
                orth < 1e-12 * n as f64,
                "n={n}: not orthonormal by {orth:e}"
            );
        }
    }

    #[test]
    fn eigen_rejects_bad_input() {
        assert!(symmetric_eigen(&Array2::zeros((2, 3))).is_err());
        assert!(symmetric_eigen(&array![[1.0, f64::NAN], [f64::NAN, 1.0]]).is_err());
        let (values, _) = symmetric_eigen(&Array2::zeros((3, 3))).unwrap();
        assert_eq!(values, Array1::<f64>::zeros(3));
    }

    #[test]
    fn cholesky_solves_a_known_system() {
        // A = [[4,2],[2,3]], x = (1, −2) → b = (0, −4).
        let x = cholesky_solve(&array![[4.0, 2.0], [2.0, 3.0]], &array![[0.0], [-4.0]]).unwrap();
        assert!(
            (x[[0, 0]] - 1.0).abs() < 1e-14 && (x[[1, 0]] + 2.0).abs() < 1e-14,
            "{x}"
        );
        let err =
            cholesky_solve(&array![[1.0, 2.0], [2.0, 1.0]], &array![[1.0], [1.0]]).unwrap_err();
        assert!(err.to_string().contains("not positive definite"), "{err}");
    }

    #[test]
    fn pca_scores_match_the_svd_identities_on_both_paths() {
        for (rows, cols) in [(12, 5), (5, 12)] {
            let x = matrix(rows, cols, 3);
            let k = 3;
            let scores = pca_scores(&x, k).unwrap();
            assert_eq!(scores.dim(), (rows, k));
            let centred = &x - &x.mean_axis(Axis(0)).unwrap();
            // Scores are orthogonal, and their squared norms are the top eigenvalues of XcᵀXc.
            let gram = scores.t().dot(&scores);
            let (values, _) = symmetric_eigen(&centred.t().dot(&centred)).unwrap();
            for i in 0..k {
                for j in 0..k {
                    let expected = if i == j { values[i] } else { 0.0 };
                    assert!(
                        (gram[[i, j]] - expected).abs() < 1e-10,
                        "{rows}×{cols}: gram[{i},{j}] = {}",
                        gram[[i, j]]
                    );
                }
            }
            // Each score column lies in the column space of the centred matrix: Xc Xc⁺ s = s, checked via
            // the projection onto the top-k eigenvectors of XcXcᵀ.
            let (_, u) = symmetric_eigen(&centred.dot(&centred.t())).unwrap();
            let uk = u.slice(s![.., ..k]).to_owned();
            let projected = uk.dot(&uk.t().dot(&scores));
            let max_err = (&projected - &scores)
                .iter()
                .fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(max_err < 1e-10, "{rows}×{cols}: {max_err:e}");
        }
        // k larger than the matrix is capped.
        assert_eq!(pca_scores(&matrix(4, 3, 5), 10).unwrap().dim(), (4, 3));
    }
}
