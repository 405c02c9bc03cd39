//! Round trips: Rust → Rust always, and Rust → Python anndata when a Python with anndata is available
//! (`CELLSHIFT_PYTHON`, the oracle venv `../shared/oracle/venv`, or `python3`). Also the atomic-write guarantees.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use cellshift_data::h5ad::{
    read_h5ad, write_h5ad, AnnData, Column, CsMatrix, DataFrame, Matrix, ReadOptions, SparseKind,
    UnsValue, WriteOptions,
};
use ndarray::{array, Array2};
use serde_json::{json, Value};

/// Serialises the tests of this file. The HDF5 C library opens files without close-on-exec, so a
/// Python checker spawned while another test holds an HDF5 file open inherits that descriptor — and
/// its file lock — for its whole lifetime, making the other test's next open fail. Every test holds
/// this lock while it touches HDF5 files.
static HDF5_FILES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn hdf5_guard() -> std::sync::MutexGuard<'static, ()> {
    HDF5_FILES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The rich fixture (every column kind, layers, obsm, nested uns) as Rust reads it.
fn rich() -> AnnData {
    read_h5ad(&fixture("dense_f32.h5ad"), &ReadOptions::default()).unwrap()
}

/// A hand-built AnnData: CSC layer, categorical with many categories (int16 codes), empty strings,
/// unicode, a CSR X, and every uns kind.
fn handmade() -> AnnData {
    let n = 200;
    let genes = 4;
    let mut x = Array2::<f32>::zeros((n, genes));
    for i in 0..n {
        for j in 0..genes {
            if (i * 7 + j * 3) % 5 == 0 {
                x[[i, j]] = (i as f32) * 0.25 - (j as f32);
            }
        }
    }
    let mut obs = DataFrame::from_index((0..n).map(|i| format!("cell-{i}")).collect());
    obs.index_name = "barcode".into();
    let labels: Vec<String> = (0..n).map(|i| format!("cat{}", i % 150)).collect();
    obs.set_column("many", Column::categorical_from_labels(&labels))
        .unwrap();
    obs.set_column(
        "text",
        Column::Str(
            (0..n)
                .map(|i| {
                    if i % 3 == 0 {
                        String::new()
                    } else {
                        format!("µ-{i}")
                    }
                })
                .collect(),
        ),
    )
    .unwrap();
    obs.set_column("i32", Column::I32((0..n as i32).map(|i| i - 100).collect()))
        .unwrap();
    let mut var = DataFrame::from_index(vec!["A".into(), "B".into(), "C".into(), "D".into()]);
    var.set_column("w", Column::F64(vec![0.5, f64::NAN, -1.0, 2.0]))
        .unwrap();
    let mut layers = BTreeMap::new();
    layers.insert(
        "csc".to_string(),
        Matrix::Sparse(CsMatrix::csr_from_dense(x.view()).transpose_layout()),
    );
    let mut obsm = BTreeMap::new();
    obsm.insert(
        "emb".to_string(),
        Array2::from_shape_fn((n, 3), |(i, j)| (i * 3 + j) as f64 / 8.0),
    );
    let mut inner = BTreeMap::new();
    inner.insert("flag".to_string(), UnsValue::Bool(false));
    inner.insert("bools".to_string(), UnsValue::BoolArray(vec![true, false]));
    let mut uns = BTreeMap::new();
    uns.insert("s".to_string(), UnsValue::Str("héllo".into()));
    uns.insert("f".to_string(), UnsValue::F64(-0.125));
    uns.insert("i".to_string(), UnsValue::I64(-7));
    uns.insert("fa".to_string(), UnsValue::F64Array(vec![1.5, 2.5]));
    uns.insert("ia".to_string(), UnsValue::I64Array(vec![4, 5, 6]));
    uns.insert(
        "sa".to_string(),
        UnsValue::StrArray(vec!["x".into(), "y".into()]),
    );
    uns.insert("d".to_string(), UnsValue::Dict(inner));
    AnnData {
        x: Some(Matrix::Dense(x)),
        obs,
        var,
        layers,
        obsm,
        uns,
    }
}

fn write_read(adata: &AnnData, opts: &WriteOptions) -> (tempfile::TempDir, PathBuf, AnnData) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.h5ad");
    write_h5ad(&path, adata, opts).unwrap();
    let back = read_h5ad(&path, &ReadOptions::default()).unwrap();
    (dir, path, back)
}

#[test]
fn rust_to_rust_round_trip_is_exact() {
    let _guard = hdf5_guard();
    for adata in [rich(), handmade()] {
        for opts in [
            WriteOptions::default(),
            WriteOptions {
                gzip: Some(4),
                sparse_x: false,
            },
            WriteOptions {
                gzip: Some(1),
                sparse_x: true,
            },
        ] {
            let (_dir, _path, back) = write_read(&adata, &opts);
            let mut want = adata.clone();
            if opts.sparse_x {
                let dense = want.x.take().unwrap().into_dense();
                assert_eq!(back.x.as_ref().unwrap().encoding(), "csr_matrix");
                want.x = Some(Matrix::Sparse(CsMatrix::csr_from_dense(dense.view())));
            }
            assert_eq!(back, want, "round trip with {opts:?}");
        }
    }
}

/// Describes an AnnData in the JSON format of `make_fixtures.describe` (what anndata should read).
fn describe(a: &AnnData) -> Value {
    fn matrix(m: &Matrix) -> Value {
        let dense = m.to_dense();
        let rows: Vec<Vec<f64>> = dense
            .rows()
            .into_iter()
            .map(|r| r.iter().map(|&v| v as f64).collect())
            .collect();
        json!({"encoding": m.encoding(), "dtype": "float32", "dense": rows})
    }
    fn floats(v: impl Iterator<Item = f64>) -> Vec<Value> {
        v.map(|x| if x.is_nan() { Value::Null } else { json!(x) })
            .collect()
    }
    fn column(c: &Column) -> Value {
        match c {
            Column::Categorical {
                codes,
                categories,
                ordered,
            } => {
                json!({"kind": "categorical", "codes": codes, "categories": categories, "ordered": ordered})
            }
            Column::Str(v) => json!({"kind": "object", "values": v}),
            Column::F64(v) => json!({"kind": "float64", "values": floats(v.iter().copied())}),
            Column::F32(v) => {
                json!({"kind": "float32", "values": floats(v.iter().map(|&x| x as f64))})
            }
            Column::I64(v) => json!({"kind": "int64", "values": v}),
            Column::I32(v) => json!({"kind": "int32", "values": v}),
            Column::Bool(v) => json!({"kind": "bool", "values": v}),
        }
    }
    fn frame(f: &DataFrame) -> Value {
        let columns: Vec<Value> = f
            .columns
            .iter()
            .map(|(n, c)| json!([n, column(c)]))
            .collect();
        let name = if f.index_name == "_index" {
            Value::Null
        } else {
            json!(f.index_name)
        };
        json!({"index_name": name, "index": f.index, "columns": columns})
    }
    fn uns(v: &UnsValue) -> Value {
        match v {
            UnsValue::Str(s) => json!({"str": s}),
            UnsValue::F64(x) => json!({"f64": x}),
            UnsValue::I64(x) => json!({"i64": x}),
            UnsValue::Bool(x) => json!({"bool": x}),
            UnsValue::F64Array(x) => json!({"f64_array": x}),
            UnsValue::I64Array(x) => json!({"i64_array": x}),
            UnsValue::BoolArray(x) => json!({"bool_array": x}),
            UnsValue::StrArray(x) => json!({"str_array": x}),
            UnsValue::Dict(m) => {
                json!({"dict": m.iter().map(|(k, v)| (k.clone(), uns(v))).collect::<serde_json::Map<_, _>>()})
            }
            UnsValue::Unsupported(_) => Value::Null,
        }
    }
    let obsm: serde_json::Map<String, Value> = a
        .obsm
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                json!(v.rows().into_iter().map(|r| r.to_vec()).collect::<Vec<_>>()),
            )
        })
        .collect();
    json!({
        "shape": [a.n_obs(), a.n_vars()],
        "X": a.x.as_ref().map(matrix),
        "obs": frame(&a.obs),
        "var": frame(&a.var),
        "layers": a.layers.iter().map(|(k, v)| (k.clone(), matrix(v))).collect::<serde_json::Map<_, _>>(),
        "obsm": obsm,
        "uns": a.uns.iter().map(|(k, v)| (k.clone(), uns(v))).collect::<serde_json::Map<_, _>>(),
    })
}

/// A Python interpreter that can `import anndata`, if any.
fn python_with_anndata() -> Option<String> {
    let mut candidates: Vec<String> = std::env::var("CELLSHIFT_PYTHON").into_iter().collect();
    // The reference stack's venv, where `../shared/oracle/README.md` tells to create it.
    let oracle_venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/oracle/venv/bin/python");
    candidates.push(oracle_venv.to_string_lossy().into_owned());
    candidates.push("python3".into());
    candidates.into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import anndata"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })
}

/// Runs the Python checker once over (file, expected contents) pairs.
fn python_check(python: &str, cases: &[(PathBuf, AnnData)]) {
    let mut cmd = Command::new(python);
    cmd.arg(fixture("check_roundtrip.py"));
    for (file, adata) in cases {
        let expected = file.with_extension("json");
        std::fs::write(&expected, serde_json::to_string(&describe(adata)).unwrap()).unwrap();
        cmd.arg(file).arg(&expected);
    }
    let out = cmd.output().expect("run the Python checker");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim() == "ok",
        "anndata read the files differently:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn python_anndata_reads_what_rust_writes() {
    let _guard = hdf5_guard();
    let Some(python) = python_with_anndata() else {
        cellshift_data::testing::skip_or_fail(
            "python with anndata is not available (set CELLSHIFT_PYTHON or `pip install anndata`)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    for (i, (adata, opts)) in [
        (rich(), WriteOptions::default()),
        (
            rich(),
            WriteOptions {
                gzip: Some(4),
                sparse_x: true,
            },
        ),
        (
            handmade(),
            WriteOptions {
                gzip: Some(6),
                sparse_x: false,
            },
        ),
        (
            handmade(),
            WriteOptions {
                gzip: None,
                sparse_x: true,
            },
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("rust{i}.h5ad"));
        write_h5ad(&path, &adata, &opts).unwrap();
        let mut want = adata;
        if opts.sparse_x {
            want.x = Some(Matrix::Sparse(CsMatrix::csr_from_dense(
                want.x.take().unwrap().into_dense().view(),
            )));
        }
        cases.push((path, want));
    }
    python_check(&python, &cases);
}

/// A failing write leaves neither the target nor a partial file, and keeps an existing target intact.
#[test]
fn failed_write_leaves_no_partial_file_and_keeps_the_old_target() {
    let _guard = hdf5_guard();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.h5ad");
    std::fs::write(&path, b"previous contents").unwrap();
    // A NUL inside a gene name is only detected while writing `var`, after the file was created.
    let mut bad = rich();
    bad.var.index[0] = "G\0".into();
    let err = write_h5ad(&path, &bad, &WriteOptions::default()).unwrap_err();
    assert!(err.to_string().contains("NUL"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"previous contents");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("out.h5ad")],
        "no partial file may remain"
    );

    // Shape mismatches are refused before anything is created.
    let mut wrong = rich();
    wrong.x = Some(Matrix::Dense(array![[1.0f32]]));
    let target = dir.path().join("new.h5ad");
    let err = write_h5ad(&target, &wrong, &WriteOptions::default()).unwrap_err();
    assert!(err.to_string().contains("obs × var is 6 × 5"), "{err}");
    assert!(!target.exists());

    // A missing output folder is a clear error.
    let err = write_h5ad(
        &dir.path().join("no/such/dir/x.h5ad"),
        &rich(),
        &WriteOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn writing_never_modifies_the_input_file() {
    let _guard = hdf5_guard();
    let src = fixture("csr_int_gzip.h5ad");
    let before = std::fs::read(&src).unwrap();
    let a = read_h5ad(&src, &ReadOptions::default()).unwrap();
    let (_dir, _path, back) = write_read(
        &a,
        &WriteOptions {
            gzip: Some(9),
            sparse_x: false,
        },
    );
    assert_eq!(back.x, a.x);
    assert_eq!(std::fs::read(&src).unwrap(), before);
    let Some(Matrix::Sparse(m)) = back.x else {
        panic!("sparse X stays sparse")
    };
    assert_eq!(m.kind, SparseKind::Csr);
}

/// Selections whose rows lie far apart are served by several slab reads (gaps larger than the merge
/// threshold of 65,536 elements); the result must still equal the subset of a full read, for dense and
/// CSR/CSC storage, compressed or not.
#[test]
fn far_apart_selections_read_correctly_from_several_slabs() {
    let _guard = hdf5_guard();
    let (n, m) = (400, 300);
    let x = Array2::from_shape_fn((n, m), |(i, j)| {
        if (i + 2 * j) % 3 == 0 {
            (i * m + j) as f32 / 4.0
        } else {
            0.0
        }
    });
    let obs = DataFrame::from_index((0..n).map(|i| format!("c{i}")).collect());
    let var = DataFrame::from_index((0..m).map(|j| format!("g{j}")).collect());
    let dir = tempfile::tempdir().unwrap();
    let cells = vec![399, 0, 1, 2, 250, 251, 398];
    let genes = vec![299, 0, 150, 151, 1];
    let want = x
        .select(ndarray::Axis(0), &cells)
        .select(ndarray::Axis(1), &genes);
    let csr = CsMatrix::csr_from_dense(x.view());
    for (i, matrix) in [
        Matrix::Dense(x.clone()),
        Matrix::Sparse(csr.clone()),
        Matrix::Sparse(csr.transpose_layout()),
    ]
    .into_iter()
    .enumerate()
    {
        for gzip in [None, Some(3)] {
            let adata = AnnData {
                x: Some(matrix.clone()),
                obs: obs.clone(),
                var: var.clone(),
                ..AnnData::default()
            };
            let path = dir.path().join(format!("far{i}.h5ad"));
            write_h5ad(
                &path,
                &adata,
                &WriteOptions {
                    gzip,
                    sparse_x: false,
                },
            )
            .unwrap();
            let opts = ReadOptions {
                cells: Some(cells.clone()),
                genes: Some(genes.clone()),
                ..ReadOptions::default()
            };
            let sub = read_h5ad(&path, &opts).unwrap();
            assert_eq!(
                sub.x.unwrap().to_dense(),
                want,
                "{} gzip={gzip:?}",
                matrix.encoding()
            );
        }
    }
}

/// Fixed-length strings (written by older tools instead of variable-length ones) are read too.
#[test]
fn fixed_length_strings_are_read() {
    let _guard = hdf5_guard();
    use hdf5::types::FixedAscii;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fixed.h5ad");
    std::fs::copy(fixture("dense_f64.h5ad"), &path).unwrap();
    {
        let file = hdf5::File::open_rw(&path).unwrap();
        let uns = file.group("uns").unwrap();
        let words: Vec<FixedAscii<7>> = ["ab", "cdefg", ""]
            .iter()
            .map(|s| FixedAscii::from_ascii(s).unwrap())
            .collect();
        uns.new_dataset_builder()
            .with_data(&words[..])
            .create("fixed")
            .unwrap();
    }
    let a = read_h5ad(&path, &ReadOptions::default()).unwrap();
    assert_eq!(
        a.uns["fixed"],
        UnsValue::StrArray(vec!["ab".into(), "cdefg".into(), String::new()])
    );
}
