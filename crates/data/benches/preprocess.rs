//! Preprocessing and task-sampling benchmark on the Papalexi THP-1 subset (19,619 cells × 299 genes):
//! wall time of normalize_total + log1p, seurat_v3 HVG (top 50), the split + t-test + 50-gene panel, the
//! whole MapPFN recipe (`preprocess(PreprocessOptions::mappfn(50))`), pseudo-bulk means, and tasks per
//! second of the sampler (K = 8, n = 200, d = 50). Median of N runs after one warm-up.
//! Compare with `preprocess_python.py` (scanpy, same steps).
//!
//! Run: `cargo bench -p cellshift-data --bench preprocess` (optionally `-- <runs>`; default 7).

use std::path::PathBuf;
use std::time::Instant;

use cellshift_data::h5ad::{read_perturbation_data, PerturbationColumns, ReadOptions};
use cellshift_data::preprocess::{
    highly_variable_genes, log1p, mappfn_panel, normalize_total, preprocess, pseudobulk,
    welch_t_vs_control, HvgOptions, LogBase, NormalizeTarget, PreprocessOptions,
};
use cellshift_data::{SamplerConfig, Split, SplitConfig, SplitRole, TaskSampler};

/// CPU time (user + system) of this process in seconds, from /proc (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // fields after the parenthesised command name: state is field 3, utime 14, stime 15
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Median wall time of `runs` runs after a warm-up, and the mean CPU time per run (the CPU time is less
/// sensitive to other processes competing for the cores; 10 ms resolution).
fn median_seconds(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let cpu0 = cpu_seconds();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    let cpu = (cpu_seconds() - cpu0) / runs as f64;
    times.sort_by(f64::total_cmp);
    (times[runs / 2], cpu)
}

fn report(what: &str, (wall, cpu): (f64, f64)) {
    println!(
        "{what:<38} {:8.1} ms wall  {:8.1} ms CPU",
        1e3 * wall,
        1e3 * cpu
    );
}

fn main() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/papalexi2021/thp1_subset.h5ad");
    if !path.exists() {
        println!("skipped: {} not found", path.display());
        return;
    }
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(7)
        .max(3);
    let cols = PerturbationColumns {
        control: "non-targeting".into(),
        ..PerturbationColumns::default()
    };
    let data = read_perturbation_data(&path, &cols, &ReadOptions::matrix_only()).expect("read");
    println!(
        "data: {} cells × {} genes; runs per measurement: {runs} (median)",
        data.n_cells(),
        data.n_genes()
    );

    if std::env::var("PROFILE_STEPS").is_ok() {
        use cellshift_data::preprocess::{
            cell_totals, check_counts, log1p_matrix, normalize_total_matrix,
        };
        report(
            "  clone data",
            median_seconds(runs, || {
                let _ = data.clone();
            }),
        );
        report(
            "  check_counts",
            median_seconds(runs, || {
                check_counts(&data.x, "x").unwrap();
            }),
        );
        report(
            "  cell_totals",
            median_seconds(runs, || {
                cell_totals(&data.x);
            }),
        );
        report(
            "  ExpressionScale::detect",
            median_seconds(runs, || {
                cellshift_data::ExpressionScale::detect(data.x.stored_values());
            }),
        );
        report(
            "  normalize_total_matrix",
            median_seconds(runs, || {
                normalize_total_matrix(data.x.to_dense().view(), NormalizeTarget::MedianOfTotals)
                    .unwrap();
            }),
        );
        let (nx, _) =
            normalize_total_matrix(data.x.to_dense().view(), NormalizeTarget::MedianOfTotals)
                .unwrap();
        report(
            "  normalize_total (data-level)",
            median_seconds(runs, || {
                normalize_total(&data, NormalizeTarget::MedianOfTotals).unwrap();
            }),
        );
        let (nd, _) = normalize_total(&data, NormalizeTarget::MedianOfTotals).unwrap();
        report(
            "  log1p (data-level)",
            median_seconds(runs, || {
                log1p(&nd, LogBase::Natural).unwrap();
            }),
        );
        report(
            "  ExpressionScale::detect (normalised)",
            median_seconds(runs, || {
                cellshift_data::ExpressionScale::detect(nd.x.stored_values());
            }),
        );
        report(
            "  log1p_matrix",
            median_seconds(runs, || {
                log1p_matrix(nx.view(), LogBase::Natural).unwrap();
            }),
        );
    }
    report(
        "normalize_total + log1p",
        median_seconds(runs, || {
            let (n, _) = normalize_total(&data, NormalizeTarget::MedianOfTotals).unwrap();
            log1p(&n, LogBase::Natural).unwrap();
        }),
    );

    report(
        "seurat_v3 HVG (top 50)",
        median_seconds(runs, || {
            highly_variable_genes(&data, &HvgOptions::seurat_v3(50)).unwrap();
        }),
    );

    let (n, _) = normalize_total(&data, NormalizeTarget::MedianOfTotals).unwrap();
    let logn = log1p(&n, LogBase::Natural).unwrap();
    let all: Vec<usize> = (0..logn.n_cells()).collect();
    report(
        "t-test + gene scores (all groups)",
        median_seconds(runs, || {
            let tt = welch_t_vs_control(&logn, &all).unwrap();
            tt.max_over_groups();
        }),
    );

    report(
        "split + t-test + 50-gene panel",
        median_seconds(runs, || {
            let split = Split::new(&logn, &SplitConfig::default()).unwrap();
            mappfn_panel(&logn, &split, 50).unwrap();
        }),
    );

    report(
        "MapPFN recipe (preprocess, all steps)",
        median_seconds(runs, || {
            preprocess(&data, &PreprocessOptions::mappfn(50)).unwrap();
        }),
    );

    report(
        "pseudo-bulk means (all conditions)",
        median_seconds(runs, || {
            pseudobulk(&logn);
        }),
    );

    let out = preprocess(&data, &PreprocessOptions::mappfn(50)).unwrap();
    let split = out.split.clone().unwrap();
    let sampler = TaskSampler::new(
        &out.data,
        split,
        SamplerConfig {
            k: 8,
            n_cells: 200,
            query_role: SplitRole::Train,
            require_k_available: false,
            ..SamplerConfig::default()
        },
    )
    .unwrap();
    let tasks = 200usize;
    let (t, cpu) = median_seconds(runs, || {
        for i in 0..tasks {
            let task = sampler
                .task(i as u64 / sampler.len() as u64, i % sampler.len())
                .unwrap();
            assert_eq!(task.n_genes(), 50);
        }
    });
    println!(
        "sampler (K ≤ 8, n = 200, d = 50):     {:8.1} µs wall {:8.1} µs CPU per task ({} train queries, K used = {})",
        1e6 * t / tasks as f64,
        1e6 * cpu / tasks as f64,
        sampler.len(),
        sampler.task(0, 0).unwrap().k()
    );
}
