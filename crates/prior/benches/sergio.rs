//! Timing of the SERGIO prior (run: `cargo bench -p cellshift-prior --bench sergio`).
//!
//! Measures, for a fixed 50-gene random GRN (reference configuration, technical noise on):
//! * engine: control + 50 knock-outs (simulation + technical noise), 1 thread and the rayon pool;
//! * full prior: `SergioPrior::sample_dataset` (GRN generation, 51 conditions, noise, data set), 1 thread
//!   and the rayon pool;
//! * the linear-SCM prior (one SCM, 21 × 500 samples).
//!
//! The GRN is also written to `$BENCH_GRN_JSON` (default `$TMPDIR/cellshift_bench_grn.json`) so that
//! `ref_sergio_timing.py` can time sergio-rs on the same network.

use std::time::Instant;

use cellshift_prior::sergio::knockout::simulate_conditions;
use cellshift_prior::{LinearScmConfig, LinearScmPrior, SergioPrior, SergioPriorConfig};

/// CPU time (s) consumed so far by all threads of this process, from `/proc/self/task/*/schedstat`
/// (first field = nanoseconds on CPU); NaN where unavailable. Robust to other load on the machine,
/// unlike wall time.
fn process_cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    let mut ns = 0u64;
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
            ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    ns as f64 * 1e-9
}

/// Runs `f` once to warm up, then `reps` times; returns (median wall, min wall, median CPU) seconds.
fn measure(reps: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    f();
    let mut wall = Vec::with_capacity(reps);
    let mut cpu = Vec::with_capacity(reps);
    for _ in 0..reps {
        let (start, c0) = (Instant::now(), process_cpu_seconds());
        f();
        wall.push(start.elapsed().as_secs_f64());
        cpu.push(process_cpu_seconds() - c0);
    }
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    (wall[reps / 2], wall[0], cpu[reps / 2])
}

fn report(what: &str, mode: &str, (med, min, cpu): (f64, f64, f64)) {
    println!("{what:<58} {mode:<9} wall median {med:.4} s  min {min:.4} s  CPU median {cpu:.4} s");
}

fn main() {
    let reps: usize = std::env::var("BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let threads = rayon::current_num_threads();
    let cfg = SergioPriorConfig::default();
    // A GRN with a typical edge count (the reference timing used 85 edges).
    let sampled = (0..200)
        .map(|s| SergioPrior::sample_grn(&cfg, s, "bench_grn").unwrap())
        .find(|s| (80..=90).contains(&s.spec.edges.len()))
        .expect("a GRN with 80–90 edges among 200 seeds");
    let spec = &sampled.spec;
    let path = std::env::var("BENCH_GRN_JSON").unwrap_or_else(|_| {
        std::env::temp_dir()
            .join("cellshift_bench_grn.json")
            .display()
            .to_string()
    });
    if let Some(parent) = std::path::Path::new(&path).parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&spec.to_json()).unwrap(),
    )
    .unwrap();
    println!(
        "GRN: {} genes, {} edges, {} simulated genes; written to {path}; rayon threads: {threads}; reps: {reps}",
        spec.genes.len(),
        spec.edges.len(),
        spec.in_network().iter().filter(|&&b| b).count()
    );
    let kos: Vec<usize> = (0..spec.genes.len()).collect();
    for parallel in [false, true] {
        let m = measure(reps, || {
            let c =
                simulate_conditions(spec, &kos, sampled.sim_seed, parallel, &|_, _| spec.noise_s)
                    .unwrap();
            assert_eq!(c.len(), 51);
        });
        report(
            "engine (control + 50 KOs, 200 cells, technical noise)",
            if parallel { "rayon" } else { "1 thread" },
            m,
        );
    }
    for parallel in [false, true] {
        let c = SergioPriorConfig {
            parallel,
            ..cfg.clone()
        };
        let mut seed = 1000;
        let m = measure(reps, || {
            seed += 1;
            let d = SergioPrior::sample_dataset(&c, seed).unwrap();
            assert!(d.n_cells() >= 200);
        });
        report(
            "prior (GRN generation + 51 conditions + noise + data set)",
            if parallel { "rayon" } else { "1 thread" },
            m,
        );
    }
    let scm = LinearScmConfig::default();
    let mut seed = 0;
    let m = measure(reps, || {
        seed += 1;
        LinearScmPrior::sample_dataset(&scm, seed).unwrap();
    });
    report(
        "linear SCM (d = 20, 21 conditions × 500 samples)",
        "1 thread",
        m,
    );
}
