//! Fitting the toy by maximum likelihood on the target cells of training tasks (queries = train
//! conditions, K = 0) through the shared loop, into a run directory, keeping the EMA weights.

use cellshift_data::{Budget, FitContext, PerturbationData, Task};
use rand_pcg::Pcg64;
use tch::{nn, Kind, Tensor};

use super::method::{ToyGaussian, NAME};
use super::model::ToyNet;
use crate::error::{ModelError, Result};
use crate::sources::DataTasks;
use crate::train::checkpoint;
use crate::train::trainer::load_weights;
use crate::train::{train_in_dir, LossTerms, Start, TrainConfig, Trainable};

/// Peak learning rate unless `--lr` is given: every parameter is a per-gene mean or log-spread of order 1,
/// which the `quick` preset's 1e-3 would need thousands of steps to reach.
pub const DEFAULT_LEARNING_RATE: f64 = 0.1;

impl Trainable for ToyNet {
    type Batch = Vec<Task>;

    fn method(&self) -> &'static str {
        NAME
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or(serde_json::Value::Null)
    }

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// NLL of the batch's target cells plus the L2 penalty on the shifts, as two named components.
    fn loss(&self, tasks: &Vec<Task>, _rng: &mut Pcg64) -> Result<LossTerms> {
        let mut nll = Tensor::zeros([], (Kind::Float, self.vs.device()));
        for task in tasks {
            nll = nll + self.nll(task)?;
        }
        let nll = nll / tasks.len().max(1) as f64;
        let penalty = self.shift_penalty();
        Ok(LossTerms {
            total: &nll + &penalty,
            components: vec![
                ("nll".into(), nll.detach()),
                ("shift_l2".into(), penalty.detach()),
            ],
            backpropagated: false,
        })
    }
}

/// Trains fresh parameters of `model`'s configuration into `ctx.run_dir` (resuming there) and returns
/// them with the EMA weights loaded.
pub(super) fn fit(
    model: &ToyGaussian,
    data: &PerturbationData,
    train_conditions: &[usize],
    ctx: &mut FitContext<'_>,
) -> Result<(ToyNet, ())> {
    let run_dir = ctx.run_dir.clone().ok_or_else(|| {
        ModelError::Config(format!(
            "{NAME} trains into a run directory; give --out DIR"
        ))
    })?;
    let net = ToyNet::new(model.config().clone(), model.device())?;
    let mut preprocessing = model.preprocessing().clone();
    preprocessing.gene_names = data.genes.clone();
    let mut o = ctx.overrides.clone();
    o.lr = o.lr.or(Some(DEFAULT_LEARNING_RATE));
    let train = TrainConfig::from_overrides("quick", 200, preprocessing, &o, ctx.seed)?;
    let source =
        DataTasks::from_conditions(data, train_conditions, 0, o.cells.unwrap_or(32), ctx.seed)?;
    let budget = ctx.budget.unwrap_or(Budget::Steps(train.total_steps));
    let mut report = |p: &crate::train::Progress| ctx.report(p);
    train_in_dir(
        &net,
        &train,
        &source,
        &run_dir,
        budget,
        Start::Fresh,
        &mut report,
    )?;
    let ck = checkpoint::read_checkpoint(&run_dir)?;
    load_weights(&net.vs, &ck, true)?;
    Ok((net, ()))
}
