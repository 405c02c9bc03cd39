//! The simulation-ready network of one condition: simulated genes, incoming edges in CSR form, master
//! regulators and their rates, half-responses and the deterministic steady state (MapPFN spec §6.6.1–2,
//! golden NOTES §B). Every condition builds its own `Network` from the immutable [`GrnSpec`], so no
//! state leaks between control and knock-outs (the reference deep-copies its GRN for the same reason).

use crate::error::PriorError;
use crate::spec_json::{GrnSpec, KnockoutMode};

/// The Hill response of one edge: `K·f` (activation) or `|K|·(1 − f)` (repression) with
/// `f = xⁿ/(xⁿ + hⁿ)`; `f = 0` when `xⁿ + hⁿ = 0`.
#[inline(always)]
pub fn hill(x: f64, k: f64, n: f64, n_int: i32, h_pow_n: f64) -> f64 {
    let xn = if n_int > 0 { x.powi(n_int) } else { x.powf(n) };
    let denom = xn + h_pow_n;
    let f = if denom > 0.0 { xn / denom } else { 0.0 };
    if k >= 0.0 {
        k * f
    } else {
        -k * (1.0 - f)
    }
}

/// A condition's network, ready for the Euler–Maruyama loop.
#[derive(Clone, Debug)]
pub struct Network {
    /// Number of genes of the spec (output columns).
    pub n_total: usize,
    /// Number of cell types.
    pub n_cell_types: usize,
    /// Spec index of each simulated gene (local index order = spec order).
    pub genes: Vec<usize>,
    /// Decay per simulated gene.
    pub decay: Vec<f64>,
    /// Master-regulator flag per simulated gene.
    pub is_mr: Vec<bool>,
    /// Genes held at zero (clamp-mode knock-out).
    pub clamped: Vec<bool>,
    /// MR production rate per simulated gene and cell type, `[g * n_cell_types + c]` (0 for non-MRs).
    pub mr_rate: Vec<f64>,
    /// CSR offsets of the incoming edges of each simulated gene (length `genes.len() + 1`).
    pub in_start: Vec<usize>,
    /// Local index of each edge's regulator.
    pub in_reg: Vec<u32>,
    /// Interaction strength of each edge.
    pub in_k: Vec<f64>,
    /// Hill coefficient of each edge.
    pub in_n: Vec<f64>,
    /// Hill coefficient as an integer (`0` if not integral: use `powf`).
    pub in_n_int: Vec<i32>,
    /// Half-response `h` of each edge.
    pub in_h: Vec<f64>,
    /// `hⁿ` of each edge.
    pub in_h_pow_n: Vec<f64>,
    /// Topological order of the simulated genes (regulators before targets).
    pub topo: Vec<usize>,
    /// Deterministic steady state per simulated gene and cell type, `[g * n_cell_types + c]`.
    pub steady_state: Vec<f64>,
}

impl Network {
    /// The control network of `spec`.
    pub fn control(spec: &GrnSpec) -> Result<Network, PriorError> {
        Self::build(spec, &[], KnockoutMode::RemoveGene)
    }

    /// The network after knocking out spec gene `gene` with `mode`. A gene that takes part in no edge
    /// leaves the network unchanged (as in the reference).
    pub fn knockout(
        spec: &GrnSpec,
        gene: usize,
        mode: KnockoutMode,
    ) -> Result<Network, PriorError> {
        Self::build(spec, &[gene], mode)
    }

    /// The network after knocking out every spec gene of `genes` together (a combination such as a
    /// double knock-out), each with the semantics of [`Network::knockout`]: with
    /// [`KnockoutMode::RemoveGene`] all of them and their edges are deleted before half-responses and the
    /// steady state are recomputed; with [`KnockoutMode::ClampToZero`] all of them are held at zero.
    pub fn knockouts(
        spec: &GrnSpec,
        genes: &[usize],
        mode: KnockoutMode,
    ) -> Result<Network, PriorError> {
        Self::build(spec, genes, mode)
    }

    fn build(spec: &GrnSpec, ko: &[usize], mode: KnockoutMode) -> Result<Network, PriorError> {
        let in_network = spec.in_network();
        let removed: Vec<usize> = match mode {
            KnockoutMode::RemoveGene => ko.to_vec(),
            KnockoutMode::ClampToZero => Vec::new(),
        };
        let clamped_genes: Vec<usize> = match mode {
            KnockoutMode::ClampToZero => ko.iter().copied().filter(|&g| in_network[g]).collect(),
            KnockoutMode::RemoveGene => Vec::new(),
        };
        let genes: Vec<usize> = (0..spec.genes.len())
            .filter(|&g| in_network[g] && !removed.contains(&g))
            .collect();
        let mut local = vec![usize::MAX; spec.genes.len()];
        for (i, &g) in genes.iter().enumerate() {
            local[g] = i;
        }
        let n = genes.len();
        let edges: Vec<_> = spec
            .edges
            .iter()
            .filter(|e| !removed.contains(&e.regulator) && !removed.contains(&e.target))
            .collect();
        let mut in_start = vec![0usize; n + 1];
        for e in &edges {
            in_start[local[e.target] + 1] += 1;
        }
        for i in 0..n {
            in_start[i + 1] += in_start[i];
        }
        let m = edges.len();
        let mut fill = in_start.clone();
        let mut in_reg = vec![0u32; m];
        let mut in_k = vec![0.0; m];
        let mut in_n = vec![0.0; m];
        let mut in_n_int = vec![0i32; m];
        for e in &edges {
            let t = local[e.target];
            let slot = fill[t];
            fill[t] += 1;
            in_reg[slot] = local[e.regulator] as u32;
            in_k[slot] = e.k;
            in_n[slot] = e.n;
            in_n_int[slot] = if e.n.fract() == 0.0 && e.n <= 64.0 {
                e.n as i32
            } else {
                0
            };
        }
        let nct = spec.n_cell_types;
        let is_mr: Vec<bool> = (0..n).map(|i| in_start[i + 1] == in_start[i]).collect();
        let mut clamped = vec![false; n];
        for &g in &clamped_genes {
            clamped[local[g]] = true;
        }
        let mut mr_rate = vec![0.0; n * nct];
        for i in 0..n {
            if is_mr[i] && !clamped[i] {
                let rates = spec.rates[genes[i]].as_ref().ok_or_else(|| PriorError::InvalidSpec {
                    source_path: None,
                    message: format!(
                        "gene `{}` becomes a master regulator after knocking out `{}` but has no production rate; \
                         give it in `orphan_production_rates` or use `mr_profile_random`",
                        spec.genes[genes[i]],
                        knocked_out_names(spec, ko)
                    ),
                })?;
                mr_rate[i * nct..(i + 1) * nct].copy_from_slice(rates);
            }
        }
        let topo = topological_order(n, &in_start, &in_reg);
        let decay: Vec<f64> = genes.iter().map(|&g| spec.decay[g]).collect();
        let mut net = Network {
            n_total: spec.genes.len(),
            n_cell_types: nct,
            genes,
            decay,
            is_mr,
            clamped,
            mr_rate,
            in_start,
            in_reg,
            in_k,
            in_h: vec![0.0; m],
            in_h_pow_n: vec![0.0; m],
            in_n,
            in_n_int,
            topo,
            steady_state: vec![0.0; n * nct],
        };
        if !clamped_genes.is_empty() {
            // Half-responses of the unperturbed network, then the steady state with the clamp.
            let saved = net.clamped.clone();
            net.clamped.iter_mut().for_each(|c| *c = false);
            net.compute_steady_state(true);
            net.clamped = saved;
            net.compute_steady_state(false);
        } else {
            net.compute_steady_state(true);
        }
        Ok(net)
    }

    /// Production of simulated gene `i` in cell type `c` given the state `x` (local indices).
    #[inline(always)]
    pub fn production(&self, i: usize, c: usize, x: &[f64]) -> f64 {
        if self.is_mr[i] {
            return self.mr_rate[i * self.n_cell_types + c];
        }
        let mut p = 0.0;
        for e in self.in_start[i]..self.in_start[i + 1] {
            p += hill(
                x[self.in_reg[e] as usize],
                self.in_k[e],
                self.in_n[e],
                self.in_n_int[e],
                self.in_h_pow_n[e],
            );
        }
        p
    }

    /// Deterministic steady state in topological order: MR `b/λ`; other genes `P(s)/λ`, where (if
    /// `set_half_responses`) each incoming edge's half-response is first set to the regulator's steady
    /// state averaged over cell types. Clamped genes are 0.
    fn compute_steady_state(&mut self, set_half_responses: bool) {
        let nct = self.n_cell_types;
        let order = self.topo.clone();
        let mut state = vec![0.0; self.genes.len()];
        for &i in &order {
            if set_half_responses {
                for e in self.in_start[i]..self.in_start[i + 1] {
                    let r = self.in_reg[e] as usize;
                    let h = self.steady_state[r * nct..(r + 1) * nct]
                        .iter()
                        .sum::<f64>()
                        / nct as f64;
                    self.in_h[e] = h;
                    self.in_h_pow_n[e] = if self.in_n_int[e] > 0 {
                        h.powi(self.in_n_int[e])
                    } else {
                        h.powf(self.in_n[e])
                    };
                }
            }
            for c in 0..nct {
                let value = if self.clamped[i] {
                    0.0
                } else {
                    for e in self.in_start[i]..self.in_start[i + 1] {
                        let r = self.in_reg[e] as usize;
                        state[r] = self.steady_state[r * nct + c];
                    }
                    self.production(i, c, &state).max(0.0) / self.decay[i]
                };
                self.steady_state[i * nct + c] = value;
            }
        }
    }

    /// Steady state of cell type `c` as a full-length vector in spec gene order (absent genes 0).
    pub fn steady_state_full(&self, c: usize) -> Vec<f64> {
        let mut out = vec![0.0; self.n_total];
        for (i, &g) in self.genes.iter().enumerate() {
            out[g] = self.steady_state[i * self.n_cell_types + c];
        }
        out
    }
}

/// The knocked-out genes' names joined by `+` (`-` for none), for messages.
fn knocked_out_names(spec: &GrnSpec, ko: &[usize]) -> String {
    if ko.is_empty() {
        return "-".to_string();
    }
    ko.iter()
        .map(|&g| spec.genes[g].as_str())
        .collect::<Vec<_>>()
        .join("+")
}

/// Kahn's algorithm over the CSR incoming-edge lists; ties resolved by index.
fn topological_order(n: usize, in_start: &[usize], in_reg: &[u32]) -> Vec<usize> {
    let mut indeg: Vec<usize> = (0..n).map(|i| in_start[i + 1] - in_start[i]).collect();
    let mut out_adj: Vec<Vec<usize>> = vec![Vec::new(); n];
    for t in 0..n {
        for e in in_start[t]..in_start[t + 1] {
            out_adj[in_reg[e] as usize].push(t);
        }
    }
    let mut ready: std::collections::BTreeSet<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &t in &out_adj[i] {
            indeg[t] -= 1;
            if indeg[t] == 0 {
                ready.insert(t);
            }
        }
    }
    debug_assert_eq!(order.len(), n, "spec validation guarantees a DAG");
    order
}
