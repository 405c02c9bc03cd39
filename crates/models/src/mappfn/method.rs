//! MapPFN's line of the method registry: loading checkpoints, and fitting as fine-tuning.

use std::path::Path;

use cellshift_data::{FitContext, PerturbationData};

use super::config::MapPfnConfig;
use super::predictor::{MapPfn, WeightSet};
use super::train::{finetune_on, pretrain_on};
use crate::error::{ModelError, Result};
use crate::method::{
    apply_model_options, torch_device, InferenceOptions, MethodEntry, MethodModel, PretrainRequest,
};
use crate::sources::DataTasks;
use crate::train::{Budget, Progress, RunSummary, TrainConfig};

/// The registry entry.
pub static METHOD: MethodEntry = MethodEntry {
    name: "mappfn",
    about: "MapPFN: in-context flow-matching transformer pre-trained on synthetic causal priors",
    presets: &["tiny", "small", "paper", "paper-text"],
    load,
    create: None,
    pretrain: Some(pretrain),
    hooks: super::HOOKS,
};

/// Pre-training from scratch (spec §3): a `request.preset` network of `request.genes` genes, whose context
/// slots must hold K experiments.
fn pretrain(
    request: &PretrainRequest<'_>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<RunSummary> {
    let model = apply_model_options(
        &MapPfnConfig::preset(request.preset, request.genes)?,
        request.model_options,
    )?;
    if request.k > model.max_context() {
        return Err(ModelError::Config(format!(
            "K = {} exceeds the {} context slots of the model; use --k {} or less",
            request.k,
            model.max_context(),
            model.max_context()
        )));
    }
    pretrain_on(
        torch_device(request.device),
        &model,
        request.train,
        request.source,
        request.out_dir,
        request.budget,
        |p: &Progress| progress(p),
    )
}

fn load(path: &Path, options: &InferenceOptions) -> Result<MethodModel> {
    let model = MapPfn::load_with(path, WeightSet::Ema, torch_device(options.device))?
        .with_sampler(options.sampler)?;
    Ok(Box::new(model))
}

/// Context experiments per fine-tuning task unless the user sets K.
pub const FINETUNE_K: usize = 8;
/// Cells per set of fine-tuning tasks unless the user sets them.
pub const FINETUNE_CELLS: usize = 64;
/// Run length of fine-tuning (micro-batches) unless the user sets it (spec §3.6).
pub const FINETUNE_STEPS: u64 = 3000;

impl MapPfn {
    /// Fine-tunes the checkpoint this model was loaded from on tasks whose queries are `train_conditions`
    /// (spec §3.6: fresh AdamW, warmup to 5e-5, EMA continued), into `ctx.run_dir` (resuming there), then
    /// loads the fine-tuned EMA weights. Without a run directory nothing is done: MapPFN adapts in context.
    pub fn finetune_in_place(
        &mut self,
        data: &PerturbationData,
        train_conditions: &[usize],
        ctx: &mut FitContext<'_>,
    ) -> Result<()> {
        let Some(run_dir) = ctx.run_dir.clone() else {
            return Ok(());
        };
        let checkpoint = self
            .checkpoint_dir()
            .map(Path::to_path_buf)
            .ok_or_else(|| {
                ModelError::Config(
                    "fine-tuning starts from a checkpoint; load the model from one (`--model DIR`)"
                        .into(),
                )
            })?;
        let o = &ctx.overrides;
        let k = o.k.unwrap_or(FINETUNE_K);
        if k > self.net().config().max_context() {
            return Err(ModelError::Config(format!(
                "K = {k} exceeds the model's {} context slots; use --k {} or less",
                self.net().config().max_context(),
                self.net().config().max_context()
            )));
        }
        let mut preprocessing = self.preprocessing().clone();
        preprocessing.gene_names = data.genes.clone();
        let train =
            TrainConfig::from_overrides("finetune", FINETUNE_STEPS, preprocessing, o, ctx.seed)?;
        let source = DataTasks::from_conditions(
            data,
            train_conditions,
            k,
            o.cells.unwrap_or(FINETUNE_CELLS),
            ctx.seed,
        )?;
        let budget = ctx.budget.unwrap_or(Budget::Steps(train.total_steps));
        let device = torch_device(ctx.device);
        let mut report = |p: &crate::train::Progress| ctx.report(p);
        finetune_on(
            device,
            &checkpoint,
            &train,
            &source,
            &run_dir,
            budget,
            &mut report,
        )?;
        let tuned =
            MapPfn::load_with(&run_dir, WeightSet::Ema, device)?.with_sampler(*self.sampler())?;
        *self = tuned;
        Ok(())
    }
}
