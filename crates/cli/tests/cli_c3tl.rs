//! C3TL through the CLI on the McFaline-Figueroa lines of the shared PerturBench file: `train` fits it
//! through the registry, `predict` writes one pseudo-bulk profile per query (no made-up cells), the
//! cell-level `bench` protocol refuses it and `bench c3tl` scores it with the pseudo-bulk metrics.

mod common;

use cellshift_data::h5ad::{read_perturbation_data, PerturbationColumns, ReadOptions};
use cellshift_data::testing::{require_path, shared_dir};
use common::cellshift;

#[test]
fn c3tl_trains_predicts_profiles_and_benches_on_the_glioblastoma_lines() {
    let Some(path) =
        require_path(&shared_dir(env!("CARGO_MANIFEST_DIR")).join("data/perturbench/devel.h5ad"))
    else {
        return;
    };
    let data = path.display().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run").display().to_string();
    let columns = [
        "--perturbation-column",
        "condition",
        "--context-column",
        "cell_type",
        "--control",
        "control",
    ];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter().chain(&columns).map(|s| s.to_string()).collect()
    };
    let run_ok = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = cellshift(&refs);
        assert_eq!(code, 0, "cellshift {refs:?} failed:\n{out}\n{err}");
        (out, err)
    };
    let (_, err) = run_ok(with(&[
        "train", "--method", "c3tl", "--preset", "tiny", "--data", &data, "--out", &run, "--steps",
        "30",
    ]));
    assert!(err.contains("run finished"), "{err}");
    let pred = tmp.path().join("pred.h5ad").display().to_string();
    let (out, _) = run_ok(with(&[
        "predict",
        "--model",
        &run,
        "--data",
        &data,
        "--context",
        "U87MG",
        "--query",
        "MAPK1,SGK1",
        "--k",
        "0",
        "--out",
        &pred,
    ]));
    assert!(out.contains("2 predicted pseudo-bulk profiles"), "{out}");
    let profiles = read_perturbation_data(
        std::path::Path::new(&pred),
        &PerturbationColumns {
            perturbation: "condition".into(),
            control: "control".into(),
            context: Some("cell_type".into()),
            value: "treatment_value".into(),
            layer: None,
        },
        &ReadOptions::matrix_only(),
    );
    // Two rows, one per query (read back without a control label, which a profile file does not have).
    match profiles {
        Ok(p) => assert_eq!(p.n_cells(), 2),
        Err(e) => assert!(e.to_string().contains("control"), "{e}"),
    }
    let refs = with(&["bench", "--model", &run, "--data", &data]);
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let (code, _, err) = cellshift(&refs);
    assert_ne!(code, 0);
    assert!(
        err.contains("pseudo-bulk") && err.contains("bench c3tl"),
        "{err}"
    );
    let (out, _) = run_ok(with(&[
        "bench",
        "sweep",
        "--method",
        "c3tl",
        "--data",
        &data,
        "--contexts",
        "A172,T98G,U87MG",
        "--preset",
        "tiny",
        "--model-option",
        "max_epochs=20",
        "--baselines",
        "closest_context",
    ]));
    assert!(
        out.contains("| c3tl |") && out.contains("not applicable"),
        "{out}"
    );
}
