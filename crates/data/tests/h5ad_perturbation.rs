//! The AnnData ↔ PerturbationData bridge on the `perturbation.h5ad` fixture (written by Python anndata:
//! `perturbation` labels with `non-targeting` controls, `cell_line` A/B, `treatment_value`), and the
//! bad-input errors: one test each, each a one-line message naming the problem and the fix.

use std::path::PathBuf;

use cellshift_data::h5ad::{
    read_h5ad, read_obs, read_perturbation_data, write_perturbation_data, PerturbationColumns,
    ReadOptions, WriteOptions,
};
use cellshift_data::{DataError, Treatment};
use ndarray::Axis;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn papalexi_cols() -> PerturbationColumns {
    PerturbationColumns {
        control: "non-targeting".into(),
        ..PerturbationColumns::default()
    }
}

#[test]
fn reads_conditions_contexts_and_values_from_obs() {
    let path = fixture("perturbation.h5ad");
    let data = read_perturbation_data(&path, &papalexi_cols(), &ReadOptions::default()).unwrap();
    let raw = read_h5ad(&path, &ReadOptions::default()).unwrap();
    assert_eq!(data.x.to_dense(), raw.x.unwrap().into_dense());
    assert_eq!(data.genes, raw.var.index);
    assert_eq!(data.cell_names, raw.obs.index);
    // `cell_line` is picked automatically as the context column.
    assert_eq!(data.contexts, vec!["A".to_string(), "B".to_string()]);
    let labels: Vec<String> = data
        .treatments
        .iter()
        .map(|t| t.label("non-targeting"))
        .collect();
    assert_eq!(labels, vec!["non-targeting", "G1", "G3", "G1+G2"]);
    assert_eq!(data.treatments[0], Treatment::Control);
    assert_eq!(
        data.treatments[3],
        Treatment::Combination {
            genes: vec!["G1".into(), "G2".into()]
        }
    );
    // 2 contexts × 4 treatments; per context: 2 control, 1 G1, 2 G3, 1 G1+G2 cells.
    assert_eq!(data.conditions().len(), 8);
    let obs_values = raw.obs.column("treatment_value").unwrap().as_f64().unwrap();
    let values: Vec<f64> = data.cell_value.iter().map(|&v| v as f64).collect();
    assert_eq!(values, obs_values);
    let g3 = data.treatment_index("G3").unwrap();
    let cond = data.condition(0, g3).unwrap();
    assert_eq!(cond.value, 0.5);
    assert_eq!(cond.cells, vec![2, 5]);
    let t = data.treatment_vector(cond).unwrap();
    assert_eq!(t.to_vec(), vec![0.0, 0.0, 0.0, 0.5, 0.0, 0.0]);
}

#[test]
fn explicit_context_and_missing_value_column() {
    let path = fixture("perturbation.h5ad");
    // No context column → one context; no value column → 1.0 for treated and 0.0 for control cells.
    let cols = PerturbationColumns {
        context: Some("perturbation".into()),
        value: "absent_column".into(),
        ..papalexi_cols()
    };
    let data = read_perturbation_data(&path, &cols, &ReadOptions::default()).unwrap();
    assert_eq!(
        data.contexts.len(),
        4,
        "contexts taken from the named column"
    );
    for cell in 0..data.n_cells() {
        let control = data.treatments[data.cell_treatment[cell]].is_control();
        assert_eq!(data.cell_value[cell], if control { 0.0 } else { 1.0 });
    }
    let err = read_perturbation_data(
        &path,
        &PerturbationColumns {
            context: Some("tissue".into()),
            ..papalexi_cols()
        },
        &ReadOptions::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("`tissue`") && msg.contains("--context-column") && msg.contains("cell_line"),
        "{msg}"
    );
}

#[test]
fn subset_read_equals_subset_of_full_read() {
    let path = fixture("perturbation.h5ad");
    let full = read_perturbation_data(&path, &papalexi_cols(), &ReadOptions::default()).unwrap();
    let cells = vec![11, 0, 4, 7, 3];
    let genes = vec![5, 1, 2];
    let opts = ReadOptions {
        cells: Some(cells.clone()),
        genes: Some(genes.clone()),
        ..ReadOptions::default()
    };
    let sub = read_perturbation_data(&path, &papalexi_cols(), &opts).unwrap();
    assert_eq!(
        sub.x.to_dense(),
        full.x
            .to_dense()
            .select(Axis(0), &cells)
            .select(Axis(1), &genes)
    );
    let names: Vec<String> = genes.iter().map(|&g| full.genes[g].clone()).collect();
    assert_eq!(sub.genes, names);
    let expect = full.select_cells(&cells).unwrap();
    assert_eq!(sub.cell_names, expect.cell_names);
    assert_eq!(
        sub.annotations().treatment_labels,
        expect.annotations().treatment_labels
    );
    assert_eq!(sub.cell_value, expect.cell_value);
}

#[test]
fn write_then_read_round_trips_the_data_model() {
    let data = read_perturbation_data(
        &fixture("perturbation.h5ad"),
        &papalexi_cols(),
        &ReadOptions::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (i, cols) in [
        papalexi_cols(),
        PerturbationColumns {
            perturbation: "gene".into(),
            context: Some("line".into()),
            value: "dose".into(),
            layer: Some("expr".into()),
            ..papalexi_cols()
        },
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("p{i}.h5ad"));
        write_perturbation_data(
            &path,
            &data,
            &cols,
            &WriteOptions {
                gzip: Some(4),
                sparse_x: true,
            },
        )
        .unwrap();
        let back = read_perturbation_data(&path, &cols, &ReadOptions::default()).unwrap();
        assert_eq!(back.x, data.x);
        assert_eq!(back.genes, data.genes);
        assert_eq!(back.cell_names, data.cell_names);
        assert_eq!(back.contexts, data.contexts);
        assert_eq!(back.treatments, data.treatments);
        assert_eq!(back.cell_treatment, data.cell_treatment);
        assert_eq!(back.cell_context, data.cell_context);
        assert_eq!(back.cell_value, data.cell_value);
        assert_eq!(back.conditions(), data.conditions());
        let obs = read_obs(&path).unwrap();
        assert_eq!(obs.column_names()[0], cols.perturbation);
    }
}

fn one_line(err: &DataError) -> String {
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "error must be one line: {msg}");
    msg
}

#[test]
fn error_missing_file() {
    let path = fixture("does_not_exist.h5ad");
    let err = read_perturbation_data(&path, &papalexi_cols(), &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::NotFound(_)), "{err:?}");
    assert!(one_line(&err).contains("does_not_exist.h5ad"));
}

#[test]
fn error_not_hdf5() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("table.h5ad");
    std::fs::write(&path, "cell,gene,count\nc1,G1,3\n").unwrap();
    let err = read_h5ad(&path, &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::NotHdf5(_)), "{err:?}");
    assert!(one_line(&err).contains("write_h5ad"));
}

#[test]
fn error_hdf5_but_not_anndata() {
    let err = read_h5ad(&fixture("not_anndata.h5"), &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::NotAnnData { .. }), "{err:?}");
    let msg = one_line(&err);
    assert!(msg.contains("obs") && msg.contains("measurements"), "{msg}");
}

#[test]
fn error_perturbation_column_absent() {
    let cols = PerturbationColumns {
        perturbation: "guide_target".into(),
        ..papalexi_cols()
    };
    let err = read_perturbation_data(
        &fixture("perturbation.h5ad"),
        &cols,
        &ReadOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, DataError::MissingColumn { .. }), "{err:?}");
    let msg = one_line(&err);
    for part in [
        "guide_target",
        "perturbation, cell_line, treatment_value",
        "--perturbation-column",
    ] {
        assert!(msg.contains(part), "`{part}` missing from: {msg}");
    }
}

#[test]
fn error_control_label_absent() {
    let cols = PerturbationColumns::default(); // control label `control`, but the file uses `non-targeting`
    let err = read_perturbation_data(
        &fixture("perturbation.h5ad"),
        &cols,
        &ReadOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, DataError::UnknownLabel { .. }), "{err:?}");
    let msg = one_line(&err);
    for part in ["`control`", "--control", "G1, G1+G2, G3, non-targeting"] {
        assert!(msg.contains(part), "`{part}` missing from: {msg}");
    }
}

#[test]
fn error_duplicate_gene_names() {
    let cols = PerturbationColumns::default();
    let err = read_perturbation_data(&fixture("dup_genes.h5ad"), &cols, &ReadOptions::default())
        .unwrap_err();
    assert!(matches!(err, DataError::Duplicate { .. }), "{err:?}");
    let msg = one_line(&err);
    assert!(
        msg.contains("`G0`") && msg.contains("var_names_make_unique"),
        "{msg}"
    );
    // Selecting one of the two columns is fine.
    let opts = ReadOptions {
        genes: Some(vec![1]),
        ..ReadOptions::default()
    };
    assert_eq!(
        read_perturbation_data(&fixture("dup_genes.h5ad"), &cols, &opts)
            .unwrap()
            .n_genes(),
        1
    );
}

#[test]
fn error_duplicate_cell_names() {
    let err = read_perturbation_data(
        &fixture("dup_cells.h5ad"),
        &PerturbationColumns::default(),
        &ReadOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, DataError::Duplicate { .. }), "{err:?}");
    let msg = one_line(&err);
    assert!(
        msg.contains("`a`") && msg.contains("obs_names_make_unique"),
        "{msg}"
    );
}

#[test]
fn error_corrupt_sparse_matrix_is_reported_not_panicked() {
    // Copy a CSR fixture and break its indptr with the hdf5 crate: the reader must return an error.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.h5ad");
    std::fs::copy(fixture("csr_int_gzip.h5ad"), &path).unwrap();
    {
        let file = hdf5::File::open_rw(&path).unwrap();
        let ds = file.dataset("X/indptr").unwrap();
        let mut p: Vec<i64> = ds.read_raw().unwrap();
        p.swap(3, 4);
        p[4] = p[3] - 1;
        ds.write_raw(&p).unwrap();
    }
    let err = read_h5ad(&path, &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::NotAnnData { .. }), "{err:?}");
    assert!(one_line(&err).contains("indptr decreases"));
}
