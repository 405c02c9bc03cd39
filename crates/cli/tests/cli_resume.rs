//! Every trainable method resumes exactly: a run stopped at a checkpoint (or killed with SIGKILL) and then
//! repeated says it resumes and from which micro-batch, and ends with the same weights, EMA and optimiser
//! state, byte for byte, as the run that was never interrupted. A restart from scratch, or a resume that
//! lost part of the state, fails these tests. `--checkpoint-every` is honoured by every method.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{ok, simulate_linear};

/// The latest checkpoint folder of a run.
fn latest(run: &Path) -> PathBuf {
    let name = std::fs::read_to_string(run.join("LATEST")).expect("LATEST");
    run.join(name.trim())
}

/// The tensor file (weights, EMA, AdamW moments, best weights) of a run's latest checkpoint.
fn tensors(run: &Path) -> Vec<u8> {
    std::fs::read(latest(run).join("checkpoint.safetensors")).expect("tensor file")
}

fn sidecar(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(latest(run).join("checkpoint.json")).unwrap())
        .unwrap()
}

/// A small two-context screen every method trains on.
fn screen(dir: &Path) -> String {
    let data = dir.join("screen.h5ad");
    simulate_linear(&data, "2", "5");
    data.display().to_string()
}

/// The training command of `method` into `run` (8 micro-batches, a checkpoint every 2).
fn train_args(method: &str, data: &str, run: &str) -> Vec<String> {
    let base: Vec<&str> = if method == "mappfn" {
        vec![
            "pretrain", "--prior", "linear", "--config", "tiny", "--genes", "6", "--k", "2",
            "--cells", "8",
        ]
    } else {
        vec![
            "train", "--method", method, "--preset", "tiny", "--data", data,
        ]
    };
    base.into_iter()
        .chain([
            "--steps",
            "8",
            "--checkpoint-every",
            "2",
            "--seed",
            "3",
            "--threads",
            "1",
            "--out",
            run,
        ])
        .map(str::to_string)
        .collect()
}

fn run_ok(args: &[String]) -> String {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&refs).1
}

#[test]
fn every_method_resumes_bit_identically_from_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = screen(tmp.path());
    for method in ["mappfn", "celltarnet", "scdfm", "c3tl"] {
        let whole = tmp.path().join(format!("{method}-whole"));
        let parts = tmp.path().join(format!("{method}-parts"));
        let whole_s = whole.display().to_string();
        let parts_s = parts.display().to_string();
        run_ok(&train_args(method, &data, &whole_s));
        assert_eq!(
            sidecar(&whole)["train_config"]["checkpoint_every"],
            2,
            "{method}: --checkpoint-every not honoured"
        );

        let mut first = train_args(method, &data, &parts_s);
        first.extend(["--stop-at".to_string(), "4".to_string()]);
        let err = run_ok(&first);
        assert!(
            err.contains("stopped at micro-batch 4 of 8"),
            "{method}: {err}"
        );
        assert!(
            !err.contains("resuming"),
            "{method}: a new run does not resume: {err}"
        );
        assert_ne!(
            tensors(&parts),
            tensors(&whole),
            "{method}: half a run must differ from the whole run"
        );
        let err = run_ok(&train_args(method, &data, &parts_s));
        assert!(
            err.contains("resuming the run from its checkpoint at micro-batch 4 of 8"),
            "{method}: the command must say it resumed: {err}"
        );
        assert!(
            err.contains("stopped at micro-batch 8 of 8"),
            "{method}: {err}"
        );
        assert!(
            tensors(&parts) == tensors(&whole),
            "{method}: the resumed run differs from the uninterrupted one"
        );
        assert_eq!(
            sidecar(&parts)["counters"],
            sidecar(&whole)["counters"],
            "{method}"
        );
    }
}

#[test]
fn a_killed_run_resumes_from_its_last_checkpoint_and_ends_as_the_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = screen(tmp.path());
    let method = "celltarnet";
    let steps = "400";
    let args = |run: &str| -> Vec<String> {
        let mut a = train_args(method, &data, run);
        let i = a.iter().position(|x| x == "8").unwrap();
        a[i] = steps.to_string();
        a
    };
    let whole = tmp.path().join("whole");
    run_ok(&args(&whole.display().to_string()));

    let killed = tmp.path().join("killed");
    let killed_s = killed.display().to_string();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cellshift"))
        .args(args(&killed_s))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once a few checkpoints exist, mid-run.
    let started = Instant::now();
    loop {
        let step = std::fs::read_to_string(killed.join("LATEST"))
            .ok()
            .and_then(|n| n.trim().trim_start_matches("ckpt-").parse::<u64>().ok())
            .unwrap_or(0);
        if step >= 20 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL: no handler runs
    child.wait().unwrap();
    let at = sidecar(&killed)["counters"]["micro_batches"]
        .as_u64()
        .unwrap();
    assert!(
        at < 400,
        "the run was killed before its end (last checkpoint {at})"
    );

    let err = run_ok(&args(&killed_s));
    assert!(
        err.contains(&format!(
            "resuming the run from its checkpoint at micro-batch {at} of 400"
        )),
        "{err}"
    );
    assert!(
        tensors(&killed) == tensors(&whole),
        "the resumed run differs from the uninterrupted one"
    );
}
