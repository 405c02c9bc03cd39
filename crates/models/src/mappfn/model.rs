//! The MapPFN velocity network (spec §2, Appendix A): wrapper embeddings of the observational cells, the
//! K context experiments and the treatments; a three-stream MMDiT (noise with prepended register tokens,
//! cell-state condition, treatments) with FiLM time conditioning, QK-RMSNorm and joint attention; and a
//! linear output head on the noise tokens. Classifier-free guidance replaces every condition and treatment
//! token by a learned null embedding.

use cellshift_data::Task;
use ndarray::ArrayView2;
use tch::{nn, Device, Kind, Tensor};

use super::config::MapPfnConfig;
use super::skip::InterventionSkip;
use super::standardize::TaskScale;
use crate::blocks::{
    Init, Linear, LinearInit, MmditBlock, MmditShape, ParamBuilder, TimeEmbedding,
};
use crate::encoding::OneHot;
use crate::error::{ModelError, Result};
use crate::flow::{interpolate, target_velocity, ConditionalVelocity};

/// Names of the three token streams, in attention order.
pub const STREAMS: [&str; 3] = ["noise", "cond", "treat"];

/// Token counts of one task: the observational set, each context set, and the query (noise) set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TaskLayout {
    /// Cells in the observational set.
    pub n_obs: usize,
    /// Cells in each of the K context sets.
    pub n_context: Vec<usize>,
    /// Cells to generate (noise tokens, excluding registers).
    pub n_query: usize,
}

impl TaskLayout {
    /// Number of context experiments K.
    pub fn k(&self) -> usize {
        self.n_context.len()
    }

    /// Condition-stream tokens: the observational cells plus all context cells.
    pub fn cond_tokens(&self) -> usize {
        self.n_obs + self.n_context.iter().sum::<usize>()
    }

    /// Joint sequence length with `registers` register tokens.
    pub fn joint_tokens(&self, registers: usize) -> usize {
        registers + self.n_query + self.cond_tokens() + self.k() + 1
    }
}

/// Conditioning inputs of `B` tasks sharing one layout, already embedded by the wrapper (before the null
/// replacement, which depends on the guidance branch).
#[derive(Debug)]
pub struct EncodedCondition {
    /// Condition tokens `[B, n_obs + Σ n_k, width]`.
    pub cond: Tensor,
    /// Treatment tokens `[B, K + 1, width]`.
    pub treat: Tensor,
    /// The query treatment vectors `[B, d]` (for the intervention skip).
    pub query_treatment: Tensor,
    /// Per task and gene, the affine map `z = x·a + b` from data units to the units the network works in
    /// (`[B, 2, d]`: rows a, b; the identity unless tasks are standardised), so that the intervention
    /// skip's endpoint is stated in data units (a knocked-out gene goes to a raw zero).
    pub data_to_model: Tensor,
    /// The layout.
    pub layout: TaskLayout,
}

/// The MapPFN network and its variables.
pub struct MapPfnNet {
    vs: nn::VarStore,
    config: MapPfnConfig,
    null: Tensor,
    u_c: Linear,
    u_t: Linear,
    e_obs: Tensor,
    e_int: Tensor,
    e_trt: Tensor,
    e_ctx: Tensor,
    e_query: Tensor,
    registers: Tensor,
    noise_in: Linear,
    noise_out: Linear,
    cond_in: Linear,
    trt_in: Linear,
    m_noise: Tensor,
    m_cond: Tensor,
    m_treat: Tensor,
    time: TimeEmbedding,
    blocks: Vec<MmditBlock>,
    skip: Option<InterventionSkip>,
    compact_null_training: bool,
}

impl std::fmt::Debug for MapPfnNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapPfnNet")
            .field("config", &self.config)
            .field("parameters", &self.parameter_count())
            .finish()
    }
}

/// Copies 2-D arrays of equal shape into one `[B, rows, cols]` float tensor.
fn stack_views<'a>(
    views: impl IntoIterator<Item = ArrayView2<'a, f32>>,
    rows: usize,
    cols: usize,
    device: Device,
) -> Tensor {
    let mut data = Vec::new();
    let mut b = 0i64;
    for v in views {
        data.extend(v.iter().copied());
        b += 1;
    }
    Tensor::from_slice(&data)
        .reshape([b, rows as i64, cols as i64])
        .to_device(device)
}

impl MapPfnNet {
    /// Builds a freshly initialised network (spec §2.8) whose initial weights are a function of `seed`.
    pub fn new(config: MapPfnConfig, seed: u64, device: Device) -> Result<MapPfnNet> {
        config.validate()?;
        let vs = nn::VarStore::new(device);
        let root = ParamBuilder::new(vs.root(), seed);
        let (d, w) = (config.n_genes, config.width);
        let emb = || Init::Normal {
            std: 1.0 / (w as f64).sqrt(),
        };
        let wrapper = root.sub("wrapper");
        let null = wrapper.param("null", &[w], emb());
        let u_c = Linear::new(&wrapper, "u_c", d, w, true, LinearInit::FanInUniform);
        let u_t = Linear::new(&wrapper, "u_t", d, w, true, LinearInit::FanInUniform);
        let e_obs = wrapper.param("e_obs", &[w], emb());
        let e_int = wrapper.param("e_int", &[w], emb());
        let e_trt = wrapper.param("e_trt", &[w], emb());
        let e_ctx = wrapper.param("e_ctx", &[config.max_slots, w], emb());
        let e_query = wrapper.param("e_query", &[w], emb());
        let mm = root.sub("mmdit");
        let registers = mm.param(
            "registers",
            &[config.register_tokens, d],
            Init::Normal { std: 1.0 },
        );
        let noise_in = Linear::new(&mm, "noise_in", d, w, true, LinearInit::FanInUniform);
        let noise_out = Linear::new(&mm, "noise_out", w, d, true, LinearInit::FanInUniform);
        let cond_in = Linear::new(&mm, "cond_in", w, w, true, LinearInit::FanInUniform);
        let trt_in = Linear::new(&mm, "trt_in", w, w, true, LinearInit::FanInUniform);
        let m_noise = mm.param("m_noise", &[w], emb());
        let m_cond = mm.param("m_cond", &[w], emb());
        let m_treat = mm.param("m_treat", &[w], emb());
        let time = TimeEmbedding::new(
            &mm,
            "time",
            w,
            config.time_mlp_ratio * w,
            config.trainable_time_frequencies,
        );
        let shape = MmditShape {
            width: w,
            heads: config.heads,
            mlp_ratio: config.mlp_ratio,
            cond_width: w,
        };
        let blocks_pb = mm.sub("blocks");
        let blocks = (0..config.depth)
            .map(|i| {
                MmditBlock::new(
                    &blocks_pb.sub(&i.to_string()),
                    &STREAMS,
                    shape,
                    config.attention_pad_to_multiple,
                )
            })
            .collect();
        let skip = config
            .intervention_skip
            .then(|| InterventionSkip::new(&root.sub("skip")));
        Ok(MapPfnNet {
            vs,
            config,
            null,
            u_c,
            u_t,
            e_obs,
            e_int,
            e_trt,
            e_ctx,
            e_query,
            registers,
            noise_in,
            noise_out,
            cond_in,
            trt_in,
            m_noise,
            m_cond,
            m_treat,
            time,
            blocks,
            skip,
            compact_null_training: true,
        })
    }

    /// Whether training computes condition-dropped tasks with the compact exact unconditional pass
    /// ([`MapPfnNet::unconditional_velocity_compact`]; default) instead of masked full-length rows. Both give
    /// the same loss up to floating-point reassociation; the compact pass is cheaper.
    pub fn set_compact_null_training(&mut self, compact: bool) {
        self.compact_null_training = compact;
    }

    /// The configuration.
    pub fn config(&self) -> &MapPfnConfig {
        &self.config
    }

    /// The variables.
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// The device the variables live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Number of trainable parameters.
    pub fn parameter_count(&self) -> usize {
        crate::train::trainer::parameter_count(&self.vs)
    }

    /// Checks that a task fits the model (gene count, K, set sizes, finite values); `need_target` also
    /// requires the target cells (training).
    pub fn check_task(&self, task: &Task, need_target: bool) -> Result<()> {
        let d = self.config.n_genes;
        let k = task.k();
        let label = |what: &str| format!("task of context `{}`: {what}", task.context);
        let err = |m: String| Err(ModelError::Input(label(&m)));
        if task.observational.ncols() != d {
            return err(format!(
                "observational cells have {} genes, the model expects {d}",
                task.observational.ncols()
            ));
        }
        if task.observational.nrows() == 0 {
            return err("the observational set is empty; give at least one control cell".into());
        }
        if k > 0 && (task.context_cells.shape()[2] != d || task.context_cells.shape()[1] == 0) {
            return err(format!(
                "context cells have shape {:?}, expected K × n × {d} with n ≥ 1",
                task.context_cells.shape()
            ));
        }
        if k + 1 > self.config.max_slots {
            return err(format!(
                "K = {k} context experiments exceed this model's maximum of {}; use at most that many",
                self.config.max_context()
            ));
        }
        if task.genes.len() != d {
            return err(format!(
                "the task names {} genes, the model expects {d}",
                task.genes.len()
            ));
        }
        if task.experiments.len() != k {
            return err(format!(
                "the task has {} context treatments for K = {k} context sets",
                task.experiments.len()
            ));
        }
        let treatments = OneHot::task_treatments(task)?;
        if need_target {
            match &task.target {
                None => {
                    return err(
                        "training needs the target cells of the query, but the task has none"
                            .into(),
                    )
                }
                Some(t) if t.ncols() != d || t.nrows() == 0 => {
                    return err(format!(
                        "target cells have shape {:?}, expected n × {d} with n ≥ 1",
                        t.shape()
                    ))
                }
                _ => {}
            }
        }
        let arrays: [(&str, Box<dyn Iterator<Item = &f32>>); 3] = [
            ("observational cells", Box::new(task.observational.iter())),
            ("context cells", Box::new(task.context_cells.iter())),
            ("treatments", Box::new(treatments.iter())),
        ];
        for (what, mut values) in arrays {
            if let Some(v) = values.find(|v| !v.is_finite()) {
                return err(format!(
                    "{what} contain a non-finite value ({v}); remove or impute NaN/Inf first"
                ));
            }
        }
        if need_target {
            if let Some(v) = task
                .target
                .as_ref()
                .and_then(|t| t.iter().find(|v| !v.is_finite()))
            {
                return err(format!("target cells contain a non-finite value ({v})"));
            }
        }
        Ok(())
    }

    /// The layout of a task generating `n_query` cells.
    pub fn layout_of(task: &Task, n_query: usize) -> TaskLayout {
        let k = task.k();
        let n_ctx = if k > 0 {
            task.context_cells.shape()[1]
        } else {
            0
        };
        TaskLayout {
            n_obs: task.observational.nrows(),
            n_context: vec![n_ctx; k],
            n_query,
        }
    }

    /// Embeds the conditioning inputs of tasks that share `layout` (spec §2.2).
    pub fn encode_tasks(&self, tasks: &[&Task], layout: &TaskLayout) -> Result<EncodedCondition> {
        self.encode_tasks_scaled(tasks, layout, None)
    }

    /// [`MapPfnNet::encode_tasks`] of tasks already standardised by `scales` (one per task), which the
    /// intervention skip needs to place its endpoint in data units.
    pub fn encode_tasks_scaled(
        &self,
        tasks: &[&Task],
        layout: &TaskLayout,
        scales: Option<&[TaskScale]>,
    ) -> Result<EncodedCondition> {
        let d = self.config.n_genes;
        let dev = self.device();
        let obs = stack_views(
            tasks.iter().map(|t| t.observational.view()),
            layout.n_obs,
            d,
            dev,
        );
        let n_ctx: usize = layout.n_context.iter().sum();
        let ctx = if layout.k() > 0 {
            let mut data = Vec::with_capacity(tasks.len() * n_ctx * d);
            for t in tasks {
                data.extend(t.context_cells.iter().copied());
            }
            Some(
                Tensor::from_slice(&data)
                    .reshape([tasks.len() as i64, n_ctx as i64, d as i64])
                    .to_device(dev),
            )
        } else {
            None
        };
        let encoded: Vec<ndarray::Array2<f32>> = tasks
            .iter()
            .map(|t| OneHot::task_treatments(t))
            .collect::<Result<_>>()?;
        let trt = stack_views(encoded.iter().map(|t| t.view()), layout.k() + 1, d, dev);
        let mut cond = self.encode(&obs, ctx.as_ref(), &trt, layout)?;
        if let Some(scales) = scales {
            let mut affine = Vec::with_capacity(scales.len() * 2 * d);
            for scale in scales {
                let (a, b) = scale.affine();
                affine.extend(a.iter().chain(b.iter()).copied());
            }
            cond.data_to_model = Tensor::from_slice(&affine)
                .reshape([scales.len() as i64, 2, d as i64])
                .to_device(dev);
        }
        Ok(cond)
    }

    /// Embeds observational cells `[B, n_obs, d]`, concatenated context cells `[B, Σ n_k, d]` (none when
    /// K = 0) and treatments `[B, K+1, d]`.
    pub fn encode(
        &self,
        obs: &Tensor,
        ctx: Option<&Tensor>,
        treatments: &Tensor,
        layout: &TaskLayout,
    ) -> Result<EncodedCondition> {
        let k = layout.k();
        if k + 1 > self.config.max_slots {
            return Err(ModelError::Input(format!(
                "K = {k} context experiments exceed this model's maximum of {}",
                self.config.max_context()
            )));
        }
        let w = self.config.width as i64;
        // Per-token additive embeddings of the condition stream: observational cells use the type
        // embedding e_obs, the query's slot E_ctx[K] and e_query; context set k uses e_int and E_ctx[k].
        let obs_offset = (&self.e_obs + self.e_ctx.get(k as i64) + &self.e_query).view([1, w]);
        let mut offsets = vec![obs_offset.expand([layout.n_obs as i64, w], false)];
        for (slot, &n) in layout.n_context.iter().enumerate() {
            let off = (&self.e_int + self.e_ctx.get(slot as i64)).view([1, w]);
            offsets.push(off.expand([n as i64, w], false));
        }
        let offsets = Tensor::cat(&offsets, 0).unsqueeze(0);
        let cells = match ctx {
            Some(c) if k > 0 => Tensor::cat(&[obs, c], 1),
            _ => obs.shallow_clone(),
        };
        let cond = self.u_c.forward(&cells) + offsets;
        // Treatment tokens: U_t τ + e_trt + E_ctx[k], plus e_query for the query (last).
        let slots = self.e_ctx.narrow(0, 0, k as i64 + 1);
        let query_flag = Tensor::cat(
            &[
                Tensor::zeros([k as i64, 1], (Kind::Float, self.device())),
                Tensor::ones([1, 1], (Kind::Float, self.device())),
            ],
            0,
        );
        let trt_offsets =
            (slots + &self.e_trt + query_flag * self.e_query.view([1, w])).unsqueeze(0);
        let treat = self.u_t.forward(treatments) + trt_offsets;
        let b = treatments.size()[0];
        let d = self.config.n_genes as i64;
        let identity = Tensor::stack(
            &[
                Tensor::ones([b, d], (Kind::Float, self.device())),
                Tensor::zeros([b, d], (Kind::Float, self.device())),
            ],
            1,
        );
        Ok(EncodedCondition {
            cond,
            treat,
            query_treatment: treatments.select(1, k as i64),
            data_to_model: identity,
            layout: layout.clone(),
        })
    }

    /// Velocity `[R, n_query, d]` at noisy cells `x: [R, n_query, d]` and times `t: [R]`; row `r` uses the
    /// condition of task `r mod B` and is unconditional (null-embedded condition and treatment tokens)
    /// where `uncond[r]` is true.
    pub fn velocity_with(
        &self,
        cond: &EncodedCondition,
        x: &Tensor,
        t: &Tensor,
        uncond: &Tensor,
    ) -> Result<Tensor> {
        let size = x.size();
        let (rows, b) = (size[0], cond.cond.size()[0]);
        if size.len() != 3 || size[2] != self.config.n_genes as i64 || rows % b != 0 {
            return Err(ModelError::Input(format!(
                "noisy cells have shape {size:?}; expected [R, n, {}] with R a multiple of {b}",
                self.config.n_genes
            )));
        }
        let reps = rows / b;
        let (c, tr) = if reps > 1 {
            (
                cond.cond.repeat([reps, 1, 1]),
                cond.treat.repeat([reps, 1, 1]),
            )
        } else {
            (cond.cond.shallow_clone(), cond.treat.shallow_clone())
        };
        let w = self.config.width as i64;
        let mask = uncond.view([rows, 1, 1]);
        let null = self.null.view([1, 1, w]);
        let c = null.where_self(&mask, &c);
        let tr = null.where_self(&mask, &tr);
        let r = self.config.register_tokens as i64;
        let regs = self
            .registers
            .unsqueeze(0)
            .expand([rows, r, self.config.n_genes as i64], false);
        let noise_tokens = Tensor::cat(&[regs.to_kind(x.kind()), x.shallow_clone()], 1);
        let mut xs = vec![
            self.noise_in.forward(&noise_tokens) + &self.m_noise,
            self.cond_in.forward(&c) + &self.m_cond,
            self.trt_in.forward(&tr) + &self.m_treat,
        ];
        let e = self.time.forward(t);
        for block in &self.blocks {
            xs = block.forward(&xs, &e);
        }
        let v = self.noise_out.forward(&xs[0].narrow(1, r, size[1]));
        Ok(match &self.skip {
            Some(skip) => {
                let (tau, affine) = if reps > 1 {
                    (
                        cond.query_treatment.repeat([reps, 1]),
                        cond.data_to_model.repeat([reps, 1, 1]),
                    )
                } else {
                    (
                        cond.query_treatment.shallow_clone(),
                        cond.data_to_model.shallow_clone(),
                    )
                };
                skip.apply(&v, x, t, &tau, &affine, &uncond.logical_not())
            }
            None => v,
        })
    }

    /// The unconditional velocity `[R, n_query, d]` computed exactly but cheaply: with the condition dropped,
    /// every condition token and every treatment token is the same null token, and identical tokens stay
    /// identical through the blocks (per-token layers, permutation-equivariant attention). So each stream is
    /// run as a single token whose attention logit carries `ln(multiplicity)`, which reproduces attention
    /// over all copies. Not available with attention padding (the pad count depends on the length).
    pub fn unconditional_velocity_compact(
        &self,
        layout: &TaskLayout,
        x: &Tensor,
        t: &Tensor,
    ) -> Result<Tensor> {
        if self.config.attention_pad_to_multiple.is_some() {
            return Err(ModelError::Input(
                "the compact unconditional pass is exact only without attention padding".into(),
            ));
        }
        let size = x.size();
        if size.len() != 3 || size[2] != self.config.n_genes as i64 {
            return Err(ModelError::Input(format!(
                "noisy cells have shape {size:?}; expected [R, n, {}]",
                self.config.n_genes
            )));
        }
        let rows = size[0];
        let w = self.config.width as i64;
        let null = self.null.view([1, 1, w]).expand([rows, 1, w], false);
        let r = self.config.register_tokens as i64;
        let regs = self
            .registers
            .unsqueeze(0)
            .expand([rows, r, self.config.n_genes as i64], false);
        let noise_tokens = Tensor::cat(&[regs.to_kind(x.kind()), x.shallow_clone()], 1);
        let mut xs = vec![
            self.noise_in.forward(&noise_tokens) + &self.m_noise,
            self.cond_in.forward(&null) + &self.m_cond,
            self.trt_in.forward(&null) + &self.m_treat,
        ];
        let n_cond = (layout.n_obs + layout.n_context.iter().sum::<usize>()) as f64;
        let n_treat = (layout.k() + 1) as f64;
        let noise_len = (r + size[1]) as usize;
        let mut bias = vec![0f32; noise_len];
        bias.push(n_cond.ln() as f32);
        bias.push(n_treat.ln() as f32);
        let bias = Tensor::from_slice(&bias).to_device(x.device());
        let e = self.time.forward(t);
        for block in &self.blocks {
            xs = block.forward_with_key_bias(&xs, &e, Some(&bias));
        }
        Ok(self.noise_out.forward(&xs[0].narrow(1, r, size[1])))
    }

    /// The flow-matching loss (sum of squared errors and element count) of tasks sharing a layout, with
    /// per-task times `t`, noise `x0` (flattened `n_query·d` each) and dropout flags.
    pub(super) fn group_loss(
        &self,
        tasks: &[&Task],
        layout: &TaskLayout,
        t: &[f32],
        x0: &[Vec<f32>],
        drop: &[bool],
        scales: Option<&[TaskScale]>,
    ) -> Result<(Tensor, usize)> {
        let d = self.config.n_genes;
        let dev = self.device();
        let b = tasks.len() as i64;
        let cond = self.encode_tasks_scaled(tasks, layout, scales)?;
        let x1 = stack_views(
            tasks.iter().map(|task| {
                task.target
                    .as_ref()
                    .map(|a| a.view())
                    .expect("checked by check_task")
            }),
            layout.n_query,
            d,
            dev,
        );
        let x0: Vec<f32> = x0.iter().flatten().copied().collect();
        let x0 = Tensor::from_slice(&x0)
            .reshape([b, layout.n_query as i64, d as i64])
            .to_device(dev);
        let tt = Tensor::from_slice(t).to_device(dev);
        let xt = interpolate(&x0, &x1, &tt.view([b, 1, 1]));
        let u = target_velocity(&x0, &x1);
        let count = tasks.len() * layout.n_query * d;
        let compact = self.compact_null_training
            && self.config.attention_pad_to_multiple.is_none()
            && drop.iter().any(|&x| x);
        if !compact {
            let uncond = Tensor::from_slice(drop).to_device(dev);
            let v = self.velocity_with(&cond, &xt, &tt, &uncond)?;
            return Ok(((v - u).square().sum(Kind::Float), count));
        }
        // Condition-dropped tasks through the compact exact unconditional pass, the others as usual.
        let rows = |keep: bool| -> Tensor {
            let idx: Vec<i64> = (0..b).filter(|&i| drop[i as usize] != keep).collect();
            Tensor::from_slice(&idx).to_device(dev)
        };
        let (kept, dropped) = (rows(true), rows(false));
        let mut sse = {
            let xd = xt.index_select(0, &dropped);
            let v =
                self.unconditional_velocity_compact(layout, &xd, &tt.index_select(0, &dropped))?;
            (v - u.index_select(0, &dropped)).square().sum(Kind::Float)
        };
        if kept.size()[0] > 0 {
            let sub = EncodedCondition {
                cond: cond.cond.index_select(0, &kept),
                treat: cond.treat.index_select(0, &kept),
                query_treatment: cond.query_treatment.index_select(0, &kept),
                data_to_model: cond.data_to_model.index_select(0, &kept),
                layout: layout.clone(),
            };
            let no = Tensor::zeros([kept.size()[0]], (Kind::Bool, dev));
            let v = self.velocity_with(
                &sub,
                &xt.index_select(0, &kept),
                &tt.index_select(0, &kept),
                &no,
            )?;
            sse = sse + (v - u.index_select(0, &kept)).square().sum(Kind::Float);
        }
        Ok((sse, count))
    }
}

/// The network conditioned on encoded tasks: a velocity field for the ODE solvers and guidance.
pub struct ConditionedNet<'a> {
    /// The network.
    pub net: &'a MapPfnNet,
    /// The encoded conditioning inputs.
    pub cond: &'a EncodedCondition,
    /// Run guidance's unconditional branch as the compact exact pass instead of a masked batch row.
    pub compact_unconditional: bool,
}

impl ConditionalVelocity for ConditionedNet<'_> {
    fn velocity(&self, x: &Tensor, t: &Tensor, uncond: &Tensor) -> Result<Tensor> {
        self.net.velocity_with(self.cond, x, t, uncond)
    }

    /// The compact exact unconditional pass (see [`MapPfnNet::unconditional_velocity_compact`]) unless
    /// the network pads attention.
    fn unconditional_velocity(&self, x: &Tensor, t: &Tensor) -> Option<Result<Tensor>> {
        (self.compact_unconditional && self.net.config().attention_pad_to_multiple.is_none()).then(
            || {
                self.net
                    .unconditional_velocity_compact(&self.cond.layout, x, t)
            },
        )
    }
}

/// Floating-point operations (2·MACs, attention included) of one conditional forward pass for one task of
/// `layout` (spec §2.10). A training step costs about three times this (forward + backward); a guided
/// evaluation twice this.
pub fn forward_flops(config: &MapPfnConfig, layout: &TaskLayout) -> f64 {
    let (d, w) = (config.n_genes as f64, config.width as f64);
    let r = config.register_tokens as f64;
    let (n_noise, n_cond, n_trt) = (
        r + layout.n_query as f64,
        layout.cond_tokens() as f64,
        (layout.k() + 1) as f64,
    );
    let tokens = n_noise + n_cond + n_trt;
    let embed =
        2.0 * d * w * (n_cond + n_trt) + 2.0 * d * w * n_noise + 2.0 * w * w * (n_cond + n_trt);
    let time = 2.0 * 2.0 * w * (config.time_mlp_ratio as f64 * w);
    let dense = 2.0 * w * w * (4.0 + 2.0 * config.mlp_ratio as f64) * tokens;
    let film = 3.0 * 2.0 * 2.0 * w * 2.0 * w;
    let attention = 4.0 * tokens * tokens * w;
    let head = 2.0 * w * d * layout.n_query as f64;
    embed + time + config.depth as f64 * (dense + film + attention) + head
}
