//! The real Papalexi et al. 2021 THP-1 subset (19,619 cells × 299 genes, CSR gzip, raw counts), read
//! from `../shared/data/papalexi2021/` when present. Reference numbers were computed once with Python
//! anndata 0.12.19 (`anndata.read_h5ad`, sums in float64):
//! total sum of X 4,083,813; row 0 (`cell0`) sum 212; last row (`cell20728`) sum 238; column 0
//! (`PCBP3`) sum 1,075; Σ X[i,j]·((31i + 17j) mod 97) = 196,016,689; 1,319,042 stored values;
//! `non-targeting` 2,292 cells, `SPI1` 47, `IFNGR1` 1,197; rows [5,17,4000,19618,123] × columns
//! [298,0,10,11,12,150] sum to 29.

use std::path::PathBuf;

use cellshift_data::h5ad::{
    read_h5ad, read_obs, read_perturbation_data, Matrix, PerturbationColumns, ReadOptions,
};
use cellshift_data::{ExpressionScale, Treatment};
use ndarray::{array, Axis};

fn papalexi() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/papalexi2021/thp1_subset.h5ad");
    cellshift_data::testing::require_path(&path)
}

fn cols() -> PerturbationColumns {
    PerturbationColumns {
        control: "non-targeting".into(),
        ..PerturbationColumns::default()
    }
}

#[test]
fn papalexi_matches_python_anndata() {
    let Some(path) = papalexi() else { return };
    let a = read_h5ad(&path, &ReadOptions::default()).unwrap();
    assert_eq!((a.n_obs(), a.n_vars()), (19_619, 299));
    let Some(Matrix::Sparse(m)) = &a.x else {
        panic!("X is CSR in the file")
    };
    assert_eq!(m.nnz(), 1_319_042);
    assert_eq!(&a.var.index[..3], &["PCBP3", "ITGB1BP1", "SERTAD1"]);
    let x = m.to_dense();
    let total: f64 = x.iter().map(|&v| v as f64).sum();
    assert_eq!(total, 4_083_813.0);
    assert_eq!(x.row(0).iter().map(|&v| v as f64).sum::<f64>(), 212.0);
    assert_eq!(x.row(19_618).iter().map(|&v| v as f64).sum::<f64>(), 238.0);
    assert_eq!(x.column(0).iter().map(|&v| v as f64).sum::<f64>(), 1_075.0);
    let weighted: f64 = x
        .indexed_iter()
        .map(|((i, j), &v)| v as f64 * ((31 * i + 17 * j) % 97) as f64)
        .sum();
    assert_eq!(weighted, 196_016_689.0);
    assert_eq!(
        (a.obs.index[0].as_str(), a.obs.index[19_618].as_str()),
        ("cell0", "cell20728")
    );
    assert_eq!(
        a.uns["source"].as_str().unwrap(),
        "github.com/Katsevich-Lab/sceptredata@ec722d5 data/lowmoi_example_data.rda (MIT); Papalexi et al. 2021 Nat Genet"
    );
}

#[test]
fn papalexi_perturbation_labels() {
    let Some(path) = papalexi() else { return };
    let data = read_perturbation_data(&path, &cols(), &ReadOptions::default()).unwrap();
    assert_eq!((data.n_cells(), data.n_genes()), (19_619, 299));
    assert_eq!(
        data.contexts,
        vec!["THP-1".to_string()],
        "context from `cell_line`"
    );
    assert_eq!(data.scale, ExpressionScale::RawCounts);
    assert_eq!(data.treatments.len(), 26);
    let count = |label: &str| {
        let t = data.treatment_index(label).unwrap();
        data.cell_treatment.iter().filter(|&&c| c == t).count()
    };
    assert_eq!(count("non-targeting"), 2_292);
    assert_eq!(count("SPI1"), 47);
    assert_eq!(count("IFNGR1"), 1_197);
    assert_eq!(data.treatments[0], Treatment::Control);
    let obs = read_obs(&path).unwrap();
    let is_control = obs.column("is_control").unwrap().as_f64().unwrap();
    for (cell, &flag) in is_control.iter().enumerate() {
        let control = data.treatments[data.cell_treatment[cell]].is_control();
        assert_eq!(control, flag == 1.0, "cell {cell}");
        assert_eq!(data.cell_value[cell], if control { 0.0 } else { 1.0 });
    }
}

#[test]
fn papalexi_subset_read_equals_subset_of_full_read() {
    let Some(path) = papalexi() else { return };
    let rows = vec![5, 17, 4000, 19_618, 123];
    let genes = vec![298, 0, 10, 11, 12, 150];
    let opts = ReadOptions {
        cells: Some(rows.clone()),
        genes: Some(genes.clone()),
        ..ReadOptions::default()
    };
    let sub = read_perturbation_data(&path, &cols(), &opts).unwrap();
    // The values Python anndata gives for X[rows][:, genes].
    let want = array![
        [7.0f32, 0., 0., 0., 1., 0.],
        [0., 0., 0., 2., 1., 2.],
        [2., 0., 0., 0., 0., 0.],
        [0., 1., 0., 4., 0., 0.],
        [8., 0., 0., 0., 0., 1.]
    ];
    assert_eq!(sub.x.to_dense(), want);
    // A larger selection (every third cell, a gene block plus scattered genes) equals the full read.
    let full = read_perturbation_data(&path, &cols(), &ReadOptions::default()).unwrap();
    let cells: Vec<usize> = (0..full.n_cells()).step_by(3).collect();
    let genes: Vec<usize> = (40..90).chain([3, 250, 7]).collect();
    let opts = ReadOptions {
        cells: Some(cells.clone()),
        genes: Some(genes.clone()),
        ..ReadOptions::default()
    };
    let sub = read_perturbation_data(&path, &cols(), &opts).unwrap();
    assert_eq!(
        sub.x.to_dense(),
        full.x
            .to_dense()
            .select(Axis(0), &cells)
            .select(Axis(1), &genes)
    );
    assert_eq!(
        sub.cell_names,
        cells
            .iter()
            .map(|&c| full.cell_names[c].clone())
            .collect::<Vec<_>>()
    );
}
