//! Cross-validation folds of a split: the conditions a split tests, and the conditions of the same kind it
//! trains on in the same contexts, are shuffled with a seed and dealt into folds; fold `f` tests its own
//! conditions and trains on every other eligible one, so that every eligible condition is predicted once.
//!
//! Eligible conditions follow the split's task, whatever protocol made it:
//! * a held-out context (its test half tested, its other half the context experiments): every
//!   non-control condition of that context;
//! * held-out doubles (every single trained on): every double of the tested contexts whose singles are all
//!   measured there; singles and other doubles stay in training in every fold;
//! * in general: the non-control conditions of the contexts holding a test condition, of a treatment kind
//!   some test condition of that context has (knock-out, combination, …), that the split tests or trains
//!   on. Validation, control and excluded conditions keep their roles in every fold.

use std::collections::{BTreeSet, HashSet};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_pcg::Pcg64;

use super::{Split, SplitRole};
use crate::error::DataError;
use crate::model::{PerturbationData, Treatment};
use crate::seed::derive_seed;

/// Salt of the fold shuffle's seed, so that folds do not reuse the stream of the split itself.
const FOLD_SALT: u64 = 0xc0ff_ee00_f01d_5eed;

impl Split {
    /// The kind of a treatment as cross-validation tells them apart: `single`, `combination` or
    /// `control`.
    pub fn treatment_kind(treatment: &Treatment) -> &'static str {
        treatment_kind(treatment)
    }

    /// Whether a training condition could be dealt into a cross-validation fold: not a control, and, for a
    /// combination, every single of it measured in its context (so that models built from singles can
    /// predict it).
    pub fn could_be_tested(data: &PerturbationData, condition: usize) -> bool {
        let c = &data.conditions()[condition];
        let treatment = &data.treatments[c.treatment];
        !treatment.is_control() && singles_measured(data, c.context, treatment)
    }

    /// The (context index, treatment kind) pairs of this split's test conditions, in context order: what
    /// the queries are like, without the queries themselves.
    pub fn query_kinds(&self, data: &PerturbationData) -> Vec<(usize, &'static str)> {
        let kinds: BTreeSet<(usize, &'static str)> = data
            .conditions()
            .iter()
            .zip(&self.role)
            .filter(|(_, r)| **r == SplitRole::Test)
            .map(|(c, _)| (c.context, treatment_kind(&data.treatments[c.treatment])))
            .collect();
        kinds.into_iter().collect()
    }

    /// The conditions (indices into `data.conditions()`) that cross-validation of this split deals into
    /// folds (see the module docs), in index order.
    pub fn cross_validation_eligible(&self, data: &PerturbationData) -> Vec<usize> {
        let conds = data.conditions();
        let kinds: HashSet<(usize, &'static str)> = conds
            .iter()
            .zip(&self.role)
            .filter(|(_, r)| **r == SplitRole::Test)
            .map(|(c, _)| (c.context, treatment_kind(&data.treatments[c.treatment])))
            .collect();
        (0..conds.len())
            .filter(|&i| {
                let c = &conds[i];
                let treatment = &data.treatments[c.treatment];
                matches!(self.role[i], SplitRole::Test | SplitRole::Train)
                    && !treatment.is_control()
                    && kinds.contains(&(c.context, treatment_kind(treatment)))
                    && (self.role[i] == SplitRole::Test
                        || singles_measured(data, c.context, treatment))
            })
            .collect()
    }

    /// `n_folds` splits (fewer when fewer conditions are eligible; at least two) that together test every
    /// eligible condition exactly once; the fold assignment is a `seed`ed shuffle dealt round-robin, so fold
    /// sizes differ by at most one. Errors when fewer than two conditions are eligible or `n_folds < 2`.
    pub fn cross_validation_folds(
        &self,
        data: &PerturbationData,
        n_folds: usize,
        seed: u64,
    ) -> Result<Vec<Split>, DataError> {
        self.check_matches(data)?;
        if n_folds < 2 {
            return Err(DataError::Invalid(format!(
                "cross-validation needs at least 2 folds, got {n_folds}; pass --folds 2 or more"
            )));
        }
        let mut eligible = self.cross_validation_eligible(data);
        if eligible.len() < 2 {
            return Err(DataError::Invalid(format!(
                "cross-validation needs at least 2 perturbations of the kind the split tests, this split has \
                 {}; use the standard protocol (--protocol standard)",
                eligible.len()
            )));
        }
        eligible.shuffle(&mut Pcg64::seed_from_u64(derive_seed(seed, FOLD_SALT)));
        let n_folds = n_folds.min(eligible.len());
        let all: BTreeSet<usize> = eligible.iter().copied().collect();
        Ok((0..n_folds)
            .map(|fold| {
                let tested: BTreeSet<usize> = eligible
                    .iter()
                    .skip(fold)
                    .step_by(n_folds)
                    .copied()
                    .collect();
                let mut role = self.role.clone();
                for &i in &all {
                    role[i] = if tested.contains(&i) {
                        SplitRole::Test
                    } else {
                        SplitRole::Train
                    };
                }
                Split {
                    holdout_context: self.holdout_context.clone(),
                    role,
                    test_other: vec![false; self.role.len()],
                    mode: self.mode,
                    seed: self.seed,
                }
            })
            .collect())
    }
}

/// A name for the kind of a treatment, so that folds keep to the kind a split tests.
fn treatment_kind(treatment: &Treatment) -> &'static str {
    match treatment {
        Treatment::Combination { .. } => "combination",
        Treatment::Control => "control",
        _ => "single",
    }
}

/// For a combination: every one of its genes' single knock-out is measured in `context`; true for any
/// other treatment.
fn singles_measured(data: &PerturbationData, context: usize, treatment: &Treatment) -> bool {
    let Treatment::Combination { genes } = treatment else {
        return true;
    };
    genes.iter().all(|g| {
        data.treatments
            .iter()
            .position(|t| matches!(t, Treatment::Knockout { gene } if gene == g))
            .is_some_and(|t| data.condition(context, t).is_some())
    })
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;
    use crate::model::CellAnnotations;
    use crate::split::{SplitConfig, SplitMode};

    /// Two cells per condition: contexts × treatment labels (`ctrl` is the control).
    fn data(contexts: &[&str], labels: &[&str]) -> PerturbationData {
        let mut ctx = Vec::new();
        let mut lab = Vec::new();
        for c in contexts {
            for l in labels {
                for _ in 0..2 {
                    ctx.push(c.to_string());
                    lab.push(l.to_string());
                }
            }
        }
        let n = ctx.len();
        let x = Array2::from_shape_fn((n, 3), |(i, j)| ((i * 7 + j) % 5) as f32);
        let cells = CellAnnotations {
            cell_names: Vec::new(),
            contexts: ctx,
            treatment_labels: lab,
            treatment_values: Vec::new(),
        };
        PerturbationData::new(vec!["A".into(), "B".into(), "C".into()], x, cells, "ctrl").unwrap()
    }

    fn tested(split: &Split) -> Vec<usize> {
        split.test_conditions()
    }

    #[test]
    fn held_out_context_folds_test_every_perturbation_of_that_context_once() {
        let labels = ["ctrl", "A", "B", "C", "D", "E", "F", "G"];
        let d = data(&["x", "y"], &labels);
        let split = Split::new(&d, &SplitConfig::default()).unwrap();
        let holdout = d
            .context_index(split.holdout_context.as_deref().unwrap())
            .unwrap();
        let folds = split.cross_validation_folds(&d, 3, 7).unwrap();
        assert_eq!(folds.len(), 3);
        let mut seen: Vec<usize> = folds.iter().flat_map(tested).collect();
        seen.sort();
        let expected: Vec<usize> = (0..d.conditions().len())
            .filter(|&i| {
                let c = &d.conditions()[i];
                c.context == holdout && !d.treatments[c.treatment].is_control()
            })
            .collect();
        assert_eq!(
            seen, expected,
            "every held-out perturbation is tested exactly once"
        );
        for fold in &folds {
            // Fold sizes 3, 2, 2; the other held-out perturbations are its context experiments.
            assert!((2..=3).contains(&fold.test_conditions().len()));
            for &i in &expected {
                let want = if fold.test_conditions().contains(&i) {
                    SplitRole::Test
                } else {
                    SplitRole::Train
                };
                assert_eq!(fold.role[i], want);
            }
            // The other context keeps its train/val roles.
            for (i, c) in d.conditions().iter().enumerate() {
                if c.context != holdout {
                    assert_eq!(fold.role[i], split.role[i]);
                }
            }
        }
        // Seeded: the same seed deals the same folds, another seed other folds.
        assert_eq!(folds, split.cross_validation_folds(&d, 3, 7).unwrap());
        let other = split.cross_validation_folds(&d, 3, 8).unwrap();
        assert!(folds.iter().zip(&other).any(|(a, b)| a.role != b.role));
    }

    #[test]
    fn double_folds_deal_only_doubles_whose_singles_are_measured() {
        let labels = ["ctrl", "A", "B", "C", "A+B", "B+C", "A+C", "A+Z"];
        let d = data(&["x"], &labels);
        let mut split = Split::new(
            &d,
            &SplitConfig {
                mode: SplitMode::InDistribution,
                ..SplitConfig::default()
            },
        )
        .unwrap();
        // The double split's shape: singles and the double missing a single train, one double tested.
        for (i, c) in d.conditions().iter().enumerate() {
            split.role[i] = match d.treatments[c.treatment].label("ctrl").as_str() {
                "ctrl" => SplitRole::Control,
                "A+B" => SplitRole::Test,
                _ => SplitRole::Train,
            };
        }
        split.test_other = vec![false; split.role.len()];
        let folds = split.cross_validation_folds(&d, 5, 1).unwrap();
        assert_eq!(folds.len(), 3, "three eligible doubles, so three folds");
        let label = |i: usize| d.treatments[d.conditions()[i].treatment].label("ctrl");
        let mut seen: Vec<String> = folds.iter().flat_map(tested).map(label).collect();
        seen.sort();
        assert_eq!(seen, ["A+B", "A+C", "B+C"]);
        for fold in &folds {
            for (i, role) in fold.role.iter().enumerate() {
                if ["A", "B", "C", "A+Z"].contains(&label(i).as_str()) {
                    assert_eq!(*role, SplitRole::Train, "{} trains in every fold", label(i));
                }
            }
        }
    }

    #[test]
    fn too_few_eligible_conditions_or_folds_are_refused_with_the_fix() {
        let d = data(&["x", "y"], &["ctrl", "A", "B", "C", "D"]);
        let split = Split::new(&d, &SplitConfig::default()).unwrap();
        let err = split
            .cross_validation_folds(&d, 1, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--folds 2"), "{err}");
        let mut single = split.clone();
        let first_test = single.test_conditions()[0];
        for (i, r) in single.role.iter_mut().enumerate() {
            if i != first_test && *r == SplitRole::Test {
                *r = SplitRole::Excluded;
            }
        }
        for (i, c) in d.conditions().iter().enumerate() {
            if c.context == d.conditions()[first_test].context && i != first_test {
                if single.role[i] == SplitRole::Train {
                    single.role[i] = SplitRole::Excluded;
                }
            }
        }
        let err = single
            .cross_validation_folds(&d, 5, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--protocol standard"), "{err}");
    }
}
