//! Entropic optimal transport and the Sinkhorn divergence exactly as MapPFN computes its "W2"
//! (ott-jax 0.5.1 `sinkhorn_divergence(PointCloud, cost_fn=SqEuclidean(), epsilon=0.1, scale_cost=1.0)`),
//! in float32 (what MapPFN reports) or float64, plus a POT-style variant.
//!
//! Algorithm (ott's balanced lse-mode Sinkhorn, restated): uniform weights a = 1/n, b = 1/m, cost
//! C_ij = ‖x_i‖² + ‖y_j‖² − 2⟨x_i, y_j⟩, absolute ε, potentials f = g = 0 at start.
//! * cross term (x, y): g ← ε log b − ε LSE_i((f_i − C_ij)/ε), then f ← ε log a − ε LSE_j((g_j − C_ij)/ε)
//!   with the new g; every `inner_iterations`-th iteration the error ‖Pᵀ1 − b‖₁ is computed and the loop
//!   stops (checked before each block of iterations) once it is below `threshold`.
//! * symmetric terms (x, x), (y, y): parallel updates with momentum ½ (both potentials from the old
//!   ones, then averaged with them); error ‖P1 − a‖₁ + ‖Pᵀ1 − b‖₁. With a symmetric cost and equal
//!   weights f and g stay identical, so one log-sum-exp pass per iteration suffices.
//! * regularised cost ⟨a, f − ε log a⟩ + ⟨b, g − ε log b⟩ + ε(Σa·Σb − Σ_ij P_ij).
//! * divergence S = OT(x,y) − ½(OT(x,x) + OT(y,y)) + ½ε(Σa − Σb)²; no square root.
//!
//! The f32 path keeps every vector, the cost matrix and the reductions in f32, as the jitted ott code
//! does; exact bit equality with XLA is not possible (different exp/log and summation order), the
//! observed agreement is documented in the crate's parity tests.

use crate::error::MetricsError;
use crate::kernels::{lse_rows, SinkFloat};
use crate::pairwise::{cross_products, expanded_sq_dists};
use ndarray::ArrayView2;

/// Floating-point precision of a Sinkhorn run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// float32 throughout (MapPFN's jitted ott-jax run).
    F32,
    /// float64 throughout.
    F64,
}

/// Parameters of the Sinkhorn solver; `Default` gives MapPFN's setting (ε = 0.1, threshold 1e-3,
/// 2000 iterations, error checked every 10, float32).
#[derive(Debug, Clone, Copy)]
pub struct SinkhornOptions {
    /// Absolute entropic regularisation ε (the cost is not rescaled).
    pub epsilon: f64,
    /// Stop once the L1 marginal error is below this value.
    pub threshold: f64,
    /// Maximum number of iterations.
    pub max_iterations: usize,
    /// The error is computed (and the stopping rule checked) every this many iterations.
    pub inner_iterations: usize,
    /// Arithmetic precision.
    pub precision: Precision,
    /// Cost from direct differences Σ(x−y)² clipped at 0 (the oracle's numpy replica) instead of ott's
    /// ‖x‖² + ‖y‖² − 2⟨x,y⟩ expansion.
    pub direct_cost: bool,
}

impl Default for SinkhornOptions {
    fn default() -> Self {
        SinkhornOptions {
            epsilon: 0.1,
            threshold: 1e-3,
            max_iterations: 2000,
            inner_iterations: 10,
            precision: Precision::F32,
            direct_cost: false,
        }
    }
}

impl SinkhornOptions {
    /// MapPFN's float64 variant (same loop, float64 arithmetic).
    pub fn mappfn_f64() -> Self {
        SinkhornOptions {
            precision: Precision::F64,
            ..Default::default()
        }
    }

    /// A tightly converged float64 run (threshold 1e-6, 20000 iterations) — the oracle's `w2_tight`.
    pub fn tight_f64() -> Self {
        SinkhornOptions {
            threshold: 1e-6,
            max_iterations: 20000,
            precision: Precision::F64,
            ..Default::default()
        }
    }

    fn validate(&self) -> Result<(), MetricsError> {
        if !self.epsilon.is_finite() || self.epsilon <= 0.0 {
            return Err(MetricsError::InvalidParameter {
                name: "epsilon".into(),
                value: self.epsilon.to_string(),
                hint: "ε must be a positive finite number (MapPFN uses 0.1)".into(),
            });
        }
        if self.inner_iterations == 0 || self.max_iterations == 0 {
            return Err(MetricsError::InvalidParameter {
                name: "iterations".into(),
                value: format!(
                    "max {} / inner {}",
                    self.max_iterations, self.inner_iterations
                ),
                hint: "max_iterations and inner_iterations must be ≥ 1".into(),
            });
        }
        Ok(())
    }
}

/// Result of one entropic OT problem.
#[derive(Debug, Clone, Copy)]
pub struct RegOtCost {
    /// ott's `reg_ot_cost` (= ⟨P,C⟩ + ε KL(P‖abᵀ) at convergence).
    pub cost: f64,
    /// Iterations run (a multiple of `inner_iterations`, like ott's `n_iters`).
    pub n_iters: usize,
    /// ott's convergence flag (no NaN error and the last error slot below threshold).
    pub converged: bool,
}

/// Result of a Sinkhorn divergence: the value and, for the (xy, xx, yy) problems, iterations and flags.
#[derive(Debug, Clone, Copy)]
pub struct SinkhornDivergence {
    /// S = OT(x,y) − ½(OT(x,x) + OT(y,y)) (+ ½ε(Σa−Σb)², ≈ 0).
    pub value: f64,
    /// Iterations of the (xy, xx, yy) problems.
    pub n_iters: [usize; 3],
    /// Convergence flags of the (xy, xx, yy) problems.
    pub converged: [bool; 3],
}

/// A point cloud prepared for repeated Sinkhorn problems: the points in the run's precision and their
/// squared norms (computed as ott does, Σ x²).
#[derive(Debug, Clone)]
pub struct PointCloud<T> {
    n: usize,
    d: usize,
    data: Vec<T>,
    sq_norms: Vec<T>,
}

impl<T: SinkFloat> PointCloud<T> {
    /// Converts a cells × genes matrix (rounding to `T`) and precomputes squared norms.
    pub fn new(x: ArrayView2<f64>) -> Self {
        let (n, d) = x.dim();
        let data: Vec<T> = x.iter().map(|&v| T::from_f64(v)).collect();
        let sq_norms = (0..n)
            .map(|i| {
                let mut s = T::ZERO;
                for k in 0..d {
                    let v = data[i * d + k];
                    s += v * v;
                }
                s
            })
            .collect();
        PointCloud {
            n,
            d,
            data,
            sq_norms,
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True if the cloud has no points.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// Scaled cost matrix C/ε (row-major n × m) for clouds x, y: C_ij = (‖x_i‖² + ‖y_j‖²) + (−2⟨x_i,y_j⟩)
/// with the cross products from one matrix product (half of it, mirrored, when y is x), or with
/// `direct` the numpy replica's Σ(x−y)² clipped at 0.
fn scaled_cost<T: SinkFloat>(x: &PointCloud<T>, y: &PointCloud<T>, eps: T, direct: bool) -> Vec<T> {
    if direct {
        return direct_scaled_cost(x, y, eps);
    }
    let xv = ArrayView2::from_shape((x.n, x.d), &x.data).expect("n × d cloud");
    let yv = ArrayView2::from_shape((y.n, y.d), &y.data).expect("m × d cloud");
    let g = cross_products(xv, yv, std::ptr::eq(x, y));
    let mut c = expanded_sq_dists(g, &x.sq_norms, &y.sq_norms);
    for v in c.iter_mut() {
        *v = *v / eps;
    }
    c
}

/// The numpy replica's cost: direct differences accumulated in gene order, clipped at 0, divided by ε.
fn direct_scaled_cost<T: SinkFloat>(x: &PointCloud<T>, y: &PointCloud<T>, eps: T) -> Vec<T> {
    let (n, m, d) = (x.n, y.n, x.d);
    let mut c = vec![T::ZERO; n * m];
    for i in 0..n {
        let xi = &x.data[i * d..(i + 1) * d];
        for j in 0..m {
            let yj = &y.data[j * d..(j + 1) * d];
            let mut s = T::ZERO;
            for k in 0..d {
                let t = xi[k] - yj[k];
                s += t * t;
            }
            let cost = if s > T::ZERO { s } else { T::ZERO };
            c[i * m + j] = cost / eps;
        }
    }
    c
}

fn transpose<T: SinkFloat>(c: &[T], n: usize, m: usize) -> Vec<T> {
    let mut t = vec![T::ZERO; n * m];
    for i in 0..n {
        for j in 0..m {
            t[j * n + i] = c[i * m + j];
        }
    }
    t
}

/// Log-sum-exp over the rows of a fixed matrix with a changing shift vector, restricted to the
/// entries that can matter ("kernel truncation"): after a dense pass, each row keeps the entries with
/// s_c − M_rc ≥ LSE_r − `build_margin`. When the shift has moved by δ (sup norm) since, every entry's
/// offset to its row's LSE has moved by at most 2δ, so dropped entries stay below LSE − (margin − 2δ);
/// the kept structure is reused while 2δ ≤ `build_margin − keep_margin` and rebuilt otherwise. Dropped
/// terms are thus always < e^(−keep_margin) relative to the row sum (below the float's resolution for
/// the margins used), so the result equals the dense LSE to rounding.
struct TruncatedLse<T> {
    offsets: Vec<usize>,
    idx: Vec<u32>,
    val: Vec<T>,
    shift_at_build: Vec<T>,
    tmp: Vec<T>,
    valid: bool,
    build_margin: f64,
    max_drift: f64,
}

impl<T: SinkFloat> TruncatedLse<T> {
    fn new(build_margin: f64, keep_margin: f64) -> Self {
        TruncatedLse {
            offsets: Vec::new(),
            idx: Vec::new(),
            val: Vec::new(),
            shift_at_build: Vec::new(),
            tmp: Vec::new(),
            valid: false,
            build_margin,
            max_drift: 0.5 * (build_margin - keep_margin),
        }
    }

    /// out[r] = LSE_c(s[c] − mat[r, c]); `allow_sparse` enables building/using the truncated rows.
    fn compute(&mut self, mat: &[T], cols: usize, s: &[T], out: &mut [T], allow_sparse: bool) {
        if allow_sparse && self.valid {
            let drift = s
                .iter()
                .zip(&self.shift_at_build)
                .fold(0.0f64, |d, (&a, &b)| d.max((a - b).abs().to_f64()));
            if drift <= self.max_drift {
                for ((tk, &c), &v) in self.tmp.iter_mut().zip(&self.idx).zip(&self.val) {
                    *tk = s.get(c as usize).copied().unwrap_or(T::NEG_INF) - v;
                }
                T::lse_segments(&self.offsets, &self.tmp, out);
                return;
            }
        }
        lse_rows(mat, cols, s, out);
        self.valid = false;
        if allow_sparse {
            let margin = T::from_f64(self.build_margin);
            self.offsets.clear();
            self.idx.clear();
            self.val.clear();
            self.offsets.push(0);
            for (r, &l) in out.iter().enumerate() {
                let row = &mat[r * cols..(r + 1) * cols];
                let start = self.idx.len();
                for (c, (&mv, &sv)) in row.iter().zip(s).enumerate() {
                    if sv - mv - l >= -margin {
                        self.idx.push(c as u32);
                        self.val.push(mv);
                    }
                }
                // pad to whole SIMD vectors with entries that contribute exp(−∞ → −87) ≈ 0
                while (self.idx.len() - start) & 7 != 0 {
                    self.idx.push(0);
                    self.val.push(T::from_f64(f64::INFINITY));
                }
                self.offsets.push(self.idx.len());
            }
            self.shift_at_build.clear();
            self.shift_at_build.extend_from_slice(s);
            self.tmp.resize(self.idx.len(), T::ZERO);
            // worthwhile only if it drops a good share of the entries
            self.valid = self.idx.len() * 2 < mat.len();
        }
    }
}

/// (build, keep) margins of the truncated log-sum-exp per precision: dropped terms stay below
/// e^(−25) ≈ 1.4e-11 (f32) or e^(−45) ≈ 2.9e-20 (f64) relative to the row sum.
fn truncation_margins<T: SinkFloat>() -> (f64, f64) {
    if std::mem::size_of::<T>() == 4 {
        (50.0, 25.0)
    } else {
        (85.0, 45.0)
    }
}

/// Iterations run densely before the truncated kernel is used (the potentials move fast early on).
const TRUNCATION_WARMUP: usize = 20;

/// Sum in T, in index order.
fn sum_t<T: SinkFloat>(v: &[T]) -> T {
    let mut s = T::ZERO;
    for &x in v {
        s += x;
    }
    s
}

/// The problem's fixed quantities: the scaled cost Cε (n × m), uniform weights and their logs.
struct Problem<'c, T> {
    ce: &'c [T],
    n: usize,
    m: usize,
    eps: T,
    a: T,
    b: T,
    log_a: T,
    log_b: T,
}

/// The potentials and scratch vectors of one solve, with its convergence bookkeeping.
struct Potentials<T> {
    f: Vec<T>,
    g: Vec<T>,
    /// f/ε.
    u: Vec<T>,
    /// g/ε.
    v: Vec<T>,
    col_lse: Vec<T>,
    row_lse: Vec<T>,
    blocks_with_error: usize,
    last_err: f64,
    any_nan: bool,
}

impl<T: SinkFloat> Potentials<T> {
    fn new(n: usize, m: usize) -> Self {
        Potentials {
            f: vec![T::ZERO; n],
            g: vec![T::ZERO; m],
            u: vec![T::ZERO; n],
            v: vec![T::ZERO; m],
            col_lse: vec![T::ZERO; m],
            row_lse: vec![T::ZERO; n],
            blocks_with_error: 0,
            last_err: f64::INFINITY,
            any_nan: false,
        }
    }

    /// u ← f/ε.
    fn scale_f(&mut self, eps: T) {
        for (ui, &fi) in self.u.iter_mut().zip(&self.f) {
            *ui = fi / eps;
        }
    }

    /// Records a block's marginal error.
    fn record_error(&mut self, err: T) {
        self.last_err = err.to_f64();
        self.any_nan |= err.is_nan();
        self.blocks_with_error += 1;
    }
}

/// Runs ott's block loop: `outer` blocks of `inner` iterations, stopping before a block once the last
/// error is below the threshold or not finite; `step(state, k, it)` does iteration `it` (the `k`-th
/// of its block).
fn run_blocks<T: SinkFloat>(
    state: &mut Potentials<T>,
    opts: &SinkhornOptions,
    mut step: impl FnMut(&mut Potentials<T>, usize, usize),
) {
    let (max_it, inner) = (opts.max_iterations, opts.inner_iterations);
    let outer = max_it.div_ceil(inner);
    let mut it = 0usize;
    for block in 0..outer {
        if block > 0 && (state.last_err < opts.threshold || !state.last_err.is_finite()) {
            return;
        }
        for k in 0..inner {
            if it >= max_it {
                return;
            }
            step(state, k, it);
            it += 1;
        }
    }
}

/// The symmetric (x, x) problem: parallel updates with momentum ½, f ≡ g throughout.
fn solve_symmetric<T: SinkFloat>(
    p: &Problem<'_, T>,
    s: &mut Potentials<T>,
    opts: &SinkhornOptions,
) {
    let half = T::from_f64(0.5);
    let (inner, max_it) = (opts.inner_iterations, opts.max_iterations);
    run_blocks(s, opts, |s, k, it| {
        s.scale_f(p.eps);
        lse_rows(p.ce, p.n, &s.u, &mut s.row_lse);
        for (fi, &l) in s.f.iter_mut().zip(&s.row_lse) {
            let new = p.eps * p.log_a - p.eps * l;
            let old = if fi.is_finite() { *fi } else { T::ZERO };
            *fi = (T::ONE - half) * old + half * new;
        }
        if k == inner - 1 || it == max_it - 1 {
            s.scale_f(p.eps);
            lse_rows(p.ce, p.n, &s.u, &mut s.row_lse);
            let mut err = T::ZERO;
            for (&l, &ui) in s.row_lse.iter().zip(&s.u) {
                err += ((ui + l).exp() - p.a).abs();
            }
            s.record_error(err + err);
        }
    });
    let f = s.f.clone();
    s.g.copy_from_slice(&f);
}

/// The cross (x, y) problem: alternating updates with truncated log-sum-exps; `cet` is Cεᵀ.
fn solve_cross<T: SinkFloat>(
    p: &Problem<'_, T>,
    cet: &[T],
    s: &mut Potentials<T>,
    opts: &SinkhornOptions,
) {
    let (bm, km) = truncation_margins::<T>();
    let mut col_tr = TruncatedLse::<T>::new(bm, km);
    let mut row_tr = TruncatedLse::<T>::new(bm, km);
    let mut col_lse_valid = false; // col_lse already holds LSE_i(u_i − Cε_ij) for the current f
    let (inner, max_it) = (opts.inner_iterations, opts.max_iterations);
    run_blocks(s, opts, |s, k, it| {
        let sparse_ok = it >= TRUNCATION_WARMUP;
        if !col_lse_valid {
            s.scale_f(p.eps);
            col_tr.compute(cet, p.n, &s.u, &mut s.col_lse, sparse_ok);
        }
        for (gj, &l) in s.g.iter_mut().zip(&s.col_lse) {
            *gj = p.eps * p.log_b - p.eps * l;
        }
        for (vj, &gj) in s.v.iter_mut().zip(&s.g) {
            *vj = gj / p.eps;
        }
        row_tr.compute(p.ce, p.m, &s.v, &mut s.row_lse, sparse_ok);
        for (fi, &l) in s.f.iter_mut().zip(&s.row_lse) {
            *fi = p.eps * p.log_a - p.eps * l;
        }
        col_lse_valid = false;
        if k == inner - 1 || it == max_it - 1 {
            s.scale_f(p.eps);
            col_tr.compute(cet, p.n, &s.u, &mut s.col_lse, it + 1 >= TRUNCATION_WARMUP);
            col_lse_valid = true;
            let mut err = T::ZERO;
            for (&l, &gj) in s.col_lse.iter().zip(&s.g) {
                err += ((gj / p.eps + l).exp() - p.b).abs();
            }
            s.record_error(err);
        }
    });
}

/// The regularised OT cost of the final potentials (ott's `compute_kl_reg_cost`, balanced case).
fn kl_reg_cost<T: SinkFloat>(p: &Problem<'_, T>, cet: Option<&[T]>, s: &mut Potentials<T>) -> T {
    let fa = p.eps * p.log_a;
    let gb = p.eps * p.log_b;
    let mut div_a = T::ZERO;
    for &fi in &s.f {
        div_a += p.a * (fi - fa);
    }
    let mut div_b = T::ZERO;
    for &gj in &s.g {
        div_b += p.b * (gj - gb);
    }
    // total mass Σ_j exp(g_j/ε + LSE_i(f_i/ε − Cε_ij))
    s.scale_f(p.eps);
    let total = match cet {
        None => {
            lse_rows(p.ce, p.n, &s.u, &mut s.row_lse);
            let mut t = T::ZERO;
            for (&l, &ui) in s.row_lse.iter().zip(&s.u) {
                t += (ui + l).exp();
            }
            t
        }
        Some(cet) => {
            lse_rows(cet, p.n, &s.u, &mut s.col_lse);
            let mut t = T::ZERO;
            for (&l, &gj) in s.col_lse.iter().zip(&s.g) {
                t += (gj / p.eps + l).exp();
            }
            t
        }
    };
    let sum_a = sum_t(&vec![p.a; p.n]);
    let sum_b = sum_t(&vec![p.b; p.m]);
    div_a + div_b + p.eps * (sum_a * sum_b - total)
}

/// Solves the entropic OT problem between clouds x and y with ott's loop. `symmetric` selects the
/// parallel-update/momentum-½ variant ott uses for the (x,x) and (y,y) terms (x and y must then be the
/// same cloud).
pub fn reg_ot_cost<T: SinkFloat>(
    x: &PointCloud<T>,
    y: &PointCloud<T>,
    symmetric: bool,
    opts: &SinkhornOptions,
) -> RegOtCost {
    let (n, m) = (x.n, y.n);
    let eps = T::from_f64(opts.epsilon);
    let ce = scaled_cost(x, y, eps, opts.direct_cost);
    let a = T::ONE / T::from_f64(n as f64);
    let b = T::ONE / T::from_f64(m as f64);
    let problem = Problem {
        ce: &ce,
        n,
        m,
        eps,
        a,
        b,
        log_a: a.ln(),
        log_b: b.ln(),
    };
    let mut state = Potentials::new(n, m);
    let cost = if symmetric {
        solve_symmetric(&problem, &mut state, opts);
        kl_reg_cost(&problem, None, &mut state)
    } else {
        let cet = transpose(&ce, n, m);
        solve_cross(&problem, &cet, &mut state, opts);
        kl_reg_cost(&problem, Some(&cet), &mut state)
    };
    let outer = opts.max_iterations.div_ceil(opts.inner_iterations);
    let converged =
        !state.any_nan && (state.blocks_with_error < outer || state.last_err < opts.threshold);
    RegOtCost {
        cost: cost.to_f64(),
        n_iters: state.blocks_with_error * opts.inner_iterations,
        converged,
    }
}

/// Combines the three regularised costs into the divergence in precision `T`, as ott does:
/// S = OT_xy − ½(OT_xx + OT_yy) + ½ε(Σa − Σb)².
pub fn combine<T: SinkFloat>(xy: f64, xx: f64, yy: f64, n: usize, m: usize, epsilon: f64) -> f64 {
    let (xy, xx, yy) = (T::from_f64(xy), T::from_f64(xx), T::from_f64(yy));
    let half = T::from_f64(0.5);
    let a = T::ONE / T::from_f64(n as f64);
    let b = T::ONE / T::from_f64(m as f64);
    let d = sum_t(&vec![a; n]) - sum_t(&vec![b; m]);
    let eps = T::from_f64(epsilon);
    (xy - half * (xx + yy) + half * eps * (d * d)).to_f64()
}

fn check_inputs(x: ArrayView2<f64>, y: ArrayView2<f64>) -> Result<(), MetricsError> {
    if x.ncols() != y.ncols() {
        return Err(MetricsError::GeneMismatch {
            what: "second point cloud".into(),
            got: y.ncols(),
            expected: x.ncols(),
        });
    }
    for (m, what) in [(x, "first point cloud"), (y, "second point cloud")] {
        if m.nrows() == 0 {
            return Err(MetricsError::TooFewCells {
                what: what.into(),
                got: 0,
                min: 1,
            });
        }
        if let Some(((r, c), &v)) = m.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(MetricsError::NonFinite {
                what: what.into(),
                row: r,
                col: c,
                value: v,
            });
        }
    }
    Ok(())
}

fn divergence_t<T: SinkFloat>(
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    opts: &SinkhornOptions,
) -> SinkhornDivergence {
    let px = PointCloud::<T>::new(x);
    let py = PointCloud::<T>::new(y);
    let (xy, (xx, yy)) = rayon::join(
        || reg_ot_cost(&px, &py, false, opts),
        || {
            rayon::join(
                || reg_ot_cost(&px, &px, true, opts),
                || reg_ot_cost(&py, &py, true, opts),
            )
        },
    );
    SinkhornDivergence {
        value: combine::<T>(xy.cost, xx.cost, yy.cost, px.n, py.n, opts.epsilon),
        n_iters: [xy.n_iters, xx.n_iters, yy.n_iters],
        converged: [xy.converged, xx.converged, yy.converged],
    }
}

/// Sinkhorn divergence between the point clouds x (n × d) and y (m × d) with ott-jax 0.5.1 semantics
/// (see the module documentation); the three OT problems run in parallel. Errors on mismatched
/// dimensions, empty clouds, non-finite values or invalid options.
pub fn sinkhorn_divergence(
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    opts: &SinkhornOptions,
) -> Result<SinkhornDivergence, MetricsError> {
    opts.validate()?;
    check_inputs(x, y)?;
    Ok(match opts.precision {
        Precision::F32 => divergence_t::<f32>(x, y, opts),
        Precision::F64 => divergence_t::<f64>(x, y, opts),
    })
}

/// Entropic OT value computed the way the oracle's `w2_pot` does: POT 0.9.7 `ot.bregman.sinkhorn_log`
/// (alternating log-domain updates from zero, L2 column-marginal error checked at iterations 0, 10,
/// 20, …, stop below `stop_thr`), then ⟨P,C⟩ + ε KL(P‖abᵀ) recomputed from the plan, with the
/// direct squared-distance cost. float64.
pub fn pot_reg_cost(
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    epsilon: f64,
    stop_thr: f64,
    max_iter: usize,
) -> f64 {
    let (n, m, d) = (x.nrows(), y.nrows(), x.ncols());
    let mut c = vec![0.0f64; n * m];
    for i in 0..n {
        for j in 0..m {
            let mut s = 0.0;
            for k in 0..d {
                let t = x[[i, k]] - y[[j, k]];
                s += t * t;
            }
            c[i * m + j] = s.max(0.0);
        }
    }
    let ce: Vec<f64> = c.iter().map(|&v| v / epsilon).collect();
    let cet = transpose(&ce, n, m);
    let a = 1.0 / n as f64;
    let b = 1.0 / m as f64;
    let (la, lb) = (a.ln(), b.ln());
    let mut u = vec![0.0; n];
    let mut v = vec![0.0; m];
    let mut tmp_m = vec![0.0; m];
    let mut tmp_n = vec![0.0; n];
    for ii in 0..max_iter {
        lse_rows(&cet, n, &u, &mut tmp_m);
        for (vj, &l) in v.iter_mut().zip(&tmp_m) {
            *vj = lb - l;
        }
        lse_rows(&ce, m, &v, &mut tmp_n);
        for (ui, &l) in u.iter_mut().zip(&tmp_n) {
            *ui = la - l;
        }
        if ii % 10 == 0 {
            lse_rows(&cet, n, &u, &mut tmp_m);
            let err: f64 = tmp_m
                .iter()
                .zip(&v)
                .map(|(&l, &vj)| ((vj + l).exp() - b).powi(2))
                .sum::<f64>()
                .sqrt();
            if err < stop_thr {
                break;
            }
        }
    }
    let mut pc = 0.0;
    let mut kl = 0.0;
    let mut mass = 0.0;
    let ab = a * b;
    for i in 0..n {
        for j in 0..m {
            let p = (u[i] + v[j] - ce[i * m + j]).exp();
            if p > 0.0 {
                pc += p * c[i * m + j];
                kl += p * (p / ab).ln();
                mass += p;
            }
        }
    }
    pc + epsilon * (kl - mass + 1.0)
}

/// Debiased entropic OT with the POT-style solver ([`pot_reg_cost`]) — the oracle's `w2_pot`.
pub fn pot_sinkhorn_divergence(
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    epsilon: f64,
) -> Result<f64, MetricsError> {
    check_inputs(x, y)?;
    let (xy, (xx, yy)) = rayon::join(
        || pot_reg_cost(x, y, epsilon, 1e-7, 20000),
        || {
            rayon::join(
                || pot_reg_cost(x, x, epsilon, 1e-7, 20000),
                || pot_reg_cost(y, y, epsilon, 1e-7, 20000),
            )
        },
    );
    Ok(xy - 0.5 * xx - 0.5 * yy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn identical_clouds_give_zero() {
        let x = array![[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]];
        for p in [Precision::F32, Precision::F64] {
            let opts = SinkhornOptions {
                precision: p,
                ..Default::default()
            };
            let s = sinkhorn_divergence(x.view(), x.view(), &opts).unwrap();
            assert!(s.value.abs() < 1e-5, "{p:?}: {}", s.value);
        }
    }

    #[test]
    fn single_points_give_squared_distance() {
        // one point each: P = 1, OT = C, self terms 0 ⇒ S = ‖x − y‖²
        let x = array![[1.0, 2.0, 3.0]];
        let y = array![[0.0, 0.0, 1.0]];
        let s = sinkhorn_divergence(x.view(), y.view(), &SinkhornOptions::mappfn_f64()).unwrap();
        assert!((s.value - 9.0).abs() < 1e-12, "{}", s.value);
    }

    #[test]
    fn translation_of_well_separated_points() {
        // points far apart relative to ε: the plan is the identity and S ≈ shift² (ε-corrections cancel)
        let x = array![[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let y = x.mapv(|v| v) + 0.3;
        let s = sinkhorn_divergence(x.view(), y.view(), &SinkhornOptions::tight_f64()).unwrap();
        assert!((s.value - 0.18).abs() < 1e-6, "{}", s.value);
    }
}
