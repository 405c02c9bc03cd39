//! The shipped linear-SCM checkpoint still does what BENCHMARKS.md reports, on SCMs it never saw: it reads
//! the query treatment (the intervened gene is predicted at its intervention value, a hard-intervention
//! fact) and predicts mean shifts much closer to the truth than the control cells do.

use std::path::PathBuf;

use cellshift_models::flow::OdeSolver;
use cellshift_models::sources::task_from_single_context;
use cellshift_models::{MapPfn, SamplerConfig};
use cellshift_prior::{LinearScmConfig, LinearScmPrior};
use ndarray::Axis;
use rand::SeedableRng;
use rand_pcg::Pcg64;

fn checkpoint() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../checkpoints/mappfn-linear-small")
}

#[test]
fn shipped_linear_scm_checkpoint_predicts_held_out_interventions() {
    tch::set_num_threads(1);
    let model = MapPfn::load(&checkpoint())
        .expect("the shipped checkpoint loads")
        .with_sampler(SamplerConfig {
            solver: OdeSolver::Rk4 { steps: 5 },
            guidance: 2.0,
            ..SamplerConfig::default()
        })
        .expect("sampler");
    let (mut gene_errors, mut model_sq, mut control_sq) = (Vec::new(), 0.0f64, 0.0f64);
    for seed in 0..6u64 {
        // Context seeds far from the training seed space (training uses 63-bit hashed seeds).
        let data =
            LinearScmPrior::sample_dataset(&LinearScmConfig::default(), 7_000 + seed).expect("SCM");
        let task =
            task_from_single_context(&data, 8, 64, &mut Pcg64::seed_from_u64(seed)).expect("task");
        let q = task.query_treatment();
        let gene = q.iter().position(|&v| v != 0.0).expect("one-hot query");
        let pred = model.sample(&task, 64, seed).expect("sample").cells;
        let pred_mean = pred.mean_axis(Axis(0)).expect("mean");
        let true_mean = task
            .target
            .as_ref()
            .expect("target")
            .mean_axis(Axis(0))
            .expect("mean");
        let control_mean = task.observational.mean_axis(Axis(0)).expect("mean");
        gene_errors.push((pred_mean[gene] - q[gene]).abs());
        model_sq += (&pred_mean - &true_mean).mapv(|v| f64::from(v * v)).sum();
        control_sq += (&control_mean - &true_mean)
            .mapv(|v| f64::from(v * v))
            .sum();
    }
    let worst = gene_errors.iter().copied().fold(0.0f32, f32::max);
    assert!(
        worst < 0.25,
        "intervened-gene means off by up to {worst} (errors {gene_errors:?})"
    );
    assert!(
        model_sq < 0.5 * control_sq,
        "mean-shift error {model_sq:.3} is not well below the control's {control_sq:.3}"
    );
}
