//! Report formats: JSON schema (NaN → null, key order), text table, CSV, and group selection.

use cellshift_metrics::{evaluate, EvalCase, EvalOptions, MetricGroups};
use ndarray::Array2;
use serde_json::Value;

fn small_case() -> EvalCase {
    // deterministic, non-negative "log1p-like" data with one clear shift per perturbation
    let obs = Array2::from_shape_fn((30, 6), |(i, j)| ((i * 13 + j * 7) % 17) as f64 / 8.0);
    let mk = |shift: usize, off: usize| {
        Array2::from_shape_fn((25, 6), |(i, j)| {
            ((i * 11 + j * 5 + off) % 17) as f64 / 8.0 + if j == shift { 2.0 } else { 0.0 }
        })
    };
    EvalCase::new(
        obs,
        vec![mk(0, 1), mk(1, 2)],
        vec![mk(0, 3), mk(2, 4)],
        Some(vec!["A".into(), "B".into()]),
        Some(vec![0, 1]),
    )
    .unwrap()
}

#[test]
fn json_table_and_csv() {
    let r = evaluate(&small_case(), &MetricGroups::all(), &EvalOptions::default()).unwrap();
    let v: Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["n_perts"], 2);
    let per = v["per_perturbation"].as_array().unwrap();
    assert_eq!(per[0]["name"], "A");
    // key order follows the oracle (name, w2, w2_n_iters, …, mmd, …) in the written text
    let text = r.to_json();
    let pos = |k: &str| text.find(&format!("\"{k}\"")).unwrap_or(usize::MAX);
    assert!(
        pos("name") < pos("w2") && pos("w2") < pos("w2_n_iters") && pos("w2_n_iters") < pos("mmd")
    );
    assert!(pos("mmd") < pos("deg_auprc") && pos("deg_auprc") < pos("pearson_delta_top20_de"));
    for k in [
        "w2",
        "mmd",
        "deg_auprc",
        "pearson_delta",
        "discrimination_score_l1",
        "overlap_at_N",
        "energy_distance",
        "rmse_average",
        "centroid_accuracy",
        "corr_all_allpert",
    ] {
        assert!(per[0].get(k).is_some(), "missing {k}");
        assert!(v["mean"].get(k).is_some(), "missing mean {k}");
    }
    for k in [
        "pds",
        "deg_auprc",
        "target_only_auprc",
        "de_spearman_sig",
        "pearson_edistance",
    ] {
        assert!(v["global"].get(k).is_some(), "missing global {k}");
    }
    assert_eq!(v["cell_eval"]["status"], "ok");
    // every float in the JSON is finite or null
    fn walk(v: &Value) {
        match v {
            Value::Number(n) => assert!(n.as_f64().unwrap().is_finite()),
            Value::Array(a) => a.iter().for_each(walk),
            Value::Object(o) => o.values().for_each(walk),
            _ => {}
        }
    }
    walk(&v);

    let table = r.to_table();
    assert!(
        table.contains("metric") && table.contains("mean") && table.contains(" A ")
            || table.contains("  A")
    );
    let w2_line = table
        .lines()
        .find(|l| l.starts_with("w2 "))
        .expect("w2 row");
    assert_eq!(w2_line.split_whitespace().count(), 4, "{w2_line}"); // name, mean, A, B

    let csv = r.to_csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("name,w2,"));
    assert_eq!(lines[0].split(',').count(), lines[1].split(',').count());
}

#[test]
fn group_selection_limits_keys() {
    let groups = MetricGroups::parse("perturbench, systema").unwrap();
    let r = evaluate(&small_case(), &groups, &EvalOptions::default()).unwrap();
    let keys: Vec<String> = r.scalar_keys();
    assert_eq!(
        keys,
        vec![
            "rmse_average",
            "rmse_rank_average",
            "cosine_logfc",
            "cosine_rank_logfc",
            "centroid_accuracy",
            "corr_all_allpert",
            "corr_20de_allpert"
        ]
    );
    assert!(r.cell_eval.is_none());
    assert!(r.global.0.is_empty());
}

#[test]
fn nan_metrics_become_null() {
    // Gaussian data with negative means: scanpy's lfc ratio is negative → NaN → no DEG → deg_auprc NaN
    let obs = Array2::from_shape_fn((20, 3), |(i, j)| -2.0 + ((i * 5 + j) % 7) as f64 * 0.1);
    let t = Array2::from_shape_fn((20, 3), |(i, j)| -2.0 + ((i * 3 + j) % 7) as f64 * 0.1);
    let case = EvalCase::new(
        obs.clone(),
        vec![t.clone(), t.clone()],
        vec![obs.clone(), obs],
        None,
        None,
    )
    .unwrap();
    let r = evaluate(
        &case,
        &MetricGroups::parse("mappfn").unwrap(),
        &EvalOptions::default(),
    )
    .unwrap();
    let v: Value = serde_json::from_str(&r.to_json()).unwrap();
    assert!(v["global"]["deg_auprc"].is_null());
    assert!(v["per_perturbation"][0]["deg_auprc"].is_null());
}

#[test]
fn shared_distances_give_the_standalone_values_exactly() {
    // The suite computes each pairwise-distance matrix once and shares it between MMD, the energy
    // distance and cell-eval's E-distance; the values must equal the standalone functions bit for bit.
    let case = small_case();
    let report = evaluate(&case, &MetricGroups::all(), &EvalOptions::default()).unwrap();
    for (i, p) in report.per_perturbation.iter().enumerate() {
        let (t, pr) = (case.trues[i].view(), case.preds[i].view());
        let value = |k: &str| match p.values.get(k) {
            Some(cellshift_metrics::MetricValue::Float(v)) => *v,
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!(
            value("mmd"),
            cellshift_metrics::mmd_rbf(t, pr, &cellshift_metrics::MAPPFN_GAMMAS)
        );
        assert_eq!(
            value("energy_distance"),
            cellshift_metrics::energy_distance(t, pr)
        );
    }
}
