//! C3TL's fitted state: the network with the delta table it aggregates over (stored as frozen variables,
//! so a checkpoint restores both), the entry index, and the leave-one-out rows of the training loss.

use std::collections::HashMap;

use rand::seq::SliceRandom;
use rand_pcg::Pcg64;
use tch::{nn, Device, Kind, Tensor};

use super::config::C3tlConfig;
use super::model::{C3tlNet, LatentQuery};
use super::table::{DeltaTable, Entry};
use crate::blocks::init::{Init, ParamBuilder};
use crate::error::{ModelError, Result};
use crate::train::checkpoint::LoadedCheckpoint;
use crate::train::trainer::load_weights;

/// A fitted network with the table it aggregates over.
pub struct Fitted {
    pub(super) config: C3tlConfig,
    pub(super) vs: nn::VarStore,
    pub(super) net: C3tlNet,
    /// Table deltas divided by `scale`, `[n, d]`.
    pub(super) x: Tensor,
    pub(super) perturbation: Tensor,
    pub(super) context: Tensor,
    pub(super) rows: HashMap<Entry, usize>,
    pub(super) scale: f64,
    /// Rows whose leave-one-out prediction is defined (their perturbation has another context and their
    /// context another perturbation) — a property of the table alone — and their scaled deltas.
    pub(super) loss_rows: Tensor,
    pub(super) loss_target: Tensor,
    /// Table rows of each context (for [`C3tlConfig::context_subsample`]).
    pub(super) context_rows: Vec<Vec<usize>>,
    /// The table in the matrix products' element type (the same tensor as `x` for float32), converted
    /// once instead of in every epoch.
    pub(super) x_compute: Tensor,
}

/// Values decoded per chunk of the training loss (16 MB of f32, below glibc's largest `mmap` threshold).
pub(super) const LOSS_CHUNK_VALUES: usize = 4 << 20;

impl Fitted {
    /// Builds the variables: the network and the stored table (`table`: the deltas and the scale, or
    /// zeros of `config.table_entries` rows to be filled from a checkpoint).
    pub(super) fn build(
        config: C3tlConfig,
        device: Device,
        table: Option<(&DeltaTable, f64)>,
    ) -> Result<Fitted> {
        config.validate()?;
        let vs = nn::VarStore::new(device);
        let pb = ParamBuilder::new(vs.root(), config.seed);
        let net = C3tlNet::new(&pb.sub("net"), &config);
        let (n, d) = (config.table_entries, config.n_genes());
        let tb = pb.sub("table");
        let (deltas, pert, ctx, scale) = match table {
            Some((t, scale)) => (
                Init::Values(
                    t.deltas
                        .iter()
                        .map(|&v| (v as f64 / scale) as f32)
                        .collect(),
                ),
                Init::Values(t.entries.iter().map(|e| e.perturbation as f32).collect()),
                Init::Values(t.entries.iter().map(|e| e.context as f32).collect()),
                Init::Values(vec![scale as f32]),
            ),
            None => (Init::Zeros, Init::Zeros, Init::Zeros, Init::Ones),
        };
        let x = tb.frozen("deltas", &[n, d], deltas);
        let pert_f = tb.frozen("perturbation", &[n], pert);
        let ctx_f = tb.frozen("context", &[n], ctx);
        let scale_t = tb.frozen("scale", &[1], scale);
        let mut fitted = Fitted {
            config,
            vs,
            net,
            x,
            perturbation: pert_f.to_kind(Kind::Int64),
            context: ctx_f.to_kind(Kind::Int64),
            rows: HashMap::new(),
            scale: 1.0,
            loss_rows: Tensor::zeros([0], (Kind::Int64, device)),
            loss_target: Tensor::zeros([0, d as i64], (Kind::Float, device)),
            context_rows: Vec::new(),
            x_compute: Tensor::zeros([0, d as i64], (Kind::Float, device)),
        };
        fitted.refresh_index(&pert_f, &ctx_f, &scale_t)?;
        Ok(fitted)
    }

    /// Re-reads the entry index and scale from the stored table (after loading a checkpoint).
    pub(super) fn refresh_index(
        &mut self,
        pert_f: &Tensor,
        ctx_f: &Tensor,
        scale: &Tensor,
    ) -> Result<()> {
        let p = Vec::<f32>::try_from(pert_f.to_device(Device::Cpu))?;
        let c = Vec::<f32>::try_from(ctx_f.to_device(Device::Cpu))?;
        let (np, nc) = (self.config.perturbations.len(), self.config.contexts.len());
        self.rows.clear();
        let (mut per_p, mut per_c) = (vec![0usize; np], vec![0usize; nc]);
        self.context_rows = vec![Vec::new(); nc];
        for (row, (&p, &c)) in p.iter().zip(&c).enumerate() {
            let (p, c) = (p as usize, c as usize);
            if p >= np || c >= nc {
                return Err(ModelError::Input(format!(
                    "the stored C3TL table has an entry ({p}, {c}) outside its {np} perturbations and {nc} contexts"
                )));
            }
            self.rows.insert(
                Entry {
                    perturbation: p,
                    context: c,
                },
                row,
            );
            per_p[p] += 1;
            per_c[c] += 1;
            self.context_rows[c].push(row);
        }
        let loss_rows: Vec<i64> = p
            .iter()
            .zip(&c)
            .enumerate()
            .filter(|(_, (&p, &c))| per_p[p as usize] >= 2 && per_c[c as usize] >= 2)
            .map(|(row, _)| row as i64)
            .collect();
        let device = self.x.device();
        let rows = Tensor::from_slice(&loss_rows).to_device(device);
        // With the skip, Γ learns the residual after the perturbation's leave-one-out mean delta.
        let target = match tch::no_grad(|| {
            self.net
                .leave_one_out_skip(&self.x, &pert_f.to_kind(Kind::Int64))
        }) {
            Some(skip) => &self.x - skip,
            None => self.x.shallow_clone(),
        };
        self.loss_target = if loss_rows.len() == p.len() {
            target
        } else {
            target.index_select(0, &rows)
        };
        self.loss_rows = rows;
        self.x_compute = tch::no_grad(|| {
            self.x
                .to_kind(self.config.matmul_precision.kind())
                .shallow_clone()
        });
        self.perturbation = pert_f.to_kind(Kind::Int64);
        self.context = ctx_f.to_kind(Kind::Int64);
        self.scale = scale.double_value(&[0]);
        if !(self.scale > 0.0 && self.scale.is_finite()) {
            return Err(ModelError::Input(format!(
                "the stored C3TL delta scale is {}, not a positive number",
                self.scale
            )));
        }
        Ok(())
    }

    /// Predicted deltas (data units) of `entries`, `[m, d]`; an entry in the table is predicted from the
    /// others (leave-one-out), as in training.
    pub(super) fn predict_deltas(&self, entries: &[Entry]) -> Result<Tensor> {
        tch::no_grad(|| {
            let enc = self
                .net
                .encode(&self.x_compute, &self.perturbation, &self.context);
            let queries: Vec<LatentQuery> = entries
                .iter()
                .map(|e| LatentQuery {
                    perturbation: e.perturbation,
                    context: e.context,
                    own_row: self.rows.get(e).copied(),
                })
                .collect();
            let latents = self.net.query_latents(
                &enc,
                &self.perturbation,
                &self.context,
                &queries,
                (&self.config.perturbations, &self.config.contexts),
            )?;
            let decoded = self.net.decoder.forward(&latents);
            let decoded = match self.net.query_skip(&self.x, &self.perturbation, &queries) {
                Some(skip) => decoded + skip,
                None => decoded,
            };
            Ok(decoded * self.scale)
        })
    }

    /// The entries that feed the context latents in one training epoch with
    /// [`C3tlConfig::context_subsample`] `k`: `k` random rows of every context with more than `k` entries,
    /// every row of the others; 1.0 / 0.0 per row, `[n]`.
    pub(super) fn context_subset(&self, k: usize, rng: &mut Pcg64) -> Tensor {
        let mut keep = vec![0f32; self.context.size()[0] as usize];
        for rows in &self.context_rows {
            if rows.len() <= k {
                rows.iter().for_each(|&r| keep[r] = 1.0);
            } else {
                rows.choose_multiple(rng, k).for_each(|&r| keep[r] = 1.0);
            }
        }
        Tensor::from_slice(&keep).to_device(self.x.device())
    }

    /// Number of table entries whose leave-one-out prediction is defined.
    pub(super) fn loss_entries(&self) -> i64 {
        self.loss_rows.size()[0]
    }
}

/// The fitted state of `config` from a checkpoint: the network's weights and the stored table.
pub(super) fn restore(config: C3tlConfig, ck: &LoadedCheckpoint, device: Device) -> Result<Fitted> {
    let mut fitted = Fitted::build(config, device, None)?;
    load_weights(&fitted.vs, ck, false)?;
    let vars = fitted.vs.variables();
    let get = |name: &str| {
        vars.get(name)
            .map(|t| t.shallow_clone())
            .ok_or_else(|| ModelError::CheckpointCorrupt {
                path: ck.dir.clone(),
                reason: format!("the C3TL table variable `{name}` is missing"),
            })
    };
    let (p, c, s) = (
        get("table.perturbation")?,
        get("table.context")?,
        get("table.scale")?,
    );
    fitted.refresh_index(&p, &c, &s)?;
    Ok(fitted)
}
