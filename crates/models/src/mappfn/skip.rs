//! The intervention skip of MapPFN ([`super::MapPfnConfig::intervention_skip`]; not in the reference).
//!
//! Why: on the SERGIO prior the direct effect of a knock-out (the targeted gene goes to zero) is one gene
//! of d in the query cells, about 1 % of the flow-matching loss, and the reference network has to route it
//! from the treatment token through joint attention to one output column; trained on a CPU budget it does
//! not learn it (BENCHMARKS.md, "Why the SERGIO-prior MapPFN does not learn…"). Yet the velocity that
//! reaches a known endpoint `x₁` on the straight path is known in closed form:
//! `u = x₁ − x₀ = (x₁ − x_t) / (1 − t)`.
//!
//! What: for the genes the query treatment vector τ targets (τ_j ≠ 0), and only in conditional rows,
//! `v_j ← v_j + s·((b + c·τ_j − x_j) / max(1 − t, T_FLOOR) − v_j)` with three learned scalars: the gate
//! `s = sigmoid(θ)` (θ starts at [`GATE_INIT`]: half skip, half head) and the endpoint `b + c·τ_j` (both
//! start at 0, the knock-out endpoint; `do(x_j := v)` encoded as `v·e_j` is `b = 0, c = 1`),
//! stated in data units and mapped into standardised units when
//! [`super::MapPfnConfig::standardize_tasks`] is on. Other genes and guidance's unconditional branch are
//! untouched.
//!
//! The three scalars are stored divided by [`PARAM_SCALE`]: Adam moves a parameter by about the learning
//! rate per step whatever its gradient, so a few hundred steps at 4e-4 would move the gate by 0.15 logits;
//! the scale lets it open or close within them.

use tch::Tensor;

use crate::blocks::{Init, ParamBuilder};

/// Initial gate logit: sigmoid(0) = 0.5.
pub const GATE_INIT: f64 = 0.0;

/// The stored parameters are the gate logit and the endpoint's offset and value scale divided by this.
pub const PARAM_SCALE: f64 = 25.0;

/// Smallest `1 − t` divided by, so the skip stays finite at `t = 1` (the path's remaining error there is
/// below `T_FLOOR` times the distance to the endpoint).
pub const T_FLOOR: f64 = 0.02;

/// The three scalars of the skip.
#[derive(Debug)]
pub struct InterventionSkip {
    gate: Tensor,
    offset: Tensor,
    value_scale: Tensor,
}

impl InterventionSkip {
    /// Creates `gate`, `offset` and `value_scale` under `pb`.
    pub fn new(pb: &ParamBuilder) -> InterventionSkip {
        InterventionSkip {
            gate: pb.param(
                "gate",
                &[1],
                Init::Values(vec![(GATE_INIT / PARAM_SCALE) as f32]),
            ),
            offset: pb.param("offset", &[1], Init::Zeros),
            value_scale: pb.param("value_scale", &[1], Init::Zeros),
        }
    }

    /// The blended velocity `[R, n, d]` from the head's `v`, the noisy cells `x` `[R, n, d]`, times `t`
    /// `[R]`, the query treatment vectors `tau` `[R, d]`, the map from data units to the network's units
    /// `data_to_model` `[R, 2, d]` (rows a, b of `z = x·a + b`; the endpoint is learned in data units) and
    /// the rows where the skip applies `active` `[R]` (bool: conditional rows).
    pub fn apply(
        &self,
        v: &Tensor,
        x: &Tensor,
        t: &Tensor,
        tau: &Tensor,
        data_to_model: &Tensor,
        active: &Tensor,
    ) -> Tensor {
        let rows = tau.size()[0];
        let targeted = tau
            .ne(0.0)
            .logical_and(&active.view([rows, 1]))
            .to_kind(v.kind())
            .unsqueeze(1);
        let remaining = t
            .to_kind(v.kind())
            .neg()
            .g_add_scalar(1.0)
            .clamp_min(T_FLOOR)
            .view([rows, 1, 1]);
        let raw_endpoint = (&self.offset + &self.value_scale * tau) * PARAM_SCALE;
        let endpoint =
            (raw_endpoint * data_to_model.select(1, 0) + data_to_model.select(1, 1)).unsqueeze(1);
        let straight = (endpoint - x) / remaining;
        let blend = (&self.gate * PARAM_SCALE).sigmoid() * targeted;
        v + blend * (straight - v)
    }
}
