//! Library entry points for training MapPFN: pre-training from scratch on a task source (a synthetic prior)
//! and fine-tuning a pre-trained checkpoint (real data). Both resume automatically when the output directory
//! already holds a checkpoint of the same run.

use std::path::Path;

use tch::Device;

use super::config::MapPfnConfig;
use super::model::MapPfnNet;
use crate::error::{ModelError, Result};
use crate::rng;
use crate::train::checkpoint;
use crate::train::{train_in_dir, Budget, Progress, RunSummary, Start, TaskSource, TrainConfig};

fn check_genes(model: &MapPfnConfig, train: &TrainConfig) -> Result<()> {
    if train.preprocessing.n_genes != model.n_genes {
        return Err(ModelError::Config(format!(
            "the training data has {} genes (preprocessing.n_genes) but the model is built for {}; make them equal",
            train.preprocessing.n_genes, model.n_genes
        )));
    }
    Ok(())
}

/// Pre-trains a MapPFN of architecture `model` on `source` into `out_dir` (CPU). The initial weights are a
/// function of `train.seed`. Resumes from `out_dir`'s latest checkpoint when there is one.
pub fn pretrain(
    model: &MapPfnConfig,
    train: &TrainConfig,
    source: &dyn TaskSource,
    out_dir: &Path,
    budget: Budget,
    on_progress: impl FnMut(&Progress),
) -> Result<RunSummary> {
    pretrain_on(
        Device::Cpu,
        model,
        train,
        source,
        out_dir,
        budget,
        on_progress,
    )
}

/// [`pretrain`] on a chosen device (e.g. `Device::Cuda(0)`).
pub fn pretrain_on(
    device: Device,
    model: &MapPfnConfig,
    train: &TrainConfig,
    source: &dyn TaskSource,
    out_dir: &Path,
    budget: Budget,
    mut on_progress: impl FnMut(&Progress),
) -> Result<RunSummary> {
    model.validate()?;
    train.validate()?;
    check_genes(model, train)?;
    let net = MapPfnNet::new(
        model.clone(),
        rng::stream_seed(train.seed, "mappfn-init", 0),
        device,
    )?;
    train_in_dir(
        &net,
        train,
        source,
        out_dir,
        budget,
        Start::Fresh,
        &mut on_progress,
    )
}

/// Fine-tunes the checkpoint at `checkpoint_dir` (raw weights and EMA; fresh AdamW and counters) on `source`
/// into `out_dir` (CPU). Resumes from `out_dir`'s latest checkpoint when there is one.
pub fn finetune(
    checkpoint_dir: &Path,
    train: &TrainConfig,
    source: &dyn TaskSource,
    out_dir: &Path,
    budget: Budget,
    on_progress: impl FnMut(&Progress),
) -> Result<RunSummary> {
    finetune_on(
        Device::Cpu,
        checkpoint_dir,
        train,
        source,
        out_dir,
        budget,
        on_progress,
    )
}

/// [`finetune`] on a chosen device.
pub fn finetune_on(
    device: Device,
    checkpoint_dir: &Path,
    train: &TrainConfig,
    source: &dyn TaskSource,
    out_dir: &Path,
    budget: Budget,
    mut on_progress: impl FnMut(&Progress),
) -> Result<RunSummary> {
    train.validate()?;
    let ck = checkpoint::read_checkpoint(checkpoint_dir)?;
    let model: MapPfnConfig = ck.model_config("mappfn")?;
    check_genes(&model, train)?;
    // Genes are anonymous inputs of a prior-fitted network, so fine-tuning on other gene names is allowed;
    // the fine-tuned checkpoint records the new preprocessing.
    let net = MapPfnNet::new(model, 0, device)?;
    train_in_dir(
        &net,
        train,
        source,
        out_dir,
        budget,
        Start::FinetuneFrom(&ck),
        &mut on_progress,
    )
}
