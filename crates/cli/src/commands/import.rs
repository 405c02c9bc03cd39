//! `cellshift import`: turn a method's reference checkpoint (the authors' own weights) into a checkpoint
//! of this project, in the format `cellshift train` writes, so that `predict` and `bench --model` use it.
//! The method-specific part is the `import` hook of the method's registry entry (e.g. scDFM: the authors'
//! `origin` state_dict saved as safetensors); this command checks the paths and writes the run atomically.

use crate::outputs::{check_outputs, Output};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cellshift_models::hooks::ImportRequest;
use cellshift_models::registry;

use super::DataArgs;

/// Arguments of `cellshift import`.
#[derive(clap::Args)]
pub struct Args {
    /// Method whose reference checkpoint is imported (one with a reference importer: see the error listing them).
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

/// Runs `cellshift import`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let inputs: Vec<&std::path::Path> = [&args.params, &args.vocab, &args.mask]
        .into_iter()
        .flatten()
        .map(|p| p.as_path())
        .chain([args.reference.as_path(), args.data.as_path()])
        .collect();
    check_outputs(&inputs, &[Output::NewFolder(&args.out)])?;
    registry::method(&args.method)?;
    let (entry, importer) = registry::hook(&args.method, "reference importer", |h| h.import)
        .map_err(|e| {
            anyhow::anyhow!("{e}; train it with `cellshift train` or `cellshift pretrain` instead")
        })?;
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
    let written = import_into(&args, importer, &tmp).and_then(|ck| {
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

/// Reads --data and runs the method's importer into the run directory `out`.
fn import_into(
    args: &Args,
    importer: cellshift_models::hooks::ImportFn,
    out: &Path,
) -> anyhow::Result<PathBuf> {
    let data = args.columns.read(&args.data)?;
    let request = ImportRequest {
        reference: &args.reference,
        data: &data,
        data_path: &args.data,
        params: args.params.as_deref(),
        vocab: args.vocab.as_deref(),
        mask: args.mask.as_deref(),
        graph_topk: args.graph_topk,
    };
    importer(&request, out)
}
