//! Structural properties of the condition-level splits (MapPFN spec §1.3).

mod common;

use cellshift_data::{DataError, Split, SplitConfig, SplitMode, SplitRole};
use common::synthetic;

fn count(split: &Split, role: SplitRole) -> usize {
    split.role.iter().filter(|r| **r == role).count()
}

#[test]
fn single_context_proportions_follow_the_reference() {
    // Papalexi-like: one context, 23 perturbations → 12 test (ceil 0.5·23), rest 11 → 2 val (ceil 0.1·11), 9 train
    let data = synthetic(&[("THP-1", 23)], 3, 5, None);
    let split = Split::new(&data, &SplitConfig::default()).unwrap();
    assert_eq!(split.holdout_context.as_deref(), Some("THP-1"));
    assert_eq!(count(&split, SplitRole::Test), 12);
    assert_eq!(count(&split, SplitRole::Val), 2);
    assert_eq!(count(&split, SplitRole::Train), 9);
    assert_eq!(count(&split, SplitRole::Control), 1);
    assert!(split.test_other.iter().all(|t| !t));
}

#[test]
fn holdout_is_the_context_with_most_treatments_ties_to_the_first_sorted() {
    let data = synthetic(&[("zeta", 12), ("beta", 12), ("alpha", 7)], 2, 3, None);
    let split = Split::new(&data, &SplitConfig::default()).unwrap();
    assert_eq!(split.holdout_context.as_deref(), Some("beta"));
    let data = synthetic(&[("zeta", 13), ("beta", 12), ("alpha", 7)], 2, 3, None);
    let split = Split::new(&data, &SplitConfig::default()).unwrap();
    assert_eq!(split.holdout_context.as_deref(), Some("zeta"));
}

#[test]
fn multi_context_roles_controls_and_stratification() {
    let data = synthetic(&[("a", 20), ("b", 30), ("c", 20), ("d", 10)], 2, 4, None);
    let split = Split::new(&data, &SplitConfig::default()).unwrap();
    let holdout = data.context_index("b").unwrap();
    assert_eq!(split.holdout_context.as_deref(), Some("b"));
    for (i, c) in data.conditions().iter().enumerate() {
        let control = data.treatments[c.treatment].is_control();
        assert_eq!(
            control,
            split.role[i] == SplitRole::Control,
            "controls are in every split"
        );
        if c.context == holdout && !control {
            // every hold-out perturbation is either queried (test) or joins train (test_other, ID mode)
            assert!(
                split.role[i] == SplitRole::Test
                    || (split.role[i] == SplitRole::Train && split.test_other[i]),
                "{:?}",
                split.role[i]
            );
        } else if !control {
            assert!(matches!(split.role[i], SplitRole::Train | SplitRole::Val));
            assert!(!split.test_other[i]);
        }
    }
    let holdout_test = split.test_conditions().len();
    assert_eq!(holdout_test, 15);
    assert_eq!(split.test_other.iter().filter(|t| **t).count(), 15);
    // 90/10 over 50 other conditions: 5 val, stratified → a, c get 2, d gets 1
    let val_per_ctx: Vec<usize> = ["a", "c", "d"]
        .iter()
        .map(|n| {
            let ci = data.context_index(n).unwrap();
            split
                .val_conditions()
                .iter()
                .filter(|&&i| data.conditions()[i].context == ci)
                .count()
        })
        .collect();
    assert_eq!(val_per_ctx, vec![2, 2, 1]);
    // panel scoring excludes the test_other half
    let cells = split.panel_scoring_cells(&data);
    for (i, c) in data.conditions().iter().enumerate() {
        let inside = c.cells.iter().all(|x| cells.binary_search(x).is_ok());
        let expect = split.role[i] == SplitRole::Control
            || (split.role[i] == SplitRole::Train && !split.test_other[i]);
        assert_eq!(inside, expect);
    }
}

#[test]
fn ood_mode_drops_test_other_and_needs_two_contexts() {
    let data = synthetic(&[("a", 20), ("b", 30)], 2, 4, None);
    let id = Split::new(&data, &SplitConfig::default()).unwrap();
    let ood = Split::new(
        &data,
        &SplitConfig {
            mode: SplitMode::OutOfDistribution,
            ..SplitConfig::default()
        },
    )
    .unwrap();
    for i in 0..id.role.len() {
        if id.test_other[i] {
            assert_eq!(id.role[i], SplitRole::Train);
            assert_eq!(ood.role[i], SplitRole::Excluded);
        } else {
            assert_eq!(
                id.role[i], ood.role[i],
                "the test split is identical in both modes"
            );
        }
    }
    assert_eq!(ood.reference_k(8), 0);
    assert_eq!(id.reference_k(8), 8);
    let single = synthetic(&[("only", 10)], 2, 2, None);
    let err = Split::new(
        &single,
        &SplitConfig {
            mode: SplitMode::OutOfDistribution,
            ..SplitConfig::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("at least two contexts"), "{err}");
}

#[test]
fn seeds_are_reproducible_and_matter() {
    let data = synthetic(&[("a", 20), ("b", 30), ("c", 20)], 2, 4, None);
    let s1 = Split::new(&data, &SplitConfig::default()).unwrap();
    let s2 = Split::new(&data, &SplitConfig::default()).unwrap();
    assert_eq!(s1, s2);
    let s3 = Split::new(
        &data,
        &SplitConfig {
            seed: 7,
            ..SplitConfig::default()
        },
    )
    .unwrap();
    assert_ne!(s1.role, s3.role);
    let err = Split::new(
        &data,
        &SplitConfig {
            seed: 1 << 40,
            ..SplitConfig::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("out of range"));
}

#[test]
fn all_contexts_holdout_splits_each_context_in_half() {
    let data = synthetic(&[("p", 10), ("q", 7), ("r", 1)], 2, 3, None);
    let split = Split::new(
        &data,
        &SplitConfig {
            mode: SplitMode::AllContextsHoldout,
            ..SplitConfig::default()
        },
    )
    .unwrap();
    assert_eq!(split.holdout_context, None);
    for (name, test, train) in [("p", 5, 5), ("q", 4, 3), ("r", 1, 0)] {
        let ci = data.context_index(name).unwrap();
        let roles: Vec<SplitRole> = (0..data.conditions().len())
            .filter(|&i| data.conditions()[i].context == ci && split.role[i] != SplitRole::Control)
            .map(|i| split.role[i])
            .collect();
        assert_eq!(
            roles.iter().filter(|r| **r == SplitRole::Test).count(),
            test,
            "{name}"
        );
        assert_eq!(
            roles.iter().filter(|r| **r == SplitRole::Train).count(),
            train,
            "{name}"
        );
    }
    assert_eq!(count(&split, SplitRole::Val), 0);
}

#[test]
fn cell_labels_round_trip_and_remap_follows_labels() {
    let data = synthetic(&[("a", 12), ("b", 16)], 2, 4, None);
    let split = Split::new(&data, &SplitConfig::default()).unwrap();
    let labels: Vec<String> = split
        .cell_labels(&data)
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let back = Split::from_cell_labels(&data, &labels, split.mode, split.seed).unwrap();
    assert_eq!(back.role, split.role);
    assert_eq!(back.holdout_context, split.holdout_context);
    // the reference's labels (test_other kept separate) are read back with the flag
    let reference_labels: Vec<String> = (0..data.n_cells())
        .map(|cell| {
            let i = data
                .conditions()
                .iter()
                .position(|c| c.cells.contains(&cell))
                .unwrap();
            if split.test_other[i] {
                "test_other".to_string()
            } else {
                labels[cell].clone()
            }
        })
        .collect();
    let back = Split::from_cell_labels(&data, &reference_labels, split.mode, split.seed).unwrap();
    assert_eq!(back, split);
    // drop one context's cells: the remaining conditions keep their roles
    let ci = data.context_index("a").unwrap();
    let rows: Vec<usize> = (0..data.n_cells())
        .filter(|&c| data.cell_context[c] != ci)
        .collect();
    let sub = data.select_cells(&rows).unwrap();
    let remapped = split.remap(&data, &sub).unwrap();
    for (j, c) in sub.conditions().iter().enumerate() {
        let t = data
            .treatment_index(&sub.treatments[c.treatment].label("control"))
            .unwrap();
        let i = data
            .conditions()
            .iter()
            .position(|x| x.context == data.context_index("b").unwrap() && x.treatment == t)
            .unwrap();
        assert_eq!(remapped.role[j], split.role[i]);
    }
    // a split made for other data is rejected
    let err = split.check_matches(&sub).unwrap_err();
    assert!(matches!(err, DataError::Invalid(_)));
}

#[test]
fn a_holdout_with_a_single_perturbation_cannot_be_split() {
    let data = synthetic(&[("a", 1)], 2, 2, None);
    let err = Split::new(&data, &SplitConfig::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot split 1 condition"), "{err}");
}
