//! Pairwise kernels shared by the distribution metrics: cross products x·yᵀ and squared Euclidean
//! distances between the rows of two matrices (cells × genes).
//!
//! The cross products are one matrix product (`matrixmultiply` through ndarray, single-threaded: the
//! callers already run perturbations in parallel). When both arguments are the same matrix only the
//! blocks on and above the diagonal are multiplied and the result is mirrored, so it is exactly
//! symmetric.
//!
//! Two distance flavours are offered:
//! * [`expanded_sq_dists`]: the reference implementations' ‖x‖² + ‖y‖² − 2⟨x,y⟩ in the caller's
//!   precision, unclipped (ott-jax's `SqEuclidean` cost, MapPFN's float32 MMD);
//! * [`sq_dists`]: float64 distances accurate to a few units in the last place of each entry, as the
//!   direct Σ(x−y)² is. Both sets are first centred on a common vector (distances do not change, the
//!   expansion loses far less to cancellation), and every entry whose expansion is small against the
//!   norms it came from (where cancellation could cost digits, e.g. coinciding cells) is recomputed by
//!   direct differences.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2, Axis, LinalgScalar};

/// Rows per block of the symmetric product (x·xᵀ): small enough that skipping the blocks below the
/// diagonal saves most of the lower half, large enough for the matrix product to run at full speed.
const SYM_BLOCK: usize = 48;

/// An expanded distance below this fraction of ‖x̃‖² + ‖ỹ‖² (centred norms) is recomputed directly.
/// Above it the expansion's rounding error, ≲ (√d + 2)·ε·(‖x̃‖² + ‖ỹ‖²), is ≲ 16 (√d + 2)·ε relative.
const RECOMPUTE_BELOW: f64 = 1.0 / 16.0;

/// True if `x` and `y` view the same matrix (same data, shape and strides).
pub(crate) fn same_matrix<T>(x: ArrayView2<T>, y: ArrayView2<T>) -> bool {
    x.as_ptr() == y.as_ptr() && x.dim() == y.dim() && x.strides() == y.strides()
}

/// Squared row norms Σ_k x_ik², accumulated in gene order in `T` (as ott and MapPFN do).
pub(crate) fn sq_norms<T: LinalgScalar>(x: ArrayView2<T>) -> Vec<T> {
    x.rows()
        .into_iter()
        .map(|r| r.iter().fold(T::zero(), |s, &v| s + v * v))
        .collect()
}

/// Cross products G = x·yᵀ, row-major n × m. With `symmetric` (y is x) only the blocks on and above
/// the diagonal are multiplied; the lower triangle is copied from the upper one.
pub(crate) fn cross_products<T: LinalgScalar>(
    x: ArrayView2<T>,
    y: ArrayView2<T>,
    symmetric: bool,
) -> Vec<T> {
    let (n, m) = (x.nrows(), y.nrows());
    assert_eq!(x.ncols(), y.ncols(), "cross_products: gene counts differ");
    let mut out = vec![T::zero(); n * m];
    if n == 0 || m == 0 {
        return out;
    }
    let mut g = ArrayViewMut2::from_shape((n, m), &mut out).expect("n × m buffer");
    if !symmetric {
        general_mat_mul(T::one(), &x, &y.t(), T::zero(), &mut g);
        return out;
    }
    assert_eq!(n, m, "cross_products: a symmetric product needs y = x");
    let blocks = n.div_ceil(SYM_BLOCK);
    let step = n.div_ceil(blocks);
    for r0 in (0..n).step_by(step) {
        let r1 = (r0 + step).min(n);
        let xr = x.slice(s![r0..r1, ..]);
        let yc = x.slice(s![r0.., ..]);
        let mut gb = g.slice_mut(s![r0..r1, r0..]);
        general_mat_mul(T::one(), &xr, &yc.t(), T::zero(), &mut gb);
    }
    for i in 1..n {
        for j in 0..i {
            out[i * m + j] = out[j * m + i];
        }
    }
    out
}

/// Rows of x per register tile of [`cross_products_ordered`].
const TILE_ROWS: usize = 4;

/// x·yᵀ (row-major n × m) with every entry accumulated exactly like the scalar loop
/// `dot += x_ik · y_jk` (k in gene order, each product rounded, no fused multiply-add), hence
/// bit-identical to it; vectorised across the rows of y (packed into panels of `W` rows, gene-major)
/// and register-tiled over `TILE_ROWS` rows of x. With `symmetric` (y is x) only the tiles that reach
/// the upper triangle are computed; the rest is mirrored (exact: products commute).
pub(crate) fn cross_products_ordered<T: LinalgScalar>(
    x: ArrayView2<T>,
    y: ArrayView2<T>,
    symmetric: bool,
) -> Vec<T> {
    assert_eq!(
        x.ncols(),
        y.ncols(),
        "cross_products_ordered: gene counts differ"
    );
    if std::mem::size_of::<T>() <= 4 {
        ordered_dispatch::<T, 16>(x, y, symmetric)
    } else {
        ordered_dispatch::<T, 8>(x, y, symmetric)
    }
}

/// [`cross_products_ordered`] with panels of `W` rows, on the widest vector unit available.
fn ordered_dispatch<T: LinalgScalar, const W: usize>(
    x: ArrayView2<T>,
    y: ArrayView2<T>,
    symmetric: bool,
) -> Vec<T> {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::kernels::has_avx2() {
            // SAFETY: AVX2 is available (checked at run time).
            return unsafe { ordered_avx2::<T, W>(x, y, symmetric) };
        }
    }
    ordered_impl::<T, W>(x, y, symmetric)
}

/// [`ordered_impl`] compiled with AVX2 (no FMA contraction: Rust never fuses `a + b * c`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn ordered_avx2<T: LinalgScalar, const W: usize>(
    x: ArrayView2<T>,
    y: ArrayView2<T>,
    symmetric: bool,
) -> Vec<T> {
    ordered_impl::<T, W>(x, y, symmetric)
}

/// The body of [`cross_products_ordered`] (inlined into each instruction-set variant).
#[inline(always)]
fn ordered_impl<T: LinalgScalar, const W: usize>(
    x: ArrayView2<T>,
    y: ArrayView2<T>,
    symmetric: bool,
) -> Vec<T> {
    let (n, m, d) = (x.nrows(), y.nrows(), x.ncols());
    let mut out = vec![T::zero(); n * m];
    if n == 0 || m == 0 {
        return out;
    }
    let xs = x.as_standard_layout();
    let xs = xs.as_slice().expect("standard layout");
    // panel p holds rows p·W .. p·W + W of y, gene-major (k·W + c), zero-padded
    let panels = m.div_ceil(W);
    let mut packed = vec![T::zero(); panels * d * W];
    for (j, row) in y.rows().into_iter().enumerate() {
        let (p, c) = (j / W, j % W);
        for (k, &v) in row.iter().enumerate() {
            packed[(p * d + k) * W + c] = v;
        }
    }
    let mut i0 = 0;
    while i0 < n {
        let rows = TILE_ROWS.min(n - i0);
        let first_panel = if symmetric { i0 / W } else { 0 };
        for p in first_panel..panels {
            let panel = &packed[p * d * W..(p + 1) * d * W];
            let mut acc = [[T::zero(); W]; TILE_ROWS];
            if rows == TILE_ROWS {
                tile::<T, W, TILE_ROWS>(&xs[i0 * d..(i0 + TILE_ROWS) * d], panel, d, &mut acc);
            } else {
                for r in 0..rows {
                    let xr = &xs[(i0 + r) * d..(i0 + r + 1) * d];
                    tile::<T, W, 1>(xr, panel, d, std::slice::from_mut(&mut acc[r]));
                }
            }
            let cols = W.min(m - p * W);
            for (r, a) in acc.iter().enumerate().take(rows) {
                let o = (i0 + r) * m + p * W;
                out[o..o + cols].copy_from_slice(&a[..cols]);
            }
        }
        i0 += rows;
    }
    if symmetric {
        for i in 1..n {
            for j in 0..i {
                out[i * m + j] = out[j * m + i];
            }
        }
    }
    out
}

/// acc[r][c] = Σ_k x[r·d + k] · panel[k·W + c], accumulated in k order.
#[inline(always)]
fn tile<T: LinalgScalar, const W: usize, const R: usize>(
    x: &[T],
    panel: &[T],
    d: usize,
    acc: &mut [[T; W]],
) {
    let mut a = [[T::zero(); W]; R];
    for k in 0..d {
        let yk: &[T; W] = panel[k * W..(k + 1) * W].try_into().expect("panel row");
        for r in 0..R {
            let xv = x[r * d + k];
            for c in 0..W {
                a[r][c] = a[r][c] + xv * yk[c];
            }
        }
    }
    acc[..R].copy_from_slice(&a);
}

/// (‖x_i‖² + ‖y_j‖²) − 2·G_ij in `T`, row-major n × m, unclipped, from the cross products `g`
/// (n × m, e.g. [`cross_products`]) and squared norms — the order ott-jax and MapPFN evaluate the
/// ‖x‖² + ‖y‖² − 2⟨x,y⟩ expansion in (x + (−y) equals x − y exactly).
pub(crate) fn expanded_sq_dists<T: LinalgScalar>(
    mut g: Vec<T>,
    x_norms: &[T],
    y_norms: &[T],
) -> Vec<T> {
    let m = y_norms.len();
    let two = T::one() + T::one();
    if m == 0 {
        return g;
    }
    for (row, &xn) in g.chunks_exact_mut(m).zip(x_norms) {
        for (o, &yn) in row.iter_mut().zip(y_norms) {
            *o = (xn + yn) - two * *o;
        }
    }
    g
}

/// Σ_k (a_k − b_k)², accumulated in gene order.
fn direct_sq(a: ndarray::ArrayView1<f64>, b: ndarray::ArrayView1<f64>) -> f64 {
    let mut s = 0.0;
    for (&u, &v) in a.iter().zip(b.iter()) {
        let t = u - v;
        s += t * t;
    }
    s
}

/// Squared Euclidean distances between the rows of x (n × d) and y (m × d), row-major n × m, in
/// float64 and accurate entry by entry (see the module documentation): non-negative, exactly 0 for
/// coinciding rows (so on the diagonal of `sq_dists(x, x)`), and exactly symmetric for x vs x.
pub(crate) fn sq_dists(x: ArrayView2<f64>, y: ArrayView2<f64>) -> Vec<f64> {
    let (n, m) = (x.nrows(), y.nrows());
    assert_eq!(x.ncols(), y.ncols(), "sq_dists: gene counts differ");
    if n == 0 || m == 0 {
        return Vec::new();
    }
    let symmetric = same_matrix(x, y);
    let centre: Array1<f64> = y.mean_axis(Axis(0)).expect("y has rows");
    let xc: Array2<f64> = &x - &centre;
    let yc: Array2<f64> = if symmetric { xc.clone() } else { &y - &centre };
    let norms = |a: &Array2<f64>| -> Vec<f64> { a.rows().into_iter().map(|r| r.dot(&r)).collect() };
    let (xn, yn) = (norms(&xc), norms(&yc));
    let mut out = expanded_sq_dists(cross_products(xc.view(), yc.view(), symmetric), &xn, &yn);
    for (i, row) in out.chunks_exact_mut(m).enumerate() {
        let lo = if symmetric { i } else { 0 };
        for j in lo..m {
            let v = row[j];
            row[j] = if v > RECOMPUTE_BELOW * (xn[i] + yn[j]) {
                v
            } else {
                direct_sq(x.row(i), y.row(j))
            };
        }
    }
    if symmetric {
        for i in 1..n {
            for j in 0..i {
                out[i * m + j] = out[j * m + i];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn lcg_matrix(n: usize, d: usize, seed: u64, offset: f64) -> Array2<f64> {
        let mut s = seed;
        Array2::from_shape_fn((n, d), |_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            // sparse-ish, non-negative, with a common offset (like log-normalised counts)
            offset + if u < 0.4 { 0.0 } else { 3.0 * u }
        })
    }

    fn naive(x: &Array2<f64>, y: &Array2<f64>) -> Vec<f64> {
        let mut out = Vec::new();
        for i in 0..x.nrows() {
            for j in 0..y.nrows() {
                out.push(direct_sq(x.row(i), y.row(j)));
            }
        }
        out
    }

    #[test]
    fn matches_direct_differences_entry_by_entry() {
        for (n, m, d, off) in [(7, 5, 3, 0.0), (70, 53, 301, 0.0), (61, 97, 257, 5.0)] {
            let x = lcg_matrix(n, d, 1, off);
            let mut y = lcg_matrix(m, d, 2, off);
            y.row_mut(3).assign(&x.row(4)); // a coinciding pair
            let got = sq_dists(x.view(), y.view());
            let want = naive(&x, &y);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-13 * w, "{g} vs {w}");
            }
            assert_eq!(got[4 * m + 3], 0.0);
            let got = sq_dists(x.view(), x.view());
            let want = naive(&x, &x);
            for i in 0..n {
                assert_eq!(got[i * n + i], 0.0);
                for j in 0..n {
                    let (g, w) = (got[i * n + j], want[i * n + j]);
                    assert!((g - w).abs() <= 1e-13 * w, "{g} vs {w}");
                    assert_eq!(g, got[j * n + i]);
                }
            }
        }
    }

    #[test]
    fn symmetric_cross_products_equal_the_full_product() {
        let x = lcg_matrix(131, 40, 3, 0.0).mapv(|v| v as f32);
        let full = cross_products(x.view(), x.view(), false);
        let half = cross_products(x.view(), x.view(), true);
        for (a, b) in full.iter().zip(&half) {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
        }
        let n = sq_norms(x.view());
        let e = expanded_sq_dists(cross_products(x.view(), x.view(), true), &n, &n);
        for i in 0..131 {
            for j in 0..131 {
                assert_eq!(e[i * 131 + j], e[j * 131 + i]);
            }
        }
    }

    #[test]
    fn ordered_products_equal_the_scalar_loop_bit_for_bit() {
        for (n, m, d) in [(1, 1, 1), (5, 17, 3), (13, 35, 70), (37, 37, 129)] {
            let x = lcg_matrix(n, d, 4, 1000.0);
            let y = lcg_matrix(m, d, 5, 1000.0);
            let xf = x.mapv(|v| v as f32);
            let yf = y.mapv(|v| v as f32);
            let check = |got: Vec<f32>, a: &Array2<f32>, b: &Array2<f32>| {
                for i in 0..a.nrows() {
                    for j in 0..b.nrows() {
                        let mut dot = 0.0f32;
                        for k in 0..d {
                            dot += a[[i, k]] * b[[j, k]];
                        }
                        assert_eq!(got[i * b.nrows() + j].to_bits(), dot.to_bits());
                    }
                }
            };
            check(
                cross_products_ordered(xf.view(), yf.view(), false),
                &xf,
                &yf,
            );
            check(cross_products_ordered(xf.view(), xf.view(), true), &xf, &xf);
            let g = cross_products_ordered(x.view(), y.view(), false);
            for i in 0..n {
                for j in 0..m {
                    let mut dot = 0.0f64;
                    for k in 0..d {
                        dot += x[[i, k]] * y[[j, k]];
                    }
                    assert_eq!(g[i * m + j].to_bits(), dot.to_bits());
                }
            }
        }
    }

    /// Timing of the kernels at the leaderboard's set size (166 × 166 cells, 2,000 genes):
    /// `cargo test --release -p cellshift-metrics --lib pairwise::tests::timing -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn timing() {
        use std::time::Instant;
        let (n, d, reps) = (166, 2000, 20);
        let x = lcg_matrix(n, d, 6, 0.0);
        let y = lcg_matrix(n, d, 7, 0.0);
        let (xf, yf) = (x.mapv(|v| v as f32), y.mapv(|v| v as f32));
        let time = |name: &str, f: &dyn Fn() -> f64| {
            let t = Instant::now();
            let mut s = 0.0;
            for _ in 0..reps {
                s += f();
            }
            let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
            println!("{name:<44} {ms:8.2} ms  (checksum {s:.6e})");
        };
        time("scalar f32 dot loop (old scaled_cost)", &|| {
            let mut s = 0.0f32;
            for i in 0..n {
                for j in 0..n {
                    let mut dot = 0.0f32;
                    for k in 0..d {
                        dot += xf[[i, k]] * yf[[j, k]];
                    }
                    s += dot;
                }
            }
            s as f64
        });
        time("f64 direct differences (old sq_dists)", &|| {
            let yt: Vec<f64> = (0..d).flat_map(|k| y.column(k).to_vec()).collect();
            let mut out = vec![0.0f64; n * n];
            for i in 0..n {
                let acc = &mut out[i * n..(i + 1) * n];
                for k in 0..d {
                    let xik = x[[i, k]];
                    for (a, &v) in acc.iter_mut().zip(&yt[k * n..(k + 1) * n]) {
                        let t = xik - v;
                        *a += t * t;
                    }
                }
            }
            out.iter().sum()
        });
        time("f64 sq_dists x·y", &|| {
            sq_dists(x.view(), y.view()).iter().sum()
        });
        time("f64 sq_dists x·x", &|| {
            sq_dists(x.view(), x.view()).iter().sum()
        });
        time("f32 cross_products (sgemm) x·y", &|| {
            cross_products(xf.view(), yf.view(), false)
                .iter()
                .map(|&v| v as f64)
                .sum()
        });
        time("f32 cross_products (sgemm) x·x", &|| {
            cross_products(xf.view(), xf.view(), true)
                .iter()
                .map(|&v| v as f64)
                .sum()
        });
        time("f64 cross_products (dgemm) x·y", &|| {
            cross_products(x.view(), y.view(), false).iter().sum()
        });
        time("f32 cross_products_ordered x·y", &|| {
            cross_products_ordered(xf.view(), yf.view(), false)
                .iter()
                .map(|&v| v as f64)
                .sum()
        });
        time("f32 cross_products_ordered x·x", &|| {
            cross_products_ordered(xf.view(), xf.view(), true)
                .iter()
                .map(|&v| v as f64)
                .sum()
        });
        time("f64 cross_products_ordered x·y", &|| {
            cross_products_ordered(x.view(), y.view(), false)
                .iter()
                .sum()
        });
    }
}
