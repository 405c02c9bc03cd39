//! scDFM's reference importer (`cellshift import --method scdfm`): the authors' `origin` state_dict saved
//! as safetensors becomes a checkpoint of this port, with the network from `--params` or the parameter
//! shapes, the vocabulary from `--vocab` or the data, and the graph mask from `--mask` or rebuilt.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ndarray::Array2;

use std::collections::BTreeSet;

use tch::Device;

use super::config::{ScdfmSetup, ScdfmTraining};
use super::reference::config_from_reference;
use super::train::{train_config, Fitted};
use super::vocab::{preview, vocabulary, vocabulary_mask, SPECIALS};
use super::{graph, PerturbationMode, ScdfmConfig};
use crate::error::{ModelError, Result};
use crate::hooks::ImportRequest;
use crate::train::{Preprocessing, Trainer};

/// scDFM: the network from --params or the parameter shapes, the vocabulary from --vocab or the data,
/// the graph mask from --mask or rebuilt on the data's cells; parameters matched by their names.
pub fn import(args: &ImportRequest<'_>, out: &Path) -> anyhow::Result<PathBuf> {
    let data = args.data;
    let from_shapes = config_from_reference(args.reference)?;
    let net = match args.params {
        Some(p) => network_params(p, &from_shapes)?,
        None => from_shapes,
    };
    let vocab = match args.vocab {
        Some(p) => read_vocab(p)?,
        None => vocabulary(data),
    };
    if let Some(g) = data.genes.iter().find(|g| !vocab.contains(g)) {
        bail!(
            "gene `{g}` of {} is not in the vocabulary ({} tokens); give the screen on the checkpoint's genes \
             (`cellshift preprocess --genes …`) or the vocabulary the checkpoint was trained with (--vocab)",
            args.data_path.display(),
            vocab.len()
        );
    }
    let mask = match args.mask {
        Some(p) => read_mask(p)?,
        None => {
            eprintln!(
                "note: rebuilding the co-expression graph from the {} cells of {} (top {}); their model used \
                 the graph of its training cells — pass --mask to reproduce it exactly",
                data.n_cells(),
                args.data_path.display(),
                args.graph_topk
            );
            let g =
                graph::build_coexpression_graph(data.x.to_dense().view(), args.graph_topk, true)?;
            vocabulary_mask(&g.mask, &data.genes, &vocab)
        }
    };
    Ok(import_reference(
        args.reference,
        net,
        vocab,
        data.genes.clone(),
        &mask,
        out,
    )?)
}

/// The network configuration of `--params`: the golden `model_params.json` (`constructor`) or this
/// project's configuration JSON; shapes it does not give are taken from the file.
fn network_params(path: &Path, from_shapes: &ScdfmConfig) -> anyhow::Result<ScdfmConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let Some(c) = json.get("constructor") else {
        return serde_json::from_value(json).with_context(|| {
            format!(
                "{} is neither their model_params.json (with `constructor`) nor an scDFM network configuration",
                path.display()
            )
        });
    };
    let mut net = from_shapes.clone();
    let size = |key: &str, into: &mut usize| -> anyhow::Result<()> {
        if let Some(v) = c.get(key) {
            *into = v.as_u64().with_context(|| {
                format!("`constructor.{key}` in {} is not a count", path.display())
            })? as usize;
        }
        Ok(())
    };
    size("ntoken", &mut net.ntoken)?;
    size("d_model", &mut net.d_model)?;
    size("nhead", &mut net.nhead)?;
    size("nlayers", &mut net.nlayers)?;
    if let Some(v) = c.get("dropout") {
        net.dropout = v.as_f64().with_context(|| {
            format!(
                "`constructor.dropout` in {} is not a number",
                path.display()
            )
        })?;
    }
    match c.get("perturbation_function").and_then(|v| v.as_str()) {
        None | Some("crisper") => net.perturbation = PerturbationMode::Crispr,
        Some(other) => bail!(
            "`constructor.perturbation_function` is `{other}`; only genetic (`crisper`) checkpoints can be imported"
        ),
    }
    if let Some(f) = c.get("fusion_method").and_then(|v| v.as_str()) {
        if f != "differential_perceiver" {
            bail!("`constructor.fusion_method` is `{f}`; this port implements `differential_perceiver` only");
        }
    }
    net.preset = "imported".into();
    net.validate()?;
    Ok(net)
}

/// Their vocabulary: a `{"token": id}` object (ids 0..V−1, each once) or a list of tokens in id order.
fn read_vocab(path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    if let Ok(list) = serde_json::from_value::<Vec<String>>(json.clone()) {
        return Ok(list);
    }
    let map: BTreeMap<String, usize> = serde_json::from_value(json).with_context(|| {
        format!(
            "{} is neither a token → id object nor a list of tokens",
            path.display()
        )
    })?;
    let mut itos = vec![None; map.len()];
    for (token, id) in map {
        match itos.get_mut(id) {
            Some(slot @ None) => *slot = Some(token),
            Some(Some(other)) => bail!(
                "{}: tokens `{other}` and `{token}` share id {id}; give each token its own id",
                path.display()
            ),
            None => bail!(
                "{}: token `{token}` has id {id}, outside 0..{}; ids must be 0..V−1",
                path.display(),
                itos.len()
            ),
        }
    }
    Ok(itos.into_iter().flatten().collect())
}

/// A `[V, V]` mask from `.npy` (integer, boolean or float; non-zero = blocked).
fn read_mask(path: &Path) -> anyhow::Result<Array2<bool>> {
    use ndarray_npy::read_npy;
    let bad = || {
        format!(
            "{} is not a 2-D .npy array of 0/1 (uint8, bool, int64 or float32); save their mask with \
             np.save(\"mask.npy\", torch.load(path).numpy())",
            path.display()
        )
    };
    let mask = if let Ok(a) = read_npy::<_, Array2<u8>>(path) {
        a.mapv(|v| v != 0)
    } else if let Ok(a) = read_npy::<_, Array2<bool>>(path) {
        a
    } else if let Ok(a) = read_npy::<_, Array2<i64>>(path) {
        a.mapv(|v| v != 0)
    } else if let Ok(a) = read_npy::<_, Array2<f32>>(path) {
        a.mapv(|v| v != 0.0)
    } else {
        bail!(bad());
    };
    Ok(mask)
}

/// Writes a checkpoint of this port from one of the authors' state_dicts (safetensors, their parameter
/// names; see [`super::reference::load_reference`]). `vocab` is their vocabulary (`GeneVocab` itos: specials
/// then genes), `genes` the gene panel (column order of the data the model will predict), `mask` their
/// `[V, V]` graph mask (true = blocked; their `mask_fold_*.pt`, or this port's graph builder on the same
/// training cells). Every gene of the vocabulary counts as trained. Returns the checkpoint directory.
pub fn import_reference(
    state_dict: &Path,
    net: ScdfmConfig,
    vocab: Vec<String>,
    genes: Vec<String>,
    mask: &Array2<bool>,
    out_dir: &Path,
) -> Result<std::path::PathBuf> {
    let v = vocab.len();
    if mask.dim() != (v, v) {
        return Err(ModelError::Input(format!(
            "the graph mask is {:?} but the vocabulary has {v} tokens; pass the mask built for this vocabulary",
            mask.dim()
        )));
    }
    if net.perturbation == PerturbationMode::Drug {
        return Err(ModelError::Input(
            "importing a drug-mode state_dict needs the authors' compound vocabulary, which this importer does \
             not take; import a genetic (`perturbation_function=\"crisper\"`) checkpoint, or train drug mode \
             here with `cellshift train --method scdfm` on a compound screen"
                .into(),
        ));
    }
    if vocab.len() < SPECIALS.len() || vocab[..SPECIALS.len()] != SPECIALS {
        return Err(ModelError::Input(format!(
            "the vocabulary must start with the specials {} (their GeneVocab); it starts with {}",
            SPECIALS.join(", "),
            preview(&vocab[..vocab.len().min(SPECIALS.len())])
        )));
    }
    if v > net.ntoken {
        return Err(ModelError::Input(format!(
            "the vocabulary has {v} tokens but the checkpoint's token table has only {} rows; pass the \
             vocabulary the checkpoint was trained with",
            net.ntoken
        )));
    }
    let known: BTreeSet<&str> = vocab.iter().map(String::as_str).collect();
    if known.len() != v {
        return Err(ModelError::Input(
            "the vocabulary lists a token twice; pass their GeneVocab (each token once)".into(),
        ));
    }
    if let Some(g) = genes.iter().find(|g| !known.contains(g.as_str())) {
        return Err(ModelError::Input(format!(
            "gene `{g}` of the panel is not in the checkpoint's vocabulary; use the genes the model was trained on"
        )));
    }
    let setup = ScdfmSetup {
        trained_tokens: vocab.iter().skip(SPECIALS.len()).cloned().collect(),
        net,
        genes: genes.clone(),
        vocab,
        training: ScdfmTraining::preset("paper"),
        seed: 0,
        compounds: Vec::new(),
    };
    let mut fitted = Fitted::build(setup, Some(mask), Device::Cpu)?;
    super::reference::load_reference(&mut fitted.vs, state_dict)?;
    let preprocessing = Preprocessing {
        normalize_total: None,
        log1p: false,
        per_condition_scaling: None,
        n_genes: genes.len(),
        gene_names: genes,
    };
    let trainer = Trainer::new(&fitted, train_config(&fitted.setup, &preprocessing))?;
    trainer.save_checkpoint(out_dir)
}
