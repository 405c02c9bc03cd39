//! The scDFM authors' train/test splits of a combinatorial screen (their `data.py`), seeded:
//! `additive` holds out 30 % of the doubles (all singles trained on), `unseen` holds out `n_unseen` random
//! single genes with every double containing one of them, `combinations` holds out 15 doubles and the
//! singles of their genes. Their code tests `split_method == 'additive' or 'combinations'`, which is always
//! true, so every split they ran was `additive`; [`SplitOptions::reproduce_or_bug`] reproduces that.

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use cellshift_data::split::{Split, SplitMode, SplitRole};
use cellshift_data::{PerturbationData, Treatment};

use crate::error::{ModelError, Result};
use crate::rng;

/// Which split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitKind {
    /// 30 % of the doubles held out; every single trained on.
    Additive,
    /// Random single genes held out with every double that contains one of them.
    Unseen,
    /// 15 doubles held out with the singles of their genes.
    Combinations,
}

/// Split settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SplitOptions {
    /// Which split.
    pub kind: SplitKind,
    /// Seed of the shuffles (their numpy seed is 42 + fold).
    pub seed: u64,
    /// Single genes held out by `unseen` (12).
    pub n_unseen: usize,
    /// Doubles held out by `combinations` (15).
    pub n_combinations: usize,
    /// Reproduce their always-true `'additive' or 'combinations'` test: every kind gives `additive`.
    pub reproduce_or_bug: bool,
}

impl SplitOptions {
    /// Their defaults for `kind`.
    pub fn new(kind: SplitKind, seed: u64) -> SplitOptions {
        SplitOptions {
            kind,
            seed,
            n_unseen: 12,
            n_combinations: 15,
            reproduce_or_bug: false,
        }
    }
}

/// Train and test condition indices (into `data.conditions()`); control conditions are always trained on.
#[derive(Clone, Debug, PartialEq)]
pub struct ConditionSplit {
    /// Training conditions.
    pub train: Vec<usize>,
    /// Held-out conditions.
    pub test: Vec<usize>,
}

impl ConditionSplit {
    /// The split as the scoring harness takes it: control conditions are controls, the held-out
    /// conditions are tested, every other condition is trained on.
    pub fn to_split(&self, data: &PerturbationData, seed: u64) -> Split {
        let conditions = data.conditions();
        let role = (0..conditions.len())
            .map(|i| {
                if data.treatments[conditions[i].treatment].is_control() {
                    SplitRole::Control
                } else if self.test.binary_search(&i).is_ok() {
                    SplitRole::Test
                } else {
                    SplitRole::Train
                }
            })
            .collect();
        Split {
            holdout_context: None,
            role,
            test_other: vec![false; conditions.len()],
            mode: SplitMode::InDistribution,
            seed,
        }
    }
}

/// Splits the conditions of `data` (singles `A`, doubles `A+B`, control).
pub fn split_conditions(data: &PerturbationData, options: SplitOptions) -> Result<ConditionSplit> {
    let kind = if options.reproduce_or_bug {
        SplitKind::Additive
    } else {
        options.kind
    };
    let conditions = data.conditions();
    let mut singles = Vec::new();
    let mut doubles = Vec::new();
    for (i, c) in conditions.iter().enumerate() {
        match &data.treatments[c.treatment] {
            Treatment::Knockout { .. } => singles.push(i),
            Treatment::Combination { genes } if genes.len() == 2 => doubles.push(i),
            Treatment::Control => {}
            other => {
                return Err(ModelError::Input(format!(
                    "the scDFM splits handle singles and doubles; condition `{}` is neither",
                    other.label(&data.control_label)
                )))
            }
        }
    }
    let mut r = rng::stream(options.seed, "scdfm-split", kind as u64);
    let genes_of = |i: usize| -> Vec<String> {
        data.treatments[conditions[i].treatment]
            .target_genes()
            .into_iter()
            .map(String::from)
            .collect()
    };
    let mut test: Vec<usize> = match kind {
        SplitKind::Additive => {
            if doubles.is_empty() {
                return Err(ModelError::Input(
                    "the additive split holds out doubles, but the data has none".into(),
                ));
            }
            doubles.shuffle(&mut r);
            let n = ((doubles.len() as f64) * 0.3).round().max(1.0) as usize;
            doubles[..n].to_vec()
        }
        SplitKind::Unseen => {
            if singles.len() < options.n_unseen || options.n_unseen == 0 {
                return Err(ModelError::Input(format!(
                    "the unseen split holds out {} single genes, but the data has {} singles; lower n_unseen \
                     (`--unseen-genes` on the command line)",
                    options.n_unseen,
                    singles.len()
                )));
            }
            let mut genes: Vec<String> = singles.iter().flat_map(|&i| genes_of(i)).collect();
            genes.sort();
            genes.shuffle(&mut r);
            let held: Vec<String> = genes[..options.n_unseen].to_vec();
            singles
                .iter()
                .chain(&doubles)
                .copied()
                .filter(|&i| genes_of(i).iter().any(|g| held.contains(g)))
                .collect()
        }
        SplitKind::Combinations => {
            if doubles.len() < options.n_combinations || options.n_combinations == 0 {
                return Err(ModelError::Input(format!(
                    "the combinations split holds out {} doubles, but the data has {}; lower n_combinations \
                     (`--held-out-doubles` on the command line)",
                    options.n_combinations,
                    doubles.len()
                )));
            }
            doubles.shuffle(&mut r);
            let held = &doubles[..options.n_combinations];
            let genes: Vec<String> = held.iter().flat_map(|&i| genes_of(i)).collect();
            held.iter()
                .copied()
                .chain(
                    singles
                        .iter()
                        .copied()
                        .filter(|&i| genes_of(i).iter().any(|g| genes.contains(g))),
                )
                .collect()
        }
    };
    test.sort_unstable();
    let train = (0..conditions.len())
        .filter(|i| test.binary_search(i).is_err())
        .collect();
    Ok(ConditionSplit { train, test })
}

/// The splits hook of scDFM's registry entry: `additive`, `unseen`, `combinations` by name.
pub const SPLITS: crate::hooks::Splits = crate::hooks::Splits {
    names: &["additive", "unseen", "combinations"],
    split: named_split,
};

/// The split `name` of `data` with `seed` and the settings of `params`.
fn named_split(
    data: &PerturbationData,
    name: &str,
    seed: u64,
    params: &crate::hooks::SplitParams,
) -> anyhow::Result<Split> {
    let kind = match name {
        "additive" => SplitKind::Additive,
        "unseen" => SplitKind::Unseen,
        "combinations" => SplitKind::Combinations,
        other => {
            anyhow::bail!("scDFM has no split `{other}`; use additive, unseen or combinations")
        }
    };
    let options = SplitOptions {
        n_unseen: params.unseen_genes,
        n_combinations: params.held_out_doubles,
        reproduce_or_bug: params.reproduce_or_bug,
        ..SplitOptions::new(kind, seed)
    };
    let split = split_conditions(data, options)
        .map_err(|e| anyhow::anyhow!(e).context(format!("the `{name}` split (scDFM's)")))?;
    Ok(split.to_split(data, seed))
}
