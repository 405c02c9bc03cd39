//! The expression matrix of the data model, stored as it arrived: dense, or compressed sparse rows (CSR)
//! for real screens (≈ 5 % non-zero, so a 1,000,000 × 2,000 screen is ≈ 0.9 GB instead of 8 GB dense).
//!
//! Whole-matrix passes (totals, normalisation, log1p, per-gene sums, scale detection) run over the stored
//! values of each row; a dense block is built only for the rows a model or metric asks for
//! ([`Expression::select_rows`]).

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::h5ad::{CsMatrix, Matrix, SparseKind};

/// A cells × genes expression matrix, dense or CSR, with `f32` values. Two matrices are equal when
/// their values are, whatever their storage.
#[derive(Clone, Debug)]
pub enum Expression {
    /// A dense cells × genes array in standard (row-major) layout; build it with `Expression::from`,
    /// which puts any array in that layout.
    Dense(Array2<f32>),
    /// Compressed sparse rows with strictly increasing column indices in every row.
    Sparse(CsMatrix),
}

/// The stored entries of one row: every value of a dense row, or the non-zeros of a sparse one.
#[derive(Clone, Copy, Debug)]
pub enum RowEntries<'a> {
    /// All values of a dense row; the column of value `k` is `k`.
    Dense(&'a [f32]),
    /// The stored values of a sparse row with their columns.
    Sparse {
        /// Column of each stored value.
        cols: &'a [u32],
        /// The stored values.
        vals: &'a [f32],
    },
}

impl<'a> RowEntries<'a> {
    /// The stored values.
    pub fn values(&self) -> &'a [f32] {
        match *self {
            RowEntries::Dense(v) => v,
            RowEntries::Sparse { vals, .. } => vals,
        }
    }

    /// The column of stored value `k`.
    pub fn column(&self, k: usize) -> usize {
        match *self {
            RowEntries::Dense(_) => k,
            RowEntries::Sparse { cols, .. } => cols[k] as usize,
        }
    }

    /// Calls `f(column, value)` for every stored value.
    pub fn for_each(&self, mut f: impl FnMut(usize, f32)) {
        match *self {
            RowEntries::Dense(v) => v.iter().enumerate().for_each(|(j, &x)| f(j, x)),
            RowEntries::Sparse { cols, vals } => {
                cols.iter().zip(vals).for_each(|(&j, &x)| f(j as usize, x))
            }
        }
    }
}

impl PartialEq for Expression {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Expression::Dense(a), Expression::Dense(b)) => a == b,
            (Expression::Sparse(a), Expression::Sparse(b)) => a == b,
            _ => self.shape() == other.shape() && self.to_dense() == other.to_dense(),
        }
    }
}

impl From<Array2<f32>> for Expression {
    fn from(x: Array2<f32>) -> Self {
        if x.is_standard_layout() {
            Expression::Dense(x)
        } else {
            Expression::Dense(x.as_standard_layout().into_owned())
        }
    }
}

impl Expression {
    /// The expression of a matrix read from a file: dense stays dense, CSR stays CSR, CSC is converted
    /// to CSR (row access is what every consumer needs). Rows with unsorted or repeated column indices
    /// are put in canonical form (sorted, duplicates summed, as scipy's `sum_duplicates`).
    pub fn from_matrix(m: Matrix) -> Expression {
        match m {
            Matrix::Dense(x) => Expression::from(x),
            Matrix::Sparse(s) => {
                let csr = match s.kind {
                    SparseKind::Csr => s,
                    SparseKind::Csc => s.transpose_layout(),
                };
                Expression::Sparse(canonical(csr))
            }
        }
    }

    /// The CSR form of a dense matrix (zeros dropped).
    pub fn sparse_from_dense(x: ArrayView2<'_, f32>) -> Expression {
        Expression::Sparse(CsMatrix::csr_from_dense(x))
    }

    /// The matrix for writing to a file: the dense array or the CSR matrix.
    pub fn to_matrix(&self) -> Matrix {
        match self {
            Expression::Dense(x) => Matrix::Dense(x.clone()),
            Expression::Sparse(s) => Matrix::Sparse(s.clone()),
        }
    }

    /// Number of rows (cells).
    pub fn nrows(&self) -> usize {
        self.shape().0
    }

    /// Number of columns (genes).
    pub fn ncols(&self) -> usize {
        self.shape().1
    }

    /// (rows, columns).
    pub fn shape(&self) -> (usize, usize) {
        match self {
            Expression::Dense(x) => x.dim(),
            Expression::Sparse(s) => s.shape,
        }
    }

    /// True when stored sparse.
    pub fn is_sparse(&self) -> bool {
        matches!(self, Expression::Sparse(_))
    }

    /// Number of stored values (every value when dense).
    pub fn n_stored(&self) -> usize {
        match self {
            Expression::Dense(x) => x.len(),
            Expression::Sparse(s) => s.nnz(),
        }
    }

    /// True when some values are implicit zeros (not stored).
    pub fn has_implicit_zeros(&self) -> bool {
        let (n, d) = self.shape();
        self.n_stored() < n * d
    }

    /// Bytes held by the values and indices.
    pub fn bytes(&self) -> usize {
        match self {
            Expression::Dense(x) => x.len() * 4,
            Expression::Sparse(s) => s.nnz() * 8 + s.indptr.len() * 8,
        }
    }

    /// The stored entries of row `i`.
    pub fn row_entries(&self, i: usize) -> RowEntries<'_> {
        match self {
            Expression::Dense(x) => RowEntries::Dense(dense_row(x, i)),
            Expression::Sparse(s) => {
                let r = s.indptr[i]..s.indptr[i + 1];
                RowEntries::Sparse {
                    cols: &s.indices[r.clone()],
                    vals: &s.data[r],
                }
            }
        }
    }

    /// Every stored value (row-major), for whole-matrix scans; implicit zeros are not included.
    pub fn stored_values(&self) -> &[f32] {
        match self {
            Expression::Dense(x) => x.as_slice().expect("dense expression is standard layout"),
            Expression::Sparse(s) => &s.data,
        }
    }

    /// The stored values of every row, mutable, for in-place per-row transforms (normalisation, log1p).
    /// Only transforms that keep 0 at 0 may be applied to sparse data.
    pub fn rows_values_mut(&mut self) -> Vec<&mut [f32]> {
        match self {
            Expression::Dense(x) => {
                let d = x.ncols().max(1);
                x.as_slice_mut()
                    .expect("dense expression is standard layout")
                    .chunks_mut(d)
                    .collect()
            }
            Expression::Sparse(s) => {
                let mut rest: &mut [f32] = &mut s.data;
                let mut rows = Vec::with_capacity(s.shape.0);
                for w in s.indptr.windows(2) {
                    let (row, tail) = rest.split_at_mut(w[1] - w[0]);
                    rows.push(row);
                    rest = tail;
                }
                rows
            }
        }
    }

    /// The value at (row, column); implicit zeros read as 0.
    pub fn get(&self, i: usize, j: usize) -> f32 {
        match self {
            Expression::Dense(x) => x[[i, j]],
            Expression::Sparse(s) => {
                let r = s.indptr[i]..s.indptr[i + 1];
                match s.indices[r.clone()].binary_search(&(j as u32)) {
                    Ok(k) => s.data[r.start + k],
                    Err(_) => 0.0,
                }
            }
        }
    }

    /// Row `i` as a dense vector.
    pub fn row(&self, i: usize) -> Array1<f32> {
        let mut out = Array1::zeros(self.ncols());
        self.row_entries(i).for_each(|j, v| out[j] = v);
        out
    }

    /// The given rows, in that order, as a dense block (what models and metrics work on).
    pub fn select_rows(&self, rows: &[usize]) -> Array2<f32> {
        match self {
            Expression::Dense(x) => x.select(Axis(0), rows),
            Expression::Sparse(_) => {
                let d = self.ncols();
                let mut out = Array2::zeros((rows.len(), d));
                for (o, &r) in rows.iter().enumerate() {
                    let mut dst = out.row_mut(o);
                    self.row_entries(r).for_each(|j, v| dst[j] = v);
                }
                out
            }
        }
    }

    /// The given rows, in that order, in the same storage.
    pub fn subset_rows(&self, rows: &[usize]) -> Expression {
        match self {
            Expression::Dense(x) => Expression::from(x.select(Axis(0), rows)),
            Expression::Sparse(s) => Expression::Sparse(s.select_major(rows)),
        }
    }

    /// The given columns, in that order, in the same storage.
    pub fn subset_columns(&self, cols: &[usize]) -> Expression {
        match self {
            Expression::Dense(x) => Expression::from(x.select(Axis(1), cols)),
            Expression::Sparse(s) => Expression::Sparse(select_csr_columns(s, cols)),
        }
    }

    /// The rows of several matrices with the same columns, one after the other: CSR when every part is
    /// CSR, else dense.
    pub fn stack_rows(parts: &[&Expression]) -> Expression {
        let d = parts.first().map_or(0, |p| p.ncols());
        if !parts.is_empty() && parts.iter().all(|p| p.is_sparse()) {
            let mut indptr = vec![0usize];
            let (mut indices, mut data) = (Vec::new(), Vec::new());
            for p in parts {
                if let Expression::Sparse(m) = p {
                    let base = data.len();
                    indptr.extend(m.indptr[1..].iter().map(|&o| base + o));
                    indices.extend_from_slice(&m.indices);
                    data.extend_from_slice(&m.data);
                }
            }
            let rows = indptr.len() - 1;
            return Expression::Sparse(CsMatrix {
                kind: SparseKind::Csr,
                shape: (rows, d),
                indptr,
                indices,
                data,
            });
        }
        let rows: usize = parts.iter().map(|p| p.nrows()).sum();
        let mut out = Array2::zeros((rows, d));
        let mut at = 0;
        for p in parts {
            for i in 0..p.nrows() {
                let mut dst = out.row_mut(at);
                p.row_entries(i).for_each(|j, v| dst[j] = v);
                at += 1;
            }
        }
        Expression::Dense(out)
    }

    /// The whole matrix as a dense array (a copy when sparse). Meant for small data (tests, toy tasks):
    /// a screen should be read row block by row block with [`Expression::select_rows`].
    pub fn to_dense(&self) -> Array2<f32> {
        match self {
            Expression::Dense(x) => x.clone(),
            Expression::Sparse(s) => s.to_dense(),
        }
    }

    /// The dense array when stored dense.
    pub fn as_dense(&self) -> Option<&Array2<f32>> {
        match self {
            Expression::Dense(x) => Some(x),
            Expression::Sparse(_) => None,
        }
    }

    /// The dense array, densifying sparse storage first; for matrices that are built to be written
    /// (predictions), not for screens.
    pub fn dense_mut(&mut self) -> &mut Array2<f32> {
        if let Expression::Sparse(s) = self {
            *self = Expression::Dense(s.to_dense());
        }
        match self {
            Expression::Dense(x) => x,
            Expression::Sparse(_) => unreachable!("densified above"),
        }
    }

    /// The first non-finite value as (row, column, value).
    pub fn first_non_finite(&self) -> Option<(usize, usize, f32)> {
        self.first_where(|v| !v.is_finite())
    }

    /// The first stored value for which `bad` holds, as (row, column, value), scanning rows in order.
    pub fn first_where(&self, bad: impl Fn(f32) -> bool + Sync) -> Option<(usize, usize, f32)> {
        if !self.stored_values().par_iter().any(|&v| bad(v)) {
            return None;
        }
        (0..self.nrows()).find_map(|i| {
            let e = self.row_entries(i);
            e.values()
                .iter()
                .position(|&v| bad(v))
                .map(|k| (i, e.column(k), e.values()[k]))
        })
    }

    /// Per-row sums of the values in f64 (summed in column order, so dense and sparse agree exactly).
    pub fn row_sums_f64(&self) -> Vec<f64> {
        (0..self.nrows())
            .into_par_iter()
            .map(|i| self.row_entries(i).values().iter().map(|&v| v as f64).sum())
            .collect()
    }

    /// Mean of the given rows, per column, in f64 (pseudo-bulk of a condition without a dense copy).
    pub fn mean_of_rows(&self, rows: &[usize]) -> Array1<f64> {
        let mut sum = Array1::<f64>::zeros(self.ncols());
        for &r in rows {
            self.row_entries(r).for_each(|j, v| sum[j] += v as f64);
        }
        if !rows.is_empty() {
            sum /= rows.len() as f64;
        }
        sum
    }

    /// Per-column sums of `f(column, value)` over the stored non-zero values: (Σ first, Σ second).
    /// Blocks of rows are summed in parallel and the block sums added in block order, so results do
    /// not depend on scheduling, and dense and sparse storage give identical sums.
    pub fn column_sums(&self, f: impl Fn(usize, f32) -> (f64, f64) + Sync) -> (Vec<f64>, Vec<f64>) {
        const BLOCK: usize = 2048;
        let (n, d) = self.shape();
        let starts: Vec<usize> = (0..n).step_by(BLOCK).collect();
        let blocks: Vec<(Vec<f64>, Vec<f64>)> = starts
            .par_iter()
            .map(|&start| {
                let mut a = vec![0.0f64; d];
                let mut b = vec![0.0f64; d];
                for i in start..(start + BLOCK).min(n) {
                    self.row_entries(i).for_each(|g, v| {
                        if v != 0.0 {
                            let (p, q) = f(g, v);
                            a[g] += p;
                            b[g] += q;
                        }
                    });
                }
                (a, b)
            })
            .collect();
        let mut a = vec![0.0f64; d];
        let mut b = vec![0.0f64; d];
        for (pa, pb) in blocks {
            for g in 0..d {
                a[g] += pa[g];
                b[g] += pb[g];
            }
        }
        (a, b)
    }
}

impl std::ops::Index<[usize; 2]> for Expression {
    type Output = f32;

    /// The value at `[row, column]`; implicit zeros of sparse storage read as 0.
    fn index(&self, [i, j]: [usize; 2]) -> &f32 {
        static ZERO: f32 = 0.0;
        match self {
            Expression::Dense(x) => &x[[i, j]],
            Expression::Sparse(s) => {
                let r = s.indptr[i]..s.indptr[i + 1];
                match s.indices[r.clone()].binary_search(&(j as u32)) {
                    Ok(k) => &s.data[r.start + k],
                    Err(_) => &ZERO,
                }
            }
        }
    }
}

/// Row `i` of a standard-layout array as a slice.
fn dense_row(x: &Array2<f32>, i: usize) -> &[f32] {
    let d = x.ncols();
    &x.as_slice().expect("dense expression is standard layout")[i * d..(i + 1) * d]
}

/// A CSR matrix with every row's column indices strictly increasing (sorted, duplicates summed).
fn canonical(s: CsMatrix) -> CsMatrix {
    let sorted = s
        .indptr
        .windows(2)
        .all(|w| s.indices[w[0]..w[1]].windows(2).all(|p| p[0] < p[1]));
    if sorted {
        return s;
    }
    let mut indptr = Vec::with_capacity(s.indptr.len());
    let mut indices = Vec::with_capacity(s.nnz());
    let mut data = Vec::with_capacity(s.nnz());
    indptr.push(0);
    let mut row: Vec<(u32, f32)> = Vec::new();
    for w in s.indptr.windows(2) {
        row.clear();
        row.extend((w[0]..w[1]).map(|k| (s.indices[k], s.data[k])));
        row.sort_by_key(|e| e.0);
        for &(j, v) in &row {
            if indices.len() > *indptr.last().unwrap() && *indices.last().unwrap() == j {
                *data.last_mut().unwrap() += v;
            } else {
                indices.push(j);
                data.push(v);
            }
        }
        indptr.push(data.len());
    }
    CsMatrix {
        kind: SparseKind::Csr,
        shape: s.shape,
        indptr,
        indices,
        data,
    }
}

/// The columns `cols` (in that order) of a canonical CSR matrix, still canonical when `cols` is
/// increasing; otherwise rows are re-sorted.
fn select_csr_columns(s: &CsMatrix, cols: &[usize]) -> CsMatrix {
    let mut new_index = vec![u32::MAX; s.shape.1];
    for (k, &c) in cols.iter().enumerate() {
        new_index[c] = k as u32;
    }
    let mut indptr = Vec::with_capacity(s.indptr.len());
    let mut indices = Vec::new();
    let mut data = Vec::new();
    indptr.push(0);
    for w in s.indptr.windows(2) {
        for k in w[0]..w[1] {
            let n = new_index[s.indices[k] as usize];
            if n != u32::MAX {
                indices.push(n);
                data.push(s.data[k]);
            }
        }
        indptr.push(data.len());
    }
    canonical(CsMatrix {
        kind: SparseKind::Csr,
        shape: (s.shape.0, cols.len()),
        indptr,
        indices,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn both() -> (Expression, Expression) {
        let x = array![[0.0, 2.0, 0.0], [1.0, 0.0, 3.0], [0.0, 0.0, 0.0]];
        (
            Expression::from(x.clone()),
            Expression::sparse_from_dense(x.view()),
        )
    }

    #[test]
    fn dense_and_sparse_read_alike() {
        let (d, s) = both();
        assert!(s.is_sparse() && !d.is_sparse());
        assert_eq!(s.n_stored(), 3);
        assert_eq!(d.select_rows(&[2, 1]), s.select_rows(&[2, 1]));
        assert_eq!(d.row(1), s.row(1));
        assert_eq!(s[[1, 2]], 3.0);
        assert_eq!(s[[0, 0]], 0.0);
        assert_eq!(d.row_sums_f64(), s.row_sums_f64());
        assert_eq!(d.mean_of_rows(&[0, 1]), s.mean_of_rows(&[0, 1]));
        assert_eq!(
            d.subset_columns(&[2, 0]).to_dense(),
            s.subset_columns(&[2, 0]).to_dense()
        );
        assert_eq!(
            d.subset_rows(&[1, 0]).to_dense(),
            s.subset_rows(&[1, 0]).to_dense()
        );
        let sums = |e: &Expression| e.column_sums(|_, v| (v as f64, (v * v) as f64));
        assert_eq!(sums(&d), sums(&s));
        assert_eq!(sums(&s).1, vec![1.0, 4.0, 9.0]);
    }

    #[test]
    fn stacking_rows_keeps_csr_when_every_part_is_csr() {
        let (d, s) = both();
        let sparse = Expression::stack_rows(&[&s, &s]);
        assert!(sparse.is_sparse());
        let mixed = Expression::stack_rows(&[&d, &s]);
        assert!(!mixed.is_sparse());
        let mut want = d.to_dense();
        want.append(Axis(0), d.to_dense().view()).unwrap();
        assert_eq!(sparse.to_dense(), want);
        assert_eq!(mixed.to_dense(), want);
    }

    #[test]
    fn unsorted_and_duplicate_indices_are_made_canonical() {
        let m = CsMatrix::new(
            SparseKind::Csr,
            (1, 3),
            vec![0, 3],
            vec![2, 0, 2],
            vec![1.0, 5.0, 2.0],
        )
        .unwrap();
        let e = Expression::from_matrix(Matrix::Sparse(m));
        assert_eq!(e.to_dense(), array![[5.0, 0.0, 3.0]]);
        assert_eq!(e[[0, 2]], 3.0);
        let csc =
            CsMatrix::csr_from_dense(array![[1.0, 0.0], [0.0, 2.0]].view()).transpose_layout();
        let e = Expression::from_matrix(Matrix::Sparse(csc));
        assert!(e.is_sparse());
        assert_eq!(e.to_dense(), array![[1.0, 0.0], [0.0, 2.0]]);
    }

    #[test]
    fn in_place_row_transforms_and_locating_bad_values() {
        let (mut d, mut s) = both();
        for e in [&mut d, &mut s] {
            for row in e.rows_values_mut() {
                row.iter_mut().for_each(|v| *v *= 2.0);
            }
        }
        assert_eq!(d.to_dense(), s.to_dense());
        assert_eq!(s[[1, 2]], 6.0);
        assert_eq!(s.first_where(|v| v > 5.0), Some((1, 2, 6.0)));
        assert_eq!(d.first_where(|v| v > 5.0), Some((1, 2, 6.0)));
        assert_eq!(s.first_non_finite(), None);
    }
}
