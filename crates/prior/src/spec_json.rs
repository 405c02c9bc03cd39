//! The user-facing GRN specification ([`GrnSpec`]) and its two file formats: the JSON network format of
//! the golden files (oracle_sergio.py) and a CSV edge list with defaults.
//!
//! JSON format (all keys except `edges` optional):
//! * `name` — data-set/context name (default: file stem);
//! * `genes` — ordered gene list (default: order of first appearance in `edges`); genes without edges are
//!   not simulated and are zero in every cell;
//! * `edges` — `[{source, target, K, n}]`: regulator, target, interaction strength (`K < 0` represses)
//!   and Hill coefficient;
//! * `decay` — a number for every gene or `{gene: λ}` (default 0.8);
//! * `mr_production_rates` — `{gene: b}` for master regulators (a number, or an array: one rate per cell
//!   type); `mr_profile_random` — `{low_range, high_range, seed[, num_cell_types]}`: sergio-rs
//!   `MrProfile.from_random`, realised bit-exactly (PCG `Lcg128Xsl64`); when both are given they must
//!   agree; `orphan_production_rates` — `{gene: b}` for genes that become master regulators after a
//!   knock-out (override the recipe's reserve rates);
//! * `noise_s` (default 1; 0 gives the deterministic steady state), `num_cells` (200, per cell type),
//!   `safety_iter` (150), `scale_iter` (10), `dt` (0.01), `seed` (0), `knockout` (a gene or null: the
//!   default knock-out selection), `technical_noise` (`{outlier_mu, library_mu, library_sigma, dropout_k,
//!   dropout_q}`; absent or null = clean expression), `paired` (true), `knockout_mode`
//!   (`"remove"` = reference, `"clamp"` = hold the gene at zero).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{check_non_negative, check_positive, PriorError};
use crate::grn::find_cycle;
use crate::noise::TechnicalNoiseParams;
use crate::rng::{coin, rng_from_seed, uniform_f64};

/// One regulatory interaction.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeSpec {
    /// Index of the regulator in [`GrnSpec::genes`].
    pub regulator: usize,
    /// Index of the target in [`GrnSpec::genes`].
    pub target: usize,
    /// Interaction strength `K` (> 0 activation, < 0 repression).
    pub k: f64,
    /// Hill coefficient `n` (> 0; integer in the reference simulator).
    pub n: f64,
}

/// How a knock-out is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KnockoutMode {
    /// Reference (sergio-rs `ko_perturbation`): the gene and its edges are deleted, genes left without
    /// regulators become master regulators with their reserve rates, half-responses are recomputed.
    #[default]
    RemoveGene,
    /// `do(gene := 0)` on the unchanged network: the gene is held at zero, all other parameters
    /// (half-responses, rates, master regulators) stay as in the control network.
    ClampToZero,
}

/// The sergio-rs `MrProfile.from_random` recipe.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct RandomProfileRecipe {
    /// Range of the "low" rates.
    pub low_range: (f64, f64),
    /// Range of the "high" rates.
    pub high_range: (f64, f64),
    /// Seed of the PCG generator.
    pub seed: u64,
    /// Number of cell types (default 1).
    #[serde(default = "one")]
    pub num_cell_types: usize,
}

fn one() -> usize {
    1
}

impl RandomProfileRecipe {
    /// Realises the recipe for genes in sergio-rs insertion order: first every master regulator, then
    /// every other gene (the reserve rates), each draw a fair coin (`u64 < 2⁶³`) choosing the high or low
    /// range followed by a uniform draw; with several cell types, one such draw per cell type (gene-major
    /// — only the single-cell-type stream is verified against sergio-rs). Returns per-gene rate vectors
    /// aligned with `order`.
    pub fn realise(&self, order: &[usize], is_mr: &[bool]) -> HashMap<usize, Vec<f64>> {
        let mut rng = rng_from_seed(self.seed);
        let mut out = HashMap::new();
        for pass_mr in [true, false] {
            for &g in order.iter().filter(|&&g| is_mr[g] == pass_mr) {
                let rates: Vec<f64> = (0..self.num_cell_types)
                    .map(|_| {
                        let range = if coin(&mut rng) {
                            self.high_range
                        } else {
                            self.low_range
                        };
                        uniform_f64(&mut rng, range.0, range.1)
                    })
                    .collect();
                out.insert(g, rates);
            }
        }
        out
    }
}

/// A fully resolved GRN to simulate, with simulation and noise settings.
#[derive(Clone, Debug, PartialEq)]
pub struct GrnSpec {
    /// Name used as the context of the simulated data set.
    pub name: String,
    /// Gene names (columns of the output), unique.
    pub genes: Vec<String>,
    /// Interactions (indices into `genes`), in file order.
    pub edges: Vec<EdgeSpec>,
    /// Decay rate `λ` per gene (> 0).
    pub decay: Vec<f64>,
    /// Per gene: production rates per cell type. For genes that are master regulators of the control
    /// network this is their MR rate; for the other genes it is the reserve ("other"/orphan) rate used
    /// if a knock-out leaves them without regulators. `None` = not given.
    pub rates: Vec<Option<Vec<f64>>>,
    /// Number of cell types (length of every rate vector).
    pub n_cell_types: usize,
    /// Process-noise scale `s` (0 = deterministic).
    pub noise_s: f64,
    /// Cells sampled per cell type.
    pub num_cells: usize,
    /// Burn-in steps.
    pub safety_iter: usize,
    /// Steps per sampled cell.
    pub scale_iter: usize,
    /// Euler–Maruyama step.
    pub dt: f64,
    /// Default simulation seed.
    pub seed: u64,
    /// Default knock-out (from the file).
    pub knockout: Option<String>,
    /// Technical noise; `None` = clean expression.
    pub technical_noise: Option<TechnicalNoiseParams>,
    /// Paired ("counterfactual") seeds: control and every knock-out share the simulation seed.
    pub paired: bool,
    /// How knock-outs are applied.
    pub knockout_mode: KnockoutMode,
}

/// Settings for [`GrnSpec::from_edge_csv`] that a CSV edge list cannot carry.
#[derive(Clone, Debug, PartialEq)]
pub struct GrnDefaults {
    /// Context name (default: file stem when empty).
    pub name: String,
    /// Decay rate of every gene.
    pub decay: f64,
    /// Random MR/reserve production-rate recipe.
    pub mr_profile: RandomProfileRecipe,
    /// Process-noise scale.
    pub noise_s: f64,
    /// Cells per cell type.
    pub num_cells: usize,
    /// Burn-in steps.
    pub safety_iter: usize,
    /// Steps per cell.
    pub scale_iter: usize,
    /// Euler–Maruyama step.
    pub dt: f64,
    /// Simulation seed.
    pub seed: u64,
    /// Technical noise (`None` = clean).
    pub technical_noise: Option<TechnicalNoiseParams>,
    /// Paired seeds.
    pub paired: bool,
    /// Knock-out semantics.
    pub knockout_mode: KnockoutMode,
}

impl Default for GrnDefaults {
    fn default() -> Self {
        GrnDefaults {
            name: String::new(),
            decay: 0.8,
            mr_profile: RandomProfileRecipe {
                low_range: (0.5, 2.0),
                high_range: (3.0, 5.0),
                seed: 0,
                num_cell_types: 1,
            },
            noise_s: 1.0,
            num_cells: 200,
            safety_iter: 150,
            scale_iter: 10,
            dt: 0.01,
            seed: 0,
            technical_noise: None,
            paired: true,
            knockout_mode: KnockoutMode::RemoveGene,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDecay {
    All(f64),
    PerGene(BTreeMap<String, f64>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRate {
    One(f64),
    PerCellType(Vec<f64>),
}

impl RawRate {
    fn into_vec(self) -> Vec<f64> {
        match self {
            RawRate::One(v) => vec![v],
            RawRate::PerCellType(v) => v,
        }
    }
}

#[derive(Deserialize)]
struct RawEdge {
    source: String,
    target: String,
    #[serde(rename = "K")]
    k: f64,
    n: f64,
}

#[derive(Deserialize)]
struct RawSpec {
    name: Option<String>,
    genes: Option<Vec<String>>,
    edges: Vec<RawEdge>,
    decay: Option<RawDecay>,
    mr_production_rates: Option<BTreeMap<String, RawRate>>,
    mr_profile_random: Option<RandomProfileRecipe>,
    orphan_production_rates: Option<BTreeMap<String, RawRate>>,
    noise_s: Option<f64>,
    num_cells: Option<usize>,
    safety_iter: Option<usize>,
    scale_iter: Option<usize>,
    dt: Option<f64>,
    knockout: Option<String>,
    seed: Option<u64>,
    technical_noise: Option<TechnicalNoiseParams>,
    paired: Option<bool>,
    knockout_mode: Option<String>,
}

/// Builder input shared by the JSON and CSV readers and by the random prior.
pub(crate) struct SpecParts {
    pub name: String,
    pub genes: Vec<String>,
    pub edges: Vec<(String, String, f64, f64)>,
    pub decay: HashMap<String, f64>,
    pub default_decay: f64,
    pub mr_rates: BTreeMap<String, Vec<f64>>,
    pub recipe: Option<RandomProfileRecipe>,
    pub orphan_rates: BTreeMap<String, Vec<f64>>,
    pub noise_s: f64,
    pub num_cells: usize,
    pub safety_iter: usize,
    pub scale_iter: usize,
    pub dt: f64,
    pub seed: u64,
    pub knockout: Option<String>,
    pub technical_noise: Option<TechnicalNoiseParams>,
    pub paired: bool,
    pub knockout_mode: KnockoutMode,
}

fn spec_error(path: Option<&Path>, message: String) -> PriorError {
    PriorError::InvalidSpec {
        source_path: path.map(Path::to_path_buf),
        message,
    }
}

fn unknown_gene(gene: &str, context: &str, genes: &[String], fix: &str) -> PriorError {
    PriorError::UnknownGene {
        gene: gene.to_string(),
        context: context.to_string(),
        known: genes.iter().take(20).cloned().collect(),
        fix: fix.to_string(),
    }
}

impl GrnSpec {
    /// Reads a GRN in the JSON network format (module docs) and validates it.
    pub fn from_json(path: impl AsRef<Path>) -> Result<GrnSpec, PriorError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PriorError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json_str(&text, Some(path))
    }

    /// Parses a GRN from JSON text (`path` only for messages and the default name).
    pub fn from_json_str(text: &str, path: Option<&Path>) -> Result<GrnSpec, PriorError> {
        let raw: RawSpec = serde_json::from_str(text).map_err(|e| PriorError::Json {
            path: path
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("<string>")),
            message: e.to_string(),
        })?;
        let name = raw.name.unwrap_or_else(|| file_stem(path));
        let edges: Vec<(String, String, f64, f64)> = raw
            .edges
            .into_iter()
            .map(|e| (e.source, e.target, e.k, e.n))
            .collect();
        let genes = match raw.genes {
            Some(g) => g,
            None => appearance_order(&edges),
        };
        let (decay, default_decay) = match raw.decay {
            None => (HashMap::new(), 0.8),
            Some(RawDecay::All(v)) => (HashMap::new(), v),
            Some(RawDecay::PerGene(m)) => (m.into_iter().collect(), f64::NAN),
        };
        let knockout_mode = match raw.knockout_mode.as_deref() {
            None | Some("remove") => KnockoutMode::RemoveGene,
            Some("clamp") => KnockoutMode::ClampToZero,
            Some(other) => {
                return Err(spec_error(
                    path,
                    format!(
                    "knockout_mode `{other}` is not known; use \"remove\" (reference) or \"clamp\""
                ),
                ))
            }
        };
        let parts = SpecParts {
            name,
            genes,
            edges,
            decay,
            default_decay,
            mr_rates: raw
                .mr_production_rates
                .unwrap_or_default()
                .into_iter()
                .map(|(g, r)| (g, r.into_vec()))
                .collect(),
            recipe: raw.mr_profile_random,
            orphan_rates: raw
                .orphan_production_rates
                .unwrap_or_default()
                .into_iter()
                .map(|(g, r)| (g, r.into_vec()))
                .collect(),
            noise_s: raw.noise_s.unwrap_or(1.0),
            num_cells: raw.num_cells.unwrap_or(200),
            safety_iter: raw.safety_iter.unwrap_or(150),
            scale_iter: raw.scale_iter.unwrap_or(10),
            dt: raw.dt.unwrap_or(0.01),
            seed: raw.seed.unwrap_or(0),
            knockout: raw.knockout,
            technical_noise: raw.technical_noise,
            paired: raw.paired.unwrap_or(true),
            knockout_mode,
        };
        Self::build(parts, path)
    }

    /// Reads a CSV edge list `regulator,target,K,n` (an optional header line starting with `regulator`
    /// or `source` is skipped; `#` lines are comments). Gene order = first appearance; everything else
    /// comes from `defaults`.
    pub fn from_edge_csv(
        path: impl AsRef<Path>,
        defaults: &GrnDefaults,
    ) -> Result<GrnSpec, PriorError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PriorError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut edges = Vec::new();
        for (lineno, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if edges.is_empty()
                && matches!(
                    fields[0].to_ascii_lowercase().as_str(),
                    "regulator" | "source" | "reg"
                )
            {
                continue;
            }
            if fields.len() != 4 {
                return Err(spec_error(
                    Some(path),
                    format!("line {}: expected 4 comma-separated fields `regulator,target,K,n`, found {}", lineno + 1, fields.len()),
                ));
            }
            let parse = |s: &str, what: &str| -> Result<f64, PriorError> {
                s.parse::<f64>().map_err(|_| {
                    spec_error(
                        Some(path),
                        format!(
                            "line {}: {what} `{s}` is not a number; write e.g. 2.5",
                            lineno + 1
                        ),
                    )
                })
            };
            edges.push((
                fields[0].to_string(),
                fields[1].to_string(),
                parse(fields[2], "K")?,
                parse(fields[3], "n")?,
            ));
        }
        let name = if defaults.name.is_empty() {
            file_stem(Some(path))
        } else {
            defaults.name.clone()
        };
        let parts = SpecParts {
            name,
            genes: appearance_order(&edges),
            edges,
            decay: HashMap::new(),
            default_decay: defaults.decay,
            mr_rates: BTreeMap::new(),
            recipe: Some(defaults.mr_profile.clone()),
            orphan_rates: BTreeMap::new(),
            noise_s: defaults.noise_s,
            num_cells: defaults.num_cells,
            safety_iter: defaults.safety_iter,
            scale_iter: defaults.scale_iter,
            dt: defaults.dt,
            seed: defaults.seed,
            knockout: None,
            technical_noise: defaults.technical_noise.clone(),
            paired: defaults.paired,
            knockout_mode: defaults.knockout_mode,
        };
        Self::build(parts, Some(path))
    }

    /// Validates and resolves the parts into a spec.
    pub(crate) fn build(p: SpecParts, path: Option<&Path>) -> Result<GrnSpec, PriorError> {
        // Genes.
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, g) in p.genes.iter().enumerate() {
            if g.is_empty() || g.contains('+') || g == crate::scm::CONTROL_LABEL {
                return Err(spec_error(
                    path,
                    format!("gene name `{g}` is not allowed (empty, contains `+`, or equals the control label); rename it"),
                ));
            }
            if index.insert(g.as_str(), i).is_some() {
                return Err(spec_error(
                    path,
                    format!("gene `{g}` is listed twice in `genes`; list each gene once"),
                ));
            }
        }
        let lookup = |g: &str, ctx: &str| -> Result<usize, PriorError> {
            index.get(g).copied().ok_or_else(|| {
                unknown_gene(g, ctx, &p.genes, "add it to `genes` or fix the spelling")
            })
        };
        // Edges.
        let mut edges = Vec::with_capacity(p.edges.len());
        let mut seen = HashSet::new();
        for (s, t, k, n) in &p.edges {
            let (regulator, target) = (lookup(s, "an edge")?, lookup(t, "an edge")?);
            if regulator == target {
                return Err(PriorError::CyclicGrn {
                    cycle: vec![s.clone(), t.clone()],
                });
            }
            if !seen.insert((regulator, target)) {
                return Err(spec_error(
                    path,
                    format!("edge {s} -> {t} is given twice; merge the two interactions into one"),
                ));
            }
            if !k.is_finite() {
                return Err(PriorError::invalid(
                    &format!("K of edge {s} -> {t}"),
                    k,
                    "must be finite",
                    "give a finite interaction strength",
                ));
            }
            check_positive(
                &format!("n of edge {s} -> {t}"),
                *n,
                "give a positive Hill coefficient (integers 1–4 are typical)",
            )?;
            edges.push(EdgeSpec {
                regulator,
                target,
                k: *k,
                n: *n,
            });
        }
        let pairs: Vec<(usize, usize)> = edges.iter().map(|e| (e.regulator, e.target)).collect();
        if let Some(cycle) = find_cycle(p.genes.len(), &pairs) {
            let mut names: Vec<String> =
                cycle.iter().map(|&e| p.genes[pairs[e].0].clone()).collect();
            names.push(names[0].clone());
            return Err(PriorError::CyclicGrn { cycle: names });
        }
        // Decay.
        let mut decay = vec![p.default_decay; p.genes.len()];
        for (g, &v) in &p.decay {
            decay[lookup(g, "`decay`")?] = v;
        }
        let in_network: Vec<bool> = {
            let mut v = vec![false; p.genes.len()];
            for e in &edges {
                v[e.regulator] = true;
                v[e.target] = true;
            }
            v
        };
        for (i, g) in p.genes.iter().enumerate() {
            if in_network[i] {
                if decay[i].is_nan() {
                    return Err(spec_error(
                        path,
                        format!("gene `{g}` has no decay rate; add it to the `decay` table"),
                    ));
                }
                check_positive(
                    &format!("decay of gene {g}"),
                    decay[i],
                    "decay rates must be > 0 (reference U(0.5, 1.0))",
                )?;
            } else if decay[i].is_nan() {
                decay[i] = 0.8;
            }
        }
        // Rates.
        let is_target: Vec<bool> = {
            let mut v = vec![false; p.genes.len()];
            for e in &edges {
                v[e.target] = true;
            }
            v
        };
        let is_mr: Vec<bool> = (0..p.genes.len())
            .map(|g| in_network[g] && !is_target[g])
            .collect();
        let mut n_cell_types = p.recipe.as_ref().map(|r| r.num_cell_types);
        let mut rates: Vec<Option<Vec<f64>>> = vec![None; p.genes.len()];
        if let Some(recipe) = &p.recipe {
            if recipe.num_cell_types == 0 {
                return Err(PriorError::invalid(
                    "mr_profile_random.num_cell_types",
                    0,
                    "needs at least one cell type",
                    "use 1 or more",
                ));
            }
            for (name, r) in [
                ("mr_profile_random.low_range", recipe.low_range),
                ("mr_profile_random.high_range", recipe.high_range),
            ] {
                check_non_negative(
                    name,
                    r.0,
                    "production rates must be ≥ 0 (reference [0.5, 2] and [3, 5])",
                )?;
                crate::error::check_range(name, r, "give [low, high] with low ≤ high")?;
            }
            for (g, v) in recipe.realise(&insertion_order(&edges), &is_mr) {
                rates[g] = Some(v);
            }
        }
        for (table, is_orphan_table) in [(&p.mr_rates, false), (&p.orphan_rates, true)] {
            let what = if is_orphan_table {
                "orphan_production_rates"
            } else {
                "mr_production_rates"
            };
            for (g, v) in table {
                let gi = lookup(g, &format!("`{what}`"))?;
                if v.is_empty() {
                    return Err(spec_error(
                        path,
                        format!("{what}[{g}] is empty; give one rate per cell type"),
                    ));
                }
                for &b in v {
                    check_non_negative(&format!("{what}[{g}]"), b, "production rates must be ≥ 0")?;
                }
                match n_cell_types {
                    Some(n) if n != v.len() => {
                        return Err(spec_error(
                            path,
                            format!("{what}[{g}] has {} rates but the profile has {n} cell types; give one rate per cell type", v.len()),
                        ))
                    }
                    _ => n_cell_types = Some(v.len()),
                }
                if !is_orphan_table {
                    if is_target[gi] {
                        return Err(spec_error(
                            path,
                            format!("gene `{g}` has regulators, so it is not a master regulator; move its rate to `orphan_production_rates`"),
                        ));
                    }
                    if let (Some(realised), Some(_)) = (&rates[gi], &p.recipe) {
                        let same = realised
                            .iter()
                            .zip(v)
                            .all(|(a, b)| (a - b).abs() <= 1e-12 * a.abs().max(1e-12));
                        if !same {
                            return Err(spec_error(
                                path,
                                format!(
                                    "mr_production_rates[{g}] = {v:?} differs from the rate realised by mr_profile_random ({realised:?}); drop one of the two"
                                ),
                            ));
                        }
                    }
                }
                rates[gi] = Some(v.clone());
            }
        }
        let n_cell_types = n_cell_types.unwrap_or(1);
        for g in 0..p.genes.len() {
            if is_mr[g] && rates[g].is_none() {
                return Err(spec_error(
                    path,
                    format!(
                        "master regulator `{}` has no production rate; add it to `mr_production_rates` or give `mr_profile_random`",
                        p.genes[g]
                    ),
                ));
            }
        }
        // Simulation settings.
        check_non_negative(
            "noise_s",
            p.noise_s,
            "use a noise scale ≥ 0 (0 = deterministic steady state)",
        )?;
        check_positive("dt", p.dt, "use a positive step (reference 0.01)")?;
        if p.num_cells == 0 {
            return Err(PriorError::invalid(
                "num_cells",
                0,
                "no cells would be sampled",
                "use num_cells ≥ 1 (reference 200)",
            ));
        }
        if p.scale_iter == 0 {
            return Err(PriorError::invalid(
                "scale_iter",
                0,
                "cells are sampled from num_cells·scale_iter steps",
                "use scale_iter ≥ 1 (reference 10)",
            ));
        }
        if let Some(tn) = &p.technical_noise {
            tn.validate()?;
        }
        if let Some(ko) = &p.knockout {
            lookup(ko, "`knockout`")?;
        }
        Ok(GrnSpec {
            name: p.name,
            genes: p.genes,
            edges,
            decay,
            rates,
            n_cell_types,
            noise_s: p.noise_s,
            num_cells: p.num_cells,
            safety_iter: p.safety_iter,
            scale_iter: p.scale_iter,
            dt: p.dt,
            seed: p.seed,
            knockout: p.knockout,
            technical_noise: p.technical_noise,
            paired: p.paired,
            knockout_mode: p.knockout_mode,
        })
    }

    /// The spec in the JSON network format (explicit MR and reserve rates, no recipe), readable by
    /// [`GrnSpec::from_json`] and by the oracle scripts (which add their own `mr_profile_random`).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{json, Map, Value};
        let in_network = self.in_network();
        let targets: HashSet<usize> = self.edges.iter().map(|e| e.target).collect();
        let rate_value = |v: &Vec<f64>| if v.len() == 1 { json!(v[0]) } else { json!(v) };
        let mut mr = Map::new();
        let mut orphan = Map::new();
        let mut decay = Map::new();
        for (g, name) in self.genes.iter().enumerate() {
            decay.insert(name.clone(), json!(self.decay[g]));
            if let (true, Some(r)) = (in_network[g], &self.rates[g]) {
                let table = if targets.contains(&g) {
                    &mut orphan
                } else {
                    &mut mr
                };
                table.insert(name.clone(), rate_value(r));
            }
        }
        let edges: Vec<Value> = self
            .edges
            .iter()
            .map(|e| json!({"source": self.genes[e.regulator], "target": self.genes[e.target], "K": e.k, "n": e.n}))
            .collect();
        json!({
            "name": self.name, "genes": self.genes, "edges": edges, "decay": decay,
            "mr_production_rates": mr, "orphan_production_rates": orphan, "noise_s": self.noise_s,
            "num_cells": self.num_cells, "safety_iter": self.safety_iter, "scale_iter": self.scale_iter,
            "dt": self.dt, "seed": self.seed, "knockout": self.knockout, "technical_noise": self.technical_noise,
            "paired": self.paired,
            "knockout_mode": match self.knockout_mode { KnockoutMode::RemoveGene => "remove", KnockoutMode::ClampToZero => "clamp" },
        })
    }

    /// Index of a gene by name, or an [`PriorError::UnknownGene`] naming `context`.
    pub fn gene_index(&self, gene: &str, context: &str) -> Result<usize, PriorError> {
        self.genes.iter().position(|g| g == gene).ok_or_else(|| {
            unknown_gene(
                gene,
                context,
                &self.genes,
                "choose a gene of the GRN (see its `genes` list)",
            )
        })
    }

    /// Genes in sergio-rs insertion order (regulator then target of each edge, first appearance).
    pub fn insertion_order(&self) -> Vec<usize> {
        insertion_order(&self.edges)
    }

    /// True for genes that take part in at least one edge (only these are simulated).
    pub fn in_network(&self) -> Vec<bool> {
        let mut v = vec![false; self.genes.len()];
        for e in &self.edges {
            v[e.regulator] = true;
            v[e.target] = true;
        }
        v
    }
}

fn insertion_order(edges: &[EdgeSpec]) -> Vec<usize> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    for e in edges {
        for g in [e.regulator, e.target] {
            if seen.insert(g) {
                order.push(g);
            }
        }
    }
    order
}

fn appearance_order(edges: &[(String, String, f64, f64)]) -> Vec<String> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    for (s, t, _, _) in edges {
        for g in [s, t] {
            if seen.insert(g.clone()) {
                order.push(g.clone());
            }
        }
    }
    order
}

fn file_stem(path: Option<&Path>) -> String {
    path.and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "grn".to_string())
}
