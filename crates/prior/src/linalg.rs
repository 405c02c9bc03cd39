//! Small dense linear algebra for the linear-SCM prior (d ≈ 20): LU factorisation with partial pivoting,
//! solves and the inverse. Row-major `Vec<f64>` matrices keep the crate free of BLAS/LAPACK.

/// LU factorisation `P A = L U` of a square matrix (unit-diagonal `L` and `U` packed in one buffer).
#[derive(Clone, Debug)]
pub struct Lu {
    n: usize,
    lu: Vec<f64>,
    perm: Vec<usize>,
}

impl Lu {
    /// Factorises the row-major `n × n` matrix `a`. Returns `None` when a pivot is exactly zero (singular).
    pub fn new(a: &[f64], n: usize) -> Option<Lu> {
        assert_eq!(a.len(), n * n, "matrix buffer has the wrong size");
        let mut lu = a.to_vec();
        let mut perm: Vec<usize> = (0..n).collect();
        for k in 0..n {
            let (p, max) = (k..n)
                .map(|i| (i, lu[i * n + k].abs()))
                .fold(
                    (k, -1.0),
                    |best, cur| if cur.1 > best.1 { cur } else { best },
                );
            if max == 0.0 {
                return None;
            }
            if p != k {
                for j in 0..n {
                    lu.swap(k * n + j, p * n + j);
                }
                perm.swap(k, p);
            }
            let pivot = lu[k * n + k];
            for i in k + 1..n {
                let f = lu[i * n + k] / pivot;
                lu[i * n + k] = f;
                if f != 0.0 {
                    for j in k + 1..n {
                        lu[i * n + j] -= f * lu[k * n + j];
                    }
                }
            }
        }
        Some(Lu { n, lu, perm })
    }

    /// Solves `A x = b` in place (`b` has length `n`), using `work` (length `n`) as scratch.
    pub fn solve_in_place(&self, b: &mut [f64], work: &mut [f64]) {
        let n = self.n;
        for i in 0..n {
            work[i] = b[self.perm[i]];
        }
        for i in 0..n {
            let row = &self.lu[i * n..i * n + i];
            let s = work[i] - row.iter().zip(&work[..i]).map(|(a, b)| a * b).sum::<f64>();
            work[i] = s;
        }
        for i in (0..n).rev() {
            let row = &self.lu[i * n + i + 1..(i + 1) * n];
            let s = work[i]
                - row
                    .iter()
                    .zip(&work[i + 1..n])
                    .map(|(a, b)| a * b)
                    .sum::<f64>();
            work[i] = s / self.lu[i * n + i];
        }
        b.copy_from_slice(&work[..n]);
    }

    /// The inverse `A⁻¹`, row-major.
    pub fn inverse(&self) -> Vec<f64> {
        let n = self.n;
        let mut inv = vec![0.0; n * n];
        let mut col = vec![0.0; n];
        let mut work = vec![0.0; n];
        for j in 0..n {
            col.iter_mut().for_each(|v| *v = 0.0);
            col[j] = 1.0;
            self.solve_in_place(&mut col, &mut work);
            for i in 0..n {
                inv[i * n + j] = col[i];
            }
        }
        inv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_times_matrix_is_identity() {
        let a = [4.0, -2.0, 1.0, 3.0, 6.0, -4.0, 2.0, 1.0, 8.0];
        let inv = Lu::new(&a, 3).unwrap().inverse();
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!(
                    (v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-14,
                    "({i},{j}) = {v}"
                );
            }
        }
    }

    #[test]
    fn singular_matrix_is_rejected() {
        assert!(Lu::new(&[1.0, 2.0, 2.0, 4.0], 2).is_none());
    }
}
