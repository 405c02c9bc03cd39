//! Read benchmark on the Papalexi THP-1 subset (19,619 cells × 299 genes, CSR gzip): wall time of
//! `read_perturbation_data` (the CLI's path: obs + CSR X → dense model) and of `read_h5ad` (sparse X,
//! all metadata), median of N runs after one warm-up read. Compare with `read_h5ad_python.py`.
//!
//! Run: `cargo bench -p cellshift-data --bench read_h5ad` (optionally `-- <runs>`; default 9).

use std::path::PathBuf;
use std::time::Instant;

use cellshift_data::h5ad::{read_h5ad, read_perturbation_data, PerturbationColumns, ReadOptions};

fn median_seconds(runs: usize, mut f: impl FnMut()) -> (f64, Vec<f64>) {
    f(); // warm-up: page cache, library initialisation
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    let all = times.clone();
    times.sort_by(f64::total_cmp);
    (times[runs / 2], all)
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
        .unwrap_or(9)
        .max(5);
    let (major, minor, micro) = hdf5::library_version();
    println!("file: {}", path.display());
    println!(
        "HDF5 library {major}.{minor}.{micro}; runs per measurement: {runs} (median reported)"
    );

    let cols = PerturbationColumns {
        control: "non-targeting".into(),
        ..PerturbationColumns::default()
    };
    let (t, all) = median_seconds(runs, || {
        let d = read_perturbation_data(&path, &cols, &ReadOptions::default()).expect("read");
        assert_eq!(d.n_cells(), 19_619);
    });
    println!(
        "read_perturbation_data (dense f32 model): median {:.1} ms  (runs: {:?} ms)",
        t * 1e3,
        ms(&all)
    );

    let (t, all) = median_seconds(runs, || {
        let a = read_h5ad(&path, &ReadOptions::default()).expect("read");
        assert_eq!(a.n_obs(), 19_619);
    });
    println!(
        "read_h5ad (sparse X, obs, var, uns):       median {:.1} ms  (runs: {:?} ms)",
        t * 1e3,
        ms(&all)
    );

    let cells: Vec<usize> = (0..19_619).step_by(10).collect();
    let opts = ReadOptions {
        cells: Some(cells),
        ..ReadOptions::default()
    };
    let (t, all) = median_seconds(runs, || {
        let d = read_perturbation_data(&path, &cols, &opts).expect("read");
        assert_eq!(d.n_cells(), 1_962);
    });
    println!(
        "read_perturbation_data, every 10th cell:   median {:.1} ms  (runs: {:?} ms)",
        t * 1e3,
        ms(&all)
    );
}

fn ms(v: &[f64]) -> Vec<f64> {
    v.iter().map(|s| (s * 1e4).round() / 10.0).collect()
}
