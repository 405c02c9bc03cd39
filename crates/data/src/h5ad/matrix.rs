//! In-memory expression matrices: dense (`ndarray`) or compressed sparse (CSR / CSC), always `f32`.

use ndarray::{Array2, ArrayView2};

use crate::error::DataError;

/// Which axis a compressed sparse matrix compresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SparseKind {
    /// Compressed sparse rows (`csr_matrix`): `indptr` runs over rows, `indices` are column indices.
    Csr,
    /// Compressed sparse columns (`csc_matrix`): `indptr` runs over columns, `indices` are row indices.
    Csc,
}

impl SparseKind {
    /// The anndata `encoding-type` of this kind.
    pub fn encoding(&self) -> &'static str {
        match self {
            SparseKind::Csr => "csr_matrix",
            SparseKind::Csc => "csc_matrix",
        }
    }
}

/// A compressed sparse matrix in scipy's layout. Entry `k` of major slice `i` (a row for CSR, a column
/// for CSC) sits at minor position `indices[k]` with value `data[k]`, for `k` in `indptr[i]..indptr[i+1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct CsMatrix {
    /// CSR or CSC.
    pub kind: SparseKind,
    /// (rows, columns).
    pub shape: (usize, usize),
    /// Offsets into `indices`/`data`, one per major slice plus one.
    pub indptr: Vec<usize>,
    /// Minor index of each stored entry.
    pub indices: Vec<u32>,
    /// Value of each stored entry.
    pub data: Vec<f32>,
}

impl CsMatrix {
    /// Builds a matrix after checking the layout: `indptr` has one entry per major slice plus one,
    /// starts at 0, never decreases and ends at the number of entries; every index is in range.
    pub fn new(
        kind: SparseKind,
        shape: (usize, usize),
        indptr: Vec<usize>,
        indices: Vec<u32>,
        data: Vec<f32>,
    ) -> Result<CsMatrix, DataError> {
        let m = CsMatrix {
            kind,
            shape,
            indptr,
            indices,
            data,
        };
        m.validate()?;
        Ok(m)
    }

    /// Checks the invariants listed at [`CsMatrix::new`].
    pub fn validate(&self) -> Result<(), DataError> {
        let bad = |msg: String| {
            Err(DataError::Invalid(format!(
                "invalid {} matrix: {msg}",
                self.kind.encoding()
            )))
        };
        if self.indptr.len() != self.major_len() + 1 {
            return bad(format!(
                "indptr has {} entries for {} major slices (expected one more)",
                self.indptr.len(),
                self.major_len()
            ));
        }
        if self.indices.len() != self.data.len() {
            return bad(format!(
                "{} indices but {} values",
                self.indices.len(),
                self.data.len()
            ));
        }
        if self.indptr[0] != 0 || self.indptr[self.major_len()] != self.data.len() {
            return bad(format!(
                "indptr must run from 0 to {} (the number of stored values)",
                self.data.len()
            ));
        }
        if self.indptr.windows(2).any(|w| w[1] < w[0]) {
            return bad("indptr decreases".to_string());
        }
        let minor = self.minor_len();
        if let Some(&i) = self.indices.iter().find(|&&i| i as usize >= minor) {
            return bad(format!(
                "index {i} is out of range for a minor dimension of {minor}"
            ));
        }
        Ok(())
    }

    /// An empty (all-zero) matrix of the given kind and shape.
    pub fn zeros(kind: SparseKind, shape: (usize, usize)) -> CsMatrix {
        let major = if kind == SparseKind::Csr {
            shape.0
        } else {
            shape.1
        };
        CsMatrix {
            kind,
            shape,
            indptr: vec![0; major + 1],
            indices: Vec::new(),
            data: Vec::new(),
        }
    }

    /// Length of the compressed axis (rows for CSR, columns for CSC).
    pub fn major_len(&self) -> usize {
        match self.kind {
            SparseKind::Csr => self.shape.0,
            SparseKind::Csc => self.shape.1,
        }
    }

    /// Length of the other axis.
    pub fn minor_len(&self) -> usize {
        match self.kind {
            SparseKind::Csr => self.shape.1,
            SparseKind::Csc => self.shape.0,
        }
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.data.len()
    }

    /// The dense matrix (duplicate entries, if any, are summed as scipy does).
    pub fn to_dense(&self) -> Array2<f32> {
        let mut out = Array2::<f32>::zeros(self.shape);
        for major in 0..self.major_len() {
            for k in self.indptr[major]..self.indptr[major + 1] {
                let minor = self.indices[k] as usize;
                let (r, c) = match self.kind {
                    SparseKind::Csr => (major, minor),
                    SparseKind::Csc => (minor, major),
                };
                out[[r, c]] += self.data[k];
            }
        }
        out
    }

    /// The CSR form of a dense matrix (zeros dropped).
    pub fn csr_from_dense(x: ArrayView2<'_, f32>) -> CsMatrix {
        let mut indptr = Vec::with_capacity(x.nrows() + 1);
        let mut indices = Vec::new();
        let mut data = Vec::new();
        indptr.push(0);
        for row in x.rows() {
            for (j, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    indices.push(j as u32);
                    data.push(v);
                }
            }
            indptr.push(data.len());
        }
        CsMatrix {
            kind: SparseKind::Csr,
            shape: x.dim(),
            indptr,
            indices,
            data,
        }
    }

    /// The same matrix with the other compression (CSR ↔ CSC); indices come out sorted.
    pub fn transpose_layout(&self) -> CsMatrix {
        let minor = self.minor_len();
        let mut counts = vec![0usize; minor + 1];
        for &i in &self.indices {
            counts[i as usize + 1] += 1;
        }
        for i in 0..minor {
            counts[i + 1] += counts[i];
        }
        let indptr = counts.clone();
        let mut next = counts;
        let mut indices = vec![0u32; self.nnz()];
        let mut data = vec![0f32; self.nnz()];
        for major in 0..self.major_len() {
            for k in self.indptr[major]..self.indptr[major + 1] {
                let slot = &mut next[self.indices[k] as usize];
                indices[*slot] = major as u32;
                data[*slot] = self.data[k];
                *slot += 1;
            }
        }
        let kind = match self.kind {
            SparseKind::Csr => SparseKind::Csc,
            SparseKind::Csc => SparseKind::Csr,
        };
        CsMatrix {
            kind,
            shape: self.shape,
            indptr,
            indices,
            data,
        }
    }

    /// The major slices `order` of this matrix, in that order (rows for CSR, columns for CSC).
    pub fn select_major(&self, order: &[usize]) -> CsMatrix {
        let nnz: usize = order
            .iter()
            .map(|&m| self.indptr[m + 1] - self.indptr[m])
            .sum();
        let mut indptr = Vec::with_capacity(order.len() + 1);
        let mut indices = Vec::with_capacity(nnz);
        let mut data = Vec::with_capacity(nnz);
        indptr.push(0);
        for &m in order {
            let range = self.indptr[m]..self.indptr[m + 1];
            indices.extend_from_slice(&self.indices[range.clone()]);
            data.extend_from_slice(&self.data[range]);
            indptr.push(data.len());
        }
        let shape = match self.kind {
            SparseKind::Csr => (order.len(), self.shape.1),
            SparseKind::Csc => (self.shape.0, order.len()),
        };
        CsMatrix {
            kind: self.kind,
            shape,
            indptr,
            indices,
            data,
        }
    }
}

/// An expression matrix (`X` or a layer), dense or sparse, with `f32` values.
#[derive(Clone, Debug, PartialEq)]
pub enum Matrix {
    /// A dense cells × genes array.
    Dense(Array2<f32>),
    /// A CSR or CSC matrix.
    Sparse(CsMatrix),
}

impl Matrix {
    /// (rows, columns).
    pub fn shape(&self) -> (usize, usize) {
        match self {
            Matrix::Dense(x) => x.dim(),
            Matrix::Sparse(m) => m.shape,
        }
    }

    /// A dense copy (or the array itself, moved).
    pub fn into_dense(self) -> Array2<f32> {
        match self {
            Matrix::Dense(x) => x,
            Matrix::Sparse(m) => m.to_dense(),
        }
    }

    /// A dense copy.
    pub fn to_dense(&self) -> Array2<f32> {
        match self {
            Matrix::Dense(x) => x.clone(),
            Matrix::Sparse(m) => m.to_dense(),
        }
    }

    /// The storage kind as anndata names it (`array`, `csr_matrix`, `csc_matrix`).
    pub fn encoding(&self) -> &'static str {
        match self {
            Matrix::Dense(_) => "array",
            Matrix::Sparse(m) => m.kind.encoding(),
        }
    }
}
