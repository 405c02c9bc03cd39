//! Parity with Python anndata: every fixture written by `tests/fixtures/make_fixtures.py` is read and
//! compared exactly with `tests/fixtures/expected.json` (what anndata itself reads back), and subset
//! reads are checked against the same subset of a full read.

use std::path::PathBuf;

use cellshift_data::h5ad::{
    read_h5ad, read_obs, read_var, Column, DataFrame, Matrix, ReadOptions, SparseKind, UnsValue,
};
use ndarray::{Array2, Axis};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture("expected.json"))
        .expect("tests/fixtures/expected.json is committed");
    serde_json::from_str(&text).expect("expected.json parses")
}

fn dense_from_json(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    let n = rows.len();
    let m = rows.first().map_or(0, Vec::len);
    Array2::from_shape_vec((n, m), rows.into_iter().flatten().collect()).unwrap()
}

fn assert_matrix(name: &str, got: &Matrix, want: &Value) {
    let encoding = want["encoding"].as_str().unwrap();
    assert_eq!(got.encoding(), encoding, "{name}: storage kind");
    let want = dense_from_json(&want["dense"]);
    let got = got.to_dense().mapv(f64::from);
    assert_eq!(got, want, "{name}: values");
}

fn assert_column(frame: &str, name: &str, got: &Column, want: &Value) {
    let ctx = format!("{frame} column `{name}`");
    let kind = want["kind"].as_str().unwrap();
    if kind == "categorical" {
        let Column::Categorical {
            codes,
            categories,
            ordered,
        } = got
        else {
            panic!("{ctx}: expected categorical, got {got:?}")
        };
        let want_codes: Vec<i32> = want["codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_i64().unwrap() as i32)
            .collect();
        let want_cats: Vec<String> = want["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        assert_eq!(codes, &want_codes, "{ctx}: codes");
        assert_eq!(categories, &want_cats, "{ctx}: categories");
        assert_eq!(
            *ordered,
            want["ordered"].as_bool().unwrap(),
            "{ctx}: ordered"
        );
        return;
    }
    let values = want["values"].as_array().unwrap();
    let nums = || -> Vec<f64> {
        values
            .iter()
            .map(|v| v.as_f64().unwrap_or(f64::NAN))
            .collect()
    };
    let same_f64 = |got: &[f64], ctx: &str| {
        let want = nums();
        assert_eq!(got.len(), want.len(), "{ctx}: length");
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g == w || (g.is_nan() && w.is_nan()),
                "{ctx}: {got:?} != {want:?}"
            );
        }
    };
    match (kind, got) {
        ("object" | "str", Column::Str(v)) => {
            let want: Vec<String> = values
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            assert_eq!(v, &want, "{ctx}");
        }
        ("float64", Column::F64(v)) => same_f64(v, &ctx),
        ("float32", Column::F32(v)) => {
            same_f64(&v.iter().map(|&x| x as f64).collect::<Vec<_>>(), &ctx)
        }
        ("int64", Column::I64(v)) => {
            same_f64(&v.iter().map(|&x| x as f64).collect::<Vec<_>>(), &ctx)
        }
        ("int32", Column::I32(v)) => {
            same_f64(&v.iter().map(|&x| x as f64).collect::<Vec<_>>(), &ctx)
        }
        ("bool", Column::Bool(v)) | ("boolean", Column::Bool(v)) => {
            let want: Vec<bool> = values.iter().map(|b| b.as_bool().unwrap()).collect();
            assert_eq!(v, &want, "{ctx}");
        }
        // A pandas nullable integer with missing values is read as floats with NaN.
        ("Int64", Column::F64(v)) => same_f64(v, &ctx),
        ("Int64", Column::I64(v)) => {
            same_f64(&v.iter().map(|&x| x as f64).collect::<Vec<_>>(), &ctx)
        }
        _ => panic!("{ctx}: pandas dtype {kind} read as {}", got.kind_name()),
    }
}

fn assert_frame(frame: &str, got: &DataFrame, want: &Value) {
    let index: Vec<String> = want["index"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(got.index, index, "{frame} index");
    let index_name = want["index_name"].as_str().unwrap_or("_index");
    assert_eq!(got.index_name, index_name, "{frame} index name");
    let columns = want["columns"].as_array().unwrap();
    let names: Vec<String> = columns
        .iter()
        .map(|c| c[0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got.column_names(), names, "{frame} column order");
    for c in columns {
        let name = c[0].as_str().unwrap();
        assert_column(frame, name, got.column(name).unwrap(), &c[1]);
    }
}

fn assert_uns(key: &str, got: &UnsValue, want: &Value) {
    let (tag, w) = want.as_object().unwrap().iter().next().unwrap();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    match (tag.as_str(), got) {
        ("str", UnsValue::Str(s)) => assert_eq!(s, w.as_str().unwrap(), "uns {key}"),
        ("i64", UnsValue::I64(v)) => assert_eq!(*v, w.as_i64().unwrap(), "uns {key}"),
        ("f64", UnsValue::F64(v)) => assert_eq!(*v, w.as_f64().unwrap(), "uns {key}"),
        ("bool", UnsValue::Bool(v)) => assert_eq!(*v, w.as_bool().unwrap(), "uns {key}"),
        ("str_array", UnsValue::StrArray(v)) => assert_eq!(v, &strings(w), "uns {key}"),
        ("f64_array", UnsValue::F64Array(v)) => {
            assert_eq!(
                v,
                &w.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect::<Vec<_>>(),
                "uns {key}"
            )
        }
        ("i64_array", UnsValue::I64Array(v)) => {
            assert_eq!(
                v,
                &w.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap())
                    .collect::<Vec<_>>(),
                "uns {key}"
            )
        }
        ("dict", UnsValue::Dict(map)) => {
            let w = w.as_object().unwrap();
            assert_eq!(
                map.keys().collect::<Vec<_>>(),
                w.keys().collect::<Vec<_>>(),
                "uns {key} keys"
            );
            for (k, v) in w {
                assert_uns(&format!("{key}/{k}"), &map[k], v);
            }
        }
        _ => panic!("uns {key}: expected {tag}, got {got:?}"),
    }
}

/// Reads fixture `name` fully and compares it with what Python anndata reads.
fn check_fixture(name: &str) {
    let all = expected();
    let want = &all[name];
    let a = read_h5ad(&fixture(name), &ReadOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let shape: Vec<usize> = want["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(vec![a.n_obs(), a.n_vars()], shape, "{name}: shape");
    assert_matrix(&format!("{name} X"), a.x.as_ref().unwrap(), &want["X"]);
    assert_frame(&format!("{name} obs"), &a.obs, &want["obs"]);
    assert_frame(&format!("{name} var"), &a.var, &want["var"]);
    let layers = want["layers"].as_object().unwrap();
    assert_eq!(
        a.layers.keys().collect::<Vec<_>>(),
        layers.keys().collect::<Vec<_>>(),
        "{name}: layer names"
    );
    for (k, v) in layers {
        assert_matrix(&format!("{name} layer {k}"), &a.layers[k], v);
    }
    let obsm = want["obsm"].as_object().unwrap();
    assert_eq!(
        a.obsm.keys().collect::<Vec<_>>(),
        obsm.keys().collect::<Vec<_>>(),
        "{name}: obsm names"
    );
    for (k, v) in obsm {
        assert_eq!(a.obsm[k], dense_from_json(v), "{name}: obsm {k}");
    }
    let uns = want["uns"].as_object().unwrap();
    assert_eq!(
        a.uns.keys().collect::<Vec<_>>(),
        uns.keys().collect::<Vec<_>>(),
        "{name}: uns keys"
    );
    for (k, v) in uns {
        assert_uns(k, &a.uns[k], v);
    }
    // The metadata-only readers give the same tables.
    assert_eq!(read_obs(&fixture(name)).unwrap(), a.obs, "{name}: read_obs");
    assert_eq!(read_var(&fixture(name)).unwrap(), a.var, "{name}: read_var");
}

#[test]
fn dense_f32_with_every_column_kind_layers_obsm_and_nested_uns() {
    check_fixture("dense_f32.h5ad");
}

#[test]
fn dense_f64_is_converted_to_f32() {
    check_fixture("dense_f64.h5ad");
}

#[test]
fn gzip_csr_of_integer_counts() {
    check_fixture("csr_int_gzip.h5ad");
    let a = read_h5ad(&fixture("csr_int_gzip.h5ad"), &ReadOptions::default()).unwrap();
    let Some(Matrix::Sparse(m)) = &a.x else {
        panic!("X should stay sparse")
    };
    assert_eq!(m.kind, SparseKind::Csr);
}

#[test]
fn csc_f64_with_an_empty_column() {
    check_fixture("csc_f64.h5ad");
    let a = read_h5ad(&fixture("csc_f64.h5ad"), &ReadOptions::default()).unwrap();
    let Some(Matrix::Sparse(m)) = &a.x else {
        panic!("X should stay sparse")
    };
    assert_eq!(m.kind, SparseKind::Csc);
    assert_eq!(m.indptr[2], m.indptr[3], "column 2 is empty");
}

#[test]
fn perturbation_fixture_matches_anndata() {
    check_fixture("perturbation.h5ad");
}

/// Reading a selection of cells and genes (unsorted, with gaps) equals selecting from a full read, for
/// dense, CSR and CSC storage, including layers, obsm and the obs/var tables.
#[test]
fn subset_read_equals_subset_of_full_read() {
    let cases: [(&str, Vec<usize>, Vec<usize>); 4] = [
        ("dense_f32.h5ad", vec![4, 0, 5, 2], vec![3, 1, 4]),
        ("csr_int_gzip.h5ad", vec![9, 1, 2, 3, 7], vec![6, 0, 2]),
        ("csc_f64.h5ad", vec![7, 6, 0, 3], vec![5, 2, 3, 0]),
        ("dense_f64.h5ad", vec![1, 2], vec![0, 1, 2]),
    ];
    for (name, cells, genes) in cases {
        let path = fixture(name);
        let full = read_h5ad(&path, &ReadOptions::default()).unwrap();
        let opts = ReadOptions {
            cells: Some(cells.clone()),
            genes: Some(genes.clone()),
            ..ReadOptions::default()
        };
        let sub = read_h5ad(&path, &opts).unwrap();
        let want_x = full
            .x
            .as_ref()
            .unwrap()
            .to_dense()
            .select(Axis(0), &cells)
            .select(Axis(1), &genes);
        assert_eq!(
            sub.x.as_ref().unwrap().to_dense(),
            want_x,
            "{name}: X subset"
        );
        assert_eq!(
            sub.x.as_ref().unwrap().encoding(),
            full.x.as_ref().unwrap().encoding(),
            "{name}: kind kept"
        );
        if let Some(Matrix::Sparse(m)) = &sub.x {
            m.validate().unwrap();
            for major in 0..m.major_len() {
                let idx = &m.indices[m.indptr[major]..m.indptr[major + 1]];
                assert!(
                    idx.windows(2).all(|w| w[0] < w[1]),
                    "{name}: indices sorted within slices"
                );
            }
        }
        for (k, layer) in &full.layers {
            let want = layer
                .to_dense()
                .select(Axis(0), &cells)
                .select(Axis(1), &genes);
            assert_eq!(sub.layers[k].to_dense(), want, "{name}: layer {k}");
        }
        for (k, a) in &full.obsm {
            assert_eq!(sub.obsm[k], a.select(Axis(0), &cells), "{name}: obsm {k}");
        }
        assert_eq!(sub.obs, full.obs.select_rows(&cells), "{name}: obs subset");
        assert_eq!(sub.var, full.var.select_rows(&genes), "{name}: var subset");
    }
}

#[test]
fn layer_can_replace_x_and_selections_are_validated() {
    let path = fixture("dense_f32.h5ad");
    let full = read_h5ad(&path, &ReadOptions::default()).unwrap();
    let opts = ReadOptions {
        layer: Some("sparse".into()),
        ..ReadOptions::default()
    };
    let a = read_h5ad(&path, &opts).unwrap();
    assert_eq!(a.x.as_ref().unwrap(), &full.layers["sparse"]);
    assert!(!a.layers.contains_key("sparse") && a.layers.contains_key("counts"));

    let err = read_h5ad(
        &path,
        &ReadOptions {
            layer: Some("nope".into()),
            ..ReadOptions::default()
        },
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("nope") && msg.contains("counts") && msg.contains("--layer"),
        "{msg}"
    );

    let err = read_h5ad(
        &path,
        &ReadOptions {
            cells: Some(vec![0, 6]),
            ..ReadOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("cell index 6 is out of range"),
        "{err}"
    );
    let err = read_h5ad(
        &path,
        &ReadOptions {
            genes: Some(vec![1, 1]),
            ..ReadOptions::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("selected twice"), "{err}");

    let lean = read_h5ad(&path, &ReadOptions::matrix_only()).unwrap();
    assert!(lean.layers.is_empty() && lean.obsm.is_empty());
    assert_eq!(lean.x, full.x);
}
