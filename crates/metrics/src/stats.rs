//! Small numerical building blocks shared by the metric families: column means and variances,
//! average ranks, Pearson and Spearman correlation, the normal tail probability.

use ndarray::{Array1, ArrayView1, ArrayView2, Axis};

/// Per-gene (column) mean of a cells × genes matrix, accumulated in f64 in row order.
pub fn col_means(x: ArrayView2<f64>) -> Array1<f64> {
    let n = x.nrows();
    let mut s = Array1::<f64>::zeros(x.ncols());
    for row in x.axis_iter(Axis(0)) {
        s += &row;
    }
    if n > 0 {
        s /= n as f64;
    } else {
        s.fill(f64::NAN);
    }
    s
}

/// Per-gene population variance (ddof = 0, like `numpy.var`) computed as mean((x − mean)²).
pub fn col_vars(x: ArrayView2<f64>, means: ArrayView1<f64>) -> Array1<f64> {
    let n = x.nrows();
    let mut s = Array1::<f64>::zeros(x.ncols());
    for row in x.axis_iter(Axis(0)) {
        for ((acc, &v), &m) in s.iter_mut().zip(row.iter()).zip(means.iter()) {
            *acc += (v - m) * (v - m);
        }
    }
    if n > 0 {
        s /= n as f64;
    } else {
        s.fill(f64::NAN);
    }
    s
}

/// Pearson correlation of two equally long vectors (NaN if fewer than 2 values or a vector is constant,
/// matching the reference's guard `std == 0 → NaN`).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len();
    if n < 2 || b.len() != n {
        return f64::NAN;
    }
    let ma = a.iter().sum::<f64>() / n as f64;
    let mb = b.iter().sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa.is_nan() || sbb.is_nan() || saa <= 0.0 || sbb <= 0.0 {
        return f64::NAN;
    }
    let r = sab / (saa.sqrt() * sbb.sqrt());
    r.clamp(-1.0, 1.0)
}

/// Average ("fractional") ranks, 1-based, ties get the mean of their positions (like
/// `scipy.stats.rankdata(method="average")`). NaN values are ranked last (callers avoid NaN).
pub fn average_ranks(v: &[f64]) -> Vec<f64> {
    let n = v.len();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut ranks = vec![0.0; n];
    let mut k = 0;
    while k < n {
        let mut l = k + 1;
        while l < n && v[idx[l]] == v[idx[k]] {
            l += 1;
        }
        // positions k..l (0-based) share rank mean(k+1..=l)
        let r = (k + 1 + l) as f64 / 2.0;
        for &i in &idx[k..l] {
            ranks[i] = r;
        }
        k = l;
    }
    ranks
}

/// Spearman rank correlation: Pearson correlation of average ranks (NaN if fewer than 2 values or
/// constant ranks).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    if a.len() < 2 || a.len() != b.len() {
        return f64::NAN;
    }
    pearson(&average_ranks(a), &average_ranks(b))
}

/// Complementary error function erfc(x), accurate to a few ulp in double precision:
/// Maclaurin series of erf for |x| < 0.5, Laplace continued fraction (modified Lentz) otherwise.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 0.5 {
        return 1.0 - erf_series(x);
    }
    if x > 27.3 {
        return 0.0;
    }
    // erfc(x) = exp(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …)))))
    // written as K(a_k / b_k) with b = x, a_k = k/2, evaluated by the modified Lentz method.
    let tiny = 1e-300;
    let mut f = x;
    let mut c = x;
    let mut d = 0.0;
    for k in 1..5000 {
        let a = k as f64 / 2.0;
        d = x + a * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = x + a / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    // exp(-x²) with x² split into an exactly representable high part and a low part.
    let hi = (x * 4096.0).trunc() / 4096.0;
    let lo = x - hi;
    let e = (-hi * hi).exp() * (-(2.0 * hi * lo + lo * lo)).exp();
    e / (f * std::f64::consts::PI.sqrt())
}

fn erf_series(x: f64) -> f64 {
    // erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
    let x2 = x * x;
    let mut term = x;
    let mut sum = x;
    for n in 1..60 {
        term *= -x2 / n as f64;
        let add = term / (2 * n + 1) as f64;
        sum += add;
        if add.abs() < 1e-17 * sum.abs() {
            break;
        }
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

/// Upper tail of the standard normal distribution, P(Z > z) = erfc(z/√2)/2 (`scipy.stats.norm.sf`).
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Mean of a slice; NaN for an empty slice; NaN-propagating.
pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// Mean of the finite-or-infinite (non-NaN) entries; NaN if there are none (`numpy.nanmean`).
pub fn nanmean(v: &[f64]) -> f64 {
    let (s, n) = v
        .iter()
        .filter(|x| !x.is_nan())
        .fold((0.0, 0usize), |(s, n), &x| (s + x, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_known_values() {
        // reference values (scipy.special.erfc)
        let cases = [
            (0.0, 1.0),
            (0.1, 0.8875370839817152),
            (0.49, 0.48833173881147696),
            (0.5, 0.4795001221869535),
            (1.0, 0.15729920705028516),
            (2.0, 0.004677734981047266),
            (5.0, 1.5374597944280347e-12),
            (10.0, 2.0884875837625446e-45),
            (-1.0, 1.8427007929497148),
        ];
        for (x, want) in cases {
            let got = erfc(x);
            assert!(
                ((got - want) / want).abs() < 1e-14,
                "erfc({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn ranks_average_ties() {
        assert_eq!(
            average_ranks(&[3.0, 1.0, 3.0, 2.0]),
            vec![3.5, 1.0, 3.5, 2.0]
        );
    }

    #[test]
    fn pearson_and_spearman_basic() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-15);
        assert!(pearson(&[1.0, 1.0, 1.0], &[2.0, 4.0, 6.0]).is_nan());
        assert!((spearman(&[1.0, 2.0, 3.0], &[1.0, 8.0, 27.0]) - 1.0).abs() < 1e-15);
    }
}
