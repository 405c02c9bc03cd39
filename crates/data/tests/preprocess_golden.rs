//! Parity with scanpy 1.11 / scikit-learn 1.7 / scikit-misc on the Papalexi THP-1 subset and on synthetic
//! cases, against `tests/golden/scanpy_papalexi.json` (made by `tests/golden/make_scanpy_golden.py`).
//! Tests that need the real data read it from `../shared` and skip with a message when it is absent.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cellshift_data::h5ad::{read_perturbation_data, read_var, PerturbationColumns, ReadOptions};
use cellshift_data::preprocess::{
    cell_totals, highly_variable_genes, loess_fit, log1p, mappfn_panel, normalize_total,
    preprocess, pseudobulk_of, select_panel, welch_t_vs_control, HvgOptions, LogBase,
    NormalizeTarget, PreprocessOptions,
};
use cellshift_data::{CellAnnotations, PerturbationData, Split, SplitConfig, SplitRole};
use serde_json::Value;

fn golden() -> &'static Value {
    static G: OnceLock<Value> = OnceLock::new();
    G.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/scanpy_papalexi.json");
        serde_json::from_str(&std::fs::read_to_string(path).expect("golden JSON"))
            .expect("valid JSON")
    })
}

fn papalexi_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/papalexi2021")
        .join(file)
}

/// The raw Papalexi counts, or `None` (with a printed message) when the shared data are absent.
fn papalexi() -> Option<&'static PerturbationData> {
    static D: OnceLock<Option<PerturbationData>> = OnceLock::new();
    D.get_or_init(|| {
        let path = papalexi_path("thp1_subset.h5ad");
        cellshift_data::testing::require_path(&path)?;
        let cols = PerturbationColumns {
            control: "non-targeting".into(),
            ..PerturbationColumns::default()
        };
        Some(
            read_perturbation_data(&path, &cols, &ReadOptions::matrix_only())
                .expect("read Papalexi"),
        )
    })
    .as_ref()
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("number")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

fn assert_rel(got: f64, want: f64, rel: f64, what: &str) {
    let tol = rel * want.abs().max(1e-12);
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} (rel tol {rel})"
    );
}

#[test]
fn numpy_randomstate_permutations_are_reproduced_exactly() {
    use cellshift_data::split::SplitMode;
    // Split of a single context with n conditions and test share 0.5 exposes numpy's permutation:
    // the first ceil(n/2) entries of permutation(n) are the test conditions.
    for case in golden()["numpy_permutations"].as_array().unwrap() {
        let n = case["n"].as_u64().unwrap() as usize;
        let seed = case["seed"].as_u64().unwrap();
        let perm: Vec<usize> = case["perm"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        if n < 2 {
            assert_eq!(perm, vec![0]);
            continue;
        }
        let labels: Vec<String> = (0..n)
            .map(|i| format!("T{i}"))
            .chain(std::iter::once("ctrl".to_string()))
            .collect();
        let x = ndarray::Array2::<f32>::zeros((n + 1, 1));
        let data = PerturbationData::new(
            vec!["g".into()],
            x,
            CellAnnotations {
                treatment_labels: labels,
                ..Default::default()
            },
            "ctrl",
        )
        .unwrap();
        let cfg = SplitConfig {
            seed,
            mode: SplitMode::InDistribution,
            ..SplitConfig::default()
        };
        let n_test = (0.5 * n as f64).ceil() as usize;
        if n - n_test < 2 {
            continue; // the 90/10 split of the rest needs two conditions
        }
        let split = Split::new(&data, &cfg).unwrap();
        let mut want: Vec<String> = perm[..n_test].iter().map(|i| format!("T{i}")).collect();
        want.sort();
        let mut got: Vec<String> = split
            .test_conditions()
            .iter()
            .map(|&c| data.treatments[data.conditions()[c].treatment].label("ctrl"))
            .collect();
        got.sort();
        assert_eq!(got, want, "seed {seed}, n {n}");
    }
}

#[test]
fn splits_match_sklearn_train_test_split() {
    for (ci, case) in golden()["split_cases"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let conds: Vec<(String, String)> = case["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_string(),
                    p[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let mut contexts: Vec<String> = conds.iter().map(|c| c.0.clone()).collect();
        let mut labels: Vec<String> = conds.iter().map(|c| c.1.clone()).collect();
        let mut ctx_sorted = contexts.clone();
        ctx_sorted.sort();
        ctx_sorted.dedup();
        for c in &ctx_sorted {
            contexts.push(c.clone());
            labels.push("control".into());
        }
        let n = labels.len();
        let data = PerturbationData::new(
            vec!["g".into()],
            ndarray::Array2::zeros((n, 1)),
            CellAnnotations {
                contexts,
                treatment_labels: labels,
                ..Default::default()
            },
            "control",
        )
        .unwrap();
        let seed = case["seed"].as_u64().unwrap();
        let split = Split::new(
            &data,
            &SplitConfig {
                seed,
                ..SplitConfig::default()
            },
        )
        .unwrap();
        assert_eq!(
            split.holdout_context.as_deref(),
            case["holdout"].as_str(),
            "case {ci}"
        );
        for (i, role) in case["roles"].as_array().unwrap().iter().enumerate() {
            let (ctx, t) = &conds[i];
            let idx = data
                .conditions()
                .iter()
                .position(|c| {
                    data.contexts[c.context] == *ctx
                        && data.treatments[c.treatment].label("control") == *t
                })
                .unwrap();
            let (want_role, want_other) = match role.as_str().unwrap() {
                "test" => (SplitRole::Test, false),
                "train" => (SplitRole::Train, false),
                "val" => (SplitRole::Val, false),
                "test_other" => (SplitRole::Train, true),
                r => panic!("unknown role {r}"),
            };
            assert_eq!(split.role[idx], want_role, "case {ci} condition {ctx}/{t}");
            assert_eq!(
                split.test_other[idx], want_other,
                "case {ci} condition {ctx}/{t}"
            );
        }
    }
}

#[test]
fn loess_matches_skmisc_on_synthetic_problems() {
    for (ci, case) in golden()["loess_cases"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let x: Vec<f64> = case["x"].as_array().unwrap().iter().map(f).collect();
        let y: Vec<f64> = case["y"].as_array().unwrap().iter().map(f).collect();
        let want: Vec<f64> = case["fitted"].as_array().unwrap().iter().map(f).collect();
        let degree = case["degree"].as_u64().unwrap() as usize;
        let got = loess_fit(&x, &y, f(&case["span"]), degree).unwrap();
        let max_err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!(
            "loess case {ci} (n = {}): max |Δ| vs skmisc = {max_err:e}",
            x.len()
        );
        assert!(max_err < 1e-10, "case {ci}: max |Δ| = {max_err:e}");
    }
}

#[test]
fn normalize_total_and_log1p_match_scanpy() {
    let Some(data) = papalexi() else { return };
    let g = &golden()["normalize"];
    assert_eq!(data.n_cells(), g["n_cells"].as_u64().unwrap() as usize);
    assert_eq!(data.n_genes(), g["n_genes"].as_u64().unwrap() as usize);
    let totals = cell_totals(&data.x);
    for (t, w) in totals.iter().zip(g["totals_first10"].as_array().unwrap()) {
        assert_eq!(*t as f64, f(w));
    }
    let (norm, report) = normalize_total(data, NormalizeTarget::MedianOfTotals).unwrap();
    assert_eq!(report.target_sum as f64, f(&g["median_total"]));
    assert_eq!(report.zero_total_cells, 0);
    let logn = log1p(&norm, LogBase::Natural).unwrap();
    let log2 = log1p(&norm, LogBase::Two).unwrap();
    let (cp10k, _) = normalize_total(data, NormalizeTarget::Sum(1e4)).unwrap();
    let mut worst = 0.0f64;
    for e in g["entries"].as_array().unwrap() {
        let (c, gi) = (
            e["cell"].as_u64().unwrap() as usize,
            e["gene"].as_u64().unwrap() as usize,
        );
        for (got, key) in [
            (logn.x[[c, gi]], "log1p"),
            (log2.x[[c, gi]], "log2"),
            (cp10k.x[[c, gi]], "norm_1e4"),
        ] {
            let want = f(&e[key]);
            if want == 0.0 {
                assert_eq!(got, 0.0, "{key} entry");
            } else {
                worst = worst.max((got as f64 - want).abs() / want.abs());
            }
        }
        assert_rel(logn.x[[c, gi]] as f64, f(&e["log1p"]), 1e-6, "log1p entry");
        assert_rel(log2.x[[c, gi]] as f64, f(&e["log2"]), 1e-6, "log2 entry");
        assert_rel(
            cp10k.x[[c, gi]] as f64,
            f(&e["norm_1e4"]),
            1e-6,
            "1e4-normalised entry",
        );
    }
    let sum: f64 = logn.x.stored_values().iter().map(|&v| v as f64).sum();
    let sum_sq: f64 = logn
        .x
        .stored_values()
        .iter()
        .map(|&v| (v as f64).powi(2))
        .sum();
    println!(
        "normalize_total+log1p: entries max rel Δ = {worst:e}; Σ rel Δ = {:e}; Σ² rel Δ = {:e}",
        (sum - f(&g["log1p_sum"])).abs() / f(&g["log1p_sum"]),
        (sum_sq - f(&g["log1p_sum_sq"])).abs() / f(&g["log1p_sum_sq"])
    );
    assert_rel(sum, f(&g["log1p_sum"]), 1e-7, "checksum Σ log1p");
    assert_rel(sum_sq, f(&g["log1p_sum_sq"]), 1e-7, "checksum Σ log1p²");
    for (r, w) in g["log1p_row_sums_first5"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let s: f64 = logn.x.row(r).iter().map(|&v| v as f64).sum();
        assert_rel(s, f(w), 1e-6, "row sum");
    }
    // the input is left untouched
    assert_eq!(
        data.x
            .stored_values()
            .iter()
            .map(|&v| v as f64)
            .sum::<f64>(),
        totals.iter().map(|&t| t as f64).sum::<f64>()
    );
}

#[test]
fn seurat_v3_hvg_matches_scanpy() {
    let Some(data) = papalexi() else { return };
    let g = &golden()["hvg_seurat_v3"];
    let r50 = highly_variable_genes(data, &HvgOptions::seurat_v3(50)).unwrap();
    assert_eq!(r50.selected_genes(), strings(&g["top50"]));
    let r100 = highly_variable_genes(data, &HvgOptions::seurat_v3(100)).unwrap();
    assert_eq!(r100.selected_genes(), strings(&g["top100"]));
    for (i, w) in g["means_first20"].as_array().unwrap().iter().enumerate() {
        assert_rel(r50.means[i], f(w), 1e-12, "mean");
        assert_rel(
            r50.variances[i],
            f(&g["variances_first20"][i]),
            1e-10,
            "variance",
        );
    }
    let mut max_rel = 0.0f64;
    for (i, w) in g["variances_norm"].as_array().unwrap().iter().enumerate() {
        let rel = (r50.variances_norm[i] - f(w)).abs() / f(w).abs().max(1e-12);
        max_rel = max_rel.max(rel);
    }
    println!("seurat_v3 variances_norm: max rel Δ vs scanpy = {max_rel:e}");
    assert!(
        max_rel < 1e-9,
        "variances_norm max relative difference {max_rel:e}"
    );
    // the LOESS fit itself
    let varying: Vec<usize> = (0..data.n_genes())
        .filter(|&i| r50.variances[i] > 0.0)
        .collect();
    let lx: Vec<f64> = varying.iter().map(|&i| r50.means[i].log10()).collect();
    let ly: Vec<f64> = varying.iter().map(|&i| r50.variances[i].log10()).collect();
    let fit = loess_fit(&lx, &ly, 0.3, 2).unwrap();
    let worst = varying
        .iter()
        .enumerate()
        .map(|(k, &i)| (fit[k] - f(&g["loess_fitted"][i])).abs())
        .fold(0.0, f64::max);
    println!(
        "seurat_v3 LOESS on Papalexi ({} genes): max |Δ| vs skmisc = {worst:e}",
        varying.len()
    );
    for (k, &i) in varying.iter().enumerate() {
        let want = f(&g["loess_fitted"][i]);
        assert!(
            (fit[k] - want).abs() < 1e-10,
            "loess at gene {i}: {} vs {want}",
            fit[k]
        );
    }
}

/// The reference MapPFN pipeline state: filtered, normalised, log1p data and its split.
fn mappfn_normalized(data: &PerturbationData) -> (PerturbationData, Split) {
    let g = &golden()["mappfn_panel"];
    let kept = strings(&g["kept_treatments"]);
    let rows: Vec<usize> = (0..data.n_cells())
        .filter(|&c| {
            let t = &data.treatments[data.cell_treatment[c]];
            t.is_control() || kept.contains(&t.label(&data.control_label))
        })
        .collect();
    let filtered = data.select_cells(&rows).unwrap();
    let (norm, rep) = normalize_total(&filtered, NormalizeTarget::MedianOfTotals).unwrap();
    assert_eq!(rep.target_sum as f64, f(&g["median_total_kept"]));
    let logn = log1p(&norm, LogBase::Natural).unwrap();
    let split = Split::new(&logn, &SplitConfig::default()).unwrap();
    (logn, split)
}

#[test]
fn mappfn_split_ttest_and_panel_match_the_reference() {
    let Some(data) = papalexi() else { return };
    let g = &golden()["mappfn_panel"];
    let (logn, split) = mappfn_normalized(data);
    assert_eq!(logn.n_cells(), g["n_cells_kept"].as_u64().unwrap() as usize);
    assert_eq!(split.holdout_context.as_deref(), g["holdout"].as_str());
    // split: exact scikit-learn partition (same cell order as the reference)
    for (label, role) in g["roles"].as_object().unwrap() {
        let t = logn.treatment_index(label).unwrap();
        let c = logn
            .conditions()
            .iter()
            .position(|c| c.treatment == t)
            .unwrap();
        let want = match role.as_str().unwrap() {
            "test" => SplitRole::Test,
            "train" => SplitRole::Train,
            "val" => SplitRole::Val,
            r => panic!("unexpected role {r}"),
        };
        assert_eq!(split.role[c], want, "{label}");
    }
    // t statistics
    let cells = split.panel_scoring_cells(&logn);
    let tt = welch_t_vs_control(&logn, &cells).unwrap();
    assert_eq!(tt.labels, strings(&g["train_treatments"]));
    for p in g["t_pairs"].as_array().unwrap() {
        let gene = logn.gene_index(p["gene"].as_str().unwrap()).unwrap();
        let got = tt.get(p["group"].as_str().unwrap(), gene).unwrap();
        assert!(
            (got - f(&p["t"])).abs() <= 1e-6 * f(&p["t"]).abs().max(1.0),
            "t {got} vs {}",
            p["t"]
        );
    }
    // The log values are f32 and may differ from numpy's by an ulp, so a statistic carries an absolute
    // error of about 1e-7 · (its scale); near-zero statistics are compared with an absolute floor of 1.
    let scores = tt.max_over_groups();
    let mut worst = 0.0f64;
    for (gene, w) in g["gene_scores"].as_object().unwrap() {
        let i = logn.gene_index(gene).unwrap();
        worst = worst.max((scores[i] as f64 - f(w)).abs() / f(w).abs().max(1.0));
    }
    println!("gene scores: max |Δ| / max(|t|, 1) = {worst:e}");
    assert!(worst < 1e-6, "gene scores differ from scanpy by {worst:e}");
    // panel
    let panel = mappfn_panel(&logn, &split, 50).unwrap();
    assert_eq!(panel.required, strings(&g["required_genes"]));
    assert_eq!(panel.genes, strings(&g["panel50"]));
    let same = select_panel(&logn, &cells, &panel.required, 50, None).unwrap();
    assert_eq!(same.genes, panel.genes);
    // compare with the redistributed 50-gene panel (built by another rule; reported, not forced)
    let ref_genes = strings(&g["thp1_panel50_var"]);
    let overlap = panel.genes.iter().filter(|x| ref_genes.contains(x)).count();
    assert_eq!(overlap as u64, g["thp1_panel50_overlap"].as_u64().unwrap());
    println!("MapPFN §7 panel vs thp1_panel50.h5ad var: {overlap}/50 genes in common");
    let panel_file = papalexi_path("thp1_panel50.h5ad");
    if let Some(panel_file) = cellshift_data::testing::require_path(&panel_file) {
        assert_eq!(read_var(&panel_file).unwrap().index, ref_genes);
    }
}

#[test]
fn mappfn_preprocess_pipeline_reproduces_the_reference_recipe() {
    let Some(data) = papalexi() else { return };
    let g = &golden()["mappfn_panel"];
    let out = preprocess(data, &PreprocessOptions::mappfn(50)).unwrap();
    assert_eq!(out.data.genes, strings(&g["panel50"]));
    // only control and the 9 measured targets remain (the others have no one-hot encoding)
    let mut kept: Vec<String> = out
        .data
        .treatments
        .iter()
        .filter(|t| !t.is_control())
        .map(|t| t.label(&out.data.control_label))
        .collect();
    kept.sort();
    assert_eq!(kept, strings(&g["required_genes"]));
    let dropped: Vec<&str> = out
        .report
        .dropped_treatments
        .iter()
        .map(|(t, _)| t.as_str())
        .collect();
    assert_eq!(dropped, vec!["MYC", "SPI1"]);
    let split = out.split.as_ref().unwrap();
    split.check_matches(&out.data).unwrap();
    for (label, role) in g["roles"].as_object().unwrap() {
        if let Ok(t) = out.data.treatment_index(label) {
            let c = out
                .data
                .conditions()
                .iter()
                .position(|c| c.treatment == t)
                .unwrap();
            let want = match role.as_str() {
                Some("test") => SplitRole::Test,
                Some("val") => SplitRole::Val,
                _ => SplitRole::Train,
            };
            assert_eq!(split.role[c], want, "{label}");
        }
    }
    // values are the normalised log data of the reference, restricted to the panel
    let (logn, _) = mappfn_normalized(data);
    let cell = out
        .data
        .cell_names
        .iter()
        .position(|n| n == &logn.cell_names[0])
        .unwrap();
    for (j, gene) in out.data.genes.iter().enumerate() {
        assert_eq!(
            out.data.x[[cell, j]],
            logn.x[[0, logn.gene_index(gene).unwrap()]]
        );
    }
    assert!(
        out.report.input_scale.sentence.contains("raw counts"),
        "{}",
        out.report.input_scale.sentence
    );
}

#[test]
fn pseudobulk_means_match_numpy() {
    let Some(data) = papalexi() else { return };
    let (logn, _) = mappfn_normalized(data);
    for pb in golden()["mappfn_panel"]["pseudobulk"].as_array().unwrap() {
        let (means, n) = pseudobulk_of(
            &logn,
            pb["context"].as_str().unwrap(),
            pb["treatment"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(n as u64, pb["n_cells"].as_u64().unwrap());
        for (gene, w) in strings(&pb["genes"])
            .iter()
            .zip(pb["means"].as_array().unwrap())
        {
            // f32 log values (ulp-level differences to numpy), averaged in f64
            assert_rel(
                means[logn.gene_index(gene).unwrap()],
                f(w),
                1e-7,
                "pseudo-bulk mean",
            );
        }
    }
}
