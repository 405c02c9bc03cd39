//! One-predictor LOESS (Cleveland, Grosse & Shyu) with the defaults of the netlib `dloess` code that
//! scikit-misc wraps and scanpy's `seurat_v3` HVG flavour calls: Gaussian family (no robustness
//! iterations), tricube weights over the `q = ⌊n·span + 1e-5⌋` nearest points, local polynomial of degree
//! 0–2, and surface = "interpolate".
//!
//! "interpolate" does not fit at every point. It builds a k-d tree (here: intervals) over the predictor:
//! the bounding box of x widened by 0.5 % on each side is split at the median point until a cell holds at
//! most `fc = ⌊n · span · cell⌋` points (cell = 0.2), ties kept on one side; the local fit (value and slope)
//! is computed exactly at every cell boundary (vertex), and the surface is the cubic Hermite interpolant of
//! those values and slopes inside each leaf cell. This is what makes scanpy's numbers, so we reproduce it.
//! Each local fit is a weighted least-squares problem solved through a QR factorisation and an SVD of R
//! with the pseudo-inverse tolerance `σ₁·100·ε`, as in `dloess`.

use crate::error::DataError;

/// Fraction of the span that bounds the points per k-d cell (`dloess` default `cell = 0.2`).
pub const LOESS_CELL: f64 = 0.2;

/// A fitted one-predictor LOESS surface; evaluate it with [`LoessSurface::eval`].
#[derive(Clone, Debug)]
pub struct LoessSurface {
    cells: Vec<Cell>,
    /// (position, value, slope) per vertex, indexed by `Cell::{lo, hi}`.
    vertices: Vec<(f64, f64, f64)>,
}

#[derive(Clone, Debug)]
struct Cell {
    lo: usize,
    hi: usize,
    split: Option<(f64, usize, usize)>,
}

/// Fits LOESS of `y` on `x` and returns the fitted values at the data points (skmisc
/// `loess(x, y, span, degree).fit(); outputs.fitted_values`).
pub fn loess_fit(x: &[f64], y: &[f64], span: f64, degree: usize) -> Result<Vec<f64>, DataError> {
    let surface = LoessSurface::fit(x, y, span, degree)?;
    Ok(x.iter().map(|&z| surface.eval(z)).collect())
}

impl LoessSurface {
    /// Builds the k-d tree and the vertex fits.
    pub fn fit(x: &[f64], y: &[f64], span: f64, degree: usize) -> Result<LoessSurface, DataError> {
        let n = x.len();
        if y.len() != n {
            return Err(DataError::Invalid(format!(
                "loess: {} x values but {} y values",
                n,
                y.len()
            )));
        }
        if degree > 2 {
            return Err(DataError::Invalid(format!(
                "loess: degree {degree} is not supported; use 0, 1 or 2"
            )));
        }
        if let Some(v) = x.iter().chain(y).find(|v| !v.is_finite()) {
            return Err(DataError::Invalid(format!(
                "loess: non-finite input value {v}; remove it first"
            )));
        }
        if span.is_nan() || span <= 0.0 {
            return Err(DataError::Invalid(format!(
                "loess: span {span} must be positive"
            )));
        }
        let nf = ((n as f64 * span + 1e-5).floor() as usize).min(n);
        let k = degree + 1;
        if nf == 0 || k + 1 > nf {
            return Err(DataError::Invalid(format!(
                "loess: span {span} over {n} points leaves {nf} points per local fit, fewer than the {} needed \
                 for degree {degree}; use a larger span or more genes",
                k + 1
            )));
        }
        let fc = (n as f64 * (span * LOESS_CELL)).floor() as usize;

        let mut xs: Vec<f64> = x.to_vec();
        xs.sort_by(f64::total_cmp);
        let (alpha, beta) = (xs[0], xs[n - 1]);
        let margin = 0.005 * (beta - alpha).max(1e-10 * alpha.abs().max(beta.abs()) + 1e-30);
        let mut positions = vec![alpha - margin, beta + margin];

        // Breadth-first splitting with the memory bounds of dloess (nvmax = ncmax = max(200, n)).
        let nmax = n.max(200);
        let mut cells = vec![Cell {
            lo: 0,
            hi: 1,
            split: None,
        }];
        let mut ranges = vec![(1usize, n)]; // 1-based inclusive ranges into xs
        let mut p = 0;
        while p < cells.len() {
            let (l, u) = ranges[p];
            let (vlo, vhi) = (positions[cells[p].lo], positions[cells[p].hi]);
            let diam = (vhi - vlo).abs();
            let mut leaf = u + 1 - l <= fc || diam <= 0.0;
            if !leaf {
                leaf = nmax < cells.len() + 2 || (nmax as f64) < positions.len() as f64 + 0.5;
            }
            let mut m = (l + u) / 2;
            if !leaf {
                // all ties go with one son: move the split to the nearest gap between distinct values
                let xv = |i: usize| xs[i - 1];
                let mut offset: i64 = 0;
                loop {
                    let mo = m as i64 + offset;
                    if mo >= u as i64 || mo < l as i64 {
                        break;
                    }
                    if xv(mo as usize) == xv(mo as usize + 1) {
                        offset = -offset;
                        if offset >= 0 {
                            offset += 1;
                        }
                    } else {
                        m = mo as usize;
                        break;
                    }
                }
                let t = xv(m);
                leaf = vlo == t || vhi == t;
            }
            if !leaf {
                let t = xs[m - 1];
                positions.push(t);
                let mid = positions.len() - 1;
                let left = cells.len();
                cells.push(Cell {
                    lo: cells[p].lo,
                    hi: mid,
                    split: None,
                });
                ranges.push((l, m));
                cells.push(Cell {
                    lo: mid,
                    hi: cells[p].hi,
                    split: None,
                });
                ranges.push((m + 1, u));
                cells[p].split = Some((t, left, left + 1));
            }
            p += 1;
        }

        let mut fitter = LocalFit::new(n, nf, k);
        let mut vertices = Vec::with_capacity(positions.len());
        for &q in &positions {
            let (value, slope) = fitter.fit(x, y, q, span)?;
            vertices.push((q, value, slope));
        }
        Ok(LoessSurface { cells, vertices })
    }

    /// The surface at `z` (cubic Hermite interpolation inside the leaf cell holding `z`). Values outside
    /// the widened bounding box are extrapolated with the boundary cell's cubic.
    pub fn eval(&self, z: f64) -> f64 {
        let mut c = 0;
        while let Some((t, left, right)) = self.cells[c].split {
            c = if z <= t { left } else { right };
        }
        let (x0, g0, d0) = self.vertices[self.cells[c].lo];
        let (x1, g1, d1) = self.vertices[self.cells[c].hi];
        let width = x1 - x0;
        let h = (z - x0) / width;
        let phi0 = (1.0 - h).powi(2) * (1.0 + 2.0 * h);
        let phi1 = h.powi(2) * (3.0 - 2.0 * h);
        let psi0 = h * (1.0 - h).powi(2);
        let psi1 = h.powi(2) * (h - 1.0);
        phi0 * g0 + phi1 * g1 + (psi0 * d0 + psi1 * d1) * width
    }
}

/// Workspace for one local weighted polynomial fit.
struct LocalFit {
    dist: Vec<f64>,
    order: Vec<usize>,
    nf: usize,
    k: usize,
    b: Vec<f64>,
    eta: Vec<f64>,
}

impl LocalFit {
    fn new(n: usize, nf: usize, k: usize) -> Self {
        LocalFit {
            dist: vec![0.0; n],
            order: (0..n).collect(),
            nf,
            k,
            b: vec![0.0; nf * k],
            eta: vec![0.0; nf],
        }
    }

    /// Local fit at `q`: (value, first derivative).
    fn fit(&mut self, x: &[f64], y: &[f64], q: f64, span: f64) -> Result<(f64, f64), DataError> {
        let (nf, k) = (self.nf, self.k);
        for (d, &xi) in self.dist.iter_mut().zip(x) {
            *d = (xi - q) * (xi - q);
        }
        let dist = &self.dist;
        self.order
            .sort_by(|&a, &b| dist[a].total_cmp(&dist[b]).then(a.cmp(&b)));
        let rho = dist[self.order[nf - 1]] * span.max(1.0);
        if rho <= 0.0 {
            return Err(DataError::Invalid(format!(
                "loess: zero-width neighbourhood at {q} (more than span·n identical x values); use a larger span"
            )));
        }
        // design matrix, column-major nf × k, rows weighted by sqrt(tricube)
        for i in 0..nf {
            let j = self.order[i];
            let r = (dist[j] / rho).sqrt();
            let w = ((1.0 - r * r * r).powi(3)).max(0.0).sqrt();
            let dx = x[j] - q;
            self.b[i] = w;
            if k > 1 {
                self.b[nf + i] = w * dx;
            }
            if k > 2 {
                self.b[2 * nf + i] = w * dx * dx;
            }
            self.eta[i] = w * y[j];
        }
        if self.b[..nf].iter().all(|&w| w == 0.0) {
            return Err(DataError::Invalid(format!(
                "loess: all points lie on the boundary of the neighbourhood at {q}; use a larger span"
            )));
        }
        // equilibrate columns
        let mut colnorm = [1.0f64; 3];
        for (norm, col) in colnorm.iter_mut().zip(self.b.chunks_mut(nf)).take(k) {
            let s = col.iter().map(|v| v * v).sum::<f64>().sqrt();
            if s > 0.0 {
                col.iter_mut().for_each(|v| *v /= s);
                *norm = s;
            }
        }
        let (r, qte) = householder_qr(&mut self.b, &mut self.eta, nf, k);
        let (u, sigma, v) = jacobi_svd(r, k);
        let tol = sigma[0] * 100.0 * f64::EPSILON;
        let mut gamma = [0.0f64; 3];
        for j in 0..k {
            if sigma[j] > tol {
                gamma[j] = (0..k).map(|i| u[i][j] * qte[i]).sum::<f64>() / sigma[j];
            }
        }
        let coef = |row: usize| -> f64 {
            if row < k {
                (0..k).map(|j| v[row][j] * gamma[j]).sum::<f64>() / colnorm[row]
            } else {
                0.0
            }
        };
        Ok((coef(0), coef(1)))
    }
}

/// Householder QR of the column-major `nf × k` matrix `b` (k ≤ 3); returns R (k × k, upper) and the first
/// k entries of Qᵀ·eta.
fn householder_qr(
    b: &mut [f64],
    eta: &mut [f64],
    nf: usize,
    k: usize,
) -> ([[f64; 3]; 3], [f64; 3]) {
    for c in 0..k {
        let norm = (c..nf).map(|i| b[c * nf + i].powi(2)).sum::<f64>().sqrt();
        if norm == 0.0 {
            continue;
        }
        let alpha = if b[c * nf + c] > 0.0 { -norm } else { norm };
        // v = x - alpha e1, stored in place
        let mut v: Vec<f64> = (c..nf).map(|i| b[c * nf + i]).collect();
        v[0] -= alpha;
        let vnorm2: f64 = v.iter().map(|t| t * t).sum();
        if vnorm2 == 0.0 {
            continue;
        }
        let reflect = |col: &mut [f64]| {
            let dot: f64 = v.iter().zip(&col[c..]).map(|(a, b)| a * b).sum();
            let f = 2.0 * dot / vnorm2;
            for (t, a) in col[c..].iter_mut().zip(&v) {
                *t -= f * a;
            }
        };
        for cc in c..k {
            reflect(&mut b[cc * nf..(cc + 1) * nf]);
        }
        reflect(eta);
    }
    let mut r = [[0.0f64; 3]; 3];
    for i in 0..k {
        for j in i..k {
            r[i][j] = b[j * nf + i];
        }
    }
    let mut qte = [0.0f64; 3];
    qte[..k].copy_from_slice(&eta[..k]);
    (r, qte)
}

/// SVD of a small k × k matrix by one-sided Jacobi: returns (U, σ descending, V) with A = U diag(σ) Vᵀ.
fn jacobi_svd(a: [[f64; 3]; 3], k: usize) -> ([[f64; 3]; 3], [f64; 3], [[f64; 3]; 3]) {
    let mut w = a; // columns are rotated in place
    let mut v = [[0.0f64; 3]; 3];
    for (i, row) in v.iter_mut().enumerate().take(k) {
        row[i] = 1.0;
    }
    for _sweep in 0..60 {
        let mut rotated = false;
        for p in 0..k {
            for q in p + 1..k {
                let (mut alpha, mut beta, mut gamma) = (0.0, 0.0, 0.0);
                for row in w.iter().take(k) {
                    alpha += row[p] * row[p];
                    beta += row[q] * row[q];
                    gamma += row[p] * row[q];
                }
                if gamma.abs() <= 1e-300 || gamma.abs() <= f64::EPSILON * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let t = if zeta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                for row in w.iter_mut().take(k) {
                    let (x, y) = (row[p], row[q]);
                    row[p] = c * x - s * y;
                    row[q] = s * x + c * y;
                }
                for row in v.iter_mut().take(k) {
                    let (x, y) = (row[p], row[q]);
                    row[p] = c * x - s * y;
                    row[q] = s * x + c * y;
                }
            }
        }
        if !rotated {
            break;
        }
    }
    let mut sigma = [0.0f64; 3];
    for (j, s) in sigma.iter_mut().enumerate().take(k) {
        *s = (0..k).map(|i| w[i][j] * w[i][j]).sum::<f64>().sqrt();
    }
    // order by descending singular value
    let mut idx: Vec<usize> = (0..k).collect();
    idx.sort_by(|&a, &b| sigma[b].total_cmp(&sigma[a]));
    let mut u = [[0.0f64; 3]; 3];
    let mut vs = [[0.0f64; 3]; 3];
    let mut ss = [0.0f64; 3];
    for (new, &old) in idx.iter().enumerate() {
        ss[new] = sigma[old];
        for i in 0..k {
            u[i][new] = if sigma[old] > 0.0 {
                w[i][old] / sigma[old]
            } else {
                0.0
            };
            vs[i][new] = v[i][old];
        }
    }
    (u, ss, vs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quadratic_data_are_reproduced_exactly_by_degree_two() {
        // A degree-2 local fit reproduces any quadratic exactly, and so does the cubic Hermite interpolant
        // built from exact values and slopes of a quadratic.
        let x: Vec<f64> = (0..120)
            .map(|i| -1.0 + 2.5 * ((i * 37 % 120) as f64) / 119.0)
            .collect();
        let y: Vec<f64> = x.iter().map(|v| 0.3 - 1.2 * v + 0.7 * v * v).collect();
        let fitted = loess_fit(&x, &y, 0.3, 2).unwrap();
        for (f, t) in fitted.iter().zip(&y) {
            assert!((f - t).abs() < 1e-10, "{f} vs {t}");
        }
    }

    #[test]
    fn linear_data_are_reproduced_by_degree_one() {
        let x: Vec<f64> = (0..50).map(|i| (i as f64).sqrt()).collect();
        let y: Vec<f64> = x.iter().map(|v| 2.0 - 0.5 * v).collect();
        let fitted = loess_fit(&x, &y, 0.5, 1).unwrap();
        for (f, t) in fitted.iter().zip(&y) {
            assert!((f - t).abs() < 1e-10);
        }
    }

    #[test]
    fn too_small_a_span_is_an_error() {
        let x: Vec<f64> = (0..10).map(|i| i as f64).collect();
        let err = loess_fit(&x, &x, 0.2, 2).unwrap_err().to_string();
        assert!(err.contains("larger span"), "{err}");
    }
}
