//! Activation checkpointing of scDFM training (`scdfm::recompute`) gives the gradients and the training
//! run of the plain backward, with dropout on. One test function on purpose: dropout draws from libtorch's
//! global generator, which concurrently running tests of the same process would also draw from.

use cellshift_data::{CellAnnotations, FitContext, PerturbationData, Task};
use cellshift_models::scdfm::loss::flow_loss;
use cellshift_models::scdfm::model::VelocityInputs;
use cellshift_models::scdfm::{recompute, Scdfm, ScdfmConfig, ScdfmNet};
use ndarray::Array2;
use tch::{nn, Device, Kind, Tensor};

#[test]
fn recomputed_blocks_give_the_plain_gradients_and_training_run() {
    recomputed_blocks_match_the_plain_backward_with_dropout_on();
    training_with_activation_checkpointing_equals_plain_training();
}

/// Max of `|a − b| − (atol + rtol·|b|)` must be ≤ 0.
#[track_caller]
fn assert_close(what: &str, ours: &Tensor, theirs: &Tensor, atol: f64, rtol: f64) {
    let (a, b) = (ours.to_kind(Kind::Double), theirs.to_kind(Kind::Double));
    let diff = (&a - &b).abs();
    let excess = (&diff - (b.abs() * rtol + atol)).max().double_value(&[]);
    assert!(
        excess <= 0.0,
        "{what}: max |diff| {:.3e} exceeds atol {atol} + rtol {rtol}",
        diff.max().double_value(&[])
    );
}

/// Six genes; 40 cells per condition, each condition shifting every third gene up or down (cells ≥ 0).
fn screen() -> PerturbationData {
    let genes: Vec<String> = (0..6).map(|i| format!("g{i}")).collect();
    let conditions = [
        ("control", 0.0f32),
        ("A", 0.5),
        ("B", -0.5),
        ("C", 0.8),
        ("A+B", 0.2),
        ("A+C", 1.0),
    ];
    let per = 40;
    let g = genes.len();
    let mut r = cellshift_models::rng::stream(3, "scdfm-recompute-test", 0);
    let noise = cellshift_models::rng::normals(&mut r, per * conditions.len() * g);
    let x = Array2::from_shape_fn((per * conditions.len(), g), |(i, j)| {
        let (_, s) = conditions[i / per];
        (1.0 + s * ((j % 3) as f32 - 1.0) + 0.3 * noise[i * g + j]).max(0.0)
    });
    let labels = (0..per * conditions.len())
        .map(|i| conditions[i / per].0.to_string())
        .collect();
    let annotations = CellAnnotations {
        treatment_labels: labels,
        ..CellAnnotations::default()
    };
    PerturbationData::new(genes, x, annotations, "control").unwrap()
}

fn task_for(data: &PerturbationData, label: &str) -> Task {
    cellshift_data::testing::control_query_task(data, label)
}

fn recomputed_blocks_match_the_plain_backward_with_dropout_on() {
    // A random net with dropout in training mode: the recomputation draws no random numbers, so the
    // same seed gives the same dropout masks and the gradients must agree to float32 rounding.
    let genes = 12i64;
    let tokens = genes + 4;
    let config = ScdfmConfig {
        dropout: 0.1, // their runs' value (the tiny preset has none)
        ..ScdfmConfig::preset("tiny", tokens as usize).unwrap()
    };
    let mask = Tensor::rand([tokens, tokens], (Kind::Float, Device::Cpu))
        .gt(0.7)
        .logical_and(&Tensor::eye(tokens, (Kind::Bool, Device::Cpu)).logical_not());
    let vs = nn::VarStore::new(Device::Cpu);
    let net = ScdfmNet::new(vs.root(), &config, &mask, 3).unwrap();
    let n = 6i64;
    let ids = (Tensor::arange(genes, (Kind::Int64, Device::Cpu)) + 4)
        .unsqueeze(0)
        .repeat([n, 1]);
    let pert = Tensor::from_slice(&[5i64, 9]).unsqueeze(0).repeat([n, 1]);
    tch::manual_seed(11);
    let x1 = Tensor::rand([n, genes], (Kind::Float, Device::Cpu)) * 3.0;
    let xc = Tensor::rand([n, genes], (Kind::Float, Device::Cpu)) * 3.0;
    let x0 = Tensor::randn([n, genes], (Kind::Float, Device::Cpu));
    let t = Tensor::rand([n], (Kind::Float, Device::Cpu));
    let x_t = (-&t + 1.0).unsqueeze(-1) * &x0 + t.unsqueeze(-1) * &x1;
    let loss_of = |v: Tensor| flow_loss(v, &x0, &x1, &x_t, &t, 0.5, &[0.5, 1.0, 2.0]).total;
    let grads = || -> Vec<(String, Tensor)> {
        let mut g: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .map(|(k, v)| {
                let g = v.grad().copy();
                (k, g)
            })
            .collect();
        g.sort_by(|a, b| a.0.cmp(&b.0));
        g
    };
    tch::manual_seed(42);
    let plain = loss_of(net.forward(&ids, &x_t, &t, &xc, &pert, true, None).unwrap());
    plain.backward();
    let want = grads();
    for (_, v) in vs.variables() {
        let mut g = v.grad();
        let _ = g.zero_();
    }
    tch::manual_seed(42);
    let inputs = VelocityInputs {
        genes: &ids,
        x_t: &x_t,
        t: &t,
        x_c: &xc,
        pert: &pert,
    };
    let (total, ()) =
        recompute::forward_backward(&net, &inputs, true, |v| (loss_of(v), ())).unwrap();
    assert!((total.double_value(&[]) - plain.double_value(&[])).abs() < 1e-6);
    let got = grads();
    let mut nonzero = 0;
    for ((name, w), (_, g)) in want.iter().zip(&got) {
        assert_close(&format!("grad {name}"), g, w, 1e-6, 1e-4);
        nonzero += (w.abs().max().double_value(&[]) > 0.0) as usize;
    }
    assert!(
        nonzero > want.len() / 2,
        "most parameters receive a gradient"
    );
    // A different dropout seed changes the gradients: the comparison above is not vacuous.
    for (_, v) in vs.variables() {
        let mut g = v.grad();
        let _ = g.zero_();
    }
    tch::manual_seed(43);
    loss_of(net.forward(&ids, &x_t, &t, &xc, &pert, true, None).unwrap()).backward();
    let other = grads();
    let differs = want
        .iter()
        .zip(&other)
        .any(|((_, a), (_, b))| (a - b).abs().max().double_value(&[]) > 1e-4);
    assert!(differs, "dropout draws affect the gradients");
}

fn training_with_activation_checkpointing_equals_plain_training() {
    // Through the shared trainer (dropout on, Adam, schedule): the recomputed backward must train the same
    // model, so that `training.activation_checkpointing` is a memory switch and nothing else.
    let data = screen();
    let train = |recompute: bool| {
        let mut m = Scdfm::for_data(&data, "tiny", cellshift_data::DeviceSpec::Cpu).unwrap();
        m.setup_mut().net.dropout = 0.1;
        m.setup_mut().training.cells_per_step = 8;
        m.setup_mut().training.steps = 6;
        m.setup_mut().training.activation_checkpointing = recompute;
        let mut losses = Vec::new();
        let mut progress = |p: &cellshift_data::Progress| losses.push(p.loss);
        let mut ctx = FitContext {
            seed: 2,
            progress: Some(&mut progress),
            ..FitContext::default()
        };
        m.fit_conditions(
            &data,
            &(0..data.conditions().len()).collect::<Vec<_>>(),
            &mut ctx,
        )
        .unwrap();
        let cells = m
            .predict_tasks(&[task_for(&data, "A")], 4, &[0])
            .unwrap()
            .remove(0);
        (losses, cells)
    };
    let (plain_losses, plain) = train(false);
    let (losses, cells) = train(true);
    assert_eq!(losses.len(), 6);
    for (a, b) in plain_losses.iter().zip(&losses) {
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "loss {a} vs {b}");
    }
    let worst = plain
        .iter()
        .zip(cells.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "predictions differ by {worst}");
    assert!(
        plain_losses[0] != plain_losses[5],
        "training moved the loss"
    );
}
