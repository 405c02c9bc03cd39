//! Condition-level train/val/test splits (MapPFN spec §1.3, Virtual-Cell-Challenge style).
//!
//! * The hold-out context is the context with the most distinct treatment values (control counted, as
//!   pandas `nunique` counts it in the reference); ties go to the first context in sorted order.
//! * Control conditions are in every split ([`SplitRole::Control`]).
//! * The hold-out context's non-control conditions (in order of first appearance in the cell table) are
//!   shuffled and split 50/50 into `test` and `test_other`.
//! * Other contexts' non-control conditions are split 90/10 into train/val, stratified by context. If the
//!   hold-out is the only context, the `test_other` half is itself split 90/10 into train/val.
//! * In-distribution mode (default): `test_other` → train. Out-of-distribution mode: `test_other` is
//!   dropped ([`SplitRole::Excluded`]); the reference then also forces K = 0 (see [`Split::reference_k`]).
//!
//! The shuffles reproduce scikit-learn's `train_test_split` with numpy's `RandomState(seed)` exactly (an
//! MT19937 emulation, see `split/numpy_random.rs`), so the same seed and the same cell order give the same
//! conditions as the Python reference.
//!
//! A third mode, [`SplitMode::AllContextsHoldout`], is for files of entirely new contexts: per context, its
//! non-control conditions are split 50/50 (same shuffle, seeded per call) into context experiments
//! (train) and queried conditions (test); a context with a single perturbation gets it as a query.

mod folds;
mod numpy_random;
mod sklearn;

use std::collections::HashMap;

use crate::error::DataError;
use crate::model::PerturbationData;

/// Role of one condition in a split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SplitRole {
    /// Control cells: observational sets, present in every split.
    Control,
    /// Training queries and the context pool for every task.
    Train,
    /// Validation queries.
    Val,
    /// Test queries (the held-out context's queried half).
    Test,
    /// Not used (OOD mode: the held-out context's other half).
    Excluded,
}

impl SplitRole {
    /// The label written to an `obs["split"]` column.
    pub fn label(&self) -> &'static str {
        match self {
            SplitRole::Control => "control",
            SplitRole::Train => "train",
            SplitRole::Val => "val",
            SplitRole::Test => "test",
            SplitRole::Excluded => "excluded",
        }
    }

    /// Parses [`SplitRole::label`] (also accepts the reference's `test_other` and `other`).
    pub fn from_label(label: &str) -> Option<SplitRole> {
        Some(match label {
            "control" => SplitRole::Control,
            "train" => SplitRole::Train,
            "val" => SplitRole::Val,
            "test" => SplitRole::Test,
            "excluded" | "other" | "test_other" => SplitRole::Excluded,
            _ => return None,
        })
    }
}

/// Which split protocol to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SplitMode {
    /// Reference default: the hold-out context's `test_other` half joins train.
    InDistribution,
    /// The hold-out context's `test_other` half is dropped; needs at least two contexts.
    OutOfDistribution,
    /// Every context is new: per context, half its perturbations are context experiments (train), the
    /// other half queried (test).
    AllContextsHoldout,
}

/// Settings of [`Split::new`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SplitConfig {
    /// numpy `RandomState` seed (0 ..= 2^32−1); reference 42.
    pub seed: u64,
    /// Share of the other contexts' conditions for validation; reference 0.1.
    pub val_share: f64,
    /// Share of the hold-out context's conditions for test; reference 0.5.
    pub test_share: f64,
    /// Protocol.
    pub mode: SplitMode,
    /// Force a hold-out context instead of the automatic choice.
    pub holdout_context: Option<String>,
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            seed: 42,
            val_share: 0.1,
            test_share: 0.5,
            mode: SplitMode::InDistribution,
            holdout_context: None,
        }
    }
}

/// A condition-level split of one [`PerturbationData`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Split {
    /// Name of the hold-out context (`None` in [`SplitMode::AllContextsHoldout`]).
    pub holdout_context: Option<String>,
    /// Role per condition, indexed like [`PerturbationData::conditions`].
    pub role: Vec<SplitRole>,
    /// Per condition: true for the hold-out context's `test_other` half (train in ID mode, excluded in
    /// OOD mode). The reference ranks genes for the panel on train+control *before* this half joins
    /// train, see [`Split::panel_scoring_cells`].
    pub test_other: Vec<bool>,
    /// The protocol that produced this split.
    pub mode: SplitMode,
    /// The seed used.
    pub seed: u64,
}

/// Non-control conditions of `context` (or all contexts) in order of first appearance in the cell table.
fn first_appearance_order(data: &PerturbationData, keep: impl Fn(usize) -> bool) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..data.conditions().len())
        .filter(|&i| {
            let c = &data.conditions()[i];
            !data.treatments[c.treatment].is_control() && keep(c.context)
        })
        .collect();
    idx.sort_by_key(|&i| data.conditions()[i].cells[0]);
    idx
}

fn numpy_seed(seed: u64) -> Result<u32, DataError> {
    u32::try_from(seed).map_err(|_| {
        DataError::Invalid(format!(
            "split seed {seed} is out of range; numpy's RandomState takes seeds 0..=4294967295"
        ))
    })
}

impl Split {
    /// A split whose train conditions are exactly `train_conditions` (indices into `data.conditions()`),
    /// controls are controls and every other condition is excluded: how a method is fitted on the train
    /// conditions a harness chose. Errors on an out-of-range index.
    pub fn from_train_conditions(
        data: &PerturbationData,
        train_conditions: &[usize],
    ) -> Result<Split, DataError> {
        let conds = data.conditions();
        let mut role = vec![SplitRole::Excluded; conds.len()];
        for (i, c) in conds.iter().enumerate() {
            if data.treatments[c.treatment].is_control() {
                role[i] = SplitRole::Control;
            }
        }
        for &i in train_conditions {
            let slot = role.get_mut(i).ok_or_else(|| {
                DataError::Invalid(format!(
                    "train condition {i} is out of range ({} conditions)",
                    conds.len()
                ))
            })?;
            if *slot != SplitRole::Control {
                *slot = SplitRole::Train;
            }
        }
        Ok(Split {
            holdout_context: None,
            test_other: vec![false; conds.len()],
            role,
            mode: SplitMode::InDistribution,
            seed: 0,
        })
    }

    /// Assigns every condition of `data` a role according to `config` (see the module docs).
    pub fn new(data: &PerturbationData, config: &SplitConfig) -> Result<Split, DataError> {
        let seed = numpy_seed(config.seed)?;
        let n_cond = data.conditions().len();
        let mut role: Vec<SplitRole> = data
            .conditions()
            .iter()
            .map(|c| {
                if data.treatments[c.treatment].is_control() {
                    SplitRole::Control
                } else {
                    SplitRole::Excluded
                }
            })
            .collect();
        let mut test_other = vec![false; n_cond];
        if role.iter().all(|r| *r == SplitRole::Control) {
            return Err(DataError::Invalid(
                "the data has no perturbed cells, so there is nothing to split; give a data set with at least \
                 one non-control treatment"
                    .into(),
            ));
        }

        if config.mode == SplitMode::AllContextsHoldout {
            for context in 0..data.contexts.len() {
                let conds = first_appearance_order(data, |c| c == context);
                match conds.len() {
                    0 => {}
                    1 => role[conds[0]] = SplitRole::Test,
                    n => {
                        let what = format!(
                            "splitting context `{}` into context experiments and queries",
                            data.contexts[context]
                        );
                        let parts = sklearn::shuffle_split(n, config.test_share, seed, &what)?;
                        for &i in &parts.test {
                            role[conds[i]] = SplitRole::Test;
                        }
                        for &i in &parts.train {
                            role[conds[i]] = SplitRole::Train;
                        }
                    }
                }
            }
            return Ok(Split {
                holdout_context: None,
                role,
                test_other,
                mode: config.mode,
                seed: config.seed,
            });
        }

        if config.mode == SplitMode::OutOfDistribution && data.contexts.len() < 2 {
            return Err(DataError::Invalid(format!(
                "the out-of-distribution split needs at least two contexts but the data has only `{}`; use the \
                 in-distribution mode",
                data.contexts.first().map(String::as_str).unwrap_or("")
            )));
        }
        let holdout = match &config.holdout_context {
            Some(name) => data.context_index(name)?,
            None => {
                let mut distinct = vec![0usize; data.contexts.len()];
                for c in data.conditions() {
                    distinct[c.context] += 1;
                }
                // first maximum in sorted context order
                let mut best = 0;
                for (i, &d) in distinct.iter().enumerate() {
                    if d > distinct[best] {
                        best = i;
                    }
                }
                best
            }
        };
        let holdout_conds = first_appearance_order(data, |c| c == holdout);
        let other_conds = first_appearance_order(data, |c| c != holdout);
        if holdout_conds.is_empty() {
            return Err(DataError::Invalid(format!(
                "hold-out context `{}` has no perturbed cells; choose a context with perturbations",
                data.contexts[holdout]
            )));
        }
        let what = format!(
            "splitting hold-out context `{}` into test / test_other",
            data.contexts[holdout]
        );
        let first = sklearn::shuffle_split(holdout_conds.len(), config.test_share, seed, &what)?;
        for &i in &first.test {
            role[holdout_conds[i]] = SplitRole::Test;
        }
        // the holdout's other half, in scikit-learn's output order (it feeds the next split)
        let rest: Vec<usize> = first.train.iter().map(|&i| holdout_conds[i]).collect();
        if !other_conds.is_empty() {
            let classes: Vec<usize> = other_conds
                .iter()
                .map(|&i| data.conditions()[i].context)
                .collect();
            let parts = sklearn::stratified_shuffle_split(
                &classes,
                &data.contexts,
                config.val_share,
                seed,
                "splitting the non-hold-out contexts into train / val",
            )?;
            for &i in &parts.train {
                role[other_conds[i]] = SplitRole::Train;
            }
            for &i in &parts.test {
                role[other_conds[i]] = SplitRole::Val;
            }
            for &i in &rest {
                test_other[i] = true;
                role[i] = match config.mode {
                    SplitMode::OutOfDistribution => SplitRole::Excluded,
                    _ => SplitRole::Train,
                };
            }
        } else {
            let what = format!(
                "splitting the other half of the only context `{}` into train / val",
                data.contexts[holdout]
            );
            let parts = sklearn::shuffle_split(rest.len(), config.val_share, seed, &what)?;
            for &i in &parts.train {
                role[rest[i]] = SplitRole::Train;
            }
            for &i in &parts.test {
                role[rest[i]] = SplitRole::Val;
            }
        }
        Ok(Split {
            holdout_context: Some(data.contexts[holdout].clone()),
            role,
            test_other,
            mode: config.mode,
            seed: config.seed,
        })
    }

    /// Indices (into `data.conditions()`) of the conditions with the given role.
    pub fn conditions_with(&self, role: SplitRole) -> Vec<usize> {
        (0..self.role.len())
            .filter(|&i| self.role[i] == role)
            .collect()
    }

    /// Train condition indices.
    pub fn train_conditions(&self) -> Vec<usize> {
        self.conditions_with(SplitRole::Train)
    }

    /// Validation condition indices.
    pub fn val_conditions(&self) -> Vec<usize> {
        self.conditions_with(SplitRole::Val)
    }

    /// Test condition indices.
    pub fn test_conditions(&self) -> Vec<usize> {
        self.conditions_with(SplitRole::Test)
    }

    /// Control condition indices.
    pub fn control_conditions(&self) -> Vec<usize> {
        self.conditions_with(SplitRole::Control)
    }

    /// The number of context experiments the reference uses with this split: `k`, or 0 in OOD mode.
    pub fn reference_k(&self, k: usize) -> usize {
        if self.mode == SplitMode::OutOfDistribution {
            0
        } else {
            k
        }
    }

    /// Cells of the conditions whose role is one of `roles`, in increasing order.
    pub fn cells_with(&self, data: &PerturbationData, roles: &[SplitRole]) -> Vec<usize> {
        let mut cells: Vec<usize> = data
            .conditions()
            .iter()
            .zip(&self.role)
            .filter(|(_, r)| roles.contains(r))
            .flat_map(|(c, _)| c.cells.iter().copied())
            .collect();
        cells.sort_unstable();
        cells
    }

    /// Cells the MapPFN gene panel is scored on: control cells plus train conditions, excluding the
    /// hold-out's `test_other` half (the reference ranks genes before that half joins train).
    pub fn panel_scoring_cells(&self, data: &PerturbationData) -> Vec<usize> {
        let mut cells: Vec<usize> = data
            .conditions()
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                self.role[*i] == SplitRole::Control
                    || (self.role[*i] == SplitRole::Train && !self.test_other[*i])
            })
            .flat_map(|(_, c)| c.cells.iter().copied())
            .collect();
        cells.sort_unstable();
        cells
    }

    /// Checks that this split was made for a data set with `data`'s conditions.
    pub fn check_matches(&self, data: &PerturbationData) -> Result<(), DataError> {
        if self.role.len() != data.conditions().len() || self.test_other.len() != self.role.len() {
            return Err(DataError::Invalid(format!(
                "the split covers {} conditions but the data has {}; make the split from this data set \
                 (Split::new) or carry it over with Split::remap",
                self.role.len(),
                data.conditions().len()
            )));
        }
        for (c, r) in data.conditions().iter().zip(&self.role) {
            let is_control = data.treatments[c.treatment].is_control();
            if is_control != (*r == SplitRole::Control) {
                return Err(DataError::Invalid(format!(
                    "the split marks condition ({}, {}) as {} but it is {}a control; make the split from this \
                     data set",
                    data.contexts[c.context],
                    data.treatments[c.treatment].label(&data.control_label),
                    r.label(),
                    if is_control { "" } else { "not " }
                )));
            }
        }
        Ok(())
    }

    /// Carries the split of `from` over to `to` (a subset of its cells and/or genes) by matching
    /// (context, treatment) labels; errors if `to` has a condition that `from` lacks.
    pub fn remap(
        &self,
        from: &PerturbationData,
        to: &PerturbationData,
    ) -> Result<Split, DataError> {
        self.check_matches(from)?;
        let key = |d: &PerturbationData, i: usize| {
            let c = &d.conditions()[i];
            (
                d.contexts[c.context].clone(),
                d.treatments[c.treatment].label(&d.control_label),
            )
        };
        let index: HashMap<(String, String), usize> = (0..from.conditions().len())
            .map(|i| (key(from, i), i))
            .collect();
        let mut role = Vec::with_capacity(to.conditions().len());
        let mut test_other = Vec::with_capacity(to.conditions().len());
        for i in 0..to.conditions().len() {
            let k = key(to, i);
            let j = *index.get(&k).ok_or_else(|| {
                DataError::Invalid(format!(
                    "condition ({}, {}) is not in the data the split was made for; make a new split",
                    k.0, k.1
                ))
            })?;
            role.push(self.role[j]);
            test_other.push(self.test_other[j]);
        }
        Ok(Split {
            holdout_context: self.holdout_context.clone(),
            role,
            test_other,
            mode: self.mode,
            seed: self.seed,
        })
    }

    /// Per-cell split labels (`control`, `train`, `val`, `test`, `excluded`) for an `obs["split"]` column.
    pub fn cell_labels(&self, data: &PerturbationData) -> Result<Vec<&'static str>, DataError> {
        self.check_matches(data)?;
        let mut labels = vec!["excluded"; data.n_cells()];
        for (c, r) in data.conditions().iter().zip(&self.role) {
            for &cell in &c.cells {
                labels[cell] = r.label();
            }
        }
        Ok(labels)
    }

    /// Rebuilds a split from per-cell labels (as written by [`Split::cell_labels`], or the reference's
    /// `obs["split"]` column); every condition's cells must carry one label. The reference's
    /// `test_other` label becomes train (in-distribution mode) or excluded (OOD mode) with the
    /// `test_other` flag set; otherwise the flag cannot be recovered and is false.
    pub fn from_cell_labels(
        data: &PerturbationData,
        labels: &[String],
        mode: SplitMode,
        seed: u64,
    ) -> Result<Split, DataError> {
        if labels.len() != data.n_cells() {
            return Err(DataError::Invalid(format!(
                "{} split labels for {} cells; give one label per cell",
                labels.len(),
                data.n_cells()
            )));
        }
        let mut role = Vec::with_capacity(data.conditions().len());
        let mut test_other = Vec::with_capacity(data.conditions().len());
        for c in data.conditions() {
            let first = &labels[c.cells[0]];
            if let Some(&other) = c.cells.iter().find(|&&i| labels[i] != *first) {
                return Err(DataError::Invalid(format!(
                    "cells of condition ({}, {}) carry different split labels (`{}` and `{}`); a split assigns \
                     whole conditions",
                    data.contexts[c.context],
                    data.treatments[c.treatment].label(&data.control_label),
                    first,
                    labels[other]
                )));
            }
            let r = SplitRole::from_label(first).ok_or_else(|| {
                DataError::Invalid(format!(
                    "unknown split label `{first}`; expected control, train, val, test or excluded"
                ))
            })?;
            let other = first == "test_other";
            test_other.push(other);
            role.push(if other && mode != SplitMode::OutOfDistribution {
                SplitRole::Train
            } else {
                r
            });
        }
        let holdout_context = {
            let mut ctx: Vec<usize> = data
                .conditions()
                .iter()
                .zip(&role)
                .filter(|(_, r)| **r == SplitRole::Test)
                .map(|(c, _)| c.context)
                .collect();
            ctx.dedup();
            if ctx.len() == 1 {
                Some(data.contexts[ctx[0]].clone())
            } else {
                None
            }
        };
        let split = Split {
            holdout_context,
            test_other,
            role,
            mode,
            seed,
        };
        split.check_matches(data)?;
        Ok(split)
    }
}

#[cfg(test)]
mod tests {
    use super::numpy_random::NumpyRandomState;

    #[test]
    fn mt19937_matches_the_reference_first_output() {
        // MT19937 reference: init_genrand(5489) → first output 3499211612.
        let mut rng = NumpyRandomState::new(5489);
        assert_eq!(rng.next_u32(), 3_499_211_612);
    }
}
