//! Exactness and behaviour tests of CellTarNet on tiny models.

use std::sync::Arc;

use cellshift_data::{
    Budget, CellAnnotations, FitContext, PerturbationData, Predictor, Task, TaskTreatment,
};
use ndarray::{Array2, Array3};
use tch::{nn, Device, Kind, Tensor};

use super::config::CellTarNetConfig;
use super::flow::{ContextKv, Decoding, Flow};
use super::method::{load_celltarnet, CellTarNet};
use super::model::CellTarNetNet;
use super::prior::{gene_adjacency, token_adjacency};
use super::PriorConfig;
use crate::blocks::init::ParamBuilder;
use crate::method::InferenceOptions;
use crate::rng;

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Gives every affine head small random weights, so the flow is not the identity.
fn randomise_heads(vs: &nn::VarStore, seed: i64, scale: f64) {
    tch::manual_seed(seed);
    tch::no_grad(|| {
        for (name, mut v) in vs.variables() {
            if name.contains(".head.") {
                let r = Tensor::randn(v.size(), (v.kind(), v.device())) * scale;
                v.copy_(&r);
            }
        }
    });
}

/// A tiny flow (`blocks` blocks, 2 layers each) over `genes` genes in patches, with a random prior.
fn tiny_flow(vs: &nn::VarStore, genes: usize, patch: usize, blocks: usize, prior: bool) -> Flow {
    let t = genes.div_ceil(patch);
    // A sparse symmetric token adjacency: i ~ j when (i + j) % 3 == 0.
    let adj: Vec<bool> = (0..t * t).map(|x| (x / t + x % t) % 3 == 0).collect();
    Flow::new(
        &ParamBuilder::new(vs.root(), 3),
        genes,
        patch,
        16,
        2,
        blocks,
        2,
        2,
        prior.then_some(Some(adj.as_slice())),
    )
}

fn context(flow: &Flow, b: i64, kind: Kind, seed: i64) -> ContextKv {
    tch::manual_seed(seed);
    let ctx = Tensor::randn([b, 5, 16], (kind, Device::Cpu));
    flow.context_kv(&ctx)
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn encode_then_decode_returns_the_input_cached_and_uncached() {
    // Exactness in f64 (f32 accumulates ~1e-4 through three blocks of exp(a) amplification).
    for (genes, patch, prior) in [(7, 1, true), (7, 2, true), (9, 4, false)] {
        let mut vs = nn::VarStore::new(Device::Cpu);
        let flow = tiny_flow(&vs, genes, patch, 3, prior);
        randomise_heads(&vs, 1, 0.3);
        vs.double();
        let kv = context(&flow, 4, Kind::Double, 2);
        tch::manual_seed(4);
        let x = flow.to_tokens(&Tensor::randn(
            [4, genes as i64],
            (Kind::Double, Device::Cpu),
        ));
        let (z, logdet) = tch::no_grad(|| flow.encode(&x, &kv));
        assert!(
            max_diff(&z, &x) > 1e-2,
            "the randomised flow must not be the identity"
        );
        assert!(logdet.abs().max().double_value(&[]) > 1e-3);
        for mode in [Decoding::Cached, Decoding::Uncached] {
            let back = tch::no_grad(|| flow.decode(&z, &kv, None, mode));
            let err = max_diff(&back, &x);
            assert!(
                err < 1e-5,
                "{genes} genes, patch {patch}, {mode:?}: error {err}"
            );
        }
        // Padded channels stay exactly zero.
        let pad = (genes.div_ceil(patch) * patch - genes) as i64;
        if pad > 0 {
            let zf = z.reshape([4, -1]);
            assert_eq!(
                zf.narrow(1, genes as i64, pad)
                    .abs()
                    .max()
                    .double_value(&[]),
                0.0
            );
        }
    }
}

#[test]
fn log_determinant_equals_the_brute_force_jacobian() {
    for (genes, patch, prior) in [(6, 1, true), (6, 2, false), (5, 2, true)] {
        let mut vs = nn::VarStore::new(Device::Cpu);
        let flow = tiny_flow(&vs, genes, patch, 2, prior);
        randomise_heads(&vs, 7, 0.5);
        vs.double();
        let kv = context(&flow, 1, Kind::Double, 8);
        tch::manual_seed(9);
        let x =
            Tensor::randn([1, genes as i64], (Kind::Double, Device::Cpu)).set_requires_grad(true);
        let (z, logdet) = flow.encode(&flow.to_tokens(&x), &kv);
        let z = flow.from_tokens(&z).reshape([-1]);
        let rows: Vec<Tensor> = (0..genes as i64)
            .map(|i| Tensor::run_backward(&[z.get(i)], &[&x], true, false)[0].reshape([-1]))
            .collect();
        let jac = Tensor::stack(&rows, 0);
        let (_, brute) = jac.slogdet();
        let (brute, ours) = (brute.double_value(&[]), logdet.double_value(&[0]));
        assert!(
            ours.abs() > 1e-2,
            "the randomised flow must have a non-trivial volume change"
        );
        assert!(
            (brute - ours).abs() < 1e-4,
            "{genes}/{patch}: brute {brute} vs flow {ours}"
        );
    }
}

#[test]
fn identity_initialised_flow_gives_the_analytic_gaussian_nll() {
    let vs = nn::VarStore::new(Device::Cpu);
    let flow = tiny_flow(&vs, 10, 2, 2, true);
    let kv = context(&flow, 4000, Kind::Float, 1);
    let s = 0.7f64;
    tch::manual_seed(11);
    let x = Tensor::randn([4000, 10], (Kind::Float, Device::Cpu)) * s;
    let (lp, z) = tch::no_grad(|| flow.log_prob(&flow.to_tokens(&x), &kv));
    assert!(
        max_diff(&flow.from_tokens(&z), &x) == 0.0,
        "zero-initialised heads: identity"
    );
    let half_ln_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    // Exact per cell: NLL/D = ½ mean(x²) + ½ ln 2π.
    let exact = (x.square().mean_dim(1, false, Kind::Double) * 0.5 + half_ln_2pi) * -10.0;
    assert!(max_diff(&lp.to_kind(Kind::Double), &exact) < 1e-4);
    // In expectation: ½ s² + ½ ln 2π per dimension.
    let nll = -lp.mean(Kind::Double).double_value(&[]) / 10.0;
    let analytic = 0.5 * s * s + half_ln_2pi;
    assert!((nll - analytic).abs() < 0.01, "{nll} vs {analytic}");
}

#[test]
fn the_prior_restricts_which_earlier_genes_a_gene_depends_on() {
    // One block, one layer: ∂z_i/∂x_j ≠ 0 only for j = i, j = i − 1 (the residual of the shifted query)
    // and prior neighbours j < i of i.
    let genes = 8usize;
    let mut vs = nn::VarStore::new(Device::Cpu);
    let adj: Vec<bool> = (0..genes * genes)
        .map(|x| {
            let (i, j) = (x / genes, x % genes);
            i == j || (i + j) % 3 == 0
        })
        .collect();
    let flow = Flow::new(
        &ParamBuilder::new(vs.root(), 5),
        genes,
        1,
        16,
        2,
        1,
        1,
        2,
        Some(Some(adj.as_slice())),
    );
    randomise_heads(&vs, 3, 0.5);
    vs.double();
    let kv = context(&flow, 1, Kind::Double, 4);
    let x = Tensor::randn([1, genes as i64], (Kind::Double, Device::Cpu)).set_requires_grad(true);
    let (z, _) = flow.encode(&flow.to_tokens(&x), &kv);
    let z = flow.from_tokens(&z).reshape([-1]);
    let mut checked_zero = 0;
    for i in 1..genes {
        let grad = Tensor::run_backward(&[z.get(i as i64)], &[&x], true, false)[0].reshape([-1]);
        for j in 0..genes {
            let g = grad.double_value(&[j as i64]).abs();
            let allowed = j == i || j + 1 == i || (j < i && adj[i * genes + j]);
            if allowed {
                assert!(g > 1e-9, "z_{i} must depend on x_{j}");
            } else {
                assert!(g == 0.0, "z_{i} must not depend on x_{j} (∂ = {g})");
                checked_zero += 1;
            }
        }
    }
    assert!(checked_zero > 10, "the test must exercise masked pairs");
}

#[test]
fn l_plus_s_prior_finds_correlated_genes_and_keeps_the_diagonal() {
    // Genes 0–2 share a factor, 3–5 another, 6 is noise.
    let n = 500;
    let mut r = rng::stream(1, "test", 0);
    let f = rng::normals(&mut r, 2 * n);
    let e = rng::normals(&mut r, 7 * n);
    let cells = Array2::from_shape_fn((n, 7), |(c, g)| {
        let factor = if g < 3 {
            f[c]
        } else if g < 6 {
            f[n + c]
        } else {
            0.0
        };
        factor + 0.3 * e[c * 7 + g]
    });
    let config = PriorConfig {
        enabled: true,
        top_k: 2,
        top_k_low_rank: 0,
        rank: 0,
    };
    let adj = gene_adjacency(&cells, &config).unwrap();
    for i in 0..7 {
        assert!(adj[i * 7 + i]);
    }
    for (a, b) in [(0, 1), (0, 2), (1, 2), (3, 4), (3, 5), (4, 5)] {
        assert!(adj[a * 7 + b] && adj[b * 7 + a], "{a} ~ {b}");
    }
    assert!(
        !adj[1 * 7 + 4] && !adj[3],
        "different factors must not be linked"
    );
    let low_rank = PriorConfig {
        top_k: 0,
        top_k_low_rank: 2,
        rank: 2,
        ..config
    };
    let adj_l = gene_adjacency(&cells, &low_rank).unwrap();
    assert!(adj_l[1] && adj_l[3 * 7 + 4]);
    let tokens = token_adjacency(&adj, 7, 3);
    assert_eq!(tokens.len(), 9);
    assert!(
        (0..3).all(|t| tokens[t * 3 + t]),
        "the diagonal is always kept"
    );
    assert!(
        !tokens[1] && !tokens[3],
        "tokens of genes 0–2 and 3–5 are not linked"
    );
    assert!(gene_adjacency(&Array2::zeros((1, 3)), &config).is_err());
}

/// One context; singles G0, G1, G2 and the double G0+G1; gene g of perturbation p shifted by a known
/// amount; `n` cells per condition.
fn toy_data(n: usize) -> PerturbationData {
    let genes = names("g", 6);
    let labels = ["control", "G0", "G1", "G2", "G0+G1"];
    let shift = |l: &str, g: usize| -> f32 {
        let s = |t: &str| match (t, g) {
            ("G0", 0) | ("G0", 3) => 2.0,
            ("G1", 1) => -1.5,
            ("G2", 2) | ("G2", 5) => 1.0,
            _ => 0.0,
        };
        l.split('+').map(s).sum()
    };
    let mut r = rng::stream(2, "toy", 0);
    let e = rng::normals(&mut r, labels.len() * n * 6);
    let x = Array2::from_shape_fn((labels.len() * n, 6), |(c, g)| {
        let l = labels[c / n];
        let base = if l == "control" { 0.0 } else { shift(l, g) };
        1.0 + base + 0.5 * e[c * 6 + g]
    });
    let treatment_labels = (0..labels.len() * n)
        .map(|c| labels[c / n].to_string())
        .collect();
    PerturbationData::new(
        genes,
        x,
        CellAnnotations {
            contexts: vec!["ctx".to_string(); labels.len() * n],
            treatment_labels,
            ..CellAnnotations::default()
        },
        "control",
    )
    .unwrap()
}

fn task_of(data: &PerturbationData, label: &str) -> Task {
    let control = data
        .conditions()
        .iter()
        .find(|c| data.treatments[c.treatment].is_control())
        .unwrap();
    let t = data.treatment_index(label).unwrap();
    let query = data.conditions().iter().find(|c| c.treatment == t).unwrap();
    Task {
        context: "ctx".into(),
        context_index: 0,
        genes: Arc::new(data.genes.clone()),
        observational: data.cells_of(control),
        experiments: vec![],
        context_cells: Array3::zeros((0, 0, data.n_genes())),
        query: TaskTreatment::from_label(label, "control", 1.0),
        target: Some(data.cells_of(query)),
    }
}

fn train_conditions(data: &PerturbationData, except: &str) -> Vec<usize> {
    let held = data.treatment_index(except).unwrap();
    (0..data.conditions().len())
        .filter(|&c| data.conditions()[c].treatment != held)
        .collect()
}

fn tiny_model(data: &PerturbationData) -> CellTarNet {
    CellTarNet::for_data(data, "tiny", cellshift_data::DeviceSpec::Cpu).unwrap()
}

#[test]
fn cached_and_uncached_sampling_give_the_same_cells_with_and_without_guidance() {
    let data = toy_data(30);
    let mut model = tiny_model(&data);
    model.config_mut().batch_size = 4;
    let mut ctx = FitContext {
        budget: Some(Budget::Steps(3)),
        ..FitContext::default()
    };
    model
        .fit(&data, &train_conditions(&data, "G0+G1"), &mut ctx)
        .unwrap();
    let task = task_of(&data, "G0+G1");
    // Three steps from zero-initialised output heads leave the flow almost the identity, under which
    // any two decodings agree; with random heads the flow transforms its input (checked), so the
    // cached and uncached decodings must agree on a real flow.
    let mut near_identity = Vec::new();
    for guidance in [0.0, 1.5] {
        model.config_mut().guidance = guidance;
        near_identity.push(model.sample(&task, 20, 5).unwrap());
    }
    model.randomize_heads_for_test(11, 0.05);
    for (guidance, before) in [0.0, 1.5].into_iter().zip(&near_identity) {
        model.config_mut().guidance = guidance;
        model.set_decoding(Decoding::Cached);
        let a = model.sample(&task, 20, 5).unwrap();
        let moved = (&a - before).mapv(f32::abs).mean().unwrap();
        println!("guidance {guidance}: random heads move the cells by {moved:.4} on average");
        assert!(
            moved > 0.05,
            "guidance {guidance}: the randomised flow is still near the identity ({moved})"
        );
        model.set_decoding(Decoding::Uncached);
        let b = model.sample(&task, 20, 5).unwrap();
        let diff = (&a - &b).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
        assert!(
            diff < 1e-4,
            "guidance {guidance}: cached vs uncached differ by {diff}"
        );
        let c = model.sample(&task, 20, 6).unwrap();
        assert!(
            (&a - &c).mapv(f32::abs).sum() > 1e-3,
            "another seed, other cells"
        );
    }
}

#[test]
fn untrained_model_log_likelihood_is_the_gaussian_one_of_the_standardised_data() {
    // Zero steps: the flow is the identity, so log p(x) = log N((x − m)/s) − Σ log s per gene.
    let data = toy_data(200);
    let mut model = tiny_model(&data);
    let train = train_conditions(&data, "G0+G1");
    let mut ctx = FitContext {
        budget: Some(Budget::Steps(0)),
        ..FitContext::default()
    };
    model.fit_conditions(&data, &train, &mut ctx).unwrap();
    let task = task_of(&data, "G2");
    let cells = task.target.clone().unwrap();
    let ll = model.log_likelihood(&task, &cells, 0).unwrap();
    // Training mean and std per gene over all training cells.
    let idx: Vec<usize> = train
        .iter()
        .flat_map(|&c| data.conditions()[c].cells.clone())
        .collect();
    let x = data.x.select_rows(&idx);
    let m = x.mean_axis(ndarray::Axis(0)).unwrap();
    let s = x.std_axis(ndarray::Axis(0), 0.0);
    let mut expected = 0.0f64;
    for row in cells.rows() {
        for g in 0..6 {
            let u = ((row[g] - m[g]) / s[g]) as f64;
            expected += -0.5 * u * u - 0.5 * (2.0 * std::f64::consts::PI).ln() - (s[g] as f64).ln();
        }
    }
    expected /= (cells.nrows() * 6) as f64;
    assert!((ll - expected).abs() < 1e-4, "{ll} vs {expected}");
}

#[test]
fn training_lowers_the_loss_and_the_held_out_likelihood_rises_and_checkpoints_round_trip() {
    let data = toy_data(60);
    let train = train_conditions(&data, "G0+G1");
    // A training condition: the fit must raise its likelihood and move its samples (generalising to the
    // held-out double is a benchmark question, not a unit test).
    let task = task_of(&data, "G2");
    let target = task.target.clone().unwrap();
    let dir = std::env::temp_dir().join(format!("celltarnet-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut untrained = tiny_model(&data);
    untrained
        .fit_conditions(
            &data,
            &train,
            &mut FitContext {
                budget: Some(Budget::Steps(0)),
                ..FitContext::default()
            },
        )
        .unwrap();
    let ll0 = untrained.log_likelihood(&task, &target, 0).unwrap();
    let mut model = tiny_model(&data);
    let mut losses = Vec::new();
    let mut components = Vec::new();
    let mut report = |p: &cellshift_data::Progress| {
        losses.push(p.loss);
        components = p.components.clone();
    };
    let mut ctx = FitContext {
        budget: Some(Budget::Steps(120)),
        run_dir: Some(dir.clone()),
        progress: Some(&mut report),
        ..FitContext::default()
    };
    model.fit(&data, &train, &mut ctx).unwrap();
    drop(ctx);
    let first: f64 = losses[..10].iter().sum::<f64>() / 10.0;
    let last: f64 = losses[losses.len() - 10..].iter().sum::<f64>() / 10.0;
    assert!(last < first - 0.1, "loss {first} → {last}");
    let names: Vec<&str> = components.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["nll_post", "denoise", "infonce"]);
    assert!(components.iter().all(|(_, v)| v.is_finite()));
    let ll = model.log_likelihood(&task, &target, 0).unwrap();
    assert!(ll > ll0 + 0.05, "held-out log-likelihood {ll0} → {ll}");
    // The sampled mean moves from the control mean towards G2's shift (+1 on genes 2 and 5).
    let cells = model.sample(&task, 300, 1).unwrap();
    let mean = cells.mean_axis(ndarray::Axis(0)).unwrap();
    let truth = target.mean_axis(ndarray::Axis(0)).unwrap();
    let control = task.observational.mean_axis(ndarray::Axis(0)).unwrap();
    let err = |m: &ndarray::Array1<f32>| (m[2] - truth[2]).abs() + (m[5] - truth[5]).abs();
    assert!(
        err(&mean) < 0.5 * err(&control),
        "sample mean {mean} vs truth {truth}"
    );
    // Loaded from the run directory: the same cells.
    let loaded = load_celltarnet(&dir, &InferenceOptions::default()).unwrap();
    let again = loaded.sample(&task, 300, 1).unwrap();
    let diff = (&cells - &again)
        .mapv(f32::abs)
        .fold(0.0f32, |m, &v| m.max(v));
    assert!(diff < 1e-5, "loaded model differs by {diff}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let data = toy_data(10);
    let model = tiny_model(&data);
    let task = task_of(&data, "G0");
    assert!(model
        .sample(&task, 3, 0)
        .unwrap_err()
        .to_string()
        .contains("not fitted"));
    let mut fitted = tiny_model(&data);
    fitted
        .fit_conditions(
            &data,
            &train_conditions(&data, "G0+G1"),
            &mut FitContext {
                budget: Some(Budget::Steps(0)),
                ..FitContext::default()
            },
        )
        .unwrap();
    let mut unknown = task.clone();
    unknown.query = TaskTreatment::from_label("G9", "control", 1.0);
    assert!(fitted
        .sample(&unknown, 3, 0)
        .unwrap_err()
        .to_string()
        .contains("G9"));
    let mut no_controls = task.clone();
    no_controls.observational = Array2::zeros((0, 6));
    assert!(fitted.sample(&no_controls, 3, 0).is_err());
    let only_control: Vec<usize> = vec![0];
    let mut fresh = tiny_model(&data);
    let err = fresh
        .fit_conditions(&data, &only_control, &mut FitContext::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("perturbed"), "{err}");
}

#[test]
fn network_builds_for_a_config_and_infonce_uses_both_negative_types() {
    let config = CellTarNetConfig::preset("tiny", names("g", 5), names("p", 3)).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = CellTarNetNet::new(
        &ParamBuilder::new(vs.root(), 0),
        &config,
        None,
        Some(&vec![true; 25]),
    );
    assert_eq!(net.flow.tokens(), 5);
    // Away from the identity initialisation, so that a code depends on its context.
    randomise_heads(&vs, 2, 0.3);
    // A batch where every anchor has exactly one negative of each kind available.
    let b = 4i64;
    let batch = super::model::TrainBatch {
        pre: Tensor::randn([b, 5], (Kind::Float, Device::Cpu)),
        pre_noise: Tensor::zeros([b, 5], (Kind::Float, Device::Cpu)),
        post: Tensor::randn([b, 5], (Kind::Float, Device::Cpu)),
        post2: Tensor::randn([b, 5], (Kind::Float, Device::Cpu)),
        flow_noise: Tensor::zeros([3 * b, 5], (Kind::Float, Device::Cpu)),
        perturbation: Tensor::from_slice(&[1.0f32, 0., 0., 0., 1., 0., 1., 0., 0., 0., 1., 0.])
            .view([b, 3]),
        dropped: Tensor::from_slice(&[false, false, false, true]),
        neg_context: Tensor::from_slice(&[1i64, 1, 0, 0, 1, 1, 0, 0]).view([b, 2]),
        neg_post: Tensor::from_slice(&[1i64, 1, 0, 0, 1, 1, 0, 0]).view([b, 2]),
        neg_valid: Tensor::from_slice(&[true, false, true, false, true, false, true, false])
            .view([b, 2]),
    };
    let infonce = |batch: &super::model::TrainBatch| {
        let terms = net.loss(batch, &config).unwrap();
        assert!(terms.total.double_value(&[]).is_finite());
        terms
            .components
            .iter()
            .find(|(n, _)| n == "infonce")
            .unwrap()
            .1
            .double_value(&[])
    };
    let base = infonce(&batch);
    assert!(base > 0.0, "{base}");
    // Both negative types enter the loss: moving either one changes it.
    let moved_ctx = super::model::TrainBatch {
        neg_context: Tensor::from_slice(&[2i64, 1, 2, 0, 0, 1, 1, 0]).view([b, 2]),
        ..clone_batch(&batch)
    };
    assert!((infonce(&moved_ctx) - base).abs() > 1e-6);
    let moved_post = super::model::TrainBatch {
        neg_post: Tensor::from_slice(&[2i64, 1, 2, 0, 0, 1, 1, 0]).view([b, 2]),
        ..clone_batch(&batch)
    };
    assert!((infonce(&moved_post) - base).abs() > 1e-6);
    // Without any negative no anchor counts.
    let none = super::model::TrainBatch {
        neg_valid: Tensor::zeros([b, 2], (Kind::Bool, Device::Cpu)),
        ..clone_batch(&batch)
    };
    assert_eq!(infonce(&none), 0.0);
}

fn clone_batch(b: &super::model::TrainBatch) -> super::model::TrainBatch {
    super::model::TrainBatch {
        pre: b.pre.copy(),
        pre_noise: b.pre_noise.copy(),
        post: b.post.copy(),
        post2: b.post2.copy(),
        flow_noise: b.flow_noise.copy(),
        perturbation: b.perturbation.copy(),
        dropped: b.dropped.copy(),
        neg_context: b.neg_context.copy(),
        neg_post: b.neg_post.copy(),
        neg_valid: b.neg_valid.copy(),
    }
}
