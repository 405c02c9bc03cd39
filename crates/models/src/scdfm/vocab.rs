//! scDFM's token vocabulary: 4 specials (`<pad>`, `<cls>`, `<mask>`, `control`) + the measured genes and
//! every gene the data set perturbs, in code-point order (their `GeneVocab`; their pipeline forces
//! perturbed genes into the HVG panel, here a perturbed gene that is not measured still gets a token). Such
//! a gene has no co-expression row, so in the graph mask it sees only itself, like the specials. Also the
//! perturbation tokens of a treatment in genetic and drug mode, and the messages that name mismatches.

use std::collections::{BTreeSet, HashMap};

use cellshift_data::{PerturbationData, Treatment};
use ndarray::Array2;

use super::config::{PerturbationMode, ScdfmSetup};
use crate::error::{ModelError, Result};

/// The special tokens, in vocabulary order.
pub const SPECIALS: [&str; 4] = ["<pad>", "<cls>", "<mask>", "control"];

/// The vocabulary of a data set: specials + measured genes ∪ perturbed genes, in code-point order.
pub fn vocabulary(data: &PerturbationData) -> Vec<String> {
    let mut genes: BTreeSet<String> = data.genes.iter().cloned().collect();
    for t in &data.treatments {
        genes.extend(t.target_genes().into_iter().map(String::from));
    }
    SPECIALS
        .iter()
        .map(|s| s.to_string())
        .chain(genes)
        .collect()
}

/// Genetic mode for screens of gene perturbations, drug mode (the authors' `perturbation_embedder`
/// tokens) for screens of compounds; an error for a screen that mixes both.
pub fn perturbation_mode(data: &PerturbationData) -> Result<PerturbationMode> {
    let compound = data
        .treatments
        .iter()
        .find(|t| matches!(t, Treatment::Compound { .. }));
    let genetic = data.treatments.iter().find(|t| {
        matches!(
            t,
            Treatment::Knockout { .. } | Treatment::Combination { .. }
        )
    });
    match (compound, genetic) {
        (Some(c), Some(g)) => Err(ModelError::Input(format!(
            "the screen mixes compounds (e.g. `{}`) and genetic perturbations (e.g. `{}`); scDFM embeds \
             either perturbed genes (genetic mode) or compound tokens (drug mode), not both in one model; \
             split the screen into its compound and its genetic conditions and train one model on each",
            c.label(&data.control_label),
            g.label(&data.control_label)
        ))),
        (Some(_), None) => Ok(PerturbationMode::Drug),
        _ => Ok(PerturbationMode::Crispr),
    }
}

/// The compound labels (`name@dose`) of `data`, or of its conditions `only` when given, in code-point order.
pub fn compound_labels(data: &PerturbationData, only: Option<&[usize]>) -> Vec<String> {
    let conditions = data.conditions();
    let treatments: Vec<&Treatment> = match only {
        Some(idx) => idx
            .iter()
            .filter_map(|&i| conditions.get(i))
            .filter(|c| !c.cells.is_empty())
            .map(|c| &data.treatments[c.treatment])
            .collect(),
        None => data.treatments.iter().collect(),
    };
    let set: BTreeSet<String> = treatments
        .into_iter()
        .filter(|t| matches!(t, Treatment::Compound { .. }))
        .map(|t| t.label(&data.control_label))
        .collect();
    set.into_iter().collect()
}

/// The `[V, V]` mask over `vocab` from a var-order graph mask over `genes`: gene pairs as in the graph,
/// every other token blocked except its own diagonal. With `vocab` = specials + sorted `genes` this is
/// their `sorted_pad_mask`.
pub fn vocabulary_mask(
    graph_mask: &Array2<bool>,
    genes: &[String],
    vocab: &[String],
) -> Array2<bool> {
    let pos: HashMap<&str, usize> = vocab
        .iter()
        .enumerate()
        .map(|(i, g)| (g.as_str(), i))
        .collect();
    let v = vocab.len();
    let mut m = Array2::from_elem((v, v), true);
    let idx: Vec<usize> = genes.iter().map(|g| pos[g.as_str()]).collect();
    for (a, &i) in idx.iter().enumerate() {
        for (b, &j) in idx.iter().enumerate() {
            m[[i, j]] = graph_mask[[a, b]];
        }
    }
    for i in 0..v {
        m[[i, i]] = false;
    }
    m
}

pub(super) fn genes_mismatch(model: &[String], data: &[String]) -> ModelError {
    let first = model
        .iter()
        .zip(data)
        .position(|(a, b)| a != b)
        .map(|i| {
            format!(
                "; first difference at column {i}: model `{}`, data `{}`",
                model[i], data[i]
            )
        })
        .unwrap_or_default();
    ModelError::Input(format!(
        "the data's genes ({}) differ from the genes the scDFM model was built for ({}){first}; bring the data to \
         the model's gene panel (same genes, same order, e.g. `cellshift preprocess --genes-from <checkpoint>`) \
         or train a new model on this data",
        data.len(),
        model.len()
    ))
}

pub(super) fn mode_name(mode: PerturbationMode) -> &'static str {
    match mode {
        PerturbationMode::Crispr => "genetic",
        PerturbationMode::Drug => "drug",
    }
}

/// The two perturbation token ids of a treatment in the mode of `setup`: gene tokens (see
/// [`perturbation_tokens`]) in genetic mode, `[compound, control]` rows of the `perturbation_embedder` table
/// in drug mode. Errors name a treatment of the other kind and a compound absent from training.
pub(super) fn perturbation_ids(
    setup: &ScdfmSetup,
    treatment: &Treatment,
    label: &str,
    token: &dyn Fn(&str) -> Option<i64>,
    trained: Option<&BTreeSet<&str>>,
) -> Result<[i64; 2]> {
    match (setup.net.perturbation, treatment) {
        (PerturbationMode::Crispr, Treatment::Compound { .. }) => Err(ModelError::Input(format!(
            "cannot predict `{label}`: it is a compound, but this scDFM model is in genetic mode (it embeds \
             perturbed genes); train a drug-mode model on a compound screen (`cellshift train --method scdfm` \
             on data whose perturbations are compounds)"
        ))),
        (PerturbationMode::Crispr, _) => perturbation_tokens(treatment, label, token, trained),
        (PerturbationMode::Drug, Treatment::Compound { name, dose }) => {
            let key = format!("{name}@{dose}");
            match setup.compounds.binary_search(&key) {
                Ok(i) => Ok([(SPECIALS.len() + i) as i64, 3]),
                Err(_) => {
                    let doses: Vec<&str> = setup
                        .compounds
                        .iter()
                        .filter(|c| c.rsplit_once('@').is_some_and(|(n, _)| n == name))
                        .map(String::as_str)
                        .collect();
                    let seen = if doses.is_empty() {
                        format!(
                            "the model was trained on {} compound(s): {}",
                            setup.compounds.len(),
                            preview(&setup.compounds)
                        )
                    } else {
                        format!(
                            "the model saw `{name}` only as {} (each dose is its own token)",
                            doses.join(", ")
                        )
                    };
                    Err(ModelError::Input(format!(
                        "cannot predict compound `{key}`: it was absent from training, and scDFM's drug mode \
                         cannot embed compounds absent from training (each compound is a token learned in \
                         training); {seen}. Put `{key}` into the training conditions or predict a compound \
                         the model was trained on"
                    )))
                }
            }
        }
        (PerturbationMode::Drug, _) => Err(ModelError::Input(format!(
            "cannot predict `{label}`: it is a genetic perturbation, but this scDFM model is in drug mode \
             (trained on compounds); train a genetic-mode model on a genetic screen"
        ))),
    }
}

/// The first few items of a list, for messages.
pub(super) fn preview(items: &[String]) -> String {
    let head: Vec<&str> = items.iter().take(5).map(String::as_str).collect();
    if items.len() > head.len() {
        format!("{}, …", head.join(", "))
    } else {
        head.join(", ")
    }
}

/// The two perturbation tokens of a treatment: `[A, control]` for a single, `[A, B]` for a double. With
/// `trained`, each gene must have been measured or perturbed in training.
fn perturbation_tokens(
    treatment: &Treatment,
    label: &str,
    token: &dyn Fn(&str) -> Option<i64>,
    trained: Option<&BTreeSet<&str>>,
) -> Result<[i64; 2]> {
    let genes = treatment.target_genes();
    if genes.is_empty() || genes.len() > 2 {
        return Err(ModelError::Input(format!(
            "scDFM embeds one or two perturbed genes per condition; `{label}` has {} (use single or double \
             genetic perturbations)",
            genes.len()
        )));
    }
    let mut ids = [3i64; 2];
    for (slot, g) in genes.iter().enumerate() {
        let id = token(g).ok_or_else(|| {
            ModelError::Input(format!(
                "cannot predict `{label}`: perturbed gene `{g}` is not in the scDFM model's vocabulary (the genes \
                 measured or perturbed in the data it was built on); train on data that measures or perturbs \
                 `{g}`"
            ))
        })?;
        if let Some(trained) = trained {
            if !trained.contains(g) {
                let what = if genes.len() == 2 {
                    format!("the double `{label}` contains the unseen single `{g}`")
                } else {
                    format!("`{label}` is an unseen single")
                };
                return Err(ModelError::Input(format!(
                    "{what}: gene `{g}` was neither measured nor perturbed in training, so its token embedding \
                     is untrained; put a condition perturbing `{g}` into training (the `additive` split keeps \
                     every single in training) or measure `{g}`"
                )));
            }
        }
        ids[slot] = id;
    }
    Ok(ids)
}
