//! Checkpoints: one directory per checkpoint holding `checkpoint.safetensors` (weights, EMA weights,
//! AdamW moments and any partially accumulated gradient, under the prefixes `model/`, `ema/`, `adam_m/`,
//! `adam_v/`, `grad_accum/`) and `checkpoint.json` (model and training configuration, counters, the random
//! stream position, the task source, the preprocessing the model expects, and a checksum of the tensor
//! file). A run directory holds `ckpt-<micro-batch>` directories and a `LATEST` file naming the newest.
//!
//! Writes are atomic: a checkpoint is assembled in a temporary directory and renamed into place, then
//! `LATEST` is replaced by rename, so a run killed at any moment leaves the previous checkpoint intact.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::config::{Preprocessing, TrainConfig};
use super::early_stop::EarlyStoppingState;
use crate::error::{ModelError, Result};
use crate::flow::OdeSolver;
use crate::rng::Fnv1a64;

/// Value of [`CheckpointMeta::format`].
pub const FORMAT: &str = "cellshift-checkpoint";
/// Current [`CheckpointMeta::format_version`].
pub const FORMAT_VERSION: u32 = 1;
/// File name of the tensors.
pub const TENSORS_FILE: &str = "checkpoint.safetensors";
/// File name of the JSON sidecar.
pub const META_FILE: &str = "checkpoint.json";
/// File in a run directory naming the newest checkpoint directory.
pub const LATEST_FILE: &str = "LATEST";

/// Progress counters of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Micro-batches done.
    pub micro_batches: u64,
    /// Optimiser updates applied.
    pub updates: u64,
    /// Micro-batches accumulated since the last update (their mean gradient is stored in `grad_accum/`).
    pub accumulated: u64,
    /// EMA updates made (continues across fine-tuning).
    pub ema_updates: u64,
}

/// Where the run's random streams stand: everything random in micro-batch `m` is drawn from the stream
/// `(seed, "train-micro-batch", m)` and its tasks are `task(m·batch_size + j)` of the task source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngPosition {
    /// Master seed of the run.
    pub seed: u64,
    /// How streams are derived (for humans and future format changes).
    pub scheme: String,
    /// The next micro-batch index.
    pub next_micro_batch: u64,
    /// The next task index of the task source.
    pub next_task_index: u64,
}

/// Size and checksum of the tensor file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorFileInfo {
    /// File name inside the checkpoint directory.
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
    /// FNV-1a 64-bit hash of the file, hexadecimal.
    pub fnv1a64: String,
}

/// The JSON sidecar of a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Always [`FORMAT`].
    pub format: String,
    /// Format version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Method that wrote it (`"mappfn"`, …).
    pub method: String,
    /// The method's model configuration.
    pub model_config: serde_json::Value,
    /// The training configuration of the run.
    pub train_config: TrainConfig,
    /// Counters at the time of writing.
    pub counters: Counters,
    /// Random stream position.
    pub rng: RngPosition,
    /// Description of the task source.
    pub task_source: String,
    /// The preprocessing the model expects.
    pub preprocessing: Preprocessing,
    /// Number of trainable parameters.
    pub parameter_count: usize,
    /// Loss of the last micro-batch before the checkpoint.
    pub last_loss: Option<f64>,
    /// The named components of that loss (empty for single-term losses and older checkpoints).
    #[serde(default)]
    pub last_loss_components: Vec<(String, f64)>,
    /// The checkpoint this run was fine-tuned from, if any.
    pub finetuned_from: Option<String>,
    /// The tensor file.
    pub tensors: TensorFileInfo,
    /// Sampler settings chosen for this checkpoint on validation data, used by the model commands unless
    /// the user sets the option or asks for the reference sampler (absent for most checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommended_sampler: Option<RecommendedSampler>,
    /// Early-stopping state of a run that stops early (its best weights are the `best/` tensors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStoppingState>,
}

/// Sampler settings recorded in a checkpoint after calibrating it on data it was not trained or tested on
/// (`cellshift export --recommend-…`). Each field left `None` keeps the reference default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecommendedSampler {
    /// Classifier-free guidance weight ω.
    pub guidance: Option<f64>,
    /// Independently sampled populations pooled into each prediction.
    pub populations: Option<usize>,
    /// Standard deviation of the source noise.
    pub temperature: Option<f64>,
    /// Clamp predictions at zero.
    pub nonnegative: Option<bool>,
    /// ODE solver (absent in checkpoints recommended before solvers were: the commands' default then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver: Option<OdeSolver>,
    /// Where and how the settings were chosen, for the record (e.g. "validation networks, seed 2000").
    pub chosen_on: String,
}

impl RecommendedSampler {
    /// Errors, naming the setting, unless every given setting is usable.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(ModelError::Config(format!("recommended sampler: {what}")));
        if self.guidance.is_some_and(|g| !g.is_finite()) {
            return bad("the guidance weight must be a finite number");
        }
        if self.populations == Some(0) {
            return bad("populations must be at least 1");
        }
        if self
            .temperature
            .is_some_and(|t| !(t.is_finite() && t > 0.0))
        {
            return bad("the temperature must be a positive number");
        }
        if let Some(solver) = &self.solver {
            solver.validate()?;
        }
        Ok(())
    }

    /// The settings as one human-readable line (`ω = 1, populations = 8, …`).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(g) = self.guidance {
            parts.push(format!("ω = {g}"));
        }
        if let Some(p) = self.populations {
            parts.push(format!("populations = {p}"));
        }
        if let Some(t) = self.temperature {
            parts.push(format!("temperature = {t}"));
        }
        if let Some(n) = self.nonnegative {
            parts.push(format!("nonnegative = {n}"));
        }
        if let Some(solver) = &self.solver {
            parts.push(format!("solver = {}", solver.describe()));
        }
        if parts.is_empty() {
            parts.push("the reference defaults".into());
        }
        parts.join(", ")
    }
}

/// A checkpoint read from disk and verified.
#[derive(Debug)]
pub struct LoadedCheckpoint {
    /// The checkpoint directory.
    pub dir: PathBuf,
    /// Its sidecar.
    pub meta: CheckpointMeta,
    /// All tensors by full name (`model/…`, `ema/…`, …).
    pub tensors: HashMap<String, Tensor>,
}

impl LoadedCheckpoint {
    /// The model configuration of a checkpoint written by `method`, parsed; errors name the checkpoint when
    /// another method wrote it or the configuration does not parse.
    pub fn model_config<T: serde::de::DeserializeOwned>(&self, method: &str) -> Result<T> {
        if self.meta.method != method {
            return Err(ModelError::CheckpointCorrupt {
                path: self.dir.clone(),
                reason: format!(
                    "it was written by method `{}`, not `{method}`",
                    self.meta.method
                ),
            });
        }
        serde_json::from_value(self.meta.model_config.clone()).map_err(|e| {
            ModelError::CheckpointCorrupt {
                path: self.dir.clone(),
                reason: format!("model_config is not a `{method}` configuration: {e}"),
            }
        })
    }

    /// The tensor `prefix/name`, checked against the expected shape.
    pub fn tensor(&self, prefix: &str, name: &str, shape: &[i64]) -> Result<&Tensor> {
        let key = format!("{prefix}/{name}");
        let t = self.tensors.get(&key).ok_or_else(|| ModelError::CheckpointCorrupt {
            path: self.dir.clone(),
            reason: format!("tensor `{key}` is missing; the checkpoint was written by a different model or version"),
        })?;
        if t.size() != shape {
            return Err(ModelError::CheckpointCorrupt {
                path: self.dir.clone(),
                reason: format!(
                    "tensor `{key}` has shape {:?} but the model expects {shape:?}",
                    t.size()
                ),
            });
        }
        Ok(t)
    }

    /// Whether this is an inference export ([`export_inference`]): model weights only, no EMA or optimiser.
    pub fn is_inference_export(&self) -> bool {
        !self.tensors.keys().any(|k| k.starts_with("ema/"))
    }

    /// Whether a tensor `prefix/name` is present.
    pub fn has(&self, prefix: &str, name: &str) -> bool {
        self.tensors.contains_key(&format!("{prefix}/{name}"))
    }
}

fn hash_file(path: &Path) -> Result<(u64, u64)> {
    let mut file = fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut hash = Fnv1a64::default();
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| ModelError::io(path, e))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hash.0))
}

fn sync_file(path: &Path) -> Result<()> {
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| ModelError::io(path, e))
}

/// Writes `contents` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = fs::File::create(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
        f.write_all(contents).map_err(|e| ModelError::io(&tmp, e))?;
        f.sync_all().map_err(|e| ModelError::io(&tmp, e))?;
    }
    fs::rename(&tmp, path).map_err(|e| ModelError::io(path, e))
}

/// Name of the checkpoint directory for micro-batch `step`.
pub fn checkpoint_dir_name(step: u64) -> String {
    format!("ckpt-{step:010}")
}

/// Writes a checkpoint of `tensors` with sidecar `meta` (its `tensors` field is filled in here) into the run
/// directory `run_dir`, points `LATEST` at it and deletes older checkpoints beyond `keep`.
pub fn write_checkpoint(
    run_dir: &Path,
    mut meta: CheckpointMeta,
    tensors: &[(String, Tensor)],
    keep: usize,
) -> Result<PathBuf> {
    fs::create_dir_all(run_dir).map_err(|e| ModelError::io(run_dir, e))?;
    let name = checkpoint_dir_name(meta.counters.micro_batches);
    let tmp = run_dir.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
    }
    fs::create_dir_all(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
    let tensor_path = tmp.join(TENSORS_FILE);
    let contiguous: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                t.detach().to_device(tch::Device::Cpu).contiguous(),
            )
        })
        .collect();
    Tensor::write_safetensors(&contiguous, &tensor_path)?;
    sync_file(&tensor_path)?;
    let (bytes, hash) = hash_file(&tensor_path)?;
    meta.tensors = TensorFileInfo {
        file: TENSORS_FILE.into(),
        bytes,
        fnv1a64: format!("{hash:016x}"),
    };
    let json = serde_json::to_vec_pretty(&meta).map_err(|e| ModelError::Json {
        path: tmp.join(META_FILE),
        source: e,
    })?;
    write_atomic(&tmp.join(META_FILE), &json)?;
    let final_dir = run_dir.join(&name);
    if final_dir.exists() {
        fs::remove_dir_all(&final_dir).map_err(|e| ModelError::io(&final_dir, e))?;
    }
    fs::rename(&tmp, &final_dir).map_err(|e| ModelError::io(&final_dir, e))?;
    write_atomic(&run_dir.join(LATEST_FILE), format!("{name}\n").as_bytes())?;
    prune(run_dir, keep)?;
    Ok(final_dir)
}

/// Deletes all but the newest `keep` checkpoint directories of a run.
fn prune(run_dir: &Path, keep: usize) -> Result<()> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(run_dir)
        .map_err(|e| ModelError::io(run_dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("ckpt-"))
        })
        .collect();
    dirs.sort();
    let excess = dirs.len().saturating_sub(keep.max(1));
    for d in &dirs[..excess] {
        fs::remove_dir_all(d).map_err(|e| ModelError::io(d, e))?;
    }
    Ok(())
}

/// Resolves a path to a checkpoint directory: the path itself when it holds `checkpoint.json`, else the
/// directory named by its `LATEST` file.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    if !path.exists() {
        return Err(ModelError::CheckpointMissing {
            path: path.into(),
            reason: "the path does not exist".into(),
        });
    }
    if path.join(META_FILE).is_file() {
        return Ok(path.to_path_buf());
    }
    let latest = path.join(LATEST_FILE);
    if latest.is_file() {
        let name = fs::read_to_string(&latest).map_err(|e| ModelError::io(&latest, e))?;
        let dir = path.join(name.trim());
        if dir.join(META_FILE).is_file() {
            return Ok(dir);
        }
        return Err(ModelError::CheckpointMissing {
            path: path.into(),
            reason: format!("LATEST names `{}`, which has no {META_FILE}", name.trim()),
        });
    }
    Err(ModelError::CheckpointMissing {
        path: path.into(),
        reason: format!("neither {META_FILE} nor {LATEST_FILE} found"),
    })
}

/// Whether `run_dir` already holds a checkpoint.
pub fn has_checkpoint(run_dir: &Path) -> bool {
    resolve(run_dir).is_ok()
}

/// Reads only the sidecar of the checkpoint at `path` (a checkpoint or run directory).
pub fn read_meta(path: &Path) -> Result<(PathBuf, CheckpointMeta)> {
    let dir = resolve(path)?;
    let meta_path = dir.join(META_FILE);
    let text = fs::read(&meta_path).map_err(|e| ModelError::io(&meta_path, e))?;
    let meta: CheckpointMeta =
        serde_json::from_slice(&text).map_err(|e| ModelError::CheckpointCorrupt {
            path: meta_path.clone(),
            reason: format!("{META_FILE} is not valid: {e}"),
        })?;
    if meta.format != FORMAT {
        return Err(ModelError::CheckpointCorrupt {
            path: meta_path,
            reason: format!("format is `{}`, expected `{FORMAT}`", meta.format),
        });
    }
    if meta.format_version > FORMAT_VERSION {
        return Err(ModelError::CheckpointCorrupt {
            path: meta_path,
            reason: format!(
                "format version {} is newer than this build understands ({FORMAT_VERSION}); upgrade cellshift",
                meta.format_version
            ),
        });
    }
    Ok((dir, meta))
}

/// Reads and verifies (size and checksum) the checkpoint at `path` (a checkpoint or run directory).
pub fn read_checkpoint(path: &Path) -> Result<LoadedCheckpoint> {
    let (dir, meta) = read_meta(path)?;
    let tensor_path = dir.join(&meta.tensors.file);
    if !tensor_path.is_file() {
        return Err(ModelError::CheckpointCorrupt {
            path: dir.clone(),
            reason: format!("tensor file {} is missing", meta.tensors.file),
        });
    }
    let (bytes, hash) = hash_file(&tensor_path)?;
    if bytes != meta.tensors.bytes || format!("{hash:016x}") != meta.tensors.fnv1a64 {
        return Err(ModelError::CheckpointCorrupt {
            path: tensor_path,
            reason: format!(
                "size/checksum mismatch (file: {bytes} bytes, hash {hash:016x}; recorded: {} bytes, hash {}); the file was truncated or modified — re-copy it or use an earlier checkpoint",
                meta.tensors.bytes, meta.tensors.fnv1a64
            ),
        });
    }
    let tensors = Tensor::read_safetensors(&tensor_path)
        .map_err(|e| ModelError::CheckpointCorrupt {
            path: tensor_path.clone(),
            reason: format!("cannot parse tensors: {e}"),
        })?
        .into_iter()
        .collect();
    Ok(LoadedCheckpoint { dir, meta, tensors })
}

/// Writes an inference-only copy of the checkpoint at `src` into the run directory `out_dir`: the EMA
/// weights (read out as inference uses them) stored as `model/` tensors in `precision` (e.g. half
/// precision for a checkpoint shipped in a repository), without optimiser state. Loading converts back to
/// float32. Returns the new checkpoint directory.
pub fn export_inference(src: &Path, out_dir: &Path, precision: tch::Kind) -> Result<PathBuf> {
    let ck = read_checkpoint(src)?;
    let factor =
        crate::train::Ema::readout_factor(&ck.meta.train_config.ema, ck.meta.counters.ema_updates);
    let has_ema = !ck.is_inference_export();
    let mut names: Vec<&String> = ck
        .tensors
        .keys()
        .filter(|k| k.starts_with("model/"))
        .collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for key in names {
        let name = &key["model/".len()..];
        let ema_key = format!("ema/{name}");
        let weight = match ck.tensors.get(&ema_key) {
            Some(e) if has_ema => e * factor,
            _ => ck.tensors[key].shallow_clone(),
        };
        tensors.push((key.clone(), weight.to_kind(precision)));
    }
    let mut meta = ck.meta.clone();
    // The source checkpoint by its directory name only: exports are shipped, machine paths are not.
    let source = ck.dir.file_name().map_or_else(
        || "checkpoint".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    meta.task_source = format!(
        "{} [inference export ({precision:?}) of {source}]",
        meta.task_source
    );
    write_checkpoint(out_dir, meta, &tensors, 1)
}

/// Records `sampler` as the recommended sampler of the checkpoint at `path` (a checkpoint or run
/// directory), or removes the recommendation with `None`; only the sidecar is rewritten (atomically), the
/// tensors and their checksum are untouched. Returns the checkpoint directory.
pub fn set_recommended_sampler(
    path: &Path,
    sampler: Option<RecommendedSampler>,
) -> Result<PathBuf> {
    if let Some(s) = &sampler {
        s.validate()?;
    }
    let (dir, mut meta) = read_meta(path)?;
    meta.recommended_sampler = sampler;
    let meta_path = dir.join(META_FILE);
    let json = serde_json::to_vec_pretty(&meta).map_err(|e| ModelError::Json {
        path: meta_path.clone(),
        source: e,
    })?;
    write_atomic(&meta_path, &json)?;
    Ok(dir)
}
