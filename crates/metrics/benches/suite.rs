//! Timing of the full metric suite on a 50-gene × 200-cell × 20-perturbation case, on a 2-thread rayon
//! pool (the reference Python oracle needs ~77 s for the same size).
//!
//! Run: `cargo bench -p cellshift-metrics --bench suite` (release). The case is generated
//! deterministically (seeded negative-binomial counts with dropout, normalised to the median total and
//! log1p-transformed, knock-out of gene i plus 6 random shifted genes per perturbation, like the
//! oracle's `make_cases.py big_50g_200c_20p`). Set `CELLSHIFT_BENCH_NPZ=path.npz` to time a case file
//! instead (e.g. the one written by `make_cases.py --only big_50g_200c_20p --no-run`).
//! Optional: `CELLSHIFT_BENCH_RUNS` (default 7), `CELLSHIFT_BENCH_THREADS` (default 2),
//! `CELLSHIFT_BENCH_CONFIG` (index of a single configuration to run), `CELLSHIFT_BENCH_SHAPE=genes,cells,perts`
//! (size of the synthetic case, default `50,200,20`; e.g. `2000,166,60` for a leaderboard-sized slice —
//! perts ≤ genes).

use cellshift_metrics::{evaluate, EvalCase, EvalOptions, MetricGroups};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Gamma, Normal, Poisson};
use rand_pcg::Pcg64;
use std::time::Instant;

fn nb_counts(rng: &mut Pcg64, mu: &[f64], n: usize, disp: f64, dropout: f64) -> Array2<f64> {
    Array2::from_shape_fn((n, mu.len()), |(_, j)| {
        let lam = if mu[j] > 0.0 {
            Gamma::new(disp, mu[j] / disp)
                .map(|g| g.sample(rng))
                .unwrap_or(0.0)
        } else {
            0.0
        };
        let c = if lam > 0.0 {
            Poisson::new(lam).map(|p| p.sample(rng)).unwrap_or(0.0)
        } else {
            0.0
        };
        if rng.gen::<f64>() < dropout {
            0.0
        } else {
            c
        }
    })
}

fn lognorm(blocks: &mut [Array2<f64>]) {
    let mut totals: Vec<f64> = blocks
        .iter()
        .flat_map(|b| b.rows().into_iter().map(|r| r.sum()).collect::<Vec<_>>())
        .filter(|&t| t > 0.0)
        .collect();
    totals.sort_by(f64::total_cmp);
    let target = if totals.is_empty() {
        1.0
    } else if totals.len() % 2 == 1 {
        totals[totals.len() / 2]
    } else {
        0.5 * (totals[totals.len() / 2 - 1] + totals[totals.len() / 2])
    };
    for b in blocks.iter_mut() {
        for mut r in b.rows_mut() {
            let t = r.sum().max(1e-12);
            r.mapv_inplace(|v| (v / t * target).ln_1p());
        }
    }
}

/// Deterministic synthetic case (seed 1005), same recipe and sizes as the oracle's big case.
fn synthetic_case(d: usize, n: usize, p: usize) -> EvalCase {
    let mut rng = Pcg64::seed_from_u64(1005);
    let normal = Normal::<f64>::new(1.0, 1.0).unwrap();
    let mu: Vec<f64> = (0..d).map(|_| normal.sample(&mut rng).exp()).collect();
    let mut blocks = vec![nb_counts(&mut rng, &mu, n, 2.0, 0.1)];
    let mut preds = Vec::new();
    let shift = Normal::<f64>::new(0.0, 0.8).unwrap();
    for i in 0..p {
        let mut m = mu.clone();
        m[i] = 0.0;
        let mut genes: Vec<usize> = (0..d).filter(|&g| g != i).collect();
        for k in 0..6 {
            let j = rng.gen_range(k..genes.len());
            genes.swap(k, j);
        }
        let fac: Vec<f64> = (0..6).map(|_| shift.sample(&mut rng).exp()).collect();
        for k in 0..6 {
            m[genes[k]] *= fac[k];
        }
        blocks.push(nb_counts(&mut rng, &m, n, 2.0, 0.1));
        let mut mp = mu.clone();
        mp[i] = 0.1 * mu[i];
        for k in 0..4 {
            mp[genes[k]] *= fac[k].powf(0.7);
        }
        preds.push(nb_counts(&mut rng, &mp, n, 2.0, 0.1));
    }
    blocks.extend(preds);
    lognorm(&mut blocks);
    let obs = blocks[0].clone();
    let trues = blocks[1..1 + p].to_vec();
    let preds = blocks[1 + p..].to_vec();
    EvalCase::new(
        obs,
        trues,
        preds,
        Some((0..p).map(|i| format!("KO_g{i}")).collect()),
        Some((0..p as i64).collect()),
    )
    .expect("valid synthetic case")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("CELLSHIFT_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
        .max(1);
    let threads: usize = std::env::var("CELLSHIFT_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2)
        .max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let (label, case) = match std::env::var("CELLSHIFT_BENCH_NPZ") {
        Ok(path) => (
            path.clone(),
            EvalCase::read_npz(&path).unwrap_or_else(|e| panic!("{e}")),
        ),
        Err(_) => {
            let shape: Vec<usize> = std::env::var("CELLSHIFT_BENCH_SHAPE")
                .unwrap_or_else(|_| "50,200,20".into())
                .split(',')
                .map(|t| {
                    t.trim()
                        .parse()
                        .expect("CELLSHIFT_BENCH_SHAPE=genes,cells,perts")
                })
                .collect();
            assert!(
                shape.len() == 3 && shape[2] <= shape[0],
                "CELLSHIFT_BENCH_SHAPE=genes,cells,perts with perts ≤ genes"
            );
            let t = Instant::now();
            let case = synthetic_case(shape[0], shape[1], shape[2]);
            eprintln!(
                "synthetic case generated in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            ("synthetic seed 1005".to_string(), case)
        }
    };
    println!(
        "case: {label}: {} genes × {} control cells, {} perturbations; {threads} threads; median of {runs} runs",
        case.n_genes(),
        case.obs.nrows(),
        case.n_perts()
    );
    let configs: Vec<(&str, MetricGroups, EvalOptions)> = vec![
        (
            "MapPFN + cell-eval (w2 f32)",
            MetricGroups::parse("mappfn,celleval,de").unwrap(),
            EvalOptions::default(),
        ),
        (
            "all groups (w2 f32)",
            MetricGroups::all(),
            EvalOptions::default(),
        ),
        (
            "all groups + w2_f64",
            MetricGroups::all(),
            EvalOptions {
                w2_f64: true,
                ..Default::default()
            },
        ),
        (
            "MapPFN only (w2 f32)",
            MetricGroups::parse("mappfn").unwrap(),
            EvalOptions::default(),
        ),
        (
            "cell-eval + DE only",
            MetricGroups::parse("celleval,de").unwrap(),
            EvalOptions::default(),
        ),
    ];
    let only: Option<usize> = std::env::var("CELLSHIFT_BENCH_CONFIG")
        .ok()
        .and_then(|s| s.parse().ok());
    for (k, (name, groups, opts)) in configs.into_iter().enumerate() {
        if only.is_some_and(|o| o != k) {
            continue;
        }
        let mut times = Vec::with_capacity(runs);
        let mut stage = Vec::new();
        let mut last = None;
        for _ in 0..runs {
            let t = Instant::now();
            let r = pool
                .install(|| evaluate(&case, &groups, &opts))
                .expect("evaluation");
            times.push(t.elapsed().as_secs_f64());
            stage.push(r.timing.get("sinkhorn_s").copied().unwrap_or(0.0));
            last = Some(r);
        }
        let r = last.expect("at least one run");
        let w2 = r.mean.get("w2").copied().unwrap_or(f64::NAN);
        let iters: i64 = r
            .per_perturbation
            .iter()
            .filter_map(|p| match p.values.get("w2_n_iters") {
                Some(cellshift_metrics::MetricValue::IntList(l)) => l.first().copied(),
                _ => None,
            })
            .sum();
        println!(
            "{name:<30} median {:>8.3} s  (min {:.3}, max {:.3}; sinkhorn stage median {:.3} s)  mean w2 {w2:.6}  Σ xy iters {iters}",
            median(times.clone()),
            times.iter().cloned().fold(f64::INFINITY, f64::min),
            times.iter().cloned().fold(0.0, f64::max),
            median(stage)
        );
    }
}
