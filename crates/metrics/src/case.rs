//! The evaluation case: control cells, ground-truth and predicted cells per perturbation, and how to
//! read one from the `.npz` layout shared with the Python oracle (`obs`, `true_i`, `pred_i`, optional
//! `names`, `targets`).

use crate::error::MetricsError;
use ndarray::{Array1, Array2};
use ndarray_npy::{NpzReader, ReadDataError, ReadableElement};
use rayon::prelude::*;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// One evaluation problem: control cells plus, per perturbation, real and predicted cells, all in the
/// same gene order (cells × genes, values as the model sees them, typically log1p-normalised).
#[derive(Debug, Clone)]
pub struct EvalCase {
    /// Control (unperturbed) cells, n × d.
    pub obs: Array2<f64>,
    /// Ground-truth perturbed cells, one m_i × d matrix per perturbation.
    pub trues: Vec<Array2<f64>>,
    /// Predicted perturbed cells, one k_i × d matrix per perturbation.
    pub preds: Vec<Array2<f64>>,
    /// Perturbation names (one per perturbation).
    pub names: Vec<String>,
    /// Index of the perturbed gene per perturbation (−1 if none/unknown); enables `target_only_auprc`.
    pub targets: Option<Vec<i64>>,
}

/// A fixed-width NumPy string element (`<U..` unicode or `|S..` bytes) read from a `.npy` payload.
#[derive(Debug, Clone)]
struct NpyString(String);

impl ReadableElement for NpyString {
    fn read_to_end_exact_vec<R: Read>(
        mut reader: R,
        type_desc: &py_literal::Value,
        len: usize,
    ) -> Result<Vec<Self>, ReadDataError> {
        let desc = match type_desc {
            py_literal::Value::String(s) => s.clone(),
            other => return Err(ReadDataError::WrongDescriptor(other.clone())),
        };
        let (kind, width) = parse_string_descr(&desc)
            .ok_or_else(|| ReadDataError::WrongDescriptor(type_desc.clone()))?;
        let item = if kind == 'U' { 4 * width } else { width };
        let mut buf = vec![0u8; item * len];
        reader
            .read_exact(&mut buf)
            .map_err(|_| ReadDataError::MissingData)?;
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).map_err(ReadDataError::Io)?;
        if !rest.is_empty() {
            return Err(ReadDataError::ExtraBytes(rest.len()));
        }
        let big_endian = desc.starts_with('>');
        let mut out = Vec::with_capacity(len);
        for chunk in buf.chunks(item.max(1)).take(len) {
            let s = if kind == 'U' {
                let mut s = String::new();
                for cp in chunk.chunks_exact(4) {
                    let b = [cp[0], cp[1], cp[2], cp[3]];
                    let v = if big_endian {
                        u32::from_be_bytes(b)
                    } else {
                        u32::from_le_bytes(b)
                    };
                    if v == 0 {
                        break;
                    }
                    let c = char::from_u32(v).ok_or_else(|| {
                        ReadDataError::ParseData(format!("invalid code point {v:#x}").into())
                    })?;
                    s.push(c);
                }
                s
            } else {
                let end = chunk.iter().position(|&b| b == 0).unwrap_or(chunk.len());
                String::from_utf8_lossy(&chunk[..end]).into_owned()
            };
            out.push(NpyString(s));
        }
        if item == 0 {
            out.resize(len, NpyString(String::new()));
        }
        Ok(out)
    }
}

/// Parses `<U12`, `|S5`, `=U3` … into (kind, width in characters/bytes).
fn parse_string_descr(d: &str) -> Option<(char, usize)> {
    let body = d.trim_start_matches(['<', '>', '|', '=']);
    let mut chars = body.chars();
    let kind = chars.next()?;
    if kind != 'U' && kind != 'S' {
        return None;
    }
    let width: usize = chars.as_str().parse().ok()?;
    Some((kind, width))
}

fn read_matrix<R: Read + std::io::Seek>(
    npz: &mut NpzReader<R>,
    path: &Path,
    name: &str,
) -> Result<Array2<f64>, MetricsError> {
    match npz.by_name::<ndarray::OwnedRepr<f64>, ndarray::Ix2>(name) {
        Ok(a) => Ok(a),
        Err(e64) => match npz.by_name::<ndarray::OwnedRepr<f32>, ndarray::Ix2>(name) {
            Ok(a) => Ok(a.mapv(|v| v as f64)),
            Err(_) => Err(MetricsError::BadArray {
                path: path.to_path_buf(),
                name: name.to_string(),
                reason: e64.to_string(),
            }),
        },
    }
}

impl EvalCase {
    /// Builds a case from matrices, generating names `p0, p1, …` when `names` is `None`, and validates it.
    pub fn new(
        obs: Array2<f64>,
        trues: Vec<Array2<f64>>,
        preds: Vec<Array2<f64>>,
        names: Option<Vec<String>>,
        targets: Option<Vec<i64>>,
    ) -> Result<EvalCase, MetricsError> {
        let p = trues.len();
        let names = names.unwrap_or_else(|| (0..p).map(|i| format!("p{i}")).collect());
        let case = EvalCase {
            obs,
            trues,
            preds,
            names,
            targets,
        };
        case.validate()?;
        Ok(case)
    }

    /// Reads the oracle's `.npz` layout (compressed or not): `obs`, `true_0..`, `pred_0..` (float64 or
    /// float32), optional `names` (unicode or byte strings; default `p{i}`) and `targets` (int64/int32).
    /// The case is validated (see [`EvalCase::validate`]).
    pub fn read_npz(path: impl AsRef<Path>) -> Result<EvalCase, MetricsError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| MetricsError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut npz = NpzReader::new(BufReader::new(file)).map_err(|e| MetricsError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let keys = npz.names().map_err(|e| MetricsError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let has = |k: &str| keys.iter().any(|n| n == k);
        if !has("obs") {
            return Err(MetricsError::MissingArray {
                path: path.to_path_buf(),
                name: "obs".into(),
            });
        }
        let obs = read_matrix(&mut npz, path, "obs")?;
        let mut p = 0;
        while has(&format!("true_{p}")) {
            p += 1;
        }
        let mut trues = Vec::with_capacity(p);
        let mut preds = Vec::with_capacity(p);
        for i in 0..p {
            trues.push(read_matrix(&mut npz, path, &format!("true_{i}"))?);
            let pk = format!("pred_{i}");
            if !has(&pk) {
                return Err(MetricsError::MissingArray {
                    path: path.to_path_buf(),
                    name: pk,
                });
            }
            preds.push(read_matrix(&mut npz, path, &pk)?);
        }
        let names = if has("names") {
            let a: Array1<NpyString> =
                npz.by_name("names").map_err(|e| MetricsError::BadArray {
                    path: path.to_path_buf(),
                    name: "names".into(),
                    reason: e.to_string(),
                })?;
            Some(a.into_iter().map(|s| s.0).collect())
        } else {
            None
        };
        let targets = if has("targets") {
            let t = match npz.by_name::<ndarray::OwnedRepr<i64>, ndarray::Ix1>("targets") {
                Ok(a) => a.to_vec(),
                Err(e) => match npz.by_name::<ndarray::OwnedRepr<i32>, ndarray::Ix1>("targets") {
                    Ok(a) => a.iter().map(|&v| v as i64).collect(),
                    Err(_) => {
                        return Err(MetricsError::BadArray {
                            path: path.to_path_buf(),
                            name: "targets".into(),
                            reason: e.to_string(),
                        })
                    }
                },
            };
            Some(t)
        } else {
            None
        };
        EvalCase::new(obs, trues, preds, names, targets)
    }

    /// Number of perturbations.
    pub fn n_perts(&self) -> usize {
        self.trues.len()
    }

    /// Number of genes (columns).
    pub fn n_genes(&self) -> usize {
        self.obs.ncols()
    }

    /// Checks the invariants every metric relies on: at least one perturbation, equal numbers of real
    /// and predicted matrices, names/targets of the right length, the same gene count everywhere, at
    /// least 2 cells in every matrix (control included), finite values only, targets within range.
    pub fn validate(&self) -> Result<(), MetricsError> {
        let p = self.trues.len();
        if p == 0 {
            return Err(MetricsError::NoPerturbations);
        }
        if self.preds.len() != p {
            return Err(MetricsError::LengthMismatch {
                what: "the list of predicted matrices".into(),
                got: self.preds.len(),
                expected: p,
            });
        }
        if self.names.len() != p {
            return Err(MetricsError::LengthMismatch {
                what: "names".into(),
                got: self.names.len(),
                expected: p,
            });
        }
        if self.obs.nrows() == 0 {
            return Err(MetricsError::NoControlCells);
        }
        if self.obs.nrows() < 2 {
            return Err(MetricsError::TooFewCells {
                what: "control matrix `obs`".into(),
                got: self.obs.nrows(),
                min: 2,
            });
        }
        let d = self.obs.ncols();
        if d == 0 {
            return Err(MetricsError::InvalidParameter {
                name: "n_genes".into(),
                value: "0".into(),
                hint: "the matrices have no gene columns".into(),
            });
        }
        check_finite(&self.obs, "control matrix `obs`")?;
        for i in 0..p {
            for (m, kind) in [(&self.trues[i], "true"), (&self.preds[i], "pred")] {
                let what = format!("{kind}_{i} (perturbation `{}`)", self.names[i]);
                if m.ncols() != d {
                    return Err(MetricsError::GeneMismatch {
                        what,
                        got: m.ncols(),
                        expected: d,
                    });
                }
                if m.nrows() < 2 {
                    return Err(MetricsError::TooFewCells {
                        what,
                        got: m.nrows(),
                        min: 2,
                    });
                }
            }
        }
        // Finiteness of every value, sets in parallel; the first bad set in order is reported.
        let bad = (0..p)
            .into_par_iter()
            .map(|i| {
                for (m, kind) in [(&self.trues[i], "true"), (&self.preds[i], "pred")] {
                    check_finite(m, &format!("{kind}_{i} (perturbation `{}`)", self.names[i]))?;
                }
                Ok(())
            })
            .collect::<Vec<Result<(), MetricsError>>>();
        bad.into_iter().collect::<Result<(), MetricsError>>()?;
        if let Some(t) = &self.targets {
            if t.len() != p {
                return Err(MetricsError::LengthMismatch {
                    what: "targets".into(),
                    got: t.len(),
                    expected: p,
                });
            }
            if let Some(&bad) = t.iter().find(|&&v| v >= d as i64 || v < -1) {
                return Err(MetricsError::InvalidParameter {
                    name: "targets".into(),
                    value: bad.to_string(),
                    hint: format!("each target must be a gene index in 0..{d} or -1 for none"),
                });
            }
        }
        Ok(())
    }
}

fn check_finite(m: &Array2<f64>, what: &str) -> Result<(), MetricsError> {
    // Fast path: one branch-free pass; the offending value is located only on failure.
    if m.iter().fold(true, |ok, &v| ok & v.is_finite()) {
        return Ok(());
    }
    for ((r, c), &v) in m.indexed_iter() {
        if !v.is_finite() {
            return Err(MetricsError::NonFinite {
                what: what.to_string(),
                row: r,
                col: c,
                value: v,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_string_descr;

    #[test]
    fn string_descriptors() {
        assert_eq!(parse_string_descr("<U12"), Some(('U', 12)));
        assert_eq!(parse_string_descr("|S5"), Some(('S', 5)));
        assert_eq!(parse_string_descr("<f8"), None);
    }
}
