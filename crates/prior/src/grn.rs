//! Random gene-regulatory-network generator (MapPFN spec §6.1–6.3): per-GRN hyper-parameters, a grouped
//! directed scale-free graph grown by preferential attachment, cycle removal by smallest |weight| and
//! master-regulator forcing.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::rng::uniform_f64;

/// Hyper-parameters of one random GRN (spec §6.1).
#[derive(Clone, Debug, PartialEq)]
pub struct GrnHyperParams {
    /// Average number of regulators per gene `r`; new-node probability `1/r`.
    pub avg_regulators: f64,
    /// Number of groups (modules) `k`.
    pub n_groups: usize,
    /// In-degree bias `δ_in` (larger = more uniform in-degrees).
    pub delta_in: f64,
    /// Out-degree bias `δ_out`.
    pub delta_out: f64,
    /// Within-group attachment multiplier `κ` (modularity).
    pub modularity: f64,
}

impl GrnHyperParams {
    /// Draws the reference distribution: `r ~ U(1.5, 3)`, `k ∈ {1, 2, 3}`, `δ_in ~ U(10, 300)`,
    /// `δ_out ~ U(1, 30)`, `κ ~ U(1, 900)`.
    pub fn sample<R: Rng>(rng: &mut R) -> GrnHyperParams {
        GrnHyperParams {
            avg_regulators: uniform_f64(rng, 1.5, 3.0),
            n_groups: rng.gen_range(1..=3),
            delta_in: uniform_f64(rng, 10.0, 300.0),
            delta_out: uniform_f64(rng, 1.0, 30.0),
            modularity: uniform_f64(rng, 1.0, 900.0),
        }
    }
}

/// How to force master regulators after cycle removal (spec §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MasterRegulatorForcing {
    /// Reference code: only when no gene has in-degree 0 and out-degree > 0, strip the incoming edges of
    /// the `max(1, ⌊n/20⌋)` lowest-in-degree regulators.
    #[default]
    Code,
    /// Paper wording: always strip the incoming edges of the `max(1, ⌈5% n⌉)` regulators with the lowest
    /// in-degree.
    Paper,
}

/// Probability that a new node is created with an outgoing edge to an existing node (`α` ≈ 0).
const ALPHA_NEW_SOURCE: f64 = 1e-99;

/// A directed graph grown by [`scale_free_graph`]: node groups and the (simple, loop-free) edge list.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleFreeGraph {
    /// Number of nodes.
    pub n: usize,
    /// Group of each node.
    pub groups: Vec<usize>,
    /// Directed edges `(regulator, target)`, sorted row-major, no duplicates or self-loops.
    pub edges: Vec<(usize, usize)>,
}

/// Index drawn with probability proportional to `weights` (all ≥ 0, not all zero).
fn weighted_choice<R: Rng>(rng: &mut R, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u = rng.gen::<f64>() * total;
    for (i, &w) in weights.iter().enumerate() {
        if u < w {
            return i;
        }
        u -= w;
    }
    weights.iter().rposition(|&w| w > 0.0).unwrap_or(0)
}

/// Grows a grouped directed scale-free graph with `n ≥ 3` nodes (spec §6.2): start from the 3-cycle
/// 0→1→2→0, then per iteration either add a new target node attached to a regulator chosen
/// ∝ `(κ if same group else 1)·(out + δ_out)`, or add an edge between existing nodes (regulator ∝
/// `out + δ_out`, target ∝ `(κ if same group)·(in + δ_in)`). Duplicates and self-loops are dropped.
pub fn scale_free_graph<R: Rng>(n: usize, hp: &GrnHyperParams, rng: &mut R) -> ScaleFreeGraph {
    let n = n.max(3);
    let k = hp.n_groups.max(1);
    let gamma_new = 1.0 / hp.avg_regulators;
    let mut groups: Vec<usize> = match k {
        1 => vec![0, 0, 0],
        2 => vec![0, 1, 0],
        _ => vec![0, 1, 2],
    };
    let mut out_deg = vec![1.0f64; 3];
    let mut in_deg = vec![1.0f64; 3];
    let mut raw_edges: Vec<(usize, usize)> = vec![(0, 1), (1, 2), (2, 0)];
    let mut weights: Vec<f64> = Vec::with_capacity(n);
    let same = |a: usize, b: usize| if a == b { hp.modularity } else { 1.0 };
    while groups.len() < n {
        let u = rng.gen::<f64>();
        let (w, v);
        if u < gamma_new {
            // New target node v, regulator among all nodes including v.
            let g = rng.gen_range(0..k);
            groups.push(g);
            out_deg.push(0.0);
            in_deg.push(0.0);
            v = groups.len() - 1;
            weights.clear();
            weights.extend(
                (0..groups.len()).map(|i| same(groups[i], g) * (out_deg[i] + hp.delta_out)),
            );
            w = weighted_choice(rng, &weights);
        } else if u < gamma_new + ALPHA_NEW_SOURCE {
            // New regulator node w with an edge into an existing node.
            let g = rng.gen_range(0..k);
            weights.clear();
            weights
                .extend((0..groups.len()).map(|i| same(groups[i], g) * (in_deg[i] + hp.delta_in)));
            v = weighted_choice(rng, &weights);
            groups.push(g);
            out_deg.push(0.0);
            in_deg.push(0.0);
            w = groups.len() - 1;
        } else {
            weights.clear();
            weights.extend(out_deg.iter().map(|&o| o + hp.delta_out));
            w = weighted_choice(rng, &weights);
            weights.clear();
            weights.extend(
                (0..groups.len()).map(|i| same(groups[i], groups[w]) * (in_deg[i] + hp.delta_in)),
            );
            v = weighted_choice(rng, &weights);
        }
        out_deg[w] += 1.0;
        in_deg[v] += 1.0;
        raw_edges.push((w, v));
    }
    raw_edges.retain(|&(a, b)| a != b);
    raw_edges.sort_unstable();
    raw_edges.dedup();
    ScaleFreeGraph {
        n,
        groups,
        edges: raw_edges,
    }
}

/// Signed cycle-breaking weights `β = S + sign(S)`, `S ~ N(0, 1)`, one per edge in row-major order.
pub fn signed_weights<R: Rng>(edges: &[(usize, usize)], rng: &mut R) -> Vec<f64> {
    edges
        .iter()
        .map(|_| {
            let s: f64 = rng.sample(StandardNormal);
            s + if s >= 0.0 { 1.0 } else { -1.0 }
        })
        .collect()
}

/// A directed cycle as edge indices into `edges`, found by depth-first search from the lowest node, or
/// `None` for an acyclic graph.
pub fn find_cycle(n: usize, edges: &[(usize, usize)]) -> Option<Vec<usize>> {
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (e, &(a, _)) in edges.iter().enumerate() {
        adj[a].push(e);
    }
    // 0 = unvisited, 1 = on stack, 2 = done.
    let mut state = vec![0u8; n];
    let mut via_edge: Vec<usize> = vec![usize::MAX; n];
    for root in 0..n {
        if state[root] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        state[root] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if *next < adj[node].len() {
                let e = adj[node][*next];
                *next += 1;
                let child = edges[e].1;
                match state[child] {
                    0 => {
                        state[child] = 1;
                        via_edge[child] = e;
                        stack.push((child, 0));
                    }
                    1 => {
                        // Back edge: walk the stack from `node` back to `child`.
                        let mut cycle = vec![e];
                        let mut cur = node;
                        while cur != child {
                            let pe = via_edge[cur];
                            cycle.push(pe);
                            cur = edges[pe].0;
                        }
                        cycle.reverse();
                        return Some(cycle);
                    }
                    _ => {}
                }
            } else {
                state[node] = 2;
                stack.pop();
            }
        }
    }
    None
}

/// Removes cycles (repeatedly deleting the edge of a found cycle with the smallest `|β|`) and then forces
/// master regulators per `forcing`. Returns the surviving edges (row-major order) with their `β`.
pub fn make_dag(
    n: usize,
    edges: &[(usize, usize)],
    beta: &[f64],
    forcing: MasterRegulatorForcing,
) -> (Vec<(usize, usize)>, Vec<f64>) {
    let mut edges: Vec<(usize, usize)> = edges.to_vec();
    let mut beta: Vec<f64> = beta.to_vec();
    while let Some(cycle) = find_cycle(n, &edges) {
        let weakest = *cycle
            .iter()
            .min_by(|&&a, &&b| beta[a].abs().total_cmp(&beta[b].abs()))
            .expect("a cycle has at least one edge");
        edges.remove(weakest);
        beta.remove(weakest);
    }
    let mut in_deg = vec![0usize; n];
    let mut out_deg = vec![0usize; n];
    for &(a, b) in &edges {
        out_deg[a] += 1;
        in_deg[b] += 1;
    }
    let has_source = (0..n).any(|g| in_deg[g] == 0 && out_deg[g] > 0);
    let forced = match forcing {
        MasterRegulatorForcing::Code if has_source => 0,
        MasterRegulatorForcing::Code => (n / 20).max(1),
        MasterRegulatorForcing::Paper => ((n as f64 * 0.05).ceil() as usize).max(1),
    };
    if forced > 0 {
        let mut candidates: Vec<usize> = (0..n).filter(|&g| out_deg[g] > 0).collect();
        if candidates.is_empty() {
            candidates = (0..n).collect();
        }
        candidates.sort_by_key(|&g| in_deg[g]); // stable: ties keep index order
        let chosen: Vec<usize> = candidates.into_iter().take(forced).collect();
        let keep: Vec<bool> = edges.iter().map(|&(_, b)| !chosen.contains(&b)).collect();
        let mut it = keep.iter();
        edges.retain(|_| *it.next().unwrap_or(&true));
        let mut it = keep.iter();
        beta.retain(|_| *it.next().unwrap_or(&true));
    }
    (edges, beta)
}

/// A random GRN ready for parameterisation: `n` genes and an acyclic edge list (row-major order).
#[derive(Clone, Debug, PartialEq)]
pub struct RandomGrn {
    /// Number of genes (including unconnected ones).
    pub n_genes: usize,
    /// Hyper-parameters it was drawn with.
    pub hyper: GrnHyperParams,
    /// Acyclic edges `(regulator, target)`.
    pub edges: Vec<(usize, usize)>,
    /// The signed cycle-breaking weight of each surviving edge.
    pub beta: Vec<f64>,
}

impl RandomGrn {
    /// Draws hyper-parameters, grows the graph, breaks cycles and forces master regulators.
    pub fn sample<R: Rng>(
        n_genes: usize,
        forcing: MasterRegulatorForcing,
        rng: &mut R,
    ) -> RandomGrn {
        let hyper = GrnHyperParams::sample(rng);
        let graph = scale_free_graph(n_genes, &hyper, rng);
        let beta = signed_weights(&graph.edges, rng);
        let (edges, beta) = make_dag(graph.n, &graph.edges, &beta, forcing);
        RandomGrn {
            n_genes: graph.n,
            hyper,
            edges,
            beta,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::rng_from_seed;

    #[test]
    fn cycle_removal_deletes_the_weakest_edge_of_each_cycle() {
        // 0→1→2→0 with β(2→0) the weakest, plus 2→3.
        let edges = vec![(0, 1), (1, 2), (2, 0), (2, 3)];
        let beta = vec![2.0, -3.0, 1.1, -1.05];
        let (e, b) = make_dag(4, &edges, &beta, MasterRegulatorForcing::Code);
        assert_eq!(e, vec![(0, 1), (1, 2), (2, 3)]);
        assert_eq!(b, vec![2.0, -3.0, -1.05]);
        assert!(find_cycle(4, &e).is_none());
    }

    #[test]
    fn code_forcing_fires_only_without_a_natural_source() {
        // Gene 0 is a natural source (in-degree 0, out-degree > 0): code forcing must not touch anything.
        let edges = vec![(0, 1), (1, 2)];
        let (e, _) = make_dag(40, &edges, &[1.5, 1.5], MasterRegulatorForcing::Code);
        assert_eq!(e, edges);
        // Paper forcing strips incoming edges of the 2 lowest-in-degree regulators (0 and 1).
        let (e, _) = make_dag(40, &edges, &[1.5, 1.5], MasterRegulatorForcing::Paper);
        assert_eq!(e, vec![(1, 2)]);
    }

    #[test]
    fn generated_grns_are_dags_with_expected_density() {
        let mut rng = rng_from_seed(5);
        let mut raw_total = 0.0;
        let mut expected_total = 0.0;
        for _ in 0..40 {
            let hp = GrnHyperParams::sample(&mut rng);
            assert!((1.5..3.0).contains(&hp.avg_regulators) && (1..=3).contains(&hp.n_groups));
            let g = scale_free_graph(50, &hp, &mut rng);
            assert_eq!(g.n, 50);
            assert!(
                g.edges.windows(2).all(|w| w[0] < w[1]) && g.edges.iter().all(|&(a, b)| a != b)
            );
            raw_total += g.edges.len() as f64;
            expected_total += 3.0 + 47.0 * hp.avg_regulators; // before duplicate/self-loop removal
            let beta = signed_weights(&g.edges, &mut rng);
            assert!(beta.iter().all(|b| b.abs() >= 1.0));
            let (e, _) = make_dag(50, &g.edges, &beta, MasterRegulatorForcing::Code);
            assert!(find_cycle(50, &e).is_none());
            let targets: std::collections::HashSet<usize> = e.iter().map(|&(_, t)| t).collect();
            assert!(
                e.iter().any(|&(s, _)| !targets.contains(&s)),
                "a DAG with edges has a source"
            );
        }
        // Duplicates/self-loops remove some raw edges, but most survive.
        let ratio = raw_total / expected_total;
        assert!((0.6..=1.0).contains(&ratio), "simple-edge ratio {ratio}");
    }
}
