//! Times `fit` and `predict` of every baseline on synthetic data sets of a few sizes.
//!
//! Run: `cargo run --release -p cellshift-baselines --example baseline_timing`
//!
//! Each data set has C contexts, P single-gene knock-outs per context (targets are measured genes, so
//! `linear` applies), `cells` cells per condition and d genes; values are a context offset plus a sparse
//! perturbation effect plus uniform noise. Training = all conditions except the first 10% of the
//! knock-outs in context 0, which are the queries (one task each, K = 0, n = 200 predicted cells).

use std::time::Instant;

use cellshift_baselines::{baseline_by_name, BASELINE_NAMES};
use cellshift_data::FitContext;
use cellshift_data::{CellAnnotations, PerturbationData, Task};
use ndarray::{Array2, Array3};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

struct Size {
    contexts: usize,
    perturbations: usize,
    cells: usize,
    genes: usize,
}

fn synthetic(size: &Size, seed: u64) -> PerturbationData {
    let mut rng = Pcg64::seed_from_u64(seed);
    let d = size.genes;
    let genes: Vec<String> = (0..d).map(|g| format!("g{g}")).collect();
    let effects: Vec<Vec<f32>> = (0..size.perturbations)
        .map(|_| {
            (0..d)
                .map(|_| {
                    if rng.gen_bool(0.1) {
                        rng.gen_range(-1.0..1.0)
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    let n_total = size.contexts * (size.perturbations + 1) * size.cells;
    let mut x = Vec::with_capacity(n_total * d);
    let (mut contexts, mut labels) = (Vec::with_capacity(n_total), Vec::with_capacity(n_total));
    for c in 0..size.contexts {
        let offset: Vec<f32> = (0..d).map(|_| rng.gen_range(0.0..2.0)).collect();
        for p in 0..=size.perturbations {
            for _ in 0..size.cells {
                for g in 0..d {
                    let effect = if p == 0 {
                        0.0
                    } else {
                        effects[p - 1][g] * (1.0 + 0.2 * c as f32)
                    };
                    x.push(offset[g] + effect + rng.gen_range(-0.5..0.5));
                }
                contexts.push(format!("ctx{c}"));
                labels.push(if p == 0 {
                    "control".to_string()
                } else {
                    format!("g{}", (p - 1) % d)
                });
            }
        }
    }
    let x = Array2::from_shape_vec((n_total, d), x).expect("shape");
    PerturbationData::new(
        genes,
        x,
        CellAnnotations {
            contexts,
            treatment_labels: labels,
            ..Default::default()
        },
        "control",
    )
    .expect("valid synthetic data")
}

fn main() {
    let sizes = [
        Size {
            contexts: 1,
            perturbations: 25,
            cells: 200,
            genes: 50,
        },
        Size {
            contexts: 4,
            perturbations: 200,
            cells: 100,
            genes: 200,
        },
        Size {
            contexts: 2,
            perturbations: 400,
            cells: 20,
            genes: 500,
        },
    ];
    println!("| C | P | cells | d | baseline | fit (ms) | predict per query (ms) | queries |");
    println!("|---|---|---|---|---|---|---|---|");
    for size in &sizes {
        assert!(size.perturbations <= size.genes, "one knock-out per gene");
        let data = synthetic(size, 7);
        let control = data.treatment_index("control").expect("control");
        let n_queries = (size.perturbations / 10).max(1);
        let is_query = |i: usize| {
            let c = &data.conditions()[i];
            c.context == 0 && c.treatment != control && c.treatment <= n_queries
        };
        let train: Vec<usize> = (0..data.conditions().len())
            .filter(|&i| !is_query(i))
            .collect();
        let observational = data.cells_of(data.condition(0, control).expect("control of ctx0"));
        let tasks: Vec<Task> = (0..data.conditions().len())
            .filter(|&i| is_query(i))
            .map(|i| {
                let cond = &data.conditions()[i];
                Task {
                    context: data.contexts[0].clone(),
                    observational: observational.clone(),
                    context_cells: Array3::zeros((0, 0, size.genes)),
                    context_index: 0,
                    genes: std::sync::Arc::new(data.genes.clone()),
                    experiments: vec![],
                    query: cellshift_data::TaskTreatment::from_label(
                        &data.treatments[cond.treatment].label("control"),
                        "control",
                        cond.value,
                    ),
                    target: Some(data.cells_of(cond)),
                }
            })
            .collect();
        for &name in BASELINE_NAMES {
            let mut baseline = baseline_by_name(name).expect("known name");
            let start = Instant::now();
            baseline
                .fit(&data, &train, &mut FitContext::default())
                .expect("fit");
            let fit_ms = start.elapsed().as_secs_f64() * 1e3;
            let start = Instant::now();
            let mut answered = 0;
            for (q, task) in tasks.iter().enumerate() {
                if baseline.predict(task, 200, q as u64).is_ok() {
                    answered += 1;
                }
            }
            let predict_ms = start.elapsed().as_secs_f64() * 1e3 / tasks.len() as f64;
            println!(
                "| {} | {} | {} | {} | {name} | {fit_ms:.2} | {predict_ms:.3} | {answered}/{} |",
                size.contexts,
                size.perturbations,
                size.cells,
                size.genes,
                tasks.len()
            );
        }
    }
}
