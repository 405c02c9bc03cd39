//! Control + knock-out simulation of a [`GrnSpec`] into one [`PerturbationData`]: seeds per condition
//! (paired or unpaired), optional technical noise with the reference's discard rule, and the output
//! layout (context = GRN name, or `<name>/ct<k>` per cell type when there are several).

use ndarray::Array2;
use rayon::prelude::*;

use cellshift_data::{CellAnnotations, PerturbationData};

use crate::error::PriorError;
use crate::noise::apply_condition_noise;
use crate::rng::derive_seed;
use crate::scm::CONTROL_LABEL;
use crate::sergio::network::Network;
use crate::sergio::simulate::{simulate_network, SimSettings};
use crate::spec_json::GrnSpec;

/// Which knock-outs to simulate besides the control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KnockoutSelection {
    /// Every gene of the spec (including genes outside the network, whose "knock-out" equals the control).
    All,
    /// The named genes, in the given order.
    Genes(Vec<String>),
}

/// The simulated expression of one condition.
#[derive(Clone, Debug)]
pub struct ConditionData {
    /// Knocked-out genes (spec indices): empty for the control, one for a knock-out, several for a
    /// combination (labelled `A+B`).
    pub knockouts: Vec<usize>,
    /// Clean expression, cells × spec genes.
    pub clean: Array2<f64>,
    /// UMI counts after technical noise (`None` when the spec has no technical noise, or when the
    /// condition was discarded because a cell had zero total — see `discarded`).
    pub counts: Option<Array2<f64>>,
    /// True when technical noise was requested but the condition had an all-zero cell (or no expressed
    /// gene), which the reference generator discards.
    pub discarded: bool,
}

/// Sub-stream of the simulation seed that drives the technical noise.
const STREAM_NOISE: u64 = 0x0015E;

/// Simulation seed of a condition: the GRN seed itself when paired (common random numbers), else
/// `seed + j + 1` for the knock-out of spec gene `j` (as in the reference).
pub fn condition_seed(seed: u64, knockout: Option<usize>, paired: bool) -> u64 {
    match knockout {
        Some(j) if !paired => cellshift_data::seed::offset_seed(seed, j as u64 + 1),
        _ => seed,
    }
}

/// Simulates one condition (control or a knock-out of spec gene `knockout`) with noise scale `noise_s`
/// and simulation seed `seed` (already the condition's seed).
pub fn simulate_condition(
    spec: &GrnSpec,
    knockout: Option<usize>,
    noise_s: f64,
    seed: u64,
) -> Result<ConditionData, PriorError> {
    let genes: Vec<usize> = knockout.into_iter().collect();
    simulate_combination(spec, &genes, noise_s, seed)
}

/// Simulates the condition in which every spec gene of `genes` is knocked out together (empty: the
/// control), with the spec's knock-out semantics ([`Network::knockouts`]); each knocked-out gene's clean
/// expression is exactly zero, so its UMI counts are zero too.
pub fn simulate_combination(
    spec: &GrnSpec,
    genes: &[usize],
    noise_s: f64,
    seed: u64,
) -> Result<ConditionData, PriorError> {
    let net = if genes.is_empty() {
        Network::control(spec)?
    } else {
        Network::knockouts(spec, genes, spec.knockout_mode)?
    };
    let settings = SimSettings {
        num_cells: spec.num_cells,
        safety_iter: spec.safety_iter,
        scale_iter: spec.scale_iter,
        dt: spec.dt,
        noise_s,
    };
    let mut clean = simulate_network(&net, &settings, seed);
    for &g in genes {
        clean.column_mut(g).fill(0.0);
    }
    let (counts, discarded) = match &spec.technical_noise {
        None => (None, false),
        Some(params) => {
            match apply_condition_noise(&clean, params, derive_seed(seed, STREAM_NOISE)) {
                Some(c) => (Some(c), false),
                None => (None, true),
            }
        }
    };
    Ok(ConditionData {
        knockouts: genes.to_vec(),
        clean,
        counts,
        discarded,
    })
}

/// Resolves a selection to spec gene indices; errors name unknown genes.
pub fn resolve_selection(
    spec: &GrnSpec,
    selection: &KnockoutSelection,
) -> Result<Vec<usize>, PriorError> {
    match selection {
        KnockoutSelection::All => Ok((0..spec.genes.len()).collect()),
        KnockoutSelection::Genes(names) => names
            .iter()
            .map(|g| spec.gene_index(g, "the knock-out selection"))
            .collect(),
    }
}

/// Simulates the control and the selected knock-outs (conditions in parallel with rayon when `parallel`),
/// each condition from its own copy of the network. `noise_of(knockout)` gives the process-noise scale
/// of each condition (constant for user specs; redrawn per condition by the unpaired random prior).
pub fn simulate_conditions(
    spec: &GrnSpec,
    knockouts: &[usize],
    seed: u64,
    parallel: bool,
    noise_of: &(dyn Fn(Option<usize>, u64) -> f64 + Sync),
) -> Result<Vec<ConditionData>, PriorError> {
    let in_network = spec.in_network();
    let mut jobs: Vec<Option<usize>> = vec![None];
    jobs.extend(knockouts.iter().map(|&g| Some(g)));
    let run = |ko: &Option<usize>| -> Result<Option<ConditionData>, PriorError> {
        let s = condition_seed(seed, *ko, spec.paired);
        // A knock-out of a gene outside the network with the control's seed equals the control.
        if let Some(g) = ko {
            if !in_network[*g] && s == seed {
                return Ok(None);
            }
        }
        simulate_condition(spec, *ko, noise_of(*ko, s), s).map(Some)
    };
    let results: Vec<Result<Option<ConditionData>, PriorError>> = if parallel {
        jobs.par_iter().map(run).collect()
    } else {
        jobs.iter().map(run).collect()
    };
    let mut out: Vec<ConditionData> = Vec::with_capacity(jobs.len());
    for (ko, res) in jobs.iter().zip(results) {
        match res? {
            Some(c) => out.push(c),
            None => {
                let control = &out[0];
                out.push(ConditionData {
                    knockouts: ko.iter().copied().collect(),
                    ..control.clone()
                });
            }
        }
    }
    Ok(out)
}

/// Report of [`simulate_knockouts_detailed`]: the data set and the knock-outs that were discarded.
#[derive(Clone, Debug)]
pub struct KnockoutReport {
    /// Control + every kept knock-out.
    pub data: PerturbationData,
    /// Knock-out genes whose condition was discarded (an all-zero cell before technical noise).
    pub discarded: Vec<String>,
}

/// Simulates the control and the selected knock-outs of `spec` with simulation seed `seed` and returns
/// them as one data set: raw counts when the spec has technical noise, clean expression otherwise.
pub fn simulate_knockouts(
    spec: &GrnSpec,
    selection: KnockoutSelection,
    seed: u64,
) -> Result<PerturbationData, PriorError> {
    simulate_knockouts_detailed(spec, &selection, seed, true).map(|r| r.data)
}

/// As [`simulate_knockouts`], also reporting discarded knock-outs; `parallel` runs conditions on the
/// rayon pool. With technical noise, a knock-out whose clean expression has an all-zero cell is dropped
/// (reference behaviour); if the control is affected the call fails with
/// [`PriorError::SimulationFailed`].
pub fn simulate_knockouts_detailed(
    spec: &GrnSpec,
    selection: &KnockoutSelection,
    seed: u64,
    parallel: bool,
) -> Result<KnockoutReport, PriorError> {
    let knockouts = resolve_selection(spec, selection)?;
    let noise_s = spec.noise_s;
    let conditions = simulate_conditions(spec, &knockouts, seed, parallel, &|_, _| noise_s)?;
    assemble(spec, &spec.name, conditions)
}

/// The `obs` label of a condition: the control label, a gene name, or `A+B` for a combination.
pub fn condition_label(spec: &GrnSpec, knockouts: &[usize]) -> String {
    if knockouts.is_empty() {
        CONTROL_LABEL.to_string()
    } else {
        knockouts
            .iter()
            .map(|&g| spec.genes[g].as_str())
            .collect::<Vec<_>>()
            .join("+")
    }
}

/// Builds the data set from simulated conditions (control first).
pub(crate) fn assemble(
    spec: &GrnSpec,
    context: &str,
    conditions: Vec<ConditionData>,
) -> Result<KnockoutReport, PriorError> {
    let use_counts = spec.technical_noise.is_some();
    if use_counts && conditions.first().map(|c| c.discarded).unwrap_or(true) {
        return Err(PriorError::SimulationFailed {
            context: context.to_string(),
            reason: "the control condition has a cell with zero total expression".into(),
        });
    }
    let mut discarded = Vec::new();
    let kept: Vec<&ConditionData> = conditions
        .iter()
        .filter(|c| {
            if c.discarded {
                discarded.push(condition_label(spec, &c.knockouts));
            }
            !c.discarded
        })
        .collect();
    let nct = spec.n_cell_types;
    let per_condition = spec.num_cells * nct;
    let n_rows = per_condition * kept.len();
    let mut x = Array2::<f32>::zeros((n_rows, spec.genes.len()));
    let mut labels = Vec::with_capacity(n_rows);
    let mut contexts = Vec::with_capacity(n_rows);
    let mut names = Vec::with_capacity(n_rows);
    let ctx_names: Vec<String> = if nct == 1 {
        vec![context.to_string()]
    } else {
        (0..nct).map(|c| format!("{context}/ct{c}")).collect()
    };
    for (k, cond) in kept.iter().enumerate() {
        let label = condition_label(spec, &cond.knockouts);
        let matrix = if use_counts {
            cond.counts.as_ref().expect("kept conditions have counts")
        } else {
            &cond.clean
        };
        for r in 0..per_condition {
            for (g, v) in matrix.row(r).iter().enumerate() {
                x[[k * per_condition + r, g]] = *v as f32;
            }
            let ct = r / spec.num_cells;
            labels.push(label.clone());
            contexts.push(ctx_names[ct].clone());
            names.push(format!(
                "{}:{}:{}",
                ctx_names[ct],
                label,
                r % spec.num_cells
            ));
        }
    }
    let annotations = CellAnnotations {
        cell_names: names,
        contexts,
        treatment_labels: labels,
        treatment_values: vec![],
    };
    let data = PerturbationData::new(spec.genes.clone(), x, annotations, CONTROL_LABEL)?;
    Ok(KnockoutReport { data, discarded })
}
