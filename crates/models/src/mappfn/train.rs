//! Library entry points for training MapPFN: pre-training from scratch on a task source (a synthetic prior)
//! and fine-tuning a pre-trained checkpoint (real data). Both resume automatically when the output directory
//! already holds a checkpoint of the same run. Also the flow-matching loss of a micro-batch of tasks
//! ([`Trainable`] for the network).

use std::path::Path;

use cellshift_data::Task;
use rand_pcg::Pcg64;
use tch::{nn, Device, Tensor};

use super::config::MapPfnConfig;
use super::method::METHOD;
use super::model::{MapPfnNet, TaskLayout};
use super::standardize::TaskScale;
use crate::error::{ModelError, Result};
use crate::flow::sample_logit_normal_time;
use crate::rng;
use crate::train::checkpoint;
use crate::train::{
    train_in_dir, Budget, LossTerms, Progress, RunSummary, Start, TaskSource, TrainConfig,
    Trainable,
};

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

impl Trainable for MapPfnNet {
    type Batch = Vec<Task>;

    fn method(&self) -> &'static str {
        METHOD.name
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(self.config()).unwrap_or(serde_json::Value::Null)
    }

    fn var_store(&self) -> &nn::VarStore {
        MapPfnNet::var_store(self)
    }

    /// Spec §3.1: per task `t ~ LogitNormal(0,1)`, condition dropped with probability `condition_dropout`,
    /// `x0 ~ N(0, I)`; loss = mean over tasks, cells and genes of `(v − (x1 − x0))²`. Draws are made per
    /// task in task order (t, dropout, x0), so grouping tasks by layout does not change them.
    fn loss(&self, tasks: &Vec<Task>, draws: &mut Pcg64) -> Result<LossTerms> {
        use rand::Rng;
        if tasks.is_empty() {
            return Err(ModelError::Input(
                "a micro-batch needs at least one task".into(),
            ));
        }
        let scales: Option<Vec<TaskScale>> = self.config().standardize_tasks.then(|| {
            tasks
                .iter()
                .map(|t| TaskScale::for_config(t, self.config()))
                .collect()
        });
        let standardized: Vec<Task>;
        let tasks: &Vec<Task> = match &scales {
            Some(scales) => {
                standardized = tasks
                    .iter()
                    .zip(scales)
                    .map(|(t, s)| s.standardize(t))
                    .collect();
                &standardized
            }
            None => tasks,
        };
        let d = self.config().n_genes;
        let mut layouts: Vec<TaskLayout> = Vec::new();
        let mut group_of = Vec::with_capacity(tasks.len());
        let (mut t, mut drop, mut x0) = (Vec::new(), Vec::new(), Vec::new());
        for task in tasks {
            self.check_task(task, true)?;
            let n_query = task.target.as_ref().map_or(0, |a| a.nrows());
            let layout = MapPfnNet::layout_of(task, n_query);
            let g = layouts
                .iter()
                .position(|l| *l == layout)
                .unwrap_or_else(|| {
                    layouts.push(layout);
                    layouts.len() - 1
                });
            group_of.push(g);
            t.push(sample_logit_normal_time(draws));
            drop.push(draws.gen::<f64>() < self.config().condition_dropout);
            x0.push(rng::normals(draws, n_query * d));
        }
        let mut total: Option<Tensor> = None;
        let mut count = 0usize;
        for (g, layout) in layouts.iter().enumerate() {
            let idx: Vec<usize> = (0..tasks.len()).filter(|&i| group_of[i] == g).collect();
            let group: Vec<&Task> = idx.iter().map(|&i| &tasks[i]).collect();
            let gt: Vec<f32> = idx.iter().map(|&i| t[i]).collect();
            let gd: Vec<bool> = idx.iter().map(|&i| drop[i]).collect();
            let gx: Vec<Vec<f32>> = idx.iter().map(|&i| x0[i].clone()).collect();
            let gs: Option<Vec<TaskScale>> = scales
                .as_ref()
                .map(|s| idx.iter().map(|&i| s[i].clone()).collect());
            let (sse, n) = self.group_loss(&group, layout, &gt, &gx, &gd, gs.as_deref())?;
            total = Some(match total {
                Some(s) => s + sse,
                None => sse,
            });
            count += n;
        }
        Ok(LossTerms::single(
            total.expect("at least one group") / count as f64,
        ))
    }
}
