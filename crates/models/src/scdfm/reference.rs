//! Loading the scDFM authors' state_dicts (safetensors) by their parameter names.

use std::path::Path;

use tch::nn;

use crate::error::{ModelError, Result};

use super::config::ScdfmConfig;

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
                "{} model parameters are missing from the file (first: {}); pass the complete state_dict \
                 of their `origin` model (fusion_method=differential_perceiver) with the configuration's number \
                 of layers (`cellshift import` reads the configuration from the file when --params is absent)",
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
                 layers or another fusion method than the configuration: build the model with the \
                 checkpoint's configuration (`cellshift import` reads it from the file when --params is absent)"
            ),
        });
    }
    Ok(ReferenceLoad { loaded, ignored })
}

/// The network configuration of one of the authors' `origin` state_dicts (safetensors), read from its
/// parameter shapes: `ntoken` and `d_model` from `encoder.embedding.weight`, the layers from the
/// `blocks.<i>.` names, the heads from the head dimension of the λ vectors, the frequency size from
/// `t_embedder.mlp.0.weight`; the rest as their code fixes it (gene encoder with 8 heads, dropout 0.1,
/// genetic mode, the `paper` loss settings).
pub fn config_from_reference(path: &Path) -> Result<ScdfmConfig> {
    let tensors = tch::Tensor::read_safetensors(path).map_err(|e| ModelError::CheckpointCorrupt {
        path: path.to_path_buf(),
        reason: format!(
            "cannot read it as safetensors ({e}); pass a state_dict saved with safetensors.torch.save_file"
        ),
    })?;
    let shapes: std::collections::HashMap<String, Vec<i64>> =
        tensors.iter().map(|(n, t)| (n.clone(), t.size())).collect();
    let shape = |name: &str, dims: usize| -> Result<Vec<usize>> {
        match shapes.get(name) {
            Some(s) if s.len() == dims => Ok(s.iter().map(|&d| d as usize).collect()),
            Some(s) => Err(ModelError::CheckpointCorrupt {
                path: path.to_path_buf(),
                reason: format!(
                    "parameter `{name}` has shape {s:?}, expected {dims} dimensions; is it an scDFM `origin` \
                     differential_perceiver state_dict?"
                ),
            }),
            None => Err(ModelError::CheckpointCorrupt {
                path: path.to_path_buf(),
                reason: format!(
                    "parameter `{name}` is missing; is it an scDFM `origin` differential_perceiver state_dict \
                     (their model.state_dict(), saved with safetensors)?"
                ),
            }),
        }
    };
    let emb = shape("encoder.embedding.weight", 2)?;
    let (ntoken, d_model) = (emb[0], emb[1]);
    let head_dim = shape("blocks.0.diff_self_attn.attn.lambda_q1", 1)?[0];
    let freq = shape("t_embedder.mlp.0.weight", 2)?[1];
    let nlayers = shapes
        .keys()
        .filter_map(|k| {
            k.strip_prefix("blocks.")?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()
        .map_or(0, |m| m + 1);
    if head_dim == 0 || d_model % head_dim != 0 {
        return Err(ModelError::CheckpointCorrupt {
            path: path.to_path_buf(),
            reason: format!(
                "the λ vectors have {head_dim} entries, which does not divide d_model = {d_model}; the file is \
                 not a consistent scDFM state_dict"
            ),
        });
    }
    let config = ScdfmConfig {
        preset: "imported".into(),
        ntoken,
        d_model,
        nhead: d_model / head_dim,
        nlayers,
        frequency_embedding_size: freq,
        ..ScdfmConfig::paper()
    };
    config.validate()?;
    Ok(config)
}
