//! scDFM parity with golden outputs of the authors' code (`shared/golden/scdfm`, tolerances of its
//! README) and behaviour tests.

use std::collections::HashMap;
use std::path::PathBuf;

use ndarray::Array2;
use tch::{nn, Device, Kind, Tensor};

use super::config::{AttentionKind, MaskRows, ScdfmConfig};
use super::graph;
use super::loss;
use super::model::{Activations, DiffAttention, ScdfmNet, VelocityInputs};
use super::reference;
use crate::flow::solver::odeint_rk4_38;

fn golden() -> Option<PathBuf> {
    let dir = cellshift_data::testing::shared_dir(env!("CARGO_MANIFEST_DIR")).join("golden/scdfm");
    cellshift_data::testing::require_path(&dir)
}

fn npz(name: &str) -> Option<HashMap<String, Tensor>> {
    let dir = golden()?;
    let file = std::fs::File::open(dir.join(name)).expect("golden npz");
    let mut r = ndarray_npy::NpzReader::new(file).expect("readable npz");
    let mut out = HashMap::new();
    for key in r.names().unwrap() {
        let name = key.trim_end_matches(".npy").to_string();
        let shape = |s: &[usize]| s.iter().map(|&v| v as i64).collect::<Vec<i64>>();
        let t = if let Ok(a) = r.by_name::<ndarray::OwnedRepr<f32>, ndarray::IxDyn>(&key) {
            let a = a.as_standard_layout().to_owned();
            Tensor::from_slice(a.as_slice().unwrap()).reshape(shape(a.shape()))
        } else if let Ok(a) = r.by_name::<ndarray::OwnedRepr<f64>, ndarray::IxDyn>(&key) {
            let a = a.as_standard_layout().to_owned();
            Tensor::from_slice(a.as_slice().unwrap()).reshape(shape(a.shape()))
        } else if let Ok(a) = r.by_name::<ndarray::OwnedRepr<i64>, ndarray::IxDyn>(&key) {
            let a = a.as_standard_layout().to_owned();
            Tensor::from_slice(a.as_slice().unwrap()).reshape(shape(a.shape()))
        } else {
            let a = r
                .by_name::<ndarray::OwnedRepr<u8>, ndarray::IxDyn>(&key)
                .expect("f32/f64/i64/u8 array");
            let a = a.as_standard_layout().to_owned();
            Tensor::from_slice(a.as_slice().unwrap()).reshape(shape(a.shape()))
        };
        out.insert(name, t);
    }
    Some(out)
}

fn json(name: &str) -> serde_json::Value {
    let dir = golden().expect("golden dir");
    serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
}

/// Max of `|a − b| − (atol + rtol·|b|)` > 0 means failure; returns the worst absolute difference.
#[track_caller]
fn assert_close(what: &str, ours: &Tensor, theirs: &Tensor, atol: f64, rtol: f64) -> f64 {
    assert_eq!(ours.size(), theirs.size(), "{what}: shape");
    let a = ours.to_kind(Kind::Double);
    let b = theirs.to_kind(Kind::Double);
    let diff = (&a - &b).abs();
    let excess = (&diff - (b.abs() * rtol + atol)).max().double_value(&[]);
    let worst = diff.max().double_value(&[]);
    assert!(
        excess <= 0.0,
        "{what}: max |diff| {worst:.3e} exceeds atol {atol} + rtol {rtol}"
    );
    worst
}

fn tiny_config() -> ScdfmConfig {
    ScdfmConfig {
        ntoken: 32,
        ..ScdfmConfig::tiny()
    }
}

/// The tiny golden model with the golden parameters and mask.
fn golden_model(config: ScdfmConfig) -> Option<(nn::VarStore, ScdfmNet)> {
    let g = npz("graph.npz")?;
    let mask = g["mask_padded"].shallow_clone();
    let mut vs = nn::VarStore::new(Device::Cpu);
    let net = ScdfmNet::new(vs.root(), &config, &mask, 0).unwrap();
    let report = reference::load_reference(&mut vs, &golden()?.join("model.safetensors")).unwrap();
    assert_eq!(report.ignored.len(), 8, "{:?}", report.ignored);
    Some((vs, net))
}

#[test]
fn timestep_embedding_matches_golden() {
    let Some(d) = npz("timestep.npz") else { return };
    let e = super::model::timestep_embedding(&d["t"], 256);
    assert_close("emb256", &e, &d["emb256"], 1e-6, 0.0);
    let e = super::model::timestep_embedding(&d["t"], 7);
    assert_close("emb7", &e, &d["emb7"], 1e-6, 0.0);
}

#[test]
fn differential_attention_matches_golden() {
    let Some(d) = npz("diffattn.npz") else { return };
    let params: HashMap<String, Tensor> =
        Tensor::read_safetensors(golden().unwrap().join("diffattn.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    for (name, cross) in [("cross_true", true), ("cross_false", false)] {
        let vs = nn::VarStore::new(Device::Cpu);
        let pb = crate::blocks::ParamBuilder::new(vs.root().sub(name), 1);
        let m = DiffAttention::new(&pb, 32, 4, 1, cross, AttentionKind::Differential);
        tch::no_grad(|| {
            for (k, mut v) in vs.variables() {
                v.copy_(&params[&k]);
            }
        });
        assert!(
            (m.lambda_init - d[&format!("{name}.lambda_init")].double_value(&[])).abs() < 1e-15
        );
        let _g = tch::no_grad_guard();
        assert_close(
            &format!("{name}.lambda_full"),
            &m.lambda_full(),
            &d[&format!("{name}.lambda_full")],
            5e-6,
            1e-5,
        );
        let out = m.forward(&d["noisy_y"], &d["x"]);
        assert_close(
            &format!("{name}.out"),
            &out,
            &d[&format!("{name}.out")],
            5e-6,
            1e-5,
        );
        if cross {
            let out = m.forward(&d["noisy_y"], &d["noisy_y"]);
            assert_close("self_call.out", &out, &d["self_call.out"], 5e-6, 1e-5);
        }
    }
}

fn to_array_f64(t: &Tensor) -> Array2<f64> {
    let s = t.size();
    let v: Vec<f64> = t.to_kind(Kind::Double).flatten(0, -1).try_into().unwrap();
    Array2::from_shape_vec((s[0] as usize, s[1] as usize), v).unwrap()
}

fn to_array_bool(t: &Tensor) -> Array2<bool> {
    to_array_f64(t).mapv(|v| v != 0.0)
}

#[test]
fn coexpression_graph_matches_golden() {
    let Some(d) = npz("graph.npz") else { return };
    let meta = json("meta.json");
    let names: Vec<String> = serde_json::from_value(meta["var_names"].clone()).unwrap();
    let x = to_array_f64(&d["X"]).mapv(|v| v as f32);
    let xp = graph::preprocess_expression(x.view());
    let close = |what: &str, a: &Array2<f64>, b: &Array2<f64>| {
        for (p, q) in a.iter().zip(b) {
            assert!(
                (p - q).abs() <= 1e-12 + 1e-10 * q.abs(),
                "{what}: {p} vs {q}"
            );
        }
    };
    close("Xp", &xp, &to_array_f64(&d["Xp"]));
    let c = graph::correlation_matrix(xp.view());
    close("C", &c, &to_array_f64(&d["C"]));
    close(
        "A_abs",
        &graph::sparsify_topk(c.mapv(f64::abs).view(), 5),
        &to_array_f64(&d["A_abs"]),
    );
    close(
        "A_signed",
        &graph::sparsify_topk(c.view(), 5),
        &to_array_f64(&d["A_signed"]),
    );
    for (neg, raw, padded) in [
        (true, "mask_raw", "mask_padded"),
        (false, "mask_raw_signed", "mask_padded_signed"),
    ] {
        let g = graph::build_coexpression_graph(x.view(), 5, neg).unwrap();
        assert_eq!(g.mask, to_array_bool(&d[raw]), "{raw}");
        assert_eq!(
            graph::sorted_pad_mask(&g.mask, 4, &names),
            to_array_bool(&d[padded]),
            "{padded}"
        );
    }
    // The vocabulary: 4 specials + code-point order, as `meta.gene_ids_var_order`.
    let ids: Vec<i64> = serde_json::from_value(meta["gene_ids_var_order"].clone()).unwrap();
    let order = graph::sorted_order(&names);
    for (rank, &col) in order.iter().enumerate() {
        assert_eq!(ids[col], 4 + rank as i64);
    }
}

#[test]
fn mmd_and_median_bandwidths_match_golden() {
    let Some(d) = npz("mmd.npz") else { return };
    let j = json("mmd.json");
    for case in ["small", "large"] {
        let (x, y) = (&d[&format!("{case}.X")], &d[&format!("{case}.Y")]);
        let (sig, med) = loss::median_sigmas(y, &[0.5, 1.0, 2.0, 4.0]);
        let want_med = j[case]["median_sq_dist"].as_f64().unwrap();
        assert!(
            (med - want_med).abs() <= 1e-6 * want_med,
            "{case} median {med} vs {want_med}"
        );
        for (s, w) in sig.iter().zip(j[case]["sigmas"].as_array().unwrap()) {
            let w = w.as_f64().unwrap();
            assert!((s - w).abs() <= 1e-6 * w, "{case} sigma {s} vs {w}");
        }
        let want_sig: Vec<f64> = serde_json::from_value(j[case]["sigmas"].clone()).unwrap();
        let got = loss::mmd2_multi_sigma(x, y, &want_sig).double_value(&[]);
        let want = j[case]["mmd2"].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-6 + 1e-5 * want.abs(),
            "{case} mmd2 {got} vs {want}"
        );
        for (s, w) in want_sig
            .iter()
            .zip(j[case]["mmd2_per_sigma"].as_array().unwrap())
        {
            let got = loss::mmd2_unbiased(x, y, *s).double_value(&[]);
            let w = w.as_f64().unwrap();
            assert!(
                (got - w).abs() <= 1e-6 + 1e-5 * w.abs(),
                "{case} per-sigma {got} vs {w}"
            );
        }
        // The golden README gives no tolerance for the squared distances; it reports how far their
        // float32 `cdist` is from the exact float64 distances (`info_D2_YY_max_abs_vs_exact_float64`), and
        // its other tolerances are about 10× the deviations it saw: the same rule here.
        let atol = 10.0
            * j[case]["info_D2_YY_max_abs_vs_exact_float64"]
                .as_f64()
                .unwrap();
        assert_close(
            &format!("{case}.D2_YY"),
            &loss::pairwise_sq_dists(y, y),
            &d[&format!("{case}.D2_YY")],
            atol,
            0.0,
        );
        assert_close(
            &format!("{case}.D2_XY"),
            &loss::pairwise_sq_dists(x, y),
            &d[&format!("{case}.D2_XY")],
            atol,
            0.0,
        );
    }
}

#[test]
fn forward_velocity_and_activations_match_golden() {
    let Some(d) = npz("forward.npz") else { return };
    let (_vs, net) = golden_model(tiny_config()).unwrap();
    let _g = tch::no_grad_guard();
    let run = |net: &ScdfmNet, case: &str, acts: Option<&mut Activations>| {
        let k = |s: &str| &d[&format!("{case}.{s}")];
        net.forward(
            k("gene_id"),
            k("x_t"),
            k("t"),
            k("x_c"),
            k("perturbation_id"),
            false,
            acts,
        )
        .unwrap()
    };
    let mut acts = Activations::new();
    let v = run(&net, "double", Some(&mut acts));
    let mut report = Vec::new();
    let mut failed = Vec::new();
    for (key, want) in d.iter().filter(|(k, _)| k.starts_with("double.act.")) {
        let name = key.trim_start_matches("double.act.");
        let Some(got) = acts.get(name) else {
            failed.push(format!("{name}: not recorded"));
            continue;
        };
        let diff = (got.to_kind(Kind::Double) - want.to_kind(Kind::Double)).abs();
        let excess = (&diff - (want.to_kind(Kind::Double).abs() * 1e-5 + 1e-5))
            .max()
            .double_value(&[]);
        report.push(format!("{name}: {:.2e}", diff.max().double_value(&[])));
        if excess > 0.0 {
            failed.push(name.to_string());
        }
    }
    println!("{}", report.join("\n"));
    assert!(failed.is_empty(), "activations off: {failed:?}");
    assert_close("double.velocity", &v, &d["double.velocity"], 5e-6, 1e-5);
    assert_close(
        "single.velocity",
        &run(&net, "single", None),
        &d["single.velocity"],
        5e-6,
        1e-5,
    );
    assert_close(
        "mixed.velocity",
        &run(&net, "mixed", None),
        &d["mixed.velocity"],
        5e-6,
        1e-5,
    );
    // Per-cell mask rows differ from their code on the mixed batch only (rows 1 and 2).
    let (_vs2, per_cell) = golden_model(ScdfmConfig {
        mask_rows: MaskRows::PerCell,
        ..tiny_config()
    })
    .unwrap();
    let m = run(&per_cell, "mixed", None);
    assert_close(
        "mixed row 0 per-cell",
        &m.get(0),
        &d["mixed.velocity"].get(0),
        5e-6,
        1e-5,
    );
    let moved = (m.narrow(0, 1, 2) - d["mixed.velocity"].narrow(0, 1, 2))
        .abs()
        .max()
        .double_value(&[]);
    assert!(
        moved > 1e-3,
        "per-cell mask rows must change rows 1–2 (moved {moved})"
    );
    assert_close(
        "double per-cell",
        &run(&per_cell, "double", None),
        &d["double.velocity"],
        5e-6,
        1e-5,
    );
}

/// The golden training step's inputs: `(x1, xc, x0, t, x_t)` on the step's gene subset.
fn golden_training_inputs(d: &HashMap<String, Tensor>) -> (Tensor, Tensor, Tensor, Tensor, Tensor) {
    let idx = &d["input_gene_idx"];
    let x1 = d["target"].index_select(1, idx);
    let xc = d["source"].index_select(1, idx);
    let (t, x0) = (d["t"].shallow_clone(), d["x0"].shallow_clone());
    let x_t = (-&t + 1.0).unsqueeze(-1) * &x0 + t.unsqueeze(-1) * &x1;
    (x1, xc, x0, t, x_t)
}

/// Asserts that every parameter's gradient equals their code's (`train_grads.safetensors`); returns the
/// worst absolute difference.
fn assert_golden_gradients(vs: &nn::VarStore) -> f64 {
    let grads: HashMap<String, Tensor> =
        Tensor::read_safetensors(golden().unwrap().join("train_grads.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    let vars = vs.variables();
    assert_eq!(
        grads.len(),
        vars.len(),
        "every model parameter receives a gradient there"
    );
    let mut worst = 0f64;
    for (name, want) in &grads {
        let got = vars[name].grad();
        worst = worst.max(assert_close(
            &format!("grad {name}"),
            &got,
            want,
            1e-5,
            1e-4,
        ));
    }
    worst
}

#[test]
fn training_loss_and_gradients_match_golden() {
    let Some(d) = npz("train_loss.npz") else {
        return;
    };
    let j = json("train_loss.json");
    let (vs, net) = golden_model(tiny_config()).unwrap();
    let (x1, xc, x0, t, x_t) = golden_training_inputs(&d);
    let (genes, t, x0) = (&d["gene_input"], &t, &x0);
    assert_close("x_t", &x_t, &d["x_t"], 1e-6, 1e-6);
    let v = net
        .forward(genes, &x_t, t, &xc, &d["perturbation_id"], false, None)
        .unwrap();
    let parts = loss::flow_loss(v, x0, &x1, &x_t, t, 0.5, &[0.5, 1.0, 2.0, 4.0]);
    assert_close("velocity", &parts.velocity, &d["velocity"], 5e-6, 1e-5);
    let num = |k: &str| j[k].as_f64().unwrap();
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
    assert!(
        rel(parts.median_sq_dist, num("median_sq_dist")) <= 1e-6,
        "median {}",
        parts.median_sq_dist
    );
    for (s, w) in parts.sigmas.iter().zip(j["sigmas"].as_array().unwrap()) {
        assert!(rel(*s, w.as_f64().unwrap()) <= 1e-6, "sigma {s} vs {w}");
    }
    let cfm = parts.cfm.double_value(&[]);
    let mmd = parts.mmd.double_value(&[]);
    let total = parts.total.double_value(&[]);
    println!("cfm {cfm} mmd {mmd} total {total}");
    assert!(rel(cfm, num("cfm")) <= 1e-6, "cfm {cfm} vs {}", num("cfm"));
    assert!(
        (mmd - num("mmd")).abs() <= 1e-6 + 1e-5 * num("mmd"),
        "mmd {mmd} vs {}",
        num("mmd")
    );
    // Their MMD term one bandwidth at a time (x̂1 = x_t + (1 − t)·v against the targets), README tolerance.
    let one_minus_t: Tensor = 1.0 - t;
    let x1_hat = &x_t + one_minus_t.unsqueeze(1) * &parts.velocity;
    assert_close("x1_hat", &x1_hat, &d["x1_hat"], 1e-5, 1e-5);
    let want_sigmas: Vec<f64> = serde_json::from_value(j["sigmas"].clone()).unwrap();
    let per_sigma = j["mmd_per_sigma"].as_array().unwrap();
    assert_eq!(per_sigma.len(), want_sigmas.len());
    for (sigma, w) in want_sigmas.iter().zip(per_sigma) {
        let got = loss::mmd2_unbiased(&x1_hat, &x1, *sigma).double_value(&[]);
        let w = w.as_f64().unwrap();
        assert!(
            (got - w).abs() <= 1e-6 + 1e-5 * w.abs(),
            "mmd at sigma {sigma}: {got} vs {w}"
        );
    }
    assert!(
        rel(total, num("loss_total")) <= 1e-6,
        "total {total} vs {}",
        num("loss_total")
    );
    parts.total.backward();
    let worst = assert_golden_gradients(&vs);
    println!("worst gradient |diff| {worst:.2e}");
}

#[test]
fn recomputed_blocks_give_the_golden_loss_and_gradients() {
    // Activation checkpointing (`recompute`) must give exactly what their code's plain backward gives.
    let Some(d) = npz("train_loss.npz") else {
        return;
    };
    let j = json("train_loss.json");
    let (vs, net) = golden_model(tiny_config()).unwrap();
    let (x1, xc, x0, t, x_t) = golden_training_inputs(&d);
    let inputs = VelocityInputs {
        genes: &d["gene_input"],
        x_t: &x_t,
        t: &t,
        x_c: &xc,
        pert: &d["perturbation_id"],
    };
    let (total, parts) = super::recompute::forward_backward(&net, &inputs, false, |v| {
        let p = loss::flow_loss(v, &x0, &x1, &x_t, &t, 0.5, &[0.5, 1.0, 2.0, 4.0]);
        (p.total.shallow_clone(), p)
    })
    .unwrap();
    assert!(!total.requires_grad(), "the returned loss is detached");
    let want = j["loss_total"].as_f64().unwrap();
    let got = total.double_value(&[]);
    assert!(
        (got - want).abs() <= 1e-6 * want.abs(),
        "total {got} vs {want}"
    );
    assert_close("velocity", &parts.velocity, &d["velocity"], 5e-6, 1e-5);
    assert_golden_gradients(&vs);
}

#[test]
fn sampler_matches_golden() {
    let Some(d) = npz("sampler.npz") else { return };
    let (_vs, net) = golden_model(tiny_config()).unwrap();
    let _g = tch::no_grad_guard();
    let grid: Vec<f32> = d["t_grid"].shallow_clone().try_into().unwrap();
    assert_eq!(grid, crate::flow::solver::linspace_f32(20));
    let genes = d["gene_ids"].unsqueeze(0).repeat([4, 1]);
    let mut times = Vec::new();
    let traj = odeint_rk4_38(
        |t, x| {
            times.push(t);
            net.forward(
                &genes,
                x,
                &Tensor::from(t),
                &d["source"],
                &d["perturbation_id"],
                false,
                None,
            )
        },
        &d["x0"],
        &grid,
    )
    .unwrap();
    let want_t: Vec<f32> = d["eval_times"].shallow_clone().try_into().unwrap();
    assert_eq!(times, want_t, "evaluation times of the 3/8-rule RK4");
    let traj = Tensor::stack(&traj, 0);
    assert_close("trajectory", &traj, &d["trajectory"], 1e-5, 1e-5);
    assert_close(
        "output",
        &traj.get(19).clamp_min(0.0),
        &d["output"],
        1e-5,
        1e-5,
    );
}

#[test]
fn paper_preset_has_the_authors_real_parameter_shapes() {
    let dir = cellshift_data::testing::shared_dir(env!("CARGO_MANIFEST_DIR")).join("golden/scdfm");
    let Some(dir) = cellshift_data::testing::require_path(&dir) else {
        return;
    };
    let real: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("real_size_param_shapes.json")).unwrap(),
    )
    .unwrap();
    let shapes: HashMap<String, Vec<i64>> = real["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                serde_json::from_value(p[1].clone()).unwrap(),
            )
        })
        .collect();
    let count = |mode| {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ScdfmConfig {
            perturbation: mode,
            ..ScdfmConfig::paper()
        };
        let _net =
            ScdfmNet::new(vs.root(), &cfg, &super::model::open_mask(8, Device::Cpu), 0).unwrap();
        let vars = vs.variables();
        for (name, t) in &vars {
            assert_eq!(
                shapes.get(name),
                Some(&t.size()),
                "{name} must exist with the authors' shape"
            );
        }
        (super::model::parameter_count(&vs), vars.len())
    };
    let (crispr, _) = count(super::config::PerturbationMode::Crispr);
    assert_eq!(
        crispr as u64,
        real["n_parameters_used_in_crisper_predict_y"]
            .as_u64()
            .unwrap()
    );
    assert_eq!(crispr, 57_021_953);
    let (drug, _) = count(super::config::PerturbationMode::Drug);
    assert_eq!(
        drug - crispr,
        6000 * 512 + 2 * 512,
        "drug mode adds perturbation_embedder.*"
    );
    // What the port leaves out: p_mask_embed and p_head.* (predict_p mode only).
    let left_out: i64 = shapes
        .iter()
        .filter(|(n, _)| n.as_str() == "p_mask_embed" || n.starts_with("p_head."))
        .map(|(_, s)| s.iter().product::<i64>())
        .sum();
    assert_eq!(left_out, 264_192);
    assert_eq!(drug as i64 + left_out, 60_359_169);
    assert_eq!(real["n_parameters"].as_i64().unwrap(), 60_359_169);
}

#[test]
fn reference_loading_names_the_mismatch() {
    let Some(dir) = golden() else { return };
    let g = npz("graph.npz").unwrap();
    // One layer fewer than the checkpoint: its blocks.1.* are unknown to the model.
    let mut vs = nn::VarStore::new(Device::Cpu);
    let cfg = ScdfmConfig {
        nlayers: 1,
        ..tiny_config()
    };
    let _net = ScdfmNet::new(vs.root(), &cfg, &g["mask_padded"], 0).unwrap();
    let err = reference::load_reference(&mut vs, &dir.join("model.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("which this model does not have") && err.contains(".1."),
        "{err}"
    );
    // A wider model: shapes differ and the message names the parameter.
    let mut vs = nn::VarStore::new(Device::Cpu);
    let cfg = ScdfmConfig {
        d_model: 64,
        ..tiny_config()
    };
    let _net = ScdfmNet::new(vs.root(), &cfg, &g["mask_padded"], 0).unwrap();
    let err = reference::load_reference(&mut vs, &dir.join("model.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has shape") && err.contains("d_model"),
        "{err}"
    );
}

#[test]
fn vocabulary_mask_reproduces_their_sorted_pad_mask() {
    let Some(d) = npz("graph.npz") else { return };
    let meta = json("meta.json");
    let names: Vec<String> = serde_json::from_value(meta["var_names"].clone()).unwrap();
    let itos: Vec<String> = serde_json::from_value(meta["vocab_itos"].clone()).unwrap();
    let raw = to_array_bool(&d["mask_raw"]);
    let data = synthetic_data(&names, &[("control", 0.0)]);
    assert_eq!(super::vocab::vocabulary(&data), itos);
    assert_eq!(
        super::vocab::vocabulary_mask(&raw, &names, &itos),
        to_array_bool(&d["mask_padded"])
    );
}

// ---- the method on a small synthetic screen ---------------------------------------------------------

use super::method::{load_scdfm, Scdfm};
use cellshift_data::{CellAnnotations, FitContext, PerturbationData, Predictor, Task};

/// 40 cells per condition over `genes`; condition `label` shifts every gene by `shift` (cells ≥ 0).
fn synthetic_data(genes: &[String], conditions: &[(&str, f32)]) -> PerturbationData {
    let per = 40;
    let g = genes.len();
    let mut r = crate::rng::stream(3, "scdfm-test-data", 0);
    let noise = crate::rng::normals(&mut r, per * conditions.len() * g);
    let x = Array2::from_shape_fn((per * conditions.len(), g), |(i, j)| {
        let (_, s) = conditions[i / per];
        (1.0 + s * ((j % 3) as f32 - 1.0) + 0.3 * noise[i * g + j]).max(0.0)
    });
    let labels = (0..per * conditions.len())
        .map(|i| conditions[i / per].0.to_string())
        .collect();
    PerturbationData::new(
        genes.to_vec(),
        x,
        CellAnnotations {
            treatment_labels: labels,
            ..CellAnnotations::default()
        },
        "control",
    )
    .unwrap()
}

fn screen() -> PerturbationData {
    let genes: Vec<String> = (0..6).map(|i| format!("g{i}")).collect();
    synthetic_data(
        &genes,
        &[
            ("control", 0.0),
            ("A", 0.5),
            ("B", -0.5),
            ("C", 0.8),
            ("A+B", 0.2),
            ("A+C", 1.0),
        ],
    )
}

fn task_for(data: &PerturbationData, label: &str) -> Task {
    cellshift_data::testing::control_query_task(data, label)
}

fn conditions_without(data: &PerturbationData, held_out: &[&str]) -> Vec<usize> {
    (0..data.conditions().len())
        .filter(|&i| {
            !held_out.contains(
                &data.treatments[data.conditions()[i].treatment]
                    .label("control")
                    .as_str(),
            )
        })
        .collect()
}

fn quick_fit(data: &PerturbationData, held_out: &[&str], run_dir: Option<PathBuf>) -> Scdfm {
    let mut m = Scdfm::for_data(data, "tiny", cellshift_data::DeviceSpec::Cpu).unwrap();
    m.setup_mut().training.cells_per_step = 16;
    m.setup_mut().training.graph_topk = 2;
    m.setup_mut().training.checkpoint_every = 5;
    let mut losses = Vec::new();
    let mut progress = |p: &cellshift_data::Progress| losses.push((p.loss, p.components.clone()));
    let mut ctx = FitContext {
        run_dir,
        seed: 4,
        progress: Some(&mut progress),
        budget: Some(cellshift_data::Budget::Steps(12)),
        ..FitContext::default()
    };
    m.fit_conditions(data, &conditions_without(data, held_out), &mut ctx)
        .unwrap();
    assert_eq!(losses.len(), 12);
    for (l, parts) in &losses {
        assert!(l.is_finite());
        let names: Vec<&str> = parts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["cfm", "mmd"]);
        assert!((parts[0].1 + parts[1].1 - l).abs() < 1e-4 * l.abs().max(1.0));
    }
    m
}

#[test]
fn method_trains_predicts_seeded_and_round_trips_a_checkpoint() {
    let data = screen();
    let dir = tempfile::tempdir().unwrap();
    let m = quick_fit(&data, &["A+C"], Some(dir.path().to_path_buf()));
    let task = task_for(&data, "A+C");
    let a = m
        .predict_tasks(std::slice::from_ref(&task), 10, &[7])
        .unwrap()
        .remove(0);
    let b = m
        .predict_tasks(std::slice::from_ref(&task), 10, &[7])
        .unwrap()
        .remove(0);
    let c = m
        .predict_tasks(std::slice::from_ref(&task), 10, &[8])
        .unwrap()
        .remove(0);
    assert_eq!(a.dim(), (10, 6));
    assert_eq!(a, b, "same seed, same cells");
    assert_ne!(a, c, "another seed draws other cells");
    assert!(
        a.iter().all(|&v| v >= 0.0),
        "non-negative data: clamped at 0 as their sampler"
    );
    let loaded = load_scdfm(dir.path(), &Default::default()).unwrap();
    let d = loaded
        .predict_tasks(std::slice::from_ref(&task), 10, &[7])
        .unwrap()
        .remove(0);
    assert_eq!(a, d, "a loaded checkpoint predicts the same cells");
    assert_eq!(
        loaded.net().unwrap().mask.size(),
        m.net().unwrap().mask.size()
    );
    assert!(
        loaded.net().unwrap().mask.equal(&m.net().unwrap().mask),
        "the graph mask is checkpointed"
    );
    // A control query returns control cells; the registry knows the method.
    let ctl = m.predict(&task_for(&data, "control"), 5, 1).unwrap();
    assert_eq!(ctl.mean_profile().len(), 6);
    assert!(crate::registry::names().contains(&"scdfm"));
}

#[test]
fn resuming_a_run_equals_training_it_in_one_go() {
    let data = screen();
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let train = |dir: &std::path::Path, budgets: &[u64]| {
        let mut m = Scdfm::for_data(&data, "tiny", cellshift_data::DeviceSpec::Cpu).unwrap();
        m.setup_mut().training.cells_per_step = 8;
        m.setup_mut().training.steps = 10;
        for &b in budgets {
            let mut ctx = FitContext {
                run_dir: Some(dir.to_path_buf()),
                seed: 1,
                budget: Some(cellshift_data::Budget::Steps(b)),
                ..FitContext::default()
            };
            m.fit_conditions(&data, &conditions_without(&data, &[]), &mut ctx)
                .unwrap();
        }
        m.predict_tasks(&[task_for(&data, "A")], 4, &[0])
            .unwrap()
            .remove(0)
    };
    assert_eq!(train(one.path(), &[10]), train(two.path(), &[4, 10]));
}

#[test]
fn bad_inputs_give_errors_that_name_the_problem_and_the_fix() {
    let data = screen();
    let m = quick_fit(&data, &["C", "A+C"], None);
    let err = |label: &str| {
        m.predict_tasks(&[task_for(&data, label)], 4, &[0])
            .unwrap_err()
            .to_string()
    };
    let e = err("ZNF999");
    assert!(
        e.contains("`ZNF999` is not in the scDFM model's vocabulary")
            && e.contains("train on data"),
        "{e}"
    );
    let e = err("A+C");
    assert!(
        e.contains("the double `A+C` contains the unseen single `C`")
            && e.contains("put a condition"),
        "{e}"
    );
    let e = err("A+B+C");
    assert!(e.contains("one or two perturbed genes"), "{e}");
    // Data whose genes differ from the model's.
    let mut other = task_for(&data, "A");
    let mut genes = data.genes.clone();
    genes.swap(0, 1);
    other.genes = std::sync::Arc::new(genes);
    let e = m.predict_tasks(&[other], 4, &[0]).unwrap_err().to_string();
    assert!(
        e.contains("differ from the genes")
            && e.contains("column 0")
            && e.contains("bring the data"),
        "{e}"
    );
    // An unfitted model says what to do.
    let fresh = Scdfm::for_data(&data, "tiny", cellshift_data::DeviceSpec::Cpu).unwrap();
    let e = fresh
        .predict_tasks(&[task_for(&data, "A")], 4, &[0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("not fitted"), "{e}");
    // Unknown preset.
    let e = Scdfm::for_data(&data, "huge", cellshift_data::DeviceSpec::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no size `huge`") && e.contains("tiny, small, paper"),
        "{e}"
    );
}

#[test]
fn imported_reference_checkpoint_reproduces_their_forward() {
    let Some(d) = npz("forward.npz") else { return };
    let g = npz("graph.npz").unwrap();
    let meta = json("meta.json");
    let itos: Vec<String> = serde_json::from_value(meta["vocab_itos"].clone()).unwrap();
    let names: Vec<String> = serde_json::from_value(meta["var_names"].clone()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let ck = super::import::import_reference(
        &golden().unwrap().join("model.safetensors"),
        tiny_config(),
        itos,
        names,
        &to_array_bool(&g["mask_padded"]),
        out.path(),
    )
    .unwrap();
    let m = load_scdfm(&ck, &Default::default()).unwrap();
    let _g = tch::no_grad_guard();
    let k = |s: &str| &d[&format!("double.{s}")];
    let v = m
        .net()
        .unwrap()
        .forward(
            k("gene_id"),
            k("x_t"),
            k("t"),
            k("x_c"),
            k("perturbation_id"),
            false,
            None,
        )
        .unwrap();
    assert_close("imported double.velocity", &v, k("velocity"), 5e-6, 1e-5);
}

#[test]
fn splits_follow_their_definitions_and_are_seeded() {
    use super::split::{split_conditions, SplitKind, SplitOptions};
    let genes: Vec<String> = (0..4).map(|i| format!("g{i}")).collect();
    let mut conds: Vec<(String, f32)> = vec![("control".into(), 0.0)];
    let singles = ["A", "B", "C", "D", "E", "F"];
    for s in singles {
        conds.push((s.into(), 0.1));
    }
    for (i, a) in singles.iter().enumerate() {
        for b in &singles[i + 1..] {
            conds.push((format!("{a}+{b}"), 0.2));
        }
    }
    let refs: Vec<(&str, f32)> = conds.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    let data = synthetic_data(&genes, &refs);
    let label = |i: usize| data.treatments[data.conditions()[i].treatment].label("control");
    let is_double = |i: usize| label(i).contains('+');
    // additive: 30 % of the 15 doubles (5 rounded from 4.5), singles all trained on.
    let add = split_conditions(&data, SplitOptions::new(SplitKind::Additive, 42)).unwrap();
    assert_eq!(add.test.len(), 5);
    assert!(add.test.iter().all(|&i| is_double(i)));
    assert_eq!(add.train.len() + add.test.len(), data.conditions().len());
    assert_eq!(
        add,
        split_conditions(&data, SplitOptions::new(SplitKind::Additive, 42)).unwrap()
    );
    assert_ne!(
        add,
        split_conditions(&data, SplitOptions::new(SplitKind::Additive, 43)).unwrap()
    );
    // unseen: 2 held-out genes → their 2 singles + the 9 doubles containing one of them.
    let opts = SplitOptions {
        n_unseen: 2,
        ..SplitOptions::new(SplitKind::Unseen, 1)
    };
    let un = split_conditions(&data, opts).unwrap();
    let held: Vec<String> = un
        .test
        .iter()
        .filter(|&&i| !is_double(i))
        .map(|&i| label(i))
        .collect();
    assert_eq!(held.len(), 2);
    assert_eq!(un.test.len(), 2 + 9);
    for &i in &un.train {
        assert!(
            !held.iter().any(|g| label(i).split('+').any(|p| p == g)),
            "{} leaks",
            label(i)
        );
    }
    // combinations: 2 doubles + the singles of their genes.
    let opts = SplitOptions {
        n_combinations: 2,
        ..SplitOptions::new(SplitKind::Combinations, 1)
    };
    let co = split_conditions(&data, opts).unwrap();
    let doubles: Vec<String> = co
        .test
        .iter()
        .filter(|&&i| is_double(i))
        .map(|&i| label(i))
        .collect();
    assert_eq!(doubles.len(), 2);
    for d in &doubles {
        for g in d.split('+') {
            assert!(
                co.test.iter().any(|&i| label(i) == g),
                "single {g} of {d} must be held out"
            );
        }
    }
    // Their always-true `or` makes every split additive.
    let bug = SplitOptions {
        reproduce_or_bug: true,
        ..opts
    };
    assert_eq!(
        split_conditions(&data, bug).unwrap(),
        add_with_seed(&data, 1)
    );
    let e = split_conditions(&data, SplitOptions::new(SplitKind::Unseen, 0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("lower n_unseen"), "{e}");
}

fn add_with_seed(data: &PerturbationData, seed: u64) -> super::split::ConditionSplit {
    use super::split::{split_conditions, SplitKind, SplitOptions};
    split_conditions(data, SplitOptions::new(SplitKind::Additive, seed)).unwrap()
}

// ---- drug mode on a compound screen -------------------------------------------------------------

use cellshift_data::Treatment;

/// The synthetic screen with compounds `drugA`, `drugB`, `drugC` (dose 1) instead of gene perturbations.
fn compound_screen() -> PerturbationData {
    let genes: Vec<String> = (0..6).map(|i| format!("g{i}")).collect();
    let mut data = synthetic_data(
        &genes,
        &[
            ("control", 0.0),
            ("drugA", 0.5),
            ("drugB", -0.5),
            ("drugC", 0.8),
        ],
    );
    for t in data.treatments.iter_mut() {
        if let Treatment::Knockout { gene } = t {
            *t = Treatment::Compound {
                name: gene.clone(),
                dose: 1.0,
            };
        }
    }
    data
}

fn compound_task(data: &PerturbationData, name: &str, dose: f64) -> Task {
    let mut task = task_for(data, "control");
    let treatment = Treatment::Compound {
        name: name.into(),
        dose,
    };
    task.query = cellshift_data::TaskTreatment {
        label: treatment.label("control"),
        treatment,
        value: 1.0,
    };
    task
}

#[test]
fn drug_mode_trains_on_compounds_predicts_seen_ones_and_refuses_unseen_ones() {
    use super::config::PerturbationMode;
    let data = compound_screen();
    let dir = tempfile::tempdir().unwrap();
    let m = quick_fit(&data, &["drugC@1"], Some(dir.path().to_path_buf()));
    assert_eq!(m.setup().net.perturbation, PerturbationMode::Drug);
    assert_eq!(
        m.setup().compounds,
        ["drugA@1", "drugB@1"],
        "training compounds only"
    );
    let predict = |m: &Scdfm, name: &str, dose: f64| {
        m.predict_tasks(&[compound_task(&data, name, dose)], 10, &[7])
            .map(|mut v| v.remove(0))
    };
    let a = predict(&m, "drugA", 1.0).unwrap();
    let b = predict(&m, "drugB", 1.0).unwrap();
    assert_eq!(a.dim(), (10, 6));
    assert!(a.iter().all(|v| v.is_finite() && *v >= 0.0));
    assert_ne!(
        a, b,
        "each compound has its own perturbation_embedder token"
    );
    // The compound tokens go through the perturbation_embedder table (saved with the weights).
    let net = m.net().unwrap();
    let ids = Tensor::from_slice(&[4i64, 3, 5, 3]).view([2, 2]);
    let e = net.perturbation_embedding(&ids, false);
    assert!(e.get(0).not_equal_tensor(&e.get(1)).any().int64_value(&[]) == 1);
    // The checkpoint keeps the compound vocabulary and the table.
    let loaded = load_scdfm(dir.path(), &Default::default()).unwrap();
    assert_eq!(loaded.setup().compounds, m.setup().compounds);
    assert_eq!(predict(&loaded, "drugA", 1.0).unwrap(), a);
    // A compound absent from training (held out, or another dose) is named, with the reason.
    let e = predict(&m, "drugC", 1.0).unwrap_err().to_string();
    assert!(
        e.contains("compound `drugC@1`")
            && e.contains("cannot embed compounds absent from training")
            && e.contains("drugA@1, drugB@1"),
        "{e}"
    );
    let e = predict(&m, "drugA", 2.0).unwrap_err().to_string();
    assert!(
        e.contains("`drugA@2`") && e.contains("only as drugA@1"),
        "{e}"
    );
    // A genetic query to a drug-mode model.
    let e = m
        .predict_tasks(&[task_for(&data, "g1")], 4, &[0])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("genetic perturbation") && e.contains("drug mode"),
        "{e}"
    );
}

#[test]
fn mixed_screens_and_compounds_in_genetic_mode_are_refused_with_the_fix() {
    let mut mixed = compound_screen();
    mixed.treatments[1] = Treatment::Knockout { gene: "g1".into() };
    let e = Scdfm::for_data(&mixed, "tiny", cellshift_data::DeviceSpec::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mixes compounds")
            && e.contains("`g1`")
            && e.contains("train one model on each"),
        "{e}"
    );
    let genetic = screen();
    let m = quick_fit(&genetic, &[], None);
    let e = m
        .predict_tasks(&[compound_task(&genetic, "drugA", 1.0)], 4, &[0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("`drugA@1`") && e.contains("genetic mode"), "{e}");
    // A genetic model is not fitted on a compound screen.
    let mut fresh = Scdfm::for_data(&genetic, "tiny", cellshift_data::DeviceSpec::Cpu).unwrap();
    let mut compounds = compound_screen();
    compounds.genes = genetic.genes.clone();
    let e = fresh
        .fit_conditions(&compounds, &[0, 1], &mut FitContext::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("genetic mode") && e.contains("drug mode"), "{e}");
}

#[test]
fn reference_configuration_is_read_from_the_parameter_shapes() {
    let Some(dir) = golden() else { return };
    let c = reference::config_from_reference(&dir.join("model.safetensors")).unwrap();
    assert_eq!(
        (
            c.ntoken,
            c.d_model,
            c.nhead,
            c.nlayers,
            c.frequency_embedding_size
        ),
        (32, 32, 4, 2, 256)
    );
    assert_eq!(c.gene_encoder_nhead, 8);
}
