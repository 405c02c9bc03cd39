//! End-to-end tests of MapPFN: parameter count, shapes, condition dropout, training, checkpoints,
//! exact resumption and a learning check on Gaussian mean-shift tasks. Tiny configurations only.

use std::fs;
use std::path::Path;

use cellshift_data::{Predictor, Task, TaskTreatment};
use cellshift_models::flow::OdeSolver;
use cellshift_models::mappfn::{
    finetune, pretrain, MapPfn, MapPfnConfig, MapPfnNet, SamplerConfig, WeightSet,
};
use cellshift_models::train::checkpoint;
use cellshift_models::train::trainer::{named_variables, Trainable, Trainer};
use cellshift_models::{
    Budget, GaussianShiftSource, ModelError, Preprocessing, TaskSource, TrainConfig,
};
use ndarray::{Array2, Array3};
use tch::{Device, Kind, Tensor};

/// libtorch's intra-op pool busy-waits; with the test harness running tests in parallel on few cores,
/// one intra-op thread per test avoids oversubscription (several times faster on 2 cores).
fn single_thread() {
    tch::set_num_threads(1);
}

fn tensors_equal(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((na, ta), (nb, tb))| na == nb && ta.equal(tb))
}

#[test]
fn paper_configuration_has_the_published_parameter_count() {
    single_thread();
    let net = MapPfnNet::new(MapPfnConfig::paper(50), 0, Device::Cpu).expect("paper model");
    assert_eq!(
        net.parameter_count(),
        25_968_194,
        "spec §2.9 inventory at d = 50"
    );
    let scm = MapPfnNet::new(MapPfnConfig::paper(20), 0, Device::Cpu).expect("paper model, d = 20");
    assert_eq!(
        scm.parameter_count(),
        25_937_204,
        "spec §2.9 inventory at d = 20"
    );
    let text =
        MapPfnNet::new(MapPfnConfig::paper_text(50), 0, Device::Cpu).expect("paper-text model");
    // The paper text's MLP ×2 removes 3 streams × 8 blocks × (2·256·512 + 512 − 2·256·1024 − 1024 + 256 − 256).
    assert_eq!(
        text.parameter_count(),
        25_968_194 - 24 * (525_568 - 262_912)
    );
}

/// A task with explicit set sizes: `n_obs` control cells, K context sets of `n_ctx` cells, `n_target` targets.
fn task(d: usize, k: usize, n_obs: usize, n_ctx: usize, n_target: usize, seed: u64) -> Task {
    let f =
        |i: usize, j: usize, s: u64| ((i * 31 + j * 17 + s as usize * 7) % 13) as f32 / 6.5 - 1.0;
    // Slot s treats gene s mod d (one-hot), labelled by that gene.
    let genes: Vec<String> = (0..d).map(|g| format!("g{g}")).collect();
    let treat = |slot: usize| TaskTreatment::from_label(&genes[slot % d], "control", 1.0);
    Task {
        context: format!("ctx{seed}"),
        context_index: 0,
        genes: std::sync::Arc::new(genes.clone()),
        observational: Array2::from_shape_fn((n_obs, d), |(i, j)| f(i, j, seed)),
        experiments: (0..k).map(treat).collect(),
        context_cells: Array3::from_shape_fn((k, n_ctx, d), |(a, i, j)| f(i + a, j, seed + 1)),
        query: treat(k),
        target: Some(Array2::from_shape_fn((n_target, d), |(i, j)| {
            f(i, j, seed + 2)
        })),
    }
}

#[test]
fn shapes_with_zero_and_several_contexts_and_unequal_set_sizes() {
    single_thread();
    let d = 5;
    let net = MapPfnNet::new(MapPfnConfig::tiny(d), 1, Device::Cpu).expect("tiny");
    for (k, n_obs, n_ctx, n_query) in [(0, 7, 0, 9), (3, 6, 4, 9), (3, 11, 2, 1)] {
        let t = task(d, k, n_obs, n_ctx, n_query, 3);
        let layout = MapPfnNet::layout_of(&t, n_query);
        let cond = net.encode_tasks(&[&t, &t], &layout).expect("encode");
        assert_eq!(cond.cond.size(), vec![2, (n_obs + k * n_ctx) as i64, 32]);
        assert_eq!(cond.treat.size(), vec![2, k as i64 + 1, 32]);
        let x = Tensor::zeros([4, n_query as i64, d as i64], (Kind::Float, Device::Cpu));
        let tt = Tensor::full([4], 0.5, (Kind::Float, Device::Cpu));
        let uncond = Tensor::from_slice(&[false, false, true, true]);
        let v = net
            .velocity_with(&cond, &x, &tt, &uncond)
            .expect("velocity");
        assert_eq!(v.size(), vec![4, n_query as i64, d as i64], "K = {k}");
    }
    // A micro-batch mixing layouts (K = 0 and K = 3) gives one finite loss.
    let tasks = vec![
        task(d, 0, 7, 0, 9, 1),
        task(d, 3, 6, 4, 5, 2),
        task(d, 3, 6, 4, 5, 4),
    ];
    let loss = net
        .loss(&tasks, &mut cellshift_models::rng::stream(0, "t", 0))
        .expect("loss")
        .total;
    assert!(loss.size().is_empty() && loss.double_value(&[]).is_finite());
    // Sampling with K = 0 and with a different number of cells than the sets have.
    let model = MapPfn::from_net(net, Preprocessing::identity(d))
        .with_sampler(SamplerConfig {
            solver: OdeSolver::Euler { steps: 4 },
            guidance: 2.0,
            ..SamplerConfig::default()
        })
        .expect("sampler");
    let s = model
        .sample(&task(d, 0, 7, 0, 9, 1), 13, 0)
        .expect("sample");
    assert_eq!(s.cells.dim(), (13, d));
    assert_eq!(s.evaluations, 4);
}

#[test]
fn tasks_in_a_batch_do_not_interact_and_the_null_condition_ignores_the_context() {
    single_thread();
    let d = 4;
    let net = MapPfnNet::new(MapPfnConfig::tiny(d), 2, Device::Cpu).expect("tiny");
    let (a, b) = (task(d, 2, 5, 5, 6, 1), task(d, 2, 5, 5, 6, 9));
    let layout = MapPfnNet::layout_of(&a, 6);
    let x = Tensor::from_slice(&(0..48).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>())
        .view([2, 6, 4]);
    let t = Tensor::from_slice(&[0.3f32, 0.8]);
    let both = net.encode_tasks(&[&a, &b], &layout).expect("encode");
    let cond = Tensor::from_slice(&[false, false]);
    let v_both = net.velocity_with(&both, &x, &t, &cond).expect("v");
    let single = net.encode_tasks(&[&a], &layout).expect("encode");
    let v_a = net
        .velocity_with(
            &single,
            &x.narrow(0, 0, 1),
            &t.narrow(0, 0, 1),
            &cond.narrow(0, 0, 1),
        )
        .expect("v");
    assert!(
        (v_both.narrow(0, 0, 1) - &v_a)
            .abs()
            .max()
            .double_value(&[])
            < 1e-5,
        "batching must not mix tasks"
    );
    assert!(
        (v_both.narrow(0, 0, 1) - v_both.narrow(0, 1, 1))
            .abs()
            .max()
            .double_value(&[])
            > 1e-4
    );
    // Unconditional rows replace every condition and treatment token by the null embedding, so two tasks
    // with different contexts give the same velocity at the same (x, t).
    let x_same = x.narrow(0, 0, 1).repeat([2, 1, 1]);
    let t_same = Tensor::from_slice(&[0.3f32, 0.3]);
    let uncond = Tensor::from_slice(&[true, true]);
    let v_null = net
        .velocity_with(&both, &x_same, &t_same, &uncond)
        .expect("v");
    assert!(
        (v_null.narrow(0, 0, 1) - v_null.narrow(0, 1, 1))
            .abs()
            .max()
            .double_value(&[])
            < 1e-6
    );
    let v_cond = net
        .velocity_with(&both, &x_same, &t_same, &cond)
        .expect("v");
    assert!(
        (v_cond.narrow(0, 0, 1) - v_cond.narrow(0, 1, 1))
            .abs()
            .max()
            .double_value(&[])
            > 1e-4
    );
}

#[test]
fn compact_unconditional_pass_equals_the_masked_full_pass() {
    single_thread();
    let d = 4;
    let net = MapPfnNet::new(MapPfnConfig::tiny(d), 3, Device::Cpu).expect("tiny");
    for (k, n_obs, n_ctx) in [(0usize, 7usize, 0usize), (2, 5, 9), (3, 12, 4)] {
        let a = task(d, k, n_obs, n_ctx, 6, 1);
        let layout = MapPfnNet::layout_of(&a, 6);
        let cond = net.encode_tasks(&[&a], &layout).expect("encode");
        let x = Tensor::from_slice(&(0..48).map(|i| (i as f32 * 0.71).cos()).collect::<Vec<_>>())
            .view([2, 6, 4]);
        let t = Tensor::from_slice(&[0.2f32, 0.9]);
        let full = net
            .velocity_with(&cond, &x, &t, &Tensor::from_slice(&[true, true]))
            .expect("full");
        let compact = net
            .unconditional_velocity_compact(&layout, &x, &t)
            .expect("compact");
        let diff = (&full - &compact).abs().max().double_value(&[]);
        assert!(
            diff < 1e-5,
            "K = {k}: compact and full unconditional passes differ by {diff}"
        );
    }
    // The multiplicity matters: without the ln(count) bias the result would differ.
    let a = task(d, 2, 5, 9, 6, 1);
    let big = task(d, 2, 30, 9, 6, 1);
    let x = Tensor::from_slice(&(0..24).map(|i| (i as f32 * 0.71).cos()).collect::<Vec<_>>())
        .view([1, 6, 4]);
    let t = Tensor::from_slice(&[0.5f32]);
    let small_layout = MapPfnNet::layout_of(&a, 6);
    let big_layout = MapPfnNet::layout_of(&big, 6);
    let v_small = net
        .unconditional_velocity_compact(&small_layout, &x, &t)
        .expect("v");
    let v_big = net
        .unconditional_velocity_compact(&big_layout, &x, &t)
        .expect("v");
    assert!((v_small - v_big).abs().max().double_value(&[]) > 1e-5);
    // With attention padding the compact pass is refused.
    let padded = MapPfnNet::new(
        MapPfnConfig {
            attention_pad_to_multiple: Some(64),
            ..MapPfnConfig::tiny(d)
        },
        3,
        Device::Cpu,
    )
    .expect("padded");
    assert!(padded
        .unconditional_velocity_compact(&small_layout, &x, &t)
        .is_err());
}

#[test]
fn compact_condition_dropout_gives_the_same_loss_and_gradients() {
    single_thread();
    let d = 5;
    let source = GaussianShiftSource::new(d, 6, 2, 8).expect("source");
    let tasks: Vec<Task> = (0..6).map(|i| source.task(i).expect("task")).collect();
    let mut results = Vec::new();
    for compact in [false, true] {
        let config = MapPfnConfig {
            condition_dropout: 0.5,
            ..MapPfnConfig::tiny(d)
        };
        let mut net = MapPfnNet::new(config, 5, Device::Cpu).expect("tiny");
        net.set_compact_null_training(compact);
        let mut draws = cellshift_models::rng::stream(3, "test-draws", 0);
        let loss = net.loss(&tasks, &mut draws).expect("loss").total;
        loss.backward();
        let grads: Vec<Tensor> = named_variables(net.var_store())
            .into_iter()
            .filter(|(_, v)| v.requires_grad())
            .map(|(_, v)| {
                let g = v.grad();
                if g.defined() {
                    g.copy()
                } else {
                    v.zeros_like()
                }
            })
            .collect();
        results.push((loss.double_value(&[]), grads));
    }
    let ((l0, g0), (l1, g1)) = (&results[0], &results[1]);
    assert!(
        (l0 - l1).abs() < 1e-5 * l0.abs().max(1.0),
        "losses {l0} vs {l1}"
    );
    for (a, b) in g0.iter().zip(g1) {
        let scale = a.abs().max().double_value(&[]).max(1e-3);
        let diff = (a - b).abs().max().double_value(&[]);
        assert!(
            diff < 1e-4 * scale,
            "gradient differs by {diff} (scale {scale})"
        );
    }
}

#[test]
fn initialisation_is_a_function_of_the_seed() {
    single_thread();
    let vars = |seed| {
        named_variables(
            MapPfnNet::new(MapPfnConfig::tiny(3), seed, Device::Cpu)
                .expect("tiny")
                .var_store(),
        )
    };
    let (a, b, c) = (vars(5), vars(5), vars(6));
    assert!(tensors_equal(&a, &b));
    assert!(!tensors_equal(&a, &c));
    // FiLM projections start at zero (spec §2.8).
    let film = a
        .iter()
        .find(|(n, _)| n.ends_with("attn_film.weight"))
        .expect("film");
    assert_eq!(film.1.abs().sum(Kind::Float).double_value(&[]), 0.0);
}

#[test]
fn bad_inputs_are_rejected_with_clear_errors() {
    single_thread();
    let d = 4;
    let model = MapPfn::from_net(
        MapPfnNet::new(MapPfnConfig::tiny(d), 0, Device::Cpu).expect("tiny"),
        Preprocessing::identity(d),
    );
    let wrong_genes = task(d + 1, 1, 3, 3, 3, 0);
    assert!(model
        .sample(&wrong_genes, 4, 0)
        .expect_err("genes")
        .to_string()
        .contains("genes"));
    let too_many = task(d, 10, 3, 3, 3, 0);
    assert!(model
        .sample(&too_many, 4, 0)
        .expect_err("K")
        .to_string()
        .contains("K = 10"));
    let mut nan = task(d, 1, 3, 3, 3, 0);
    nan.observational[(1, 1)] = f32::NAN;
    assert!(model
        .sample(&nan, 4, 0)
        .expect_err("nan")
        .to_string()
        .contains("non-finite"));
    assert!(model.predict(&task(d, 1, 3, 3, 3, 0), 0, 0).is_err());
    assert!(MapPfnConfig {
        width: 30,
        heads: 4,
        ..MapPfnConfig::tiny(d)
    }
    .validate()
    .is_err());
}

fn quick(d: usize, steps: u64) -> TrainConfig {
    let mut cfg = TrainConfig::quick(Preprocessing::identity(d), steps);
    cfg.batch_size = 4;
    cfg
}

#[test]
fn checkpoint_round_trip_and_sidecar() {
    single_thread();
    let d = 6;
    let dir = tempfile::tempdir().expect("tempdir");
    let source = GaussianShiftSource::new(d, 8, 2, 3).expect("source");
    let net = MapPfnNet::new(MapPfnConfig::tiny(d), 9, Device::Cpu).expect("tiny");
    let mut cfg = quick(d, 10);
    cfg.accumulation = 2;
    let mut trainer = Trainer::new(&net, cfg.clone()).expect("trainer");
    for _ in 0..3 {
        trainer.step(&source).expect("step");
    }
    let ck_dir = trainer.save_checkpoint(dir.path()).expect("save");
    assert_eq!(
        ck_dir.file_name().and_then(|n| n.to_str()),
        Some("ckpt-0000000003")
    );
    let raw = MapPfn::load_with(dir.path(), WeightSet::Raw, Device::Cpu).expect("load raw");
    assert!(tensors_equal(
        &named_variables(raw.net().var_store()),
        &named_variables(net.var_store())
    ));
    let ema = MapPfn::load(dir.path()).expect("load ema");
    let ema_vars = named_variables(ema.net().var_store());
    for (name, w) in trainer.ema_weights() {
        let loaded = &ema_vars
            .iter()
            .find(|(n, _)| *n == name)
            .expect("present")
            .1;
        assert!(loaded.equal(&w), "EMA weight {name}");
    }
    let meta = ema.checkpoint_meta().expect("meta");
    assert_eq!(meta.method, "mappfn");
    assert_eq!(meta.counters.micro_batches, 3);
    assert_eq!(meta.counters.updates, 1);
    assert_eq!(
        meta.counters.accumulated, 1,
        "a half-accumulated gradient is part of the state"
    );
    assert_eq!(meta.rng.next_task_index, 12);
    assert_eq!(meta.train_config, cfg);
    assert_eq!(meta.preprocessing, Preprocessing::identity(d));
    let config: MapPfnConfig = serde_json::from_value(meta.model_config.clone()).expect("config");
    assert_eq!(config, MapPfnConfig::tiny(d));
    // Same seed, same prediction; different seed, different cells.
    let ema2 = MapPfn::load(&ck_dir).expect("load by checkpoint dir");
    let sampler = SamplerConfig {
        solver: OdeSolver::Euler { steps: 5 },
        guidance: 2.0,
        ..SamplerConfig::default()
    };
    let (ema, ema2) = (
        ema.with_sampler(sampler).expect("s"),
        ema2.with_sampler(sampler).expect("s"),
    );
    let t = source.task(99).expect("task");
    let p1 = ema.sample(&t, 10, 1).expect("p1").cells;
    assert_eq!(p1, ema2.sample(&t, 10, 1).expect("p2").cells);
    assert_ne!(p1, ema.sample(&t, 10, 2).expect("p3").cells);
}

#[test]
fn inference_export_keeps_the_ema_predictions_and_can_be_fine_tuned() {
    single_thread();
    let d = 6;
    let dir = tempfile::tempdir().expect("tempdir");
    let source = GaussianShiftSource::new(d, 8, 2, 3).expect("source");
    let net = MapPfnNet::new(MapPfnConfig::tiny(d), 9, Device::Cpu).expect("tiny");
    let mut trainer = Trainer::new(&net, quick(d, 10)).expect("trainer");
    for _ in 0..4 {
        trainer.step(&source).expect("step");
    }
    trainer
        .save_checkpoint(&dir.path().join("run"))
        .expect("save");
    let sampler = SamplerConfig {
        solver: OdeSolver::Euler { steps: 4 },
        guidance: 2.0,
        ..SamplerConfig::default()
    };
    let full = MapPfn::load(&dir.path().join("run"))
        .expect("load")
        .with_sampler(sampler)
        .expect("s");
    let t = source.task(5).expect("task");
    let reference = full.sample(&t, 12, 3).expect("sample").cells;
    // A float32 export predicts exactly what the EMA weights predict.
    checkpoint::export_inference(
        &dir.path().join("run"),
        &dir.path().join("f32"),
        Kind::Float,
    )
    .expect("export f32");
    let exported = MapPfn::load(&dir.path().join("f32"))
        .expect("load export")
        .with_sampler(sampler)
        .expect("s");
    assert_eq!(exported.sample(&t, 12, 3).expect("sample").cells, reference);
    // A half-precision export is about half the size and predicts within half-precision rounding.
    let half =
        checkpoint::export_inference(&dir.path().join("run"), &dir.path().join("f16"), Kind::Half)
            .expect("export f16");
    let full_bytes = checkpoint::read_meta(&dir.path().join("run"))
        .expect("meta")
        .1
        .tensors
        .bytes;
    let half_bytes = checkpoint::read_meta(&half).expect("meta").1.tensors.bytes;
    assert!(
        (half_bytes as f64) < 0.2 * full_bytes as f64,
        "export {half_bytes} B vs full checkpoint {full_bytes} B (weights, EMA, two AdamW moments)"
    );
    let halved = MapPfn::load(&half)
        .expect("load f16")
        .with_sampler(sampler)
        .expect("s");
    let cells = halved.sample(&t, 12, 3).expect("sample").cells;
    let max_diff = (&cells - &reference)
        .mapv(f32::abs)
        .fold(0.0f32, |a, &b| a.max(b));
    assert!(
        max_diff > 0.0 && max_diff < 0.05,
        "f16 export changed predictions by {max_diff}"
    );
    // Fine-tuning starts from an export (its weights seed both the raw weights and the EMA).
    finetune(
        &half,
        &quick(d, 2),
        &source,
        &dir.path().join("tuned"),
        Budget::Steps(2),
        |_| {},
    )
    .expect("fine-tune from export");
}

#[test]
fn batched_queries_equal_one_by_one_solves_with_a_fixed_step_solver() {
    single_thread();
    let d = 6;
    let source = GaussianShiftSource::new(d, 8, 2, 3).expect("source");
    let net = MapPfnNet::new(MapPfnConfig::tiny(d), 4, Device::Cpu).expect("tiny");
    let model = MapPfn::from_net(net, Preprocessing::identity(d))
        .with_sampler(SamplerConfig {
            solver: OdeSolver::Rk4 { steps: 3 },
            guidance: 2.0,
            ..SamplerConfig::default()
        })
        .expect("sampler");
    let tasks: Vec<Task> = (0..3).map(|i| source.task(i).expect("task")).collect();
    let seeds = [11u64, 12, 13];
    let batched = model.predict_many(&tasks, 9, &seeds).expect("batched");
    for ((task, &seed), prediction) in tasks.iter().zip(&seeds).zip(&batched) {
        let single = model.sample(task, 9, seed).expect("single").cells;
        let cellshift_data::Prediction::Cells(cells) = prediction else {
            panic!("cells expected")
        };
        let diff = (cells - &single)
            .mapv(f32::abs)
            .fold(0.0f32, |a, &b| a.max(b));
        assert!(diff < 1e-4, "batched and single solves differ by {diff}");
    }
    // Different seeds give different cells inside one batch.
    assert_ne!(batched[0].mean_profile(), batched[1].mean_profile());
    // Tasks with different K cannot share a solve but are still predicted (grouped by layout).
    let other = GaussianShiftSource::new(d, 8, 1, 3)
        .expect("source")
        .task(0)
        .expect("task");
    let mixed = vec![tasks[0].clone(), other];
    assert_eq!(
        model.predict_many(&mixed, 5, &[1, 2]).expect("mixed").len(),
        2
    );
    let refs: Vec<&Task> = mixed.iter().collect();
    let err = model
        .sample_batch(&refs, 5, &[1, 2])
        .unwrap_err()
        .to_string();
    assert!(err.contains("share K"), "{err}");
}

#[test]
fn pooled_populations_interleave_independently_sampled_sets() {
    single_thread();
    let d = 5;
    let source = GaussianShiftSource::new(d, 8, 2, 3).expect("source");
    let task = source.task(0).expect("task");
    let sampler = |populations| SamplerConfig {
        solver: OdeSolver::Rk4 { steps: 3 },
        guidance: 2.0,
        populations,
        ..SamplerConfig::default()
    };
    let net = || MapPfnNet::new(MapPfnConfig::tiny(d), 4, Device::Cpu).expect("tiny");
    let single = MapPfn::from_net(net(), Preprocessing::identity(d))
        .with_sampler(sampler(1))
        .expect("sampler");
    let pooled = MapPfn::from_net(net(), Preprocessing::identity(d))
        .with_sampler(sampler(3))
        .expect("sampler");
    let (seed, n) = (21u64, 10);
    let got = pooled.sample(&task, n, seed).expect("pooled").cells;
    assert_eq!(got.dim(), (n, d));
    // Cell r comes from population r mod 3; population 0 is the reference sample of the query's seed.
    let sets: Vec<_> = (0..3)
        .map(|j| {
            single
                .sample(
                    &task,
                    n,
                    cellshift_models::mappfn::predictor::population_seed(seed, j),
                )
                .expect("set")
                .cells
        })
        .collect();
    for r in 0..n {
        let diff = (&got.row(r) - &sets[r % 3].row(r))
            .mapv(f32::abs)
            .fold(0.0f32, |a, &b| a.max(b));
        assert!(
            diff < 1e-4,
            "cell {r} differs from its population by {diff}"
        );
    }
    assert_ne!(sets[0], sets[1], "populations must use different noise");
    let err = MapPfn::from_net(net(), Preprocessing::identity(d))
        .with_sampler(sampler(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("populations must be at least 1"), "{err}");
    let err = MapPfn::from_net(net(), Preprocessing::identity(d))
        .with_sampler(SamplerConfig {
            temperature: 0.0,
            ..sampler(1)
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("temperature 0 must be"), "{err}");
    // Clamping at zero: the same cells with the negative values set to zero.
    let clamped = MapPfn::from_net(net(), Preprocessing::identity(d))
        .with_sampler(SamplerConfig {
            nonnegative: true,
            ..sampler(1)
        })
        .expect("sampler")
        .sample(&task, n, seed)
        .expect("clamped")
        .cells;
    assert!(
        sets[0].iter().any(|&v| v < 0.0),
        "the test needs negative values"
    );
    assert_eq!(clamped, sets[0].mapv(|v| v.max(0.0)));
}

#[test]
fn a_lower_temperature_starts_the_flow_from_scaled_noise() {
    single_thread();
    // With one Euler step, x₁ = x₀ + v(x₀, 0): the temperature must scale x₀ and nothing else, so the
    // prediction at T is the network's map applied to T·x₀ (checked against the velocity directly).
    let d = 4;
    let source = GaussianShiftSource::new(d, 8, 2, 3).expect("source");
    let task = source.task(1).expect("task");
    let make = |temperature| {
        MapPfn::from_net(
            MapPfnNet::new(MapPfnConfig::tiny(d), 6, Device::Cpu).expect("tiny"),
            Preprocessing::identity(d),
        )
        .with_sampler(SamplerConfig {
            solver: OdeSolver::Euler { steps: 1 },
            guidance: 1.0,
            temperature,
            ..SamplerConfig::default()
        })
        .expect("sampler")
    };
    let (n, seed) = (6, 3u64);
    let hot = make(0.5).sample(&task, n, seed).expect("T = 0.5").cells;
    let reference = make(1.0);
    let base = reference.sample(&task, n, seed).expect("T = 1").cells;
    // Recover x₀ at T = 1 from the same stream the sampler draws.
    let mut stream = cellshift_models::rng::stream(seed, "mappfn-sample", 0);
    let x0: Vec<f32> = cellshift_models::rng::normals(&mut stream, n * d);
    let layout = MapPfnNet::layout_of(&task, n);
    let net = reference.net();
    let cond = net.encode_tasks(&[&task], &layout).expect("encode");
    let velocity_at = |scale: f32| {
        let x = Tensor::from_slice(&x0.iter().map(|v| v * scale).collect::<Vec<_>>())
            .view([1, n as i64, d as i64]);
        let t = Tensor::from_slice(&[0.0f32]);
        let v = net
            .velocity_with(&cond, &x, &t, &Tensor::from_slice(&[false]))
            .expect("v");
        (x + v).view([-1])
    };
    for (scale, got) in [(1.0f32, &base), (0.5, &hot)] {
        let want = Vec::<f32>::try_from(velocity_at(scale)).expect("vec");
        let diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            diff < 1e-4,
            "temperature {scale}: one Euler step differs by {diff}"
        );
    }
}

#[test]
fn missing_and_corrupted_checkpoints_give_clear_errors() {
    single_thread();
    let d = 4;
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = MapPfn::load(&dir.path().join("nope")).expect_err("missing");
    assert!(
        matches!(missing, ModelError::CheckpointMissing { .. }),
        "{missing}"
    );
    let empty = MapPfn::load(dir.path()).expect_err("empty");
    assert!(
        matches!(empty, ModelError::CheckpointMissing { .. }),
        "{empty}"
    );

    let source = GaussianShiftSource::new(d, 4, 1, 0).expect("source");
    let run = dir.path().join("run");
    pretrain(
        &MapPfnConfig::tiny(d),
        &quick(d, 2),
        &source,
        &run,
        Budget::Steps(2),
        |_| {},
    )
    .expect("train");
    let ck = checkpoint::resolve(&run).expect("resolve");
    assert!(checkpoint::read_meta(&run)
        .expect("meta")
        .1
        .task_source
        .starts_with("gaussian-shift(d=4"));
    let tensors = ck.join(checkpoint::TENSORS_FILE);
    let original = fs::read(&tensors).expect("read");

    let mut flipped = original.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    fs::write(&tensors, &flipped).expect("write");
    let err = MapPfn::load(&run).expect_err("corrupted");
    assert!(
        matches!(err, ModelError::CheckpointCorrupt { .. }) && err.to_string().contains("checksum"),
        "{err}"
    );

    fs::write(&tensors, &original[..original.len() / 3]).expect("truncate");
    let err = MapPfn::load(&run).expect_err("truncated");
    assert!(err.to_string().contains("truncated"), "{err}");

    fs::write(&tensors, &original).expect("restore");
    assert!(MapPfn::load(&run).is_ok());
    let meta = ck.join(checkpoint::META_FILE);
    let json = fs::read(&meta).expect("json");
    fs::write(&meta, &json[..json.len() / 2]).expect("cut json");
    let err = MapPfn::load(&run).expect_err("bad json");
    assert!(matches!(err, ModelError::CheckpointCorrupt { .. }), "{err}");
    fs::write(&meta, &json).expect("restore json");

    fs::write(run.join(checkpoint::LATEST_FILE), "ckpt-9999999999\n").expect("latest");
    let err = MapPfn::load(&run).expect_err("dangling LATEST");
    assert!(matches!(err, ModelError::CheckpointMissing { .. }), "{err}");
    fs::write(
        run.join(checkpoint::LATEST_FILE),
        format!(
            "{}\n",
            ck.file_name().and_then(|n| n.to_str()).expect("name")
        ),
    )
    .expect("latest");

    // Resuming into a run directory with another configuration is refused.
    let err = pretrain(
        &MapPfnConfig {
            depth: 1,
            ..MapPfnConfig::tiny(d)
        },
        &quick(d, 2),
        &source,
        &run,
        Budget::Steps(2),
        |_| {},
    )
    .expect_err("mismatch");
    assert!(matches!(err, ModelError::RunMismatch { .. }), "{err}");
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[test]
fn resumed_training_reproduces_the_uninterrupted_loss_sequence_bit_for_bit() {
    single_thread();
    let d = 6;
    let n = 12u64;
    let source = GaussianShiftSource::new(d, 8, 2, 21).expect("source");
    let model = MapPfnConfig::tiny(d);
    let mut cfg = quick(d, n);
    cfg.accumulation = 4; // the checkpoint at n/2 = 6 holds a half-accumulated gradient (6 mod 4 = 2)
    cfg.checkpoint_every = n / 2;
    cfg.ema = cellshift_models::train::EmaConfig::reference();
    let root = tempfile::tempdir().expect("tempdir");

    let full_dir = root.path().join("full");
    let full =
        pretrain(&model, &cfg, &source, &full_dir, Budget::Steps(n), |_| {}).expect("full run");
    assert_eq!(full.losses.len(), n as usize);
    assert!(full.finished);

    // Resume from the mid-run checkpoint of the uninterrupted run, in a fresh directory.
    let resumed_dir = root.path().join("resumed");
    let mid = full_dir.join(checkpoint::checkpoint_dir_name(n / 2));
    copy_dir(
        &mid,
        &resumed_dir.join(checkpoint::checkpoint_dir_name(n / 2)),
    );
    fs::write(
        resumed_dir.join(checkpoint::LATEST_FILE),
        format!("{}\n", checkpoint::checkpoint_dir_name(n / 2)),
    )
    .expect("LATEST");
    let mut steps = Vec::new();
    let resumed = pretrain(&model, &cfg, &source, &resumed_dir, Budget::Steps(n), |p| {
        steps.push(p.step)
    })
    .expect("resume");
    assert_eq!(steps, ((n / 2 + 1)..=n).collect::<Vec<_>>());
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&resumed.losses),
        bits(&full.losses[(n / 2) as usize..]),
        "second-half losses must be bit-identical"
    );

    // The final states agree too (weights, EMA, AdamW moments).
    let a = checkpoint::read_checkpoint(&full_dir).expect("a");
    let b = checkpoint::read_checkpoint(&resumed_dir).expect("b");
    assert_eq!(a.meta.counters, b.meta.counters);
    for (name, t) in &a.tensors {
        assert!(
            t.equal(&b.tensors[name]),
            "tensor {name} differs after resumption"
        );
    }

    // An invocation stopped by its budget and continued later also matches.
    let split_dir = root.path().join("split");
    let first =
        pretrain(&model, &cfg, &source, &split_dir, Budget::Steps(5), |_| {}).expect("first part");
    let second =
        pretrain(&model, &cfg, &source, &split_dir, Budget::Steps(n), |_| {}).expect("second part");
    let joined: Vec<f64> = first.losses.iter().chain(&second.losses).copied().collect();
    assert_eq!(bits(&joined), bits(&full.losses));
}

/// Mean over held-out tasks of |predicted mean − true target mean|² / |control mean − true target mean|²
/// (0 = perfect, 1 = no better than predicting the control population).
fn relative_mean_error(
    model: &MapPfn,
    source: &GaussianShiftSource,
    tasks: std::ops::Range<u64>,
    n_cells: usize,
) -> f64 {
    let mut total = 0.0;
    let count = tasks.end - tasks.start;
    for i in tasks {
        let (task, truth) = source.task_with_truth(i);
        let pred = model.predict(&task, n_cells, i).expect("predict");
        let mean = pred.mean_profile();
        let err: f32 = (&mean - &truth.target_mean).mapv(|v| v * v).sum();
        let base: f32 = (&truth.control_mean - &truth.target_mean)
            .mapv(|v| v * v)
            .sum();
        total += f64::from(err / base);
    }
    total / count as f64
}

#[test]
fn a_tiny_model_learns_mean_shifts_in_context() {
    single_thread();
    let d = 6;
    let mut source = GaussianShiftSource::new(d, 16, 2, 5).expect("source");
    source.context_scale = 0.5;
    let model_cfg = MapPfnConfig::tiny(d);
    let steps = 600;
    let mut cfg = TrainConfig::quick(Preprocessing::identity(d), steps);
    cfg.batch_size = 8;
    cfg.schedule.peak = 3e-3;
    cfg.schedule.end = 3e-4;
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = pretrain(
        &model_cfg,
        &cfg,
        &source,
        dir.path(),
        Budget::Steps(steps),
        |_| {},
    )
    .expect("train");
    let avg = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (early, late) = (
        avg(&summary.losses[..20]),
        avg(&summary.losses[summary.losses.len() - 20..]),
    );
    // The flow-matching loss has an irreducible part (about 1.5 per element here), so 1.8× is a large drop.
    assert!(
        early / late > 1.8,
        "loss must fall by a clear factor: first 20 {early:.3}, last 20 {late:.3}"
    );

    let sampler = SamplerConfig {
        solver: OdeSolver::Dopri5Fixed { dt: 0.1 },
        guidance: 2.0,
        ..SamplerConfig::default()
    };
    let trained = MapPfn::load(dir.path())
        .expect("load")
        .with_sampler(sampler)
        .expect("sampler");
    let untrained = MapPfn::from_net(
        MapPfnNet::new(
            model_cfg,
            cellshift_models::rng::stream_seed(cfg.seed, "mappfn-init", 0),
            Device::Cpu,
        )
        .expect("net"),
        Preprocessing::identity(d),
    )
    .with_sampler(sampler)
    .expect("sampler");
    let held_out = 1_000_000..1_000_012;
    let e_trained = relative_mean_error(&trained, &source, held_out.clone(), 64);
    let e_untrained = relative_mean_error(&untrained, &source, held_out, 64);
    eprintln!(
        "loss first/last 20: {early:.3}/{late:.3}; relative mean error trained {e_trained:.3}, untrained {e_untrained:.3}"
    );
    assert!(
        e_trained < 0.5,
        "trained model's mean error relative to the control baseline: {e_trained:.3}"
    );
    assert!(
        e_untrained > 1.0,
        "an untrained model must fail this check ({e_untrained:.3})"
    );

    // Fine-tuning continues from the checkpoint with fresh optimiser state and keeps the EMA going.
    let ft_dir = tempfile::tempdir().expect("tempdir");
    let mut ft = TrainConfig::finetune(Preprocessing::identity(d));
    ft.batch_size = 4;
    ft.accumulation = 1;
    ft.total_steps = 4;
    let ft_summary = finetune(
        dir.path(),
        &ft,
        &source,
        ft_dir.path(),
        Budget::Steps(4),
        |_| {},
    )
    .expect("finetune");
    assert_eq!(ft_summary.step, 4);
    let meta = checkpoint::read_meta(ft_dir.path()).expect("meta").1;
    assert_eq!(meta.counters.updates, 4);
    assert_eq!(meta.counters.ema_updates, steps + 4);
    assert!(meta.finetuned_from.is_some());
    // It starts from the pre-trained raw weights: four fine-tuning steps move them far less than the
    // distance between the pre-trained network and a freshly initialised one (a fine-tune that skipped
    // loading them would start from the fresh weights).
    let pre = checkpoint::read_checkpoint(dir.path()).expect("pre-trained");
    let tuned = checkpoint::read_checkpoint(ft_dir.path()).expect("fine-tuned");
    let fresh = MapPfnNet::new(pre.model_config("mappfn").expect("config"), 0, Device::Cpu)
        .expect("fresh net");
    let (mut moved, mut apart) = (0.0, 0.0);
    for (name, var) in named_variables(fresh.var_store()) {
        let p = pre
            .tensor("model", &name, &var.size())
            .expect("pre-trained tensor");
        let t = tuned
            .tensor("model", &name, &var.size())
            .expect("fine-tuned tensor");
        moved += (t - p).abs().sum(Kind::Double).double_value(&[]);
        apart += (&var - p).abs().sum(Kind::Double).double_value(&[]);
    }
    assert!(
        moved < 0.05 * apart,
        "fine-tuning moved the weights by {moved:.3} (L1) from the pre-trained ones, which are {apart:.3} \
         from a fresh network: it did not start from the pre-trained weights"
    );
}

#[test]
fn standardized_tasks_make_predictions_equivariant_to_per_gene_affine_maps() {
    // With `standardize_tasks` the network sees a task relative to its control cells, so mapping every
    // cell of a task by x_g -> a_g + b_g x_g (b_g > 0) must map the predicted cells the same way, exactly
    // (up to float error), trained or not. A missing or wrong inverse breaks it, and so does a model
    // without the option (checked, so that the test can tell the two apart).
    single_thread();
    let d = 6;
    let source = GaussianShiftSource::new(d, 16, 2, 5).expect("source");
    let task = source.task(3).expect("task");
    let (a, b): (Vec<f32>, Vec<f32>) = (0..d)
        .map(|g| (2.0 - g as f32, 1.5 + 0.3 * g as f32))
        .unzip();
    let map = |x: &Array2<f32>| -> Array2<f32> {
        let mut y = x.clone();
        for mut row in y.rows_mut() {
            for g in 0..d {
                row[g] = a[g] + b[g] * row[g];
            }
        }
        y
    };
    let mut moved = task.clone();
    moved.observational = map(&task.observational);
    for k in 0..task.context_cells.shape()[0] {
        let z = map(&task
            .context_cells
            .index_axis(ndarray::Axis(0), k)
            .to_owned());
        moved
            .context_cells
            .index_axis_mut(ndarray::Axis(0), k)
            .assign(&z);
    }
    let gap = |standardize: bool| -> f32 {
        let config = MapPfnConfig {
            standardize_tasks: standardize,
            ..MapPfnConfig::tiny(d)
        };
        let model = MapPfn::from_net(
            MapPfnNet::new(config, 11, Device::Cpu).expect("net"),
            Preprocessing::identity(d),
        )
        .with_sampler(SamplerConfig {
            solver: OdeSolver::Euler { steps: 8 },
            guidance: 2.0,
            ..SamplerConfig::default()
        })
        .expect("sampler");
        let cells = |t: &Task| match model.predict(t, 16, 7).expect("predict") {
            cellshift_data::Prediction::Cells(c) => c,
            other => panic!("cells expected, got {other:?}"),
        };
        (map(&cells(&task)) - cells(&moved))
            .iter()
            .fold(0.0f32, |m, v| m.max(v.abs()))
    };
    let (with, without) = (gap(true), gap(false));
    assert!(
        with < 1e-3,
        "standardised model: max |pred(map(task)) − map(pred(task))| = {with}"
    );
    assert!(
        without > 0.1,
        "a plain model is not equivariant, yet the gap is only {without}"
    );
}
