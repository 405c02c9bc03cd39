//! `cellshift import`: turn a method's reference checkpoint (the authors' own weights) into a checkpoint
//! of this project, in the format `cellshift train` writes, so that `predict` and `bench --model` use it.
//! Methods with a reference importer: scDFM (the authors' `origin` state_dict saved as safetensors).

use crate::outputs::{check_outputs, Output};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cellshift_models::registry;
use cellshift_models::scdfm::method::{import_reference, vocabulary, vocabulary_mask};
use cellshift_models::scdfm::reference::config_from_reference;
use cellshift_models::scdfm::{graph, PerturbationMode, ScdfmConfig};
use ndarray::Array2;

use super::DataArgs;

/// Arguments of `cellshift import`.
#[derive(clap::Args)]
pub struct Args {
    /// Method whose reference checkpoint is imported (`scdfm`).
    #[arg(long)]
    pub method: String,
    /// The reference weights: for scDFM their model's state_dict saved with safetensors
    /// (`safetensors.torch.save_file(model.state_dict(), "model.safetensors")`).
    #[arg(long)]
    pub reference: PathBuf,
    /// The screen the imported model will predict (`.h5ad`): fixes the gene panel (column order) and, unless
    /// --vocab and --mask are given, the vocabulary and the co-expression graph.
    #[arg(long)]
    pub data: PathBuf,
    /// Output run directory (absent or empty); written completely or not at all.
    #[arg(long)]
    pub out: PathBuf,
    /// Network hyper-parameters as JSON: a `model_params.json` as the golden files hold it (`constructor`: ntoken, d_model,
    /// nhead, nlayers, dropout, perturbation_function) or this project's scDFM network configuration.
    /// Default: read from the parameter shapes of --reference (dropout 0.1, as their training).
    #[arg(long)]
    pub params: Option<PathBuf>,
    /// Their vocabulary as JSON: `GeneVocab` (`{"token": id, …}`) or a list of tokens in id order.
    /// Default: 4 specials + the genes measured or perturbed in --data, in code-point order (their `GeneVocab`
    /// built on the same genes).
    #[arg(long)]
    pub vocab: Option<PathBuf>,
    /// Their graph mask as `.npy` ([V, V] over the vocabulary, 1 = blocked; from their
    /// `mask_fold_*.pt`: `np.save("mask.npy", torch.load(path).numpy())`). Default: rebuilt from the cells
    /// of --data with their co-expression graph (top-k |correlation|).
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Top-k neighbours per gene when the graph is rebuilt from --data (run.sh: 30).
    #[arg(long, default_value_t = 30)]
    pub graph_topk: usize,
    #[command(flatten)]
    pub columns: DataArgs,
}

/// A method's importer: writes a checkpoint into the (new) run directory given as the second argument.
type Importer = fn(&Args, &Path) -> anyhow::Result<PathBuf>;

/// Methods with a reference importer.
const IMPORTERS: &[(&str, Importer)] = &[("scdfm", import_scdfm)];

/// Runs `cellshift import`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let inputs: Vec<&std::path::Path> = [&args.params, &args.vocab, &args.mask]
        .into_iter()
        .flatten()
        .map(|p| p.as_path())
        .chain([args.reference.as_path(), args.data.as_path()])
        .collect();
    check_outputs(&inputs, &[Output::NewFolder(&args.out)])?;
    let entry = registry::method(&args.method)?;
    let Some((_, importer)) = IMPORTERS.iter().find(|(name, _)| *name == entry.name) else {
        bail!(
            "method {} has no reference importer (methods with one: {}); train it with `cellshift train` or \
             `cellshift pretrain` instead",
            entry.name,
            IMPORTERS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    for (what, path) in [
        ("--reference", Some(&args.reference)),
        ("--data", Some(&args.data)),
        ("--params", args.params.as_ref()),
        ("--vocab", args.vocab.as_ref()),
        ("--mask", args.mask.as_ref()),
    ] {
        if let Some(p) = path.filter(|p| !p.is_file()) {
            bail!(
                "{what} {} does not exist; give the path of an existing file",
                p.display()
            );
        }
    }
    if args.out.exists() && std::fs::read_dir(&args.out).map_or(true, |mut d| d.next().is_some()) {
        bail!(
            "--out {} already exists and is not empty; choose a new directory (import never overwrites a run)",
            args.out.display()
        );
    }
    let parent = match args.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        bail!(
            "the folder {} of --out does not exist; create it first",
            parent.display()
        );
    }
    let name = args
        .out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "import".into());
    let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    let written = importer(&args, &tmp).and_then(|ck| {
        let rel = ck
            .strip_prefix(&tmp)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        if args.out.exists() {
            std::fs::remove_dir(&args.out)
                .with_context(|| format!("replacing the empty {}", args.out.display()))?;
        }
        std::fs::rename(&tmp, &args.out)
            .with_context(|| format!("moving the checkpoint into {}", args.out.display()))?;
        Ok(args.out.join(rel))
    });
    match written {
        Ok(ck) => {
            println!("wrote {} ({} checkpoint)", ck.display(), entry.name);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e.context(format!(
                "importing {} as {}",
                args.reference.display(),
                entry.name
            )))
        }
    }
}

/// scDFM: the network from --params or the parameter shapes, the vocabulary from --vocab or the data,
/// the graph mask from --mask or rebuilt on the data's cells; parameters matched by their names.
fn import_scdfm(args: &Args, out: &Path) -> anyhow::Result<PathBuf> {
    let data = args.columns.read(&args.data)?;
    let from_shapes = config_from_reference(&args.reference)?;
    let net = match &args.params {
        Some(p) => scdfm_params(p, &from_shapes)?,
        None => from_shapes,
    };
    let vocab = match &args.vocab {
        Some(p) => read_vocab(p)?,
        None => vocabulary(&data),
    };
    if let Some(g) = data.genes.iter().find(|g| !vocab.contains(g)) {
        bail!(
            "gene `{g}` of {} is not in the vocabulary ({} tokens); give the screen on the checkpoint's genes \
             (`cellshift preprocess --genes …`) or the vocabulary the checkpoint was trained with (--vocab)",
            args.data.display(),
            vocab.len()
        );
    }
    let mask = match &args.mask {
        Some(p) => read_mask(p)?,
        None => {
            eprintln!(
                "note: rebuilding the co-expression graph from the {} cells of {} (top {}); their model used \
                 the graph of its training cells — pass --mask to reproduce it exactly",
                data.n_cells(),
                args.data.display(),
                args.graph_topk
            );
            let g =
                graph::build_coexpression_graph(data.x.to_dense().view(), args.graph_topk, true)?;
            vocabulary_mask(&g.mask, &data.genes, &vocab)
        }
    };
    Ok(import_reference(
        &args.reference,
        net,
        vocab,
        data.genes.clone(),
        &mask,
        out,
    )?)
}

/// The network configuration of `--params`: the golden `model_params.json` (`constructor`) or this
/// project's configuration JSON; shapes it does not give are taken from the file.
fn scdfm_params(path: &Path, from_shapes: &ScdfmConfig) -> anyhow::Result<ScdfmConfig> {
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
