//! scDFM parity with golden outputs of the authors' code (`shared/golden/scdfm`, tolerances of its
//! README) and behaviour tests.

use std::collections::HashMap;
use std::path::PathBuf;

use ndarray::Array2;
use tch::{nn, Device, Kind, Tensor};

use super::config::{AttentionKind, MaskRows, ScdfmConfig};
use super::graph;
use super::loss;
use super::model::{Activations, DiffAttention, ScdfmNet};
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
        assert_close(
            &format!("{case}.D2_YY"),
            &loss::pairwise_sq_dists(y, y),
            &d[&format!("{case}.D2_YY")],
            1e-4,
            1e-5,
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
            if name == "perturbation_tokens" {
                continue;
            }
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

#[test]
fn training_loss_and_gradients_match_golden() {
    let Some(d) = npz("train_loss.npz") else {
        return;
    };
    let j = json("train_loss.json");
    let (vs, net) = golden_model(tiny_config()).unwrap();
    let idx = &d["input_gene_idx"];
    let x1 = d["target"].index_select(1, idx);
    let xc = d["source"].index_select(1, idx);
    let genes = &d["gene_input"];
    let t = &d["t"];
    let x0 = &d["x0"];
    let x_t = (-t + 1.0).unsqueeze(-1) * x0 + t.unsqueeze(-1) * &x1;
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
    assert!(
        rel(total, num("loss_total")) <= 1e-6,
        "total {total} vs {}",
        num("loss_total")
    );
    parts.total.backward();
    let grads: HashMap<String, Tensor> =
        Tensor::read_safetensors(golden().unwrap().join("train_grads.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    let vars = vs.variables();
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
    assert_eq!(
        grads.len(),
        vars.len(),
        "every model parameter receives a gradient there"
    );
    println!("worst gradient |diff| {worst:.2e}");
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
