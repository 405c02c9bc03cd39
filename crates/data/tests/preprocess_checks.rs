//! Bad-input errors (one test each) and analytic properties of the preprocessing steps on synthetic data.

mod common;

use cellshift_data::preprocess::{
    apply_panel, check_same_genes, detect_scale, highly_variable_genes,
    highly_variable_genes_matrix, log1p, log1p_matrix, measured_targets, normalize_total,
    normalize_total_matrix, preprocess, pseudobulk, pseudobulk_of, select_panel,
    welch_t_vs_control, HvgOptions, LogBase, NormalizeTarget, PreprocessOptions,
};
use cellshift_data::{CellAnnotations, DataError, ExpressionScale, PerturbationData};
use ndarray::{array, Array2};
use rand::SeedableRng;
use rand_distr::{Distribution, Gamma, Poisson};

fn small(
    x: Array2<f32>,
    genes: &[&str],
    treatments: &[&str],
    contexts: &[&str],
) -> PerturbationData {
    PerturbationData::new(
        genes.iter().map(|g| g.to_string()).collect(),
        x,
        CellAnnotations {
            treatment_labels: treatments.iter().map(|t| t.to_string()).collect(),
            contexts: contexts.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        },
        "control",
    )
    .unwrap()
}

// ---- bad input: one test each -------------------------------------------------------------------

#[test]
fn nan_counts_are_rejected_with_position_and_fix() {
    let x = array![[1.0f32, 2.0], [f32::NAN, 1.0]];
    let err = normalize_total_matrix(x.view(), NormalizeTarget::MedianOfTotals).unwrap_err();
    assert!(
        matches!(err, DataError::NonFinite { row: 1, col: 0, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("normalize_total input") && msg.contains("remove or impute"),
        "{msg}"
    );
    let x = array![[1.0f32, f32::INFINITY], [0.0, 1.0]];
    let err = highly_variable_genes_matrix(
        x.view(),
        &["a".into(), "b".into()],
        &HvgOptions::seurat_v3(1),
    )
    .unwrap_err();
    assert!(
        matches!(err, DataError::NonFinite { row: 0, col: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn negative_counts_are_rejected_with_position_and_fix() {
    let data = small(
        array![[1.0f32, 2.0], [3.0, -1.0], [0.0, 1.0]],
        &["a", "b"],
        &["control", "a", "a"],
        &[],
    );
    let err = normalize_total(&data, NormalizeTarget::MedianOfTotals).unwrap_err();
    assert!(
        matches!(err, DataError::Negative { row: 1, col: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("raw counts are expected"));
    let err = highly_variable_genes(&data, &HvgOptions::seurat_v3(1)).unwrap_err();
    assert!(
        matches!(err, DataError::Negative { row: 1, col: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn non_integer_input_to_seurat_v3_is_rejected_unless_allowed() {
    let data = small(
        array![[1.5f32, 2.0], [3.0, 1.0], [0.0, 1.0]],
        &["a", "b"],
        &["control", "a", "a"],
        &[],
    );
    let err = highly_variable_genes(&data, &HvgOptions::seurat_v3(1))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("non-integer value 1.5 at row 0, column 0") && err.contains("raw UMI counts"),
        "{err}"
    );
}

#[test]
fn differing_genes_name_the_first_difference() {
    let a = small(
        array![[1.0f32, 2.0, 3.0]],
        &["A", "B", "C"],
        &["control"],
        &[],
    );
    let b = small(
        array![[1.0f32, 2.0, 3.0]],
        &["A", "X", "C"],
        &["control"],
        &[],
    );
    let err = check_same_genes(&a, &b).unwrap_err();
    assert!(matches!(err, DataError::GenesDiffer { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("position 1") && msg.contains("`B`") && msg.contains("`X`"),
        "{msg}"
    );
    let c = small(array![[1.0f32, 2.0]], &["A", "B"], &["control"], &[]);
    let msg = check_same_genes(&a, &c).unwrap_err().to_string();
    assert!(
        msg.contains("3 genes") && msg.contains("continues with `C`"),
        "{msg}"
    );
    check_same_genes(&a, &a.clone()).unwrap();
}

#[test]
fn absent_condition_is_an_empty_condition_error() {
    let data = small(
        array![[1.0f32, 2.0], [3.0, 1.0], [0.0, 1.0], [2.0, 2.0]],
        &["a", "b"],
        &["control", "a", "control", "b"],
        &["x", "x", "y", "y"],
    );
    let err = pseudobulk_of(&data, "y", "a").unwrap_err();
    assert!(matches!(err, DataError::EmptyCondition { .. }), "{err:?}");
    assert!(err.to_string().contains("(y, a) has no cells"));
    assert!(matches!(
        pseudobulk_of(&data, "z", "a").unwrap_err(),
        DataError::UnknownLabel { .. }
    ));
}

#[test]
fn a_panel_gene_that_is_not_measured_is_named() {
    let data = small(
        array![[1.0f32, 2.0], [3.0, 1.0]],
        &["a", "b"],
        &["control", "a"],
        &[],
    );
    let err = apply_panel(&data, &["a".into(), "STAT9".into()], true).unwrap_err();
    assert!(
        matches!(&err, DataError::GeneNotMeasured { gene, .. } if gene == "STAT9"),
        "{err:?}"
    );
    assert!(err.to_string().contains("remove it from the panel"));
}

#[test]
fn normalising_log_data_is_refused_with_the_detected_scale() {
    let data = small(
        array![[0.5f32, 1.2], [0.0, 2.3]],
        &["a", "b"],
        &["control", "a"],
        &[],
    );
    let opts = PreprocessOptions {
        normalize: Some(NormalizeTarget::MedianOfTotals),
        ..PreprocessOptions::mappfn(2)
    };
    let err = preprocess(&data, &opts).unwrap_err().to_string();
    assert!(
        err.contains("need raw counts") && err.contains("log-normalised"),
        "{err}"
    );
}

// ---- analytic properties ----------------------------------------------------------------------------

#[test]
fn normalize_total_scales_to_the_median_of_nonzero_totals_and_keeps_empty_cells() {
    // totals 4, 0, 10, 6 → median of non-zero totals = 6
    let x = array![[1.0f32, 3.0], [0.0, 0.0], [5.0, 5.0], [6.0, 0.0]];
    let (y, rep) = normalize_total_matrix(x.view(), NormalizeTarget::MedianOfTotals).unwrap();
    assert_eq!(rep.target_sum, 6.0);
    assert_eq!(rep.zero_total_cells, 1);
    assert_eq!(y.row(1).to_vec(), vec![0.0, 0.0]);
    for r in [0, 2, 3] {
        assert!((y.row(r).sum() - 6.0).abs() < 1e-6);
    }
    assert_eq!(y[[0, 0]], 1.5);
    let (y, _) = normalize_total_matrix(x.view(), NormalizeTarget::Sum(1e4)).unwrap();
    assert_eq!(y[[2, 1]], 5000.0);
    assert!(normalize_total_matrix(x.view(), NormalizeTarget::Sum(0.0)).is_err());
    let zeros = Array2::<f32>::zeros((2, 2));
    assert!(
        normalize_total_matrix(zeros.view(), NormalizeTarget::MedianOfTotals)
            .unwrap_err()
            .to_string()
            .contains("every cell")
    );
}

#[test]
fn log1p_bases() {
    let x = array![[0.0f32, 1.0, 3.0, 9.0]];
    assert_eq!(
        log1p_matrix(x.view(), LogBase::Two).unwrap(),
        array![[0.0f32, 1.0, 2.0, std::f32::consts::LOG2_10]]
    );
    assert_eq!(log1p_matrix(x.view(), LogBase::Ten).unwrap()[[0, 3]], 1.0);
    assert_eq!(
        log1p_matrix(x.view(), LogBase::Natural).unwrap()[[0, 1]],
        std::f32::consts::LN_2
    );
    assert!(log1p_matrix(array![[-1.0f32]].view(), LogBase::Natural).is_err());
}

#[test]
fn scale_detection_reports_counts_log_data_and_scaled_data() {
    let counts = small(
        array![[1.0f32, 0.0], [3.0, 5.0]],
        &["a", "b"],
        &["control", "a"],
        &[],
    );
    let r = detect_scale(&counts);
    assert_eq!(r.scale, ExpressionScale::RawCounts);
    assert!(
        r.sentence.contains("raw counts") && r.sentence.contains("max 5"),
        "{}",
        r.sentence
    );
    let (norm, _) = normalize_total(&counts, NormalizeTarget::Sum(100.0)).unwrap();
    let logd = log1p(&norm, LogBase::Natural).unwrap();
    let r = detect_scale(&logd);
    assert_eq!(r.scale, ExpressionScale::LogNormalized);
    let (t, spread) = r.implied_target_sum.unwrap();
    assert!((t - 100.0).abs() < 1e-3 && spread < 1e-5, "{t} {spread}");
    assert!(
        r.sentence.contains("normalize_total(target_sum=100.0000)"),
        "{}",
        r.sentence
    );
    let scaled = small(
        array![[-0.5f32, 1.2], [0.3, -2.0]],
        &["a", "b"],
        &["control", "a"],
        &[],
    );
    let r = detect_scale(&scaled);
    assert_eq!(r.scale, ExpressionScale::Other);
    assert!(r.sentence.contains("negatives"), "{}", r.sentence);
}

#[test]
fn welch_t_matches_the_formula() {
    // control values 1,2,3 (mean 2, var 1); treatment A values 4,6 (mean 5, var 2)
    let data = small(
        array![[1.0f32], [2.0], [3.0], [4.0], [6.0]],
        &["g"],
        &["control", "control", "control", "A", "A"],
        &[],
    );
    let tt = welch_t_vs_control(&data, &(0..5).collect::<Vec<_>>()).unwrap();
    let expect = (5.0 - 2.0) / (2.0f64 / 2.0 + 1.0 / 3.0).sqrt();
    assert!((tt.t[[0, 0]] - expect).abs() < 1e-12);
    assert_eq!(tt.labels, vec!["A"]);
    // a group with one cell is refused like scanpy does
    let err = welch_t_vs_control(&data, &[0, 1, 2, 3])
        .unwrap_err()
        .to_string();
    assert!(err.contains("only 1 cell"), "{err}");
}

/// Cells where each treatment raises one marker gene; target genes are measured for some treatments.
fn panel_data() -> PerturbationData {
    let genes = ["T1", "T2", "T3", "M1", "M2", "M3", "M4"];
    let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
    let treatments = ["control", "T1", "T2", "T3", "U9"]; // U9 is not a measured gene
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for (ti, t) in treatments.iter().enumerate() {
        for _ in 0..30 {
            let mut r: Vec<f32> = (0..genes.len())
                .map(|_| Poisson::new(3.0).unwrap().sample(&mut rng) as f32)
                .collect();
            // marker effects: M1 ≫ M2 > M3, M4 unaffected
            if ti > 0 {
                r[3] += 12.0;
                r[4] += 6.0;
                r[5] += 2.0;
            }
            rows.extend(r);
            labels.push(t.to_string());
        }
    }
    let x = Array2::from_shape_vec((labels.len(), genes.len()), rows).unwrap();
    PerturbationData::new(
        genes.iter().map(|g| g.to_string()).collect(),
        x,
        CellAnnotations {
            treatment_labels: labels,
            ..Default::default()
        },
        "control",
    )
    .unwrap()
}

#[test]
fn panel_puts_measured_targets_first_then_the_strongest_markers() {
    let data = panel_data();
    let all: Vec<usize> = (0..data.n_cells()).collect();
    let required = measured_targets(&data);
    assert_eq!(required, vec!["T1", "T2", "T3"]);
    let p = select_panel(&data, &all, &required, 5, None).unwrap();
    assert_eq!(p.genes, vec!["T1", "T2", "T3", "M1", "M2"]);
    // fewer slots than targets: the highest-scoring targets, by score
    let p2 = select_panel(&data, &all, &required, 2, None).unwrap();
    assert_eq!(p2.genes.len(), 2);
    assert!(p2.genes.iter().all(|g| required.contains(g)));
    assert!(
        p2.scores[data.gene_index(&p2.genes[0]).unwrap()]
            >= p2.scores[data.gene_index(&p2.genes[1]).unwrap()]
    );
    // restricted fill candidates
    let p3 = select_panel(
        &data,
        &all,
        &required,
        5,
        Some(&["M3".to_string(), "M4".to_string()]),
    )
    .unwrap();
    assert_eq!(p3.genes, vec!["T1", "T2", "T3", "M3", "M4"]);
    // applying the panel drops the un-encodable U9 cells and keeps control + T1..T3
    let applied = apply_panel(&data, &p.genes, true).unwrap();
    assert_eq!(applied.n_cells(), 120);
    assert!(applied
        .treatments
        .iter()
        .all(|t| t.label("control") != "U9"));
    assert_eq!(apply_panel(&data, &p.genes, false).unwrap().n_cells(), 150);
}

#[test]
fn pseudobulk_means_and_counts() {
    let data = small(
        array![[1.0f32, 2.0], [3.0, 4.0], [10.0, 0.0], [5.0, 5.0]],
        &["a", "b"],
        &["control", "control", "a", "control"],
        &["x", "x", "x", "y"],
    );
    let pb = pseudobulk(&data);
    assert_eq!(pb.n_cells, vec![2, 1, 1]);
    let r = pb.row("x", "control").unwrap();
    assert_eq!(pb.means.row(r).to_vec(), vec![2.0, 3.0]);
    assert!(matches!(
        pb.row("y", "a"),
        Err(DataError::EmptyCondition { .. })
    ));
}

#[test]
fn seurat_v3_ranks_an_overdispersed_gene_first() {
    // 40 Poisson genes with means spread over two decades and one gamma-Poisson (overdispersed) gene
    let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
    let (n, d) = (400, 41);
    let mut x = Array2::<f32>::zeros((n, d));
    for g in 0..40 {
        let mu = 0.2 * 1.12f64.powi(g as i32);
        for c in 0..n {
            x[[c, g]] = Poisson::new(mu).unwrap().sample(&mut rng) as f32;
        }
    }
    for c in 0..n {
        let lam = Gamma::new(0.5, 4.0).unwrap().sample(&mut rng); // mean 2, strongly overdispersed
        x[[c, 40]] = if lam > 0.0 {
            Poisson::new(lam).unwrap().sample(&mut rng) as f32
        } else {
            0.0
        };
    }
    let genes: Vec<String> = (0..d).map(|g| format!("g{g}")).collect();
    let r = highly_variable_genes_matrix(x.view(), &genes, &HvgOptions::seurat_v3(5)).unwrap();
    assert_eq!(
        r.selected[0],
        40,
        "normalised variances: {:?}",
        &r.variances_norm[35..]
    );
    // Poisson genes have normalised variance near 1
    let median = {
        let mut v: Vec<f64> = r.variances_norm[..40].to_vec();
        v.sort_by(f64::total_cmp);
        v[20]
    };
    assert!(
        (median - 1.0).abs() < 0.2,
        "median normalised variance of Poisson genes {median}"
    );
    assert_eq!(r.rank[40], Some(0));
    assert_eq!(r.selected.len(), 5);
}

/// 30 Poisson genes plus three target genes; every treatment raises the first few genes.
fn pipeline_data() -> PerturbationData {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(9);
    let mut genes: Vec<String> = (0..30).map(|g| format!("g{g:02}")).collect();
    genes.extend(["T1", "T2", "T3"].iter().map(|s| s.to_string()));
    let treatments = ["control", "T1", "T2", "T3", "U1", "U2"]; // U1, U2: targets not measured
    let (mut rows, mut labels) = (Vec::new(), Vec::new());
    for (ti, t) in treatments.iter().enumerate() {
        for _ in 0..60 {
            for g in 0..genes.len() {
                let mut mu = 0.3 * 1.15f64.powi(g as i32 % 30);
                if ti > 0 && g < 4 {
                    mu *= 4.0 + g as f64;
                }
                rows.push(Poisson::new(mu).unwrap().sample(&mut rng) as f32);
            }
            labels.push(t.to_string());
        }
    }
    let x = Array2::from_shape_vec((labels.len(), genes.len()), rows).unwrap();
    PerturbationData::new(
        genes,
        x,
        CellAnnotations {
            treatment_labels: labels,
            ..Default::default()
        },
        "control",
    )
    .unwrap()
}

#[test]
fn pipeline_subsets_to_hvgs_or_fills_the_panel_from_them() {
    let data = pipeline_data();
    let hvg = highly_variable_genes(&data, &HvgOptions::seurat_v3(10)).unwrap();
    let mut hvg_genes: Vec<usize> = hvg.selected.clone();
    hvg_genes.sort_unstable();
    let hvg_names: Vec<String> = hvg_genes.iter().map(|&g| data.genes[g].clone()).collect();
    // HVG only (scanpy's plain selection): columns are the HVGs in data order, values are
    // log1p(normalize_total(counts))
    let opts = PreprocessOptions {
        min_cells_per_treatment: None,
        normalize: Some(NormalizeTarget::MedianOfTotals),
        log1p: Some(LogBase::Natural),
        hvg: Some(HvgOptions {
            keep_perturbed: false,
            ..HvgOptions::seurat_v3(10)
        }),
        panel: None,
        pseudobulk: true,
    };
    let out = preprocess(&data, &opts).unwrap();
    assert_eq!(out.data.genes, hvg_names);
    let (norm, _) = normalize_total(&data, NormalizeTarget::MedianOfTotals).unwrap();
    let logd = log1p(&norm, LogBase::Natural).unwrap();
    for (j, &g) in hvg_genes.iter().enumerate() {
        assert_eq!(out.data.x.to_dense().column(j), logd.x.to_dense().column(g));
    }
    assert_eq!(out.data.scale, ExpressionScale::LogNormalized);
    let pb = out.pseudobulk.unwrap();
    assert_eq!(pb.n_cells, vec![60; 6]);
    // HVG + panel: targets first, fill genes only from the HVGs
    let opts = PreprocessOptions {
        panel: Some(cellshift_data::preprocess::PanelConfig {
            n_genes: 6,
            split: cellshift_data::SplitConfig::default(),
            drop_unencodable: true,
        }),
        ..opts
    };
    let out = preprocess(&data, &opts).unwrap();
    assert_eq!(&out.data.genes[..3], &["T1", "T2", "T3"]);
    assert!(
        out.data.genes[3..].iter().all(|g| hvg_names.contains(g)),
        "{:?}",
        out.data.genes
    );
    // U1, U2 have no one-hot over the panel and are dropped with their cells
    assert_eq!(out.data.n_cells(), 4 * 60);
    out.split.unwrap().check_matches(&out.data).unwrap();
}

#[test]
fn hvg_keeps_the_measured_perturbed_genes_by_default() {
    let data = pipeline_data();
    let n = 4;
    let hvg = highly_variable_genes(&data, &HvgOptions::seurat_v3(n)).unwrap();
    let top: Vec<String> = hvg.selected_genes();
    let targets = ["T1", "T2", "T3"];
    let missing = targets
        .iter()
        .filter(|t| !top.iter().any(|g| g == *t))
        .count();
    assert!(
        missing > 0,
        "the fixture must have a perturbed gene outside the top {n} HVGs: {top:?}"
    );
    let opts = PreprocessOptions {
        min_cells_per_treatment: None,
        normalize: Some(NormalizeTarget::MedianOfTotals),
        log1p: Some(LogBase::Natural),
        hvg: Some(HvgOptions::seurat_v3(n)),
        panel: None,
        pseudobulk: false,
    };
    let out = preprocess(&data, &opts).unwrap();
    assert_eq!(out.data.genes.len(), n, "{:?}", out.data.genes);
    for t in targets {
        assert!(
            out.data.genes.iter().any(|g| g == t),
            "{t} dropped: {:?}",
            out.data.genes
        );
    }
    // The rest are the most variable of the other genes.
    let rest: Vec<&String> = out
        .data
        .genes
        .iter()
        .filter(|g| !targets.contains(&g.as_str()))
        .collect();
    let expected: Vec<&String> = top
        .iter()
        .filter(|g| !targets.contains(&g.as_str()))
        .take(n - targets.len())
        .collect();
    let mut rest_sorted = rest.clone();
    rest_sorted.sort();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(rest_sorted, expected_sorted);
    assert!(out
        .report
        .steps
        .iter()
        .any(|s| s.contains("kept") && s.contains("perturbed")));
    // Off: scanpy's plain top genes, the perturbed genes outside them are dropped.
    let plain = PreprocessOptions {
        hvg: Some(HvgOptions {
            keep_perturbed: false,
            ..HvgOptions::seurat_v3(n)
        }),
        ..opts
    };
    let out = preprocess(&data, &plain).unwrap();
    let mut top_sorted = top.clone();
    top_sorted.sort();
    let mut got = out.data.genes.clone();
    got.sort();
    assert_eq!(got, top_sorted);
}
