//! Vectorisable numerical kernels for the log-domain Sinkhorn solver: a branch-free `exp` for f32 and
//! f64 and the row-wise log-sum-exp `out_r = LSE_c(s_c − M_rc)`. On x86-64 CPUs with AVX2+FMA the
//! kernels are compiled a second time with those features and selected at run time.

/// Floating-point type the Sinkhorn solver can run in (f32 mirrors ott-jax's float32 run, f64 is the
/// accurate path).
pub trait SinkFloat:
    Copy
    + Send
    + Sync
    + PartialOrd
    + std::fmt::Debug
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
    + ndarray::LinalgScalar
    + 'static
{
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// Negative infinity.
    const NEG_INF: Self;
    /// Conversion from f64 (rounding to nearest).
    fn from_f64(v: f64) -> Self;
    /// Conversion to f64 (exact).
    fn to_f64(self) -> f64;
    /// Fast exponential (≤ 2 ulp on the range used here; results below the smallest normal flush to ~0).
    fn fast_exp(self) -> Self;
    /// The same exponential written with fused multiply-adds (only for code compiled with FMA).
    fn fast_exp_fma(self) -> Self;
    /// Maximum ignoring NaN (IEEE maxNum, vectorisable).
    fn max_num(self, other: Self) -> Self;
    /// Natural logarithm (libm accuracy).
    fn ln(self) -> Self;
    /// exp with libm accuracy.
    fn exp(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// Finite check.
    fn is_finite(self) -> bool;
    /// NaN check.
    fn is_nan(self) -> bool;
    /// LSE_c(s[c] − row[c]) (lane width chosen for the type); `FMA` selects the fused exp.
    fn lse_row<const FMA: bool>(row: &[Self], s: &[Self]) -> Self;
    /// Row-wise LSE over a row-major matrix with the fastest kernel the CPU supports.
    fn lse_rows_impl(m: &[Self], cols: usize, s: &[Self], out: &mut [Self]);
    /// LSE_c(s[c] − row[c]) of one row with the fastest kernel the CPU supports.
    fn lse_one(row: &[Self], s: &[Self]) -> Self;
    /// Σ_k exp(scale · v_k) with the fastest kernel the CPU supports.
    fn sum_exp(v: &[Self], scale: Self) -> Self;
    /// Segment-wise LSE: out[r] = LSE(t[offsets[r]..offsets[r+1]]).
    fn lse_segments(offsets: &[usize], t: &[Self], out: &mut [Self]) {
        for (r, o) in out.iter_mut().enumerate() {
            let seg = &t[offsets[r]..offsets[r + 1]];
            let mut m = Self::NEG_INF;
            for &v in seg {
                m = m.max_num(v);
            }
            if !m.is_finite() {
                m = Self::ZERO;
            }
            let mut sum = Self::ZERO;
            for &v in seg {
                sum += (v - m).fast_exp();
            }
            *o = m + sum.ln();
        }
    }
}

impl SinkFloat for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    const NEG_INF: f32 = f32::NEG_INFINITY;
    #[inline(always)]
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn fast_exp(self) -> f32 {
        exp_f32(self)
    }
    #[inline(always)]
    fn fast_exp_fma(self) -> f32 {
        exp_f32_fma(self)
    }
    #[inline(always)]
    fn max_num(self, other: f32) -> f32 {
        f32::max(self, other)
    }
    #[inline(always)]
    fn ln(self) -> f32 {
        f32::ln(self)
    }
    #[inline(always)]
    fn exp(self) -> f32 {
        f32::exp(self)
    }
    #[inline(always)]
    fn abs(self) -> f32 {
        f32::abs(self)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    #[inline(always)]
    fn lse_row<const FMA: bool>(row: &[f32], s: &[f32]) -> f32 {
        lse_row_lanes::<f32, 8, FMA>(row, s)
    }
    fn lse_rows_impl(m: &[f32], cols: usize, s: &[f32], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if has_avx2() {
                for (o, row) in out.iter_mut().zip(m.chunks_exact(cols.max(1))) {
                    // SAFETY: AVX2 and FMA are available (checked at run time); slices are in bounds.
                    *o = unsafe { avx2::lse_row_f32(row, &s[..row.len()]) };
                }
                return;
            }
        }
        lse_rows_generic::<f32, false>(m, cols, s, out)
    }
    fn lse_one(row: &[f32], s: &[f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        {
            if has_avx2() {
                // SAFETY: AVX2 and FMA are available (checked at run time).
                return unsafe { avx2::lse_row_f32(row, &s[..row.len()]) };
            }
        }
        lse_row_lanes::<f32, 8, false>(row, s)
    }
    fn lse_segments(offsets: &[usize], t: &[f32], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if has_avx2() {
                for (r, o) in out.iter_mut().enumerate() {
                    let seg = &t[offsets[r]..offsets[r + 1]];
                    // SAFETY: AVX2 and FMA are available (checked at run time).
                    *o = unsafe { avx2::lse_vals_f32(seg) };
                }
                return;
            }
        }
        for (r, o) in out.iter_mut().enumerate() {
            let seg = &t[offsets[r]..offsets[r + 1]];
            let mut m = f32::NEG_INFINITY;
            for &v in seg {
                m = m.max(v);
            }
            if !m.is_finite() {
                m = 0.0;
            }
            let sum: f32 = seg.iter().map(|&v| exp_f32(v - m)).sum();
            *o = m + sum.ln();
        }
    }
    fn sum_exp(v: &[f32], scale: f32) -> f32 {
        #[cfg(target_arch = "x86_64")]
        {
            if has_avx2() {
                // SAFETY: AVX2 and FMA are available (checked at run time).
                return unsafe { avx2::sum_exp_f32(v, scale) };
            }
        }
        let mut acc = [0.0f32; 8];
        for (k, &x) in v.iter().enumerate() {
            acc[k % 8] += exp_f32(scale * x);
        }
        acc.iter().sum()
    }
}

impl SinkFloat for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    const NEG_INF: f64 = f64::NEG_INFINITY;
    #[inline(always)]
    fn from_f64(v: f64) -> f64 {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn fast_exp(self) -> f64 {
        exp_f64(self)
    }
    #[inline(always)]
    fn fast_exp_fma(self) -> f64 {
        exp_f64_fma(self)
    }
    #[inline(always)]
    fn max_num(self, other: f64) -> f64 {
        f64::max(self, other)
    }
    #[inline(always)]
    fn ln(self) -> f64 {
        f64::ln(self)
    }
    #[inline(always)]
    fn exp(self) -> f64 {
        f64::exp(self)
    }
    #[inline(always)]
    fn abs(self) -> f64 {
        f64::abs(self)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    #[inline(always)]
    fn lse_row<const FMA: bool>(row: &[f64], s: &[f64]) -> f64 {
        lse_row_lanes::<f64, 4, FMA>(row, s)
    }
    fn lse_rows_impl(m: &[f64], cols: usize, s: &[f64], out: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        {
            if has_avx2() {
                for (o, row) in out.iter_mut().zip(m.chunks_exact(cols.max(1))) {
                    // SAFETY: AVX2 and FMA are available (checked at run time); slices are in bounds.
                    *o = unsafe { avx2::lse_row_f64(row, &s[..row.len()]) };
                }
                return;
            }
        }
        lse_rows_generic::<f64, false>(m, cols, s, out)
    }
    fn lse_one(row: &[f64], s: &[f64]) -> f64 {
        #[cfg(target_arch = "x86_64")]
        {
            if has_avx2() {
                // SAFETY: AVX2 and FMA are available (checked at run time).
                return unsafe { avx2::lse_row_f64(row, &s[..row.len()]) };
            }
        }
        lse_row_lanes::<f64, 4, false>(row, s)
    }
    fn sum_exp(v: &[f64], scale: f64) -> f64 {
        #[cfg(target_arch = "x86_64")]
        {
            if has_avx2() {
                // SAFETY: AVX2 and FMA are available (checked at run time).
                return unsafe { avx2::sum_exp_f64(v, scale) };
            }
        }
        let mut acc = [0.0f64; 4];
        for (k, &x) in v.iter().enumerate() {
            acc[k % 4] += exp_f64(scale * x);
        }
        acc.iter().sum()
    }
}

/// Branch-free exp for f32: Cody–Waite reduction x = n·ln2 + r, degree-7 Taylor polynomial on
/// |r| ≤ ln2/2, scaling by 2ⁿ through the exponent bits. Inputs are clamped to [−87, 88].
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5·2^23: adding it rounds to an integer
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4; // 0x3f318000, exact in few bits
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + MAGIC;
    let n_bits = t.to_bits() as i32 - MAGIC.to_bits() as i32;
    let n = t - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits(((n_bits + 127) as u32) << 23);
    p * scale
}

/// Branch-free exp for f64: Cody–Waite reduction, degree-13 Taylor polynomial on |r| ≤ ln2/2
/// (truncation < 5e-18 relative), scaling by 2ⁿ through the exponent bits. Inputs clamped to
/// [−708, 709].
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2^52
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let x = x.clamp(-708.0, 709.0);
    let t = x * LOG2E + MAGIC;
    let n_bits = t.to_bits() as i64 - MAGIC.to_bits() as i64;
    let n = t - MAGIC;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    const C: [f64; 14] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
        1.0 / 40320.0,
        1.0 / 362880.0,
        1.0 / 3628800.0,
        1.0 / 39916800.0,
        1.0 / 479001600.0,
        1.0 / 6227020800.0,
    ];
    let mut p = C[13];
    let mut k = 12;
    loop {
        p = p * r + C[k];
        if k == 0 {
            break;
        }
        k -= 1;
    }
    let scale = f64::from_bits(((n_bits + 1023) as u64) << 52);
    p * scale
}

/// [`exp_f32`] with fused multiply-adds (same reduction and polynomial; ≤ 1 ulp different).
#[inline(always)]
pub fn exp_f32_fma(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let t = x.mul_add(LOG2E, MAGIC);
    let n_bits = t.to_bits() as i32 - MAGIC.to_bits() as i32;
    let n = t - MAGIC;
    let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x));
    let mut p = 1.0 / 5040.0f32;
    p = p.mul_add(r, 1.0 / 720.0);
    p = p.mul_add(r, 1.0 / 120.0);
    p = p.mul_add(r, 1.0 / 24.0);
    p = p.mul_add(r, 1.0 / 6.0);
    p = p.mul_add(r, 0.5);
    p = p.mul_add(r, 1.0);
    p = p.mul_add(r, 1.0);
    let scale = f32::from_bits(((n_bits + 127) as u32) << 23);
    p * scale
}

/// [`exp_f64`] with fused multiply-adds.
#[inline(always)]
pub fn exp_f64_fma(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let x = x.clamp(-708.0, 709.0);
    let t = x.mul_add(LOG2E, MAGIC);
    let n_bits = t.to_bits() as i64 - MAGIC.to_bits() as i64;
    let n = t - MAGIC;
    let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x));
    let mut p = 1.0 / 6227020800.0f64;
    for c in [
        1.0 / 479001600.0,
        1.0 / 39916800.0,
        1.0 / 3628800.0,
        1.0 / 362880.0,
        1.0 / 40320.0,
        1.0 / 5040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p.mul_add(r, c);
    }
    let scale = f64::from_bits(((n_bits + 1023) as u64) << 52);
    p * scale
}

/// out[r] = LSE_c(s[c] − m[r·cols + c]) for every row r of the row-major matrix `m` (rows × cols).
#[inline(always)]
fn lse_rows_generic<T: SinkFloat, const FMA: bool>(m: &[T], cols: usize, s: &[T], out: &mut [T]) {
    debug_assert_eq!(s.len(), cols);
    for (o, row) in out.iter_mut().zip(m.chunks_exact(cols.max(1))) {
        *o = T::lse_row::<FMA>(row, s);
    }
}

/// LSE_c(s[c] − row[c]) with `L` independent lanes (two passes: maximum, then Σ exp). Chunks are
/// taken as `[T; L]` arrays so that each lane loop compiles to single vector instructions.
#[inline(always)]
fn lse_row_lanes<T: SinkFloat, const L: usize, const FMA: bool>(row: &[T], s: &[T]) -> T {
    let s = &s[..row.len()];
    let full = row.len() / L * L;
    let (rh, rt) = row.split_at(full);
    let (sh, st) = s.split_at(full);
    let mut mx = [T::NEG_INF; L];
    for (r, q) in rh.chunks_exact(L).zip(sh.chunks_exact(L)) {
        let r: &[T; L] = r.try_into().unwrap_or_else(|_| unreachable!());
        let q: &[T; L] = q.try_into().unwrap_or_else(|_| unreachable!());
        for l in 0..L {
            mx[l] = mx[l].max_num(q[l] - r[l]);
        }
    }
    let mut m = T::NEG_INF;
    for &v in &mx {
        m = m.max_num(v);
    }
    for (r, q) in rt.iter().zip(st) {
        m = m.max_num(*q - *r);
    }
    if !m.is_finite() {
        // all −inf (empty mass) or +inf: shift by 0 like jax's guard
        m = T::ZERO;
    }
    let mut acc = [T::ZERO; L];
    for (r, q) in rh.chunks_exact(L).zip(sh.chunks_exact(L)) {
        let r: &[T; L] = r.try_into().unwrap_or_else(|_| unreachable!());
        let q: &[T; L] = q.try_into().unwrap_or_else(|_| unreachable!());
        for l in 0..L {
            let v = q[l] - r[l] - m;
            acc[l] += if FMA { v.fast_exp_fma() } else { v.fast_exp() };
        }
    }
    let mut sum = T::ZERO;
    for &a in &acc {
        sum += a;
    }
    for (r, q) in rt.iter().zip(st) {
        let v = *q - *r - m;
        sum += if FMA { v.fast_exp_fma() } else { v.fast_exp() };
    }
    m + sum.ln()
}

/// Σ_k exp(scale · v_k) (AVX2+FMA kernel when available; lane-wise summation order).
pub fn sum_exp<T: SinkFloat>(v: &[T], scale: T) -> T {
    T::sum_exp(v, scale)
}

/// Row-wise log-sum-exp `out[r] = LSE_c(s[c] − m[r, c])` (row-major `m` with `cols` columns), using
/// AVX2+FMA kernels when the CPU has them.
pub fn lse_rows<T: SinkFloat>(m: &[T], cols: usize, s: &[T], out: &mut [T]) {
    assert_eq!(
        m.len(),
        cols * out.len(),
        "lse_rows: matrix size does not match output length"
    );
    assert!(s.len() >= cols, "lse_rows: shift vector shorter than a row");
    T::lse_rows_impl(m, cols, s, out)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! Explicit AVX2/FMA kernels (8 × f32 or 4 × f64 per instruction) for one row's log-sum-exp;
    //! same reduction, polynomial and clamping as `exp_f32_fma` / `exp_f64_fma`.
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn exp8(x: __m256) -> __m256 {
        let x = _mm256_min_ps(
            _mm256_max_ps(x, _mm256_set1_ps(-87.0)),
            _mm256_set1_ps(88.0),
        );
        let magic = _mm256_set1_ps(12_582_912.0);
        let t = _mm256_fmadd_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E), magic);
        let n_bits = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(magic));
        let n = _mm256_sub_ps(t, magic);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm256_set1_ps(1.0 / 5040.0);
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0 / 720.0));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0 / 120.0));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0 / 24.0));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0 / 6.0));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0));
        let scale = _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_add_epi32(n_bits, _mm256_set1_epi32(127)),
            23,
        ));
        _mm256_mul_ps(p, scale)
    }

    #[inline(always)]
    unsafe fn hsum8(v: __m256) -> f32 {
        let mut a = [0.0f32; 8];
        _mm256_storeu_ps(a.as_mut_ptr(), v);
        ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
    }

    #[inline(always)]
    unsafe fn hmax8(v: __m256) -> f32 {
        let mut a = [0.0f32; 8];
        _mm256_storeu_ps(a.as_mut_ptr(), v);
        a.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x))
    }

    /// LSE_c(s[c] − row[c]) for f32; `s.len() == row.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn lse_row_f32(row: &[f32], s: &[f32]) -> f32 {
        let n = row.len();
        let (rp, sp) = (row.as_ptr(), s.as_ptr());
        let full = n / 8 * 8;
        let mut vmax = _mm256_set1_ps(f32::NEG_INFINITY);
        let mut i = 0;
        while i < full {
            let v = _mm256_sub_ps(_mm256_loadu_ps(sp.add(i)), _mm256_loadu_ps(rp.add(i)));
            vmax = _mm256_max_ps(vmax, v);
            i += 8;
        }
        let mut m = hmax8(vmax);
        for k in full..n {
            m = m.max(s[k] - row[k]);
        }
        if !m.is_finite() {
            m = 0.0;
        }
        let vm = _mm256_set1_ps(m);
        let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let full16 = n / 16 * 16;
        i = 0;
        while i < full16 {
            let v0 = _mm256_sub_ps(
                _mm256_sub_ps(_mm256_loadu_ps(sp.add(i)), _mm256_loadu_ps(rp.add(i))),
                vm,
            );
            let v1 = _mm256_sub_ps(
                _mm256_sub_ps(
                    _mm256_loadu_ps(sp.add(i + 8)),
                    _mm256_loadu_ps(rp.add(i + 8)),
                ),
                vm,
            );
            acc0 = _mm256_add_ps(acc0, exp8(v0));
            acc1 = _mm256_add_ps(acc1, exp8(v1));
            i += 16;
        }
        while i < full {
            let v0 = _mm256_sub_ps(
                _mm256_sub_ps(_mm256_loadu_ps(sp.add(i)), _mm256_loadu_ps(rp.add(i))),
                vm,
            );
            acc0 = _mm256_add_ps(acc0, exp8(v0));
            i += 8;
        }
        let mut sum = hsum8(_mm256_add_ps(acc0, acc1));
        for k in full..n {
            sum += super::exp_f32_fma(s[k] - row[k] - m);
        }
        m + sum.ln()
    }

    /// LSE of a contiguous f32 slice (8 lanes); NaN-free input expected.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn lse_vals_f32(t: &[f32]) -> f32 {
        let n = t.len();
        let p = t.as_ptr();
        let full = n / 8 * 8;
        let mut vmax = _mm256_set1_ps(f32::NEG_INFINITY);
        let mut i = 0;
        while i < full {
            vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(p.add(i)));
            i += 8;
        }
        let mut m = hmax8(vmax);
        for &v in &t[full..] {
            m = m.max(v);
        }
        if !m.is_finite() {
            m = 0.0;
        }
        let vm = _mm256_set1_ps(m);
        let mut acc = _mm256_setzero_ps();
        i = 0;
        while i < full {
            acc = _mm256_add_ps(acc, exp8(_mm256_sub_ps(_mm256_loadu_ps(p.add(i)), vm)));
            i += 8;
        }
        let mut sum = hsum8(acc);
        for &v in &t[full..] {
            sum += super::exp_f32_fma(v - m);
        }
        m + sum.ln()
    }

    /// Σ exp(scale·v) for f32 (8 lanes, two accumulators).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sum_exp_f32(v: &[f32], scale: f32) -> f32 {
        let n = v.len();
        let full = n / 16 * 16;
        let vs = _mm256_set1_ps(scale);
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let p = v.as_ptr();
        let mut i = 0;
        while i < full {
            a0 = _mm256_add_ps(a0, exp8(_mm256_mul_ps(vs, _mm256_loadu_ps(p.add(i)))));
            a1 = _mm256_add_ps(a1, exp8(_mm256_mul_ps(vs, _mm256_loadu_ps(p.add(i + 8)))));
            i += 16;
        }
        let mut sum = hsum8(_mm256_add_ps(a0, a1));
        for &x in &v[full..] {
            sum += super::exp_f32_fma(scale * x);
        }
        sum
    }

    /// Σ exp(scale·v) for f64 (4 lanes, two accumulators).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sum_exp_f64(v: &[f64], scale: f64) -> f64 {
        let n = v.len();
        let full = n / 8 * 8;
        let vs = _mm256_set1_pd(scale);
        let (mut a0, mut a1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let p = v.as_ptr();
        let mut i = 0;
        while i < full {
            a0 = _mm256_add_pd(a0, exp4(_mm256_mul_pd(vs, _mm256_loadu_pd(p.add(i)))));
            a1 = _mm256_add_pd(a1, exp4(_mm256_mul_pd(vs, _mm256_loadu_pd(p.add(i + 4)))));
            i += 8;
        }
        let mut a = [0.0f64; 4];
        _mm256_storeu_pd(a.as_mut_ptr(), _mm256_add_pd(a0, a1));
        let mut sum = (a[0] + a[1]) + (a[2] + a[3]);
        for &x in &v[full..] {
            sum += super::exp_f64_fma(scale * x);
        }
        sum
    }

    #[inline(always)]
    unsafe fn exp4(x: __m256d) -> __m256d {
        let x = _mm256_min_pd(
            _mm256_max_pd(x, _mm256_set1_pd(-708.0)),
            _mm256_set1_pd(709.0),
        );
        let magic = _mm256_set1_pd(6_755_399_441_055_744.0);
        let t = _mm256_fmadd_pd(x, _mm256_set1_pd(std::f64::consts::LOG2_E), magic);
        let n_bits = _mm256_sub_epi64(_mm256_castpd_si256(t), _mm256_castpd_si256(magic));
        let n = _mm256_sub_pd(t, magic);
        let r = _mm256_fnmadd_pd(n, _mm256_set1_pd(6.931_471_803_691_238e-1), x);
        let r = _mm256_fnmadd_pd(n, _mm256_set1_pd(1.908_214_929_270_587_7e-10), r);
        let mut p = _mm256_set1_pd(1.0 / 6227020800.0);
        for c in [
            1.0 / 479001600.0,
            1.0 / 39916800.0,
            1.0 / 3628800.0,
            1.0 / 362880.0,
            1.0 / 40320.0,
            1.0 / 5040.0,
            1.0 / 720.0,
            1.0 / 120.0,
            1.0 / 24.0,
            1.0 / 6.0,
            0.5,
            1.0,
            1.0,
        ] {
            p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(c));
        }
        let scale = _mm256_castsi256_pd(_mm256_slli_epi64(
            _mm256_add_epi64(n_bits, _mm256_set1_epi64x(1023)),
            52,
        ));
        _mm256_mul_pd(p, scale)
    }

    /// LSE_c(s[c] − row[c]) for f64; `s.len() == row.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn lse_row_f64(row: &[f64], s: &[f64]) -> f64 {
        let n = row.len();
        let (rp, sp) = (row.as_ptr(), s.as_ptr());
        let full = n / 4 * 4;
        let mut vmax = _mm256_set1_pd(f64::NEG_INFINITY);
        let mut i = 0;
        while i < full {
            let v = _mm256_sub_pd(_mm256_loadu_pd(sp.add(i)), _mm256_loadu_pd(rp.add(i)));
            vmax = _mm256_max_pd(vmax, v);
            i += 4;
        }
        let mut a = [0.0f64; 4];
        _mm256_storeu_pd(a.as_mut_ptr(), vmax);
        let mut m = a.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
        for k in full..n {
            m = m.max(s[k] - row[k]);
        }
        if !m.is_finite() {
            m = 0.0;
        }
        let vm = _mm256_set1_pd(m);
        let (mut acc0, mut acc1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let full8 = n / 8 * 8;
        i = 0;
        while i < full8 {
            let v0 = _mm256_sub_pd(
                _mm256_sub_pd(_mm256_loadu_pd(sp.add(i)), _mm256_loadu_pd(rp.add(i))),
                vm,
            );
            let v1 = _mm256_sub_pd(
                _mm256_sub_pd(
                    _mm256_loadu_pd(sp.add(i + 4)),
                    _mm256_loadu_pd(rp.add(i + 4)),
                ),
                vm,
            );
            acc0 = _mm256_add_pd(acc0, exp4(v0));
            acc1 = _mm256_add_pd(acc1, exp4(v1));
            i += 8;
        }
        while i < full {
            let v0 = _mm256_sub_pd(
                _mm256_sub_pd(_mm256_loadu_pd(sp.add(i)), _mm256_loadu_pd(rp.add(i))),
                vm,
            );
            acc0 = _mm256_add_pd(acc0, exp4(v0));
            i += 4;
        }
        _mm256_storeu_pd(a.as_mut_ptr(), _mm256_add_pd(acc0, acc1));
        let mut sum = (a[0] + a[1]) + (a[2] + a[3]);
        for k in full..n {
            sum += super::exp_f64_fma(s[k] - row[k] - m);
        }
        m + sum.ln()
    }
}

/// True if the CPU has AVX2 and FMA (checked once).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_is_accurate() {
        let mut worst: f64 = 0.0;
        let mut x = -80.0f32;
        while x < 80.0 {
            let want = (x as f64).exp();
            for got in [exp_f32(x) as f64, exp_f32_fma(x) as f64] {
                worst = worst.max(((got - want) / want).abs());
            }
            x += 0.0137;
        }
        assert!(worst < 3.0e-7, "max rel err {worst}");
    }

    #[test]
    fn exp_f64_is_accurate() {
        let mut worst: f64 = 0.0;
        let mut x = -700.0f64;
        while x < 700.0 {
            let want = x.exp();
            for got in [exp_f64(x), exp_f64_fma(x)] {
                worst = worst.max(((got - want) / want).abs());
            }
            x += 0.0731;
        }
        assert!(worst < 1.0e-15, "max rel err {worst}");
    }

    #[test]
    fn lse_rows_matches_direct() {
        let cols = 37;
        let rows = 5;
        let m: Vec<f64> = (0..rows * cols)
            .map(|k| ((k * 7919) % 101) as f64 * 0.37)
            .collect();
        let s: Vec<f64> = (0..cols).map(|k| (k as f64 * 0.11).sin() * 3.0).collect();
        let mut out = vec![0.0; rows];
        lse_rows(&m, cols, &s, &mut out);
        for r in 0..rows {
            let direct: f64 = (0..cols)
                .map(|c| (s[c] - m[r * cols + c]).exp())
                .sum::<f64>()
                .ln();
            assert!(
                (out[r] - direct).abs() < 1e-12,
                "row {r}: {} vs {direct}",
                out[r]
            );
        }
        let v: Vec<f64> = (0..37).map(|k| k as f64 * 0.3).collect();
        let want: f64 = v.iter().map(|x| (-0.7 * x).exp()).sum();
        assert!((sum_exp(&v, -0.7) - want).abs() < 1e-14 * want);
        let v32: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        assert!(((sum_exp(&v32, -0.7f32) as f64 - want) / want).abs() < 1e-6);
    }
}
