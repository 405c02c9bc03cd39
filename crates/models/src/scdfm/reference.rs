//! Loading the scDFM authors' state_dicts (safetensors) by their parameter names.

use std::path::Path;

use tch::nn;

use crate::error::{ModelError, Result};

/// Parameters the authors' checkpoints carry that the `crisper`/`predict_y` model never uses and that this
/// port leaves out (unless drug mode is on, which uses `perturbation_embedder.*`).
pub const UNUSED_REFERENCE_PREFIXES: &[&str] =
    &["perturbation_embedder.", "p_mask_embed", "p_head."];

/// The frozen variable holding the graph mask in this port's checkpoints (their mask lives in a separate
/// `.pt` file, not in the state_dict).
pub const GRAPH_MASK: &str = "graph_mask";

/// What [`load_reference`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceLoad {
    /// Parameters copied.
    pub loaded: usize,
    /// Names in the file that the model does not have (only the unused ones are accepted).
    pub ignored: Vec<String>,
}

/// Copies every variable of `vs` from the safetensors file at `path`, matched by name (the authors' state_dict
/// names) with shapes checked (except the graph mask [`GRAPH_MASK`], which their files do not hold). A model parameter missing from the file, a shape mismatch or an unknown extra
/// name (other than [`UNUSED_REFERENCE_PREFIXES`]) is an error naming it.
pub fn load_reference(vs: &mut nn::VarStore, path: &Path) -> Result<ReferenceLoad> {
    let tensors = tch::Tensor::read_safetensors(path).map_err(|e| ModelError::CheckpointCorrupt {
        path: path.to_path_buf(),
        reason: format!("cannot read it as safetensors ({e}); pass a state_dict saved with safetensors.torch.save_file"),
    })?;
    let file: std::collections::HashMap<String, tch::Tensor> = tensors.into_iter().collect();
    let vars = vs.variables();
    let mut missing = Vec::new();
    let mut loaded = 0;
    tch::no_grad(|| -> Result<()> {
        for (name, var) in vars.iter() {
            if name == GRAPH_MASK {
                continue;
            }
            match file.get(name) {
                None => missing.push(name.clone()),
                Some(src) => {
                    if src.size() != var.size() {
                        return Err(ModelError::CheckpointCorrupt {
                            path: path.to_path_buf(),
                            reason: format!(
                                "parameter `{name}` has shape {:?} in the file but {:?} in the model; build the \
                                 model with the checkpoint's configuration (d_model, nlayers, ntoken)",
                                src.size(),
                                var.size()
                            ),
                        });
                    }
                    let mut v = var.shallow_clone();
                    v.f_copy_(&src.to_kind(var.kind()).to_device(var.device()))?;
                    loaded += 1;
                }
            }
        }
        Ok(())
    })?;
    if !missing.is_empty() {
        missing.sort();
        return Err(ModelError::CheckpointCorrupt {
            path: path.to_path_buf(),
            reason: format!(
                "{} model parameters are missing from the file (first: {}); is it an scDFM `origin` \
                 differential_perceiver state_dict with the same number of layers?",
                missing.len(),
                missing[..missing.len().min(3)].join(", ")
            ),
        });
    }
    let mut ignored: Vec<String> = file
        .keys()
        .filter(|k| !vars.contains_key(*k))
        .cloned()
        .collect();
    ignored.sort();
    if let Some(bad) = ignored
        .iter()
        .find(|k| !UNUSED_REFERENCE_PREFIXES.iter().any(|p| k.starts_with(p)))
    {
        return Err(ModelError::CheckpointCorrupt {
            path: path.to_path_buf(),
            reason: format!(
                "it holds parameter `{bad}`, which this model does not have; the checkpoint has more \
                 layers or another fusion method than the configuration"
            ),
        });
    }
    Ok(ReferenceLoad { loaded, ignored })
}
