//! Nothing lost, nothing silent: outputs that would overwrite an input are refused before any work,
//! unwritable outputs are reported before a long run, an interrupted command leaves no partial file, the
//! usual context-column names of real screens are recognised, and long steps print progress in logs.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cellshift_data::h5ad::{write_perturbation_data, PerturbationColumns, WriteOptions};
use cellshift_data::{CellAnnotations, PerturbationData};
use common::{cellshift, cellshift_env, simulate_linear};
use ndarray::Array2;

/// A small count screen: 2 cell types × (control, KO of g0, KO of g1), 30 cells each, 8 genes.
fn screen() -> PerturbationData {
    screen_of(8)
}

/// [`screen`] with `genes` genes.
fn screen_of(genes: usize) -> PerturbationData {
    let (mut labels, mut contexts) = (Vec::new(), Vec::new());
    for context in ["typeA", "typeB"] {
        for label in ["control", "g0", "g1"] {
            for _ in 0..30 {
                labels.push(label.to_string());
                contexts.push(context.to_string());
            }
        }
    }
    let x = Array2::from_shape_fn((labels.len(), genes), |(i, g)| {
        ((i * 7 + g * 3) % 11) as f32
    });
    PerturbationData::new(
        (0..genes).map(|g| format!("g{g}")).collect(),
        x,
        CellAnnotations {
            treatment_labels: labels,
            contexts,
            ..CellAnnotations::default()
        },
        "control",
    )
    .unwrap()
}

/// Writes [`screen`] to `dir/name` with its contexts in the `obs` column `context_column`.
fn write_screen(dir: &Path, name: &str, context_column: &str) -> PathBuf {
    let path = dir.join(name);
    let columns = PerturbationColumns {
        context: Some(context_column.to_string()),
        ..PerturbationColumns::default()
    };
    write_perturbation_data(&path, &screen(), &columns, &WriteOptions::default()).unwrap();
    path
}

fn assert_refused(args: &[&str], needle: &str) {
    let (code, _, stderr) = cellshift(args);
    assert_eq!(code, 1, "{args:?} must fail; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains(needle), "`{needle}` missing from: {stderr}");
}

#[test]
fn an_output_on_an_input_is_refused_and_the_input_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_screen(dir.path(), "screen.h5ad", "context");
    let before = std::fs::read(&input).unwrap();
    let s = input.to_str().unwrap();
    // The same path, a relative spelling of it, and a hard link all name the input.
    let dotted = dir.path().join(".").join("screen.h5ad");
    let hard = dir.path().join("link.h5ad");
    std::fs::hard_link(&input, &hard).unwrap();
    for out in [s, dotted.to_str().unwrap(), hard.to_str().unwrap()] {
        assert_refused(
            &["predict", "--data", s, "--query", "g0", "--out", out],
            "same file as the input",
        );
        assert_refused(&["preprocess", s, "--out", out], "same file as the input");
        assert_refused(
            &["evaluate", "--pred", s, "--real", s, "--json", out],
            "same file as the input",
        );
        assert_refused(
            &["evaluate", "--pred", s, "--real", s, "--csv", out],
            "same file as the input",
        );
    }
    assert_refused(
        &["train", "--method", "c3tl", "--data", s, "--out", s],
        "same file as the input",
    );
    assert_eq!(std::fs::read(&input).unwrap(), before, "the input changed");
}

#[test]
fn an_unwritable_output_fails_before_a_long_run() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let run = blocker.join("run");
    let started = Instant::now();
    // 100,000 pre-training steps would take hours: the error must come first.
    assert_refused(
        &[
            "pretrain",
            "--prior",
            "linear",
            "--config",
            "tiny",
            "--steps",
            "100000",
            "--out",
            run.to_str().unwrap(),
        ],
        "cannot create the output folder",
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the check came late"
    );
    let missing = dir.path().join("missing").join("out.h5ad");
    assert_refused(
        &[
            "simulate",
            "--prior",
            "linear",
            "--out",
            missing.to_str().unwrap(),
        ],
        "does not exist",
    );
    // 200,000 cells per condition of 200 genes (32 GB dense): refused at once with the size and the fix,
    // not aborted by a failed allocation.
    let big = dir.path().join("big.h5ad");
    assert_refused(
        &[
            "simulate",
            "--prior",
            "linear",
            "--genes",
            "200",
            "--cells",
            "200000",
            "--out",
            big.to_str().unwrap(),
        ],
        "lower --cells",
    );
}

#[test]
fn the_usual_context_columns_of_real_screens_are_recognised_and_named() {
    let dir = tempfile::tempdir().unwrap();
    for column in ["cell_type", "celltype", "cell_line", "context"] {
        let path = write_screen(dir.path(), &format!("{column}.h5ad"), column);
        let (code, out, err) = cellshift(&["inspect", path.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        let line = out
            .lines()
            .find(|l| l.starts_with("context column"))
            .unwrap_or_else(|| panic!("no context column line in {out}"));
        assert!(
            line.contains(column) && line.contains("detected"),
            "{column}: {line}"
        );
        assert!(out.contains("contexts          2 (typeA, typeB)"), "{out}");
    }
    // An unknown name is not guessed: one context, and the line says how to name the column.
    let path = write_screen(dir.path(), "donor.h5ad", "donor");
    let (code, out, _) = cellshift(&["inspect", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("--context-column"), "{out}");
    assert!(out.contains("contexts          1"), "{out}");
    let (code, out, _) = cellshift(&[
        "inspect",
        path.to_str().unwrap(),
        "--context-column",
        "donor",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("donor (given with --context-column)"), "{out}");
}

#[test]
fn an_interrupted_write_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.h5ad");
    // A simulation large enough to still be running when the signal arrives.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cellshift"))
        .args([
            "simulate",
            "--prior",
            "linear",
            "--genes",
            "60",
            "--cells",
            "15000",
            "--out",
            out.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the partial output exists, then interrupt.
    let started = Instant::now();
    let partial = loop {
        let found = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().contains(".partial-"));
        if let Some(p) = found {
            break Some(p);
        }
        if started.elapsed() > Duration::from_secs(60) || child.try_wait().unwrap().is_some() {
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let Some(partial) = partial else {
        let _ = child.kill();
        panic!("the simulation never started writing its output");
    };
    let pid = child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!partial.exists(), "{} was left behind", partial.display());
    assert!(!out.exists());
}

#[test]
fn progress_is_printed_as_lines_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_screen(dir.path(), "screen.h5ad", "cell_type");
    let out = dir.path().join("out.h5ad");
    let (code, _, err) = cellshift_env(
        &[
            "preprocess",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[("CELLSHIFT_PROGRESS_SECS", "0.001")],
    );
    assert_eq!(code, 0, "{err}");
    let stages = ["reading input: ", "preprocessing: ", "writing output: "];
    assert!(
        err.lines().any(|l| stages.iter().any(|s| l.starts_with(s))),
        "no progress line in: {err}"
    );
    assert!(err.contains("done in"), "{err}");
    // At the default interval (30 s) a step this short prints nothing.
    let (code, _, err) = cellshift(&[
        "preprocess",
        input.to_str().unwrap(),
        "--out",
        dir.path().join("again.h5ad").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !err.lines().any(|l| stages.iter().any(|s| l.starts_with(s))),
        "a short step must stay quiet: {err}"
    );
}

/// [`screen`] with every value mapped by `f`, written to `dir/name`.
fn write_mapped(dir: &Path, name: &str, genes: usize, f: impl Fn(f32) -> f32) -> PathBuf {
    let mut data = screen_of(genes);
    data.x.dense_mut().mapv_inplace(f);
    data.scale = cellshift_data::ExpressionScale::detect(data.x.stored_values());
    let path = dir.join(name);
    write_perturbation_data(
        &path,
        &data,
        &PerturbationColumns {
            context: Some("cell_type".into()),
            ..PerturbationColumns::default()
        },
        &WriteOptions::default(),
    )
    .unwrap();
    path
}

#[test]
fn raw_counts_are_not_scored_against_log_values_without_a_word() {
    let dir = tempfile::tempdir().unwrap();
    let raw = write_mapped(dir.path(), "raw.h5ad", 8, |v| (v * 20.0).round());
    let log = write_mapped(dir.path(), "log.h5ad", 8, |v| {
        (v * 20.0).round().ln_1p() + 0.01
    });
    let (raw_s, log_s) = (raw.to_str().unwrap(), log.to_str().unwrap());
    let args = [
        "evaluate",
        "--pred",
        log_s,
        "--real",
        raw_s,
        "--context",
        "typeA",
        "--metrics",
        "mappfn",
    ];
    assert_refused(&args, "--allow-scale-mismatch");
    let mut allowed = args.to_vec();
    allowed.push("--allow-scale-mismatch");
    let (code, _, err) = cellshift(&allowed);
    assert_eq!(code, 0, "{err}");
    // The same scale on both sides is scored as before.
    let (code, _, err) = cellshift(&[
        "evaluate",
        "--pred",
        log_s,
        "--real",
        log_s,
        "--context",
        "typeA",
        "--metrics",
        "mappfn",
    ]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn negative_values_are_refused_by_a_model_that_expects_counts_or_log_values() {
    let dir = tempfile::tempdir().unwrap();
    // Centred values: what a scaled AnnData (sc.pp.scale) holds; 50 genes, as the bundled model.
    let scaled = write_mapped(dir.path(), "scaled.h5ad", 50, |v| v - 5.0 + 0.25);
    let out = dir.path().join("pred.h5ad");
    assert_refused(
        &[
            "predict",
            "--data",
            scaled.to_str().unwrap(),
            "--context",
            "typeA",
            "--query",
            "g0",
            "--k",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
        "scaled or centred data",
    );
    assert!(!out.exists());
}

#[test]
fn a_run_trained_on_other_data_is_refused_and_restart_starts_it_over() {
    let dir = tempfile::tempdir().unwrap();
    let simulate = |name: &str, seed: &str| {
        let path = dir.path().join(name);
        simulate_linear(&path, "2", seed);
        path
    };
    let first = simulate("first.h5ad", "5");
    let second = simulate("second.h5ad", "6");
    let run = dir.path().join("run");
    let train = |data: &Path, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--method",
            "c3tl",
            "--preset",
            "tiny",
            "--data",
            data.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--steps",
            "3",
            "--threads",
            "1",
        ];
        args.extend_from_slice(extra);
        cellshift(&args)
    };
    let (code, _, err) = train(&first, &[]);
    assert_eq!(code, 0, "{err}");
    // The same data again: the finished run is kept (nothing to train).
    let (code, _, err) = train(&first, &[]);
    assert_eq!(code, 0, "{err}");
    // Other data into the same run: refused, naming the way out.
    let (code, _, err) = train(&second, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("trained on other data") && err.contains("--restart"),
        "{err}"
    );
    // Other settings: refused too.
    let (code, _, err) = train(&first, &["--lr", "0.5"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--restart"), "{err}");
    // --restart starts the run over on the new data.
    let (code, _, err) = train(&second, &["--restart"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("--restart: removed"), "{err}");
    let (code, _, err) = train(&second, &[]);
    assert_eq!(code, 0, "{err}");
}
