//! `cellshift import`: the scDFM authors' tiny golden checkpoint (`shared/golden/scdfm`) becomes a
//! cellshift checkpoint whose parameters equal theirs bit for bit and whose forward reproduces theirs; the
//! imported model predicts through the CLI; bad inputs are named and leave no output behind.

mod common;

use std::path::{Path, PathBuf};

use cellshift_data::h5ad::{write_perturbation_data, PerturbationColumns, WriteOptions};
use cellshift_data::testing::{require_path, shared_dir};
use cellshift_data::{CellAnnotations, PerturbationData};
use common::cellshift;
use ndarray::{Array2, ArrayD, IxDyn};
use tch::{Kind, Tensor};

/// The tests of this file run one at a time: HDF5 opens (and locks) the screen each writes without
/// close-on-exec, so a `cellshift` started by the other test meanwhile would inherit the lock.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn golden() -> Option<PathBuf> {
    require_path(&shared_dir(env!("CARGO_MANIFEST_DIR")).join("golden/scdfm"))
}

fn npz_f32(path: &Path, key: &str) -> ArrayD<f32> {
    let mut r = ndarray_npy::NpzReader::new(std::fs::File::open(path).unwrap()).unwrap();
    r.by_name::<ndarray::OwnedRepr<f32>, IxDyn>(&format!("{key}.npy"))
        .unwrap()
}

fn npz_i64(path: &Path, key: &str) -> ArrayD<i64> {
    let mut r = ndarray_npy::NpzReader::new(std::fs::File::open(path).unwrap()).unwrap();
    r.by_name::<ndarray::OwnedRepr<i64>, IxDyn>(&format!("{key}.npy"))
        .unwrap()
}

fn npz_u8(path: &Path, key: &str) -> Array2<u8> {
    let mut r = ndarray_npy::NpzReader::new(std::fs::File::open(path).unwrap()).unwrap();
    r.by_name::<ndarray::OwnedRepr<u8>, ndarray::Ix2>(&format!("{key}.npy"))
        .unwrap()
}

fn tensor_f32(a: &ArrayD<f32>) -> Tensor {
    let shape: Vec<i64> = a.shape().iter().map(|&s| s as i64).collect();
    Tensor::from_slice(a.as_standard_layout().as_slice().unwrap()).reshape(shape)
}

fn tensor_i64(a: &ArrayD<i64>) -> Tensor {
    let shape: Vec<i64> = a.shape().iter().map(|&s| s as i64).collect();
    Tensor::from_slice(a.as_standard_layout().as_slice().unwrap()).reshape(shape)
}

fn meta_list(dir: &Path, key: &str) -> Vec<String> {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    serde_json::from_value(meta[key].clone()).unwrap()
}

/// A screen over the golden genes (var order) with the golden graph's 300 cells: the first half
/// control, the rest perturbing MYC (a measured gene, so the vocabulary is their 28 tokens).
fn golden_screen(dir: &Path, out: &Path) -> PathBuf {
    let genes = meta_list(dir, "var_names");
    let x = npz_f32(&dir.join("graph.npz"), "X")
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let labels = (0..x.nrows())
        .map(|i| if i < 150 { "control" } else { "MYC" }.to_string())
        .collect();
    let data = PerturbationData::new(
        genes,
        x,
        CellAnnotations {
            treatment_labels: labels,
            ..CellAnnotations::default()
        },
        "control",
    )
    .unwrap();
    let path = out.join("golden_screen.h5ad");
    write_perturbation_data(
        &path,
        &data,
        &PerturbationColumns::default(),
        &WriteOptions::default(),
    )
    .unwrap();
    path
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The checkpoint directory a run directory's LATEST names.
fn latest(run: &Path) -> PathBuf {
    run.join(std::fs::read_to_string(run.join("LATEST")).unwrap().trim())
}

#[test]
fn the_authors_tiny_checkpoint_imports_bit_for_bit_and_reproduces_their_forward() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(dir) = golden() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = golden_screen(&dir, tmp.path());
    let mask = tmp.path().join("mask.npy");
    ndarray_npy::write_npy(&mask, &npz_u8(&dir.join("graph.npz"), "mask_padded")).unwrap();
    let out = tmp.path().join("imported");
    let (code, stdout, stderr) = cellshift(&[
        "import",
        "--method",
        "scdfm",
        "--reference",
        &s(&dir.join("model.safetensors")),
        "--params",
        &s(&dir.join("model_params.json")),
        "--data",
        &s(&data),
        "--control",
        "control",
        "--mask",
        &s(&mask),
        "--out",
        &s(&out),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("scdfm checkpoint"), "{stdout}");
    let ck = latest(&out);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ck.join("checkpoint.json")).unwrap())
            .unwrap();
    assert_eq!(meta["method"], "scdfm");
    assert_eq!(
        serde_json::from_value::<Vec<String>>(meta["model_config"]["vocab"].clone()).unwrap(),
        meta_list(&dir, "vocab_itos"),
        "the vocabulary built from the screen is their GeneVocab"
    );
    // Every parameter of the model equals their tensor bit for bit; only the 8 unused ones are left out.
    let theirs: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(dir.join("model.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    let ours: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(ck.join("checkpoint.safetensors"))
            .unwrap()
            .into_iter()
            .filter_map(|(n, t)| n.strip_prefix("model/").map(|n| (n.to_string(), t)))
            .collect();
    let mut compared = 0;
    for (name, t) in &ours {
        if name == "graph_mask" {
            let m = npz_u8(&dir.join("graph.npz"), "mask_padded").mapv(f32::from);
            let m = Tensor::from_slice(m.as_slice().unwrap()).view([28, 28]);
            assert!(t.equal(&m), "the graph mask is their mask_padded");
            continue;
        }
        let src = theirs
            .get(name)
            .unwrap_or_else(|| panic!("{name} not in theirs"));
        assert!(t.equal(src), "{name} differs from their tensor");
        compared += 1;
    }
    assert_eq!(compared, theirs.len() - 8);
    // The imported model's velocity is theirs (forward.npz, the double case).
    let model = cellshift_models::scdfm::load_scdfm(&out, &Default::default()).unwrap();
    let fw = dir.join("forward.npz");
    let v = tch::no_grad(|| {
        model
            .net()
            .unwrap()
            .forward(
                &tensor_i64(&npz_i64(&fw, "double.gene_id")),
                &tensor_f32(&npz_f32(&fw, "double.x_t")),
                &tensor_f32(&npz_f32(&fw, "double.t")),
                &tensor_f32(&npz_f32(&fw, "double.x_c")),
                &tensor_i64(&npz_i64(&fw, "double.perturbation_id")),
                false,
                None,
            )
            .unwrap()
    });
    let expected = tensor_f32(&npz_f32(&fw, "double.velocity"));
    let excess = ((&v - &expected).abs() - (expected.abs() * 1e-5 + 5e-6))
        .max()
        .to_kind(Kind::Double)
        .double_value(&[]);
    assert!(excess <= 0.0, "imported velocity differs from theirs");
    // `cellshift predict` uses the imported checkpoint.
    let pred = tmp.path().join("pred.h5ad");
    let (code, stdout, stderr) = cellshift(&[
        "predict",
        "--model",
        &s(&out),
        "--data",
        &s(&data),
        "--control",
        "control",
        "--query",
        "MYC",
        "--k",
        "0",
        "--cells",
        "8",
        "--threads",
        "1",
        "--out",
        &s(&pred),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(pred.is_file());
    // Without --mask the graph is rebuilt from the screen's cells: with their top-k (5) it is their mask.
    let rebuilt = tmp.path().join("rebuilt");
    let (code, stdout, stderr) = cellshift(&[
        "import",
        "--method",
        "scdfm",
        "--reference",
        &s(&dir.join("model.safetensors")),
        "--data",
        &s(&data),
        "--control",
        "control",
        "--graph-topk",
        "5",
        "--out",
        &s(&rebuilt),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("rebuilding the co-expression graph"),
        "{stderr}"
    );
    let a = cellshift_models::scdfm::load_scdfm(&rebuilt, &Default::default()).unwrap();
    assert!(a.net().unwrap().mask.equal(&model.net().unwrap().mask));
}

#[test]
fn bad_imports_are_named_with_the_fix_and_leave_no_output() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(dir) = golden() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = golden_screen(&dir, tmp.path());
    let out = tmp.path().join("out");
    let import = |method: &str, reference: &Path, extra: &[&str]| {
        let mut args = vec![
            "import".to_string(),
            "--method".into(),
            method.into(),
            "--reference".into(),
            s(reference),
            "--data".into(),
            s(&data),
            "--control".into(),
            "control".into(),
            "--graph-topk".into(),
            "5".into(),
            "--out".into(),
            s(&out),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, stderr) = cellshift(&refs);
        assert_ne!(code, 0, "{refs:?} succeeded");
        assert!(!out.exists(), "a failed import left {}", out.display());
        stderr
    };
    let reference = dir.join("model.safetensors");
    let e = import("mappfn", &reference, &[]);
    assert!(e.contains("method mappfn has no reference importer"), "{e}");
    let e = import("nosuch", &reference, &[]);
    assert!(e.contains("unknown method `nosuch`"), "{e}");
    let e = import("scdfm", &tmp.path().join("absent.safetensors"), &[]);
    assert!(e.contains("absent.safetensors does not exist"), "{e}");
    // Their tensors with one missing, one extra and one mis-shaped parameter.
    let theirs: Vec<(String, Tensor)> = Tensor::read_safetensors(&reference).unwrap();
    let edited = |name: &str, edit: &dyn Fn(&mut Vec<(String, Tensor)>)| {
        let mut t: Vec<(String, Tensor)> = theirs
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect();
        edit(&mut t);
        let path = tmp.path().join(name);
        Tensor::write_safetensors(&t, &path).unwrap();
        path
    };
    let missing = edited("missing.safetensors", &|t| {
        t.retain(|(n, _)| n != "final_layer.fc.4.bias")
    });
    let e = import("scdfm", &missing, &[]);
    assert!(
        e.contains("missing from the file (first: final_layer.fc.4.bias)")
            && e.contains("pass the complete state_dict"),
        "{e}"
    );
    let extra = edited("extra.safetensors", &|t| {
        t.push((
            "fusion_layer.9.weight".into(),
            Tensor::zeros([2], tch::kind::FLOAT_CPU),
        ))
    });
    let e = import("scdfm", &extra, &[]);
    assert!(
        e.contains("parameter `fusion_layer.9.weight`, which this model does not have")
            && e.contains("build the model with the checkpoint's configuration"),
        "{e}"
    );
    let shaped = edited("shaped.safetensors", &|t| {
        for (n, v) in t.iter_mut() {
            if n == "fusion_layer.2.weight" {
                *v = Tensor::zeros([32, 31], tch::kind::FLOAT_CPU);
            }
        }
    });
    let e = import("scdfm", &shaped, &[]);
    assert!(
        e.contains("`fusion_layer.2.weight` has shape [32, 31] in the file but [32, 32]"),
        "{e}"
    );
    // A vocabulary that does not hold the screen's genes.
    let vocab = tmp.path().join("vocab.json");
    std::fs::write(&vocab, r#"["<pad>", "<cls>", "<mask>", "control", "XYZ"]"#).unwrap();
    let e = import("scdfm", &reference, &["--vocab", &s(&vocab)]);
    assert!(
        e.contains("is not in the vocabulary") && e.contains("--vocab"),
        "{e}"
    );
    // An existing, non-empty output directory is never overwritten.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "x").unwrap();
    let (code, _, e) = cellshift(&[
        "import",
        "--method",
        "scdfm",
        "--reference",
        &s(&reference),
        "--data",
        &s(&data),
        "--out",
        &s(&out),
    ]);
    assert_ne!(code, 0);
    assert!(e.contains("already exists and is not empty"), "{e}");
    assert!(out.join("keep.txt").is_file());
}
