//! Tests of C3TL: leave-one-out aggregation, the paper's split, fitting an additive-latent problem better
//! than the perturbation mean, and the checkpoint / registry / predictor path.

use cellshift_data::{
    CellAnnotations, FitContext, PerturbationData, Prediction, Task, TaskTreatment,
};
use ndarray::{Array2, Array3};
use tch::{nn, Device, Kind, Tensor};

use super::config::{C3tlConfig, MatmulPrecision};
use super::method::C3tl;
use super::model::{C3tlNet, LatentQuery};
use super::split::{ContextTransferSplit, TransferFractions};
use super::synthetic::{additive_table, SyntheticTable};
use super::table::{DeltaTable, Entry, Vocabulary};
use super::train::auto_validation;
use crate::blocks::init::ParamBuilder;
use crate::method::InferenceOptions;
use crate::registry;
use crate::train::Preprocessing;

fn tiny_config(s: &SyntheticTable) -> C3tlConfig {
    C3tlConfig::preset(
        "tiny",
        s.genes.clone(),
        s.perturbations.clone(),
        s.contexts.clone(),
    )
    .unwrap()
}

fn tensor(a: &Array2<f32>) -> Tensor {
    Tensor::from_slice(a.as_slice().unwrap()).reshape([a.nrows() as i64, a.ncols() as i64])
}

fn index(t: &DeltaTable, f: fn(&Entry) -> usize) -> Tensor {
    Tensor::from_slice(&t.entries.iter().map(|e| f(e) as i64).collect::<Vec<_>>())
}

/// A data set whose pseudo-bulk deltas are exactly the synthetic table's: per context two control cells
/// (1 ± 0.1) and per entry two cells (1 + delta ± 0.05).
fn data_from_table(s: &SyntheticTable) -> PerturbationData {
    let d = s.genes.len();
    let mut rows: Vec<Vec<f32>> = Vec::new();
    let (mut contexts, mut labels) = (Vec::new(), Vec::new());
    for (c, name) in s.contexts.iter().enumerate() {
        for sign in [1.0f32, -1.0] {
            rows.push(vec![1.0 + 0.1 * sign; d]);
            contexts.push(name.clone());
            labels.push("control".to_string());
        }
        for (e, row) in s.table.entries.iter().zip(s.table.deltas.rows()) {
            if e.context != c {
                continue;
            }
            for sign in [1.0f32, -1.0] {
                rows.push(row.iter().map(|v| 1.0 + v + 0.05 * sign).collect());
                contexts.push(name.clone());
                labels.push(s.perturbations[e.perturbation].clone());
            }
        }
    }
    let x = Array2::from_shape_fn((rows.len(), d), |(i, g)| rows[i][g]);
    PerturbationData::new(
        s.genes.clone(),
        x,
        CellAnnotations {
            contexts,
            treatment_labels: labels,
            ..CellAnnotations::default()
        },
        "control",
    )
    .unwrap()
}

#[test]
fn an_entry_never_sees_its_own_delta() {
    let s = additive_table(3, 5, 6, 1);
    let config = tiny_config(&s);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = C3tlNet::new(&ParamBuilder::new(vs.root(), 7), &config);
    let (p, c) = (
        index(&s.table, |e| e.perturbation),
        index(&s.table, |e| e.context),
    );
    let target = 4;
    let before = tch::no_grad(|| net.leave_one_out(&tensor(&s.table.deltas), &p, &c).0);
    let mut changed = s.table.deltas.clone();
    changed.row_mut(target).mapv_inplace(|v| 10.0 - 3.0 * v);
    let after = tch::no_grad(|| net.leave_one_out(&tensor(&changed), &p, &c).0);
    let diff = (&before - &after)
        .abs()
        .sum_dim_intlist(1, false, Kind::Float);
    let diff = Vec::<f32>::try_from(diff).unwrap();
    // (sum − own)/(n − 1) cancels the entry up to float rounding of the sum.
    assert!(
        diff[target] < 1e-4,
        "the changed entry's own prediction moved by {}",
        diff[target]
    );
    // Entries sharing its perturbation or context do see it.
    let e = s.table.entries[target];
    for (i, other) in s.table.entries.iter().enumerate() {
        if i != target && (other.perturbation == e.perturbation || other.context == e.context) {
            assert!(diff[i] > 1e-2, "entry {i} should depend on entry {target}");
        }
    }
    // The query path with the entry's own row excluded equals the leave-one-out pass.
    let enc = tch::no_grad(|| net.encode(&tensor(&changed), &p, &c));
    let latent = tch::no_grad(|| {
        net.query_latents(
            &enc,
            &p,
            &c,
            &[LatentQuery {
                perturbation: e.perturbation,
                context: e.context,
                own_row: Some(target),
            }],
            (&config.perturbations, &config.contexts),
        )
        .unwrap()
    });
    let via_query = tch::no_grad(|| net.decoder.forward(&latent)).get(0);
    let max_err = (via_query - after.get(target as i64))
        .abs()
        .max()
        .double_value(&[]);
    assert!(
        max_err < 1e-5,
        "query path differs from leave-one-out by {max_err}"
    );
}

#[test]
fn perturbation_skip_adds_the_leave_one_out_mean_delta_of_the_perturbation() {
    let s = additive_table(3, 5, 6, 1);
    let mut config = tiny_config(&s);
    let (p, c) = (
        index(&s.table, |e| e.perturbation),
        index(&s.table, |e| e.context),
    );
    let x = tensor(&s.table.deltas);
    let vs = nn::VarStore::new(Device::Cpu);
    let plain = C3tlNet::new(&ParamBuilder::new(vs.root(), 7), &config);
    config.perturbation_skip = true;
    let vs_skip = nn::VarStore::new(Device::Cpu);
    let skipped = C3tlNet::new(&ParamBuilder::new(vs_skip.root(), 7), &config);
    let without = tch::no_grad(|| plain.leave_one_out(&x, &p, &c).0);
    let with = tch::no_grad(|| skipped.leave_one_out(&x, &p, &c).0);
    // The skip model's decoder starts at zero (its correction is learned from there), so before training
    // it predicts exactly the skip; the plain model's decoder does not start at zero.
    assert!(without.abs().max().double_value(&[]) > 1e-3);
    let added = Vec::<f32>::try_from(with.flatten(0, 1)).unwrap();
    let d = s.genes.len();
    // Reference by loops: the mean delta of the entry's perturbation over its other contexts.
    for (i, e) in s.table.entries.iter().enumerate() {
        let others: Vec<usize> = (0..s.table.len())
            .filter(|&j| j != i && s.table.entries[j].perturbation == e.perturbation)
            .collect();
        for g in 0..d {
            let expected = if others.is_empty() {
                0.0
            } else {
                others.iter().map(|&j| s.table.deltas[[j, g]]).sum::<f32>() / others.len() as f32
            };
            let got = added[i * d + g];
            assert!(
                (got - expected).abs() < 1e-4,
                "entry {i} gene {g}: skip {got}, expected {expected}"
            );
        }
    }
    // The query path (own row excluded, and a query outside the table) uses the same means.
    let e = s.table.entries[4];
    let queries = [LatentQuery {
        perturbation: e.perturbation,
        context: e.context,
        own_row: Some(4),
    }];
    let via_query = skipped.query_skip(&x, &p, &queries).unwrap().get(0);
    let via_table = skipped.leave_one_out_skip(&x, &p).unwrap().get(4);
    let err = (via_query - via_table).abs().max().double_value(&[]);
    assert!(err < 1e-5, "query skip differs from the table's by {err}");
    assert!(plain.query_skip(&x, &p, &queries).is_none());
}

#[test]
fn duplicated_perturbations_are_found_and_near_twins_are_not() {
    let mut s = additive_table(3, 4, 5, 3);
    // p4 repeats p1 in every context; p5 repeats p2 except for one gene in one context.
    let d = s.genes.len();
    let mut entries = s.table.entries.clone();
    let mut rows: Vec<f32> = s.table.deltas.iter().copied().collect();
    for (e, row) in s.table.entries.iter().zip(s.table.deltas.rows()) {
        for (source, copy) in [(1, 4), (2, 5)] {
            if e.perturbation == source {
                entries.push(Entry {
                    perturbation: copy,
                    context: e.context,
                });
                let mut r: Vec<f32> = row.to_vec();
                if copy == 5 && e.context == 2 {
                    r[3] += 0.5;
                }
                rows.extend_from_slice(&r);
            }
        }
    }
    s.perturbations.extend(["p4".to_string(), "p5".to_string()]);
    s.table = DeltaTable {
        deltas: Array2::from_shape_vec((entries.len(), d), rows).unwrap(),
        entries,
    };
    let data = data_from_table(&s);
    let found = super::table::duplicate_perturbations(&data, 1e-4).unwrap();
    assert_eq!(
        found,
        vec![super::table::DuplicatePerturbation {
            duplicate: "p4".into(),
            kept: "p1".into()
        }]
    );
}

#[test]
fn paper_split_has_the_paper_shares_and_follows_its_seed() {
    let s = additive_table(3, 50, 4, 2);
    let data = data_from_table(&s);
    let split =
        ContextTransferSplit::leave_one_context_out(&data, 2, TransferFractions::default(), 11)
            .unwrap();
    assert_eq!(
        (
            split.adaptation.len(),
            split.validation.len(),
            split.test.len()
        ),
        (4, 1, 45)
    );
    assert_eq!(split.training_contexts, vec![0, 1]);
    let again =
        ContextTransferSplit::leave_one_context_out(&data, 2, TransferFractions::default(), 11)
            .unwrap();
    assert_eq!(split, again);
    let other =
        ContextTransferSplit::leave_one_context_out(&data, 2, TransferFractions::default(), 12)
            .unwrap();
    assert_ne!(split.adaptation, other.adaptation);
    let train = split.train_conditions(&data);
    for held in split.validation.iter().chain(&split.test) {
        assert!(
            !train.contains(held),
            "a validation or test condition is trained on"
        );
    }
    assert!(split.adaptation.iter().all(|a| train.contains(a)));
    assert_eq!(
        train.len(),
        2 * 51 + 1 + 4,
        "two full contexts, the held-out control, adaptation"
    );
    // Nine perturbations (the McFaline-Figueroa lines): one adaptation, one validation, seven tested.
    let small = data_from_table(&additive_table(2, 9, 4, 3));
    let fold =
        ContextTransferSplit::leave_one_context_out(&small, 0, TransferFractions::default(), 0)
            .unwrap();
    assert_eq!(
        (
            fold.adaptation.len(),
            fold.validation.len(),
            fold.test.len()
        ),
        (1, 1, 7)
    );
    let tiny = data_from_table(&additive_table(2, 2, 4, 3));
    assert!(
        ContextTransferSplit::leave_one_context_out(&tiny, 0, TransferFractions::default(), 0)
            .is_err()
    );
}

#[test]
fn sweep_splits_are_nested_with_one_test_set() {
    let s = additive_table(4, 40, 4, 5);
    let data = data_from_table(&s);
    let small = ContextTransferSplit::sweep(&data, 3, 1, 0.1, 0.5, 9).unwrap();
    let large = ContextTransferSplit::sweep(&data, 3, 2, 0.5, 0.5, 9).unwrap();
    assert_eq!(small.test, large.test, "one test set per fold");
    assert_eq!(small.test.len(), 20);
    let adapted = |s: &ContextTransferSplit| {
        let mut all: Vec<usize> = s.adaptation.iter().chain(&s.validation).copied().collect();
        all.sort_unstable();
        all
    };
    assert_eq!((adapted(&small).len(), adapted(&large).len()), (4, 20));
    assert!(
        adapted(&small).iter().all(|a| adapted(&large).contains(a)),
        "adaptation sets are nested"
    );
    assert_eq!(
        (large.adaptation.len(), large.validation.len()),
        (15, 5),
        "75/25"
    );
    assert!(small
        .training_contexts
        .iter()
        .all(|c| large.training_contexts.contains(c)));
}

#[test]
fn automatic_validation_keeps_every_entry_predictable() {
    let s = additive_table(3, 20, 4, 4);
    let (train, val) = auto_validation(&s.table, 0.1, 3);
    assert_eq!((train.len(), val.len()), (54, 6));
    for e in &val.entries {
        assert!(train
            .entries
            .iter()
            .any(|t| t.perturbation == e.perturbation));
        assert!(train.entries.iter().any(|t| t.context == e.context));
    }
    assert_eq!(auto_validation(&s.table, 0.1, 3).1, val, "seeded");
}

#[test]
fn c3tl_learns_an_additive_latent_problem_that_the_perturbation_mean_cannot() {
    learns_the_additive_latent_problem(MatmulPrecision::F32, 0);
}

#[test]
fn bfloat16_products_learn_the_same_problem() {
    learns_the_additive_latent_problem(MatmulPrecision::Bf16, 0);
}

#[test]
fn subsampled_context_latents_learn_the_same_problem() {
    learns_the_additive_latent_problem(MatmulPrecision::F32, 4);
}

#[test]
fn context_subsampling_follows_the_seed_and_changes_the_fit() {
    tch::set_num_threads(1);
    let s = additive_table(3, 12, 6, 4);
    let fit = |subsample: usize, seed: u64| {
        let mut config = tiny_config(&s);
        config.context_subsample = subsample;
        config.max_epochs = 30;
        let mut model = C3tl::new(config, Preprocessing::identity(6), Device::Cpu).unwrap();
        let mut ctx = FitContext {
            seed,
            ..FitContext::default()
        };
        model
            .fit_table(s.table.clone(), s.table.select(&[]), &mut ctx)
            .unwrap();
        model.predict_entries(&s.table.entries).unwrap()
    };
    let (a, b) = (fit(3, 5), fit(3, 5));
    assert_eq!(a, b, "two subsampled fits with one seed differ");
    let max_diff =
        |x: &Array2<f32>, y: &Array2<f32>| (x - y).iter().fold(0f32, |m, v| m.max(v.abs()));
    // Every context has 12 entries, so a subset of 3 draws differ between seeds and from using all.
    assert!(
        max_diff(&a, &fit(3, 6)) > 1e-4,
        "the subset ignores the seed"
    );
    assert!(
        max_diff(&a, &fit(0, 5)) > 1e-4,
        "subsampling changed nothing"
    );
    // A subset as large as every context is the paper's full leave-one-out average.
    assert!(max_diff(&fit(12, 5), &fit(0, 5)) < 1e-5);
}

#[test]
fn a_context_subsample_of_one_is_refused() {
    let s = additive_table(3, 4, 3, 1);
    let mut config = tiny_config(&s);
    config.context_subsample = 1;
    let err = C3tl::new(config, Preprocessing::identity(3), Device::Cpu)
        .expect_err("a subsample of one must be refused")
        .to_string();
    assert!(err.contains("context_subsample"), "{err}");
}

#[test]
fn bfloat16_products_stay_within_their_rounding_of_float32() {
    let s = additive_table(3, 8, 64, 2);
    let (p, c) = (
        index(&s.table, |e| e.perturbation),
        index(&s.table, |e| e.context),
    );
    let x = tensor(&s.table.deltas);
    let run = |precision| {
        let mut config = tiny_config(&s);
        config.matmul_precision = precision;
        let vs = nn::VarStore::new(Device::Cpu);
        let net = C3tlNet::new(&ParamBuilder::new(vs.root(), 7), &config);
        tch::no_grad(|| net.leave_one_out(&x, &p, &c).0)
    };
    let (f32_out, bf16_out) = (run(MatmulPrecision::F32), run(MatmulPrecision::Bf16));
    let rel = (&f32_out - &bf16_out).norm().double_value(&[]) / f32_out.norm().double_value(&[]);
    // bfloat16 keeps 8 significand bits (relative rounding 2⁻⁹ ≈ 2e-3 per operand); four layers.
    assert!(rel < 2e-2, "bf16 vs f32 relative difference {rel}");
    assert!(rel > 1e-5, "bf16 products were not used (difference {rel})");
}

fn learns_the_additive_latent_problem(precision: MatmulPrecision, context_subsample: usize) {
    // Hundreds of microsecond-sized epochs: one intra-op thread avoids OpenMP hand-offs, which dominate
    // (and, on a busy machine, multiply) the run time at this size.
    tch::set_num_threads(1);
    let s = additive_table(4, 30, 12, 6);
    let held = 3;
    let (mut train_rows, mut val_rows, mut test_rows) = (Vec::new(), Vec::new(), Vec::new());
    for (row, e) in s.table.entries.iter().enumerate() {
        match (e.context == held, e.perturbation) {
            (false, _) => train_rows.push(row),
            (true, p) if p < 10 => train_rows.push(row),
            (true, p) if p < 13 => val_rows.push(row),
            _ => test_rows.push(row),
        }
    }
    let mut config = tiny_config(&s);
    config.matmul_precision = precision;
    config.context_subsample = context_subsample;
    let mut model = C3tl::new(config, Preprocessing::identity(12), Device::Cpu).unwrap();
    let mut ctx = FitContext {
        seed: 3,
        ..FitContext::default()
    };
    let history = model
        .fit_table(
            s.table.select(&train_rows),
            s.table.select(&val_rows),
            &mut ctx,
        )
        .unwrap();
    let test = s.table.select(&test_rows);
    let pred = model.predict_entries(&test.entries).unwrap();
    let mse = |a: &Array2<f32>| (a - &test.deltas).mapv(|v| v * v).mean().unwrap();
    // Perturbation mean: the average of the perturbation's deltas in the training contexts.
    let pert_mean = Array2::from_shape_fn(test.deltas.dim(), |(i, g)| {
        let p = test.entries[i].perturbation;
        let rows: Vec<f32> = s
            .table
            .entries
            .iter()
            .zip(s.table.deltas.rows())
            .filter(|(e, _)| e.perturbation == p && e.context != held)
            .map(|(_, r)| r[g])
            .collect();
        rows.iter().sum::<f32>() / rows.len() as f32
    });
    let (c3tl, baseline) = (mse(&pred), mse(&pert_mean));
    assert!(
        c3tl < 0.35 * baseline,
        "C3TL ({precision:?}) test MSE {c3tl:.5} vs perturbation mean {baseline:.5} after {} epochs (best {})",
        history.epochs,
        history.best_epoch
    );
    assert!(history.best_val_mse.is_some() && history.val_entries == 3);
}

#[test]
fn fits_saves_loads_through_the_registry_and_predicts_profiles() {
    let s = additive_table(3, 8, 5, 8);
    let data = data_from_table(&s);
    let dir = tempfile::tempdir().unwrap();
    let fold = ContextTransferSplit::leave_one_context_out(
        &data,
        2,
        TransferFractions {
            adaptation: 0.3,
            validation: 0.15,
        },
        1,
    )
    .unwrap();
    let mut model = C3tl::for_data(&data, "tiny", cellshift_data::DeviceSpec::Cpu).unwrap();
    model.config_mut().max_epochs = 30;
    let mut ctx = FitContext {
        seed: 5,
        run_dir: Some(dir.path().to_path_buf()),
        ..FitContext::default()
    };
    let train = fold.train_conditions(&data);
    let history = model
        .fit_with_validation(&data, &train, &fold.validation, &mut ctx)
        .unwrap();
    assert!(!history.loaded_from_run && history.epochs >= 1);
    let vocab = Vocabulary::new(&model.config().perturbations, &model.config().contexts);
    let entries: Vec<Entry> = fold
        .test
        .iter()
        .map(|&i| vocab.entry_of(&data, i).unwrap().unwrap())
        .collect();
    let direct = model.predict_entries(&entries).unwrap();

    let loaded = registry::load(dir.path(), &InferenceOptions::default()).unwrap();
    assert_eq!(loaded.name(), "c3tl");
    assert_eq!(
        loaded.capabilities().output,
        cellshift_data::OutputKind::PseudoBulk
    );
    let task = |i: usize| {
        let c = &data.conditions()[i];
        Task {
            context: data.contexts[c.context].clone(),
            context_index: c.context,
            genes: std::sync::Arc::new(data.genes.clone()),
            observational: Array2::from_elem((3, 5), 2.0),
            experiments: vec![],
            context_cells: Array3::zeros((0, 3, 5)),
            query: TaskTreatment::from_label(
                &data.treatments[c.treatment].label("control"),
                "control",
                1.0,
            ),
            target: None,
        }
    };
    let tasks: Vec<Task> = fold.test.iter().map(|&i| task(i)).collect();
    let preds = loaded
        .predict_many(&tasks, 10, &vec![0; tasks.len()])
        .unwrap();
    for (row, pred) in preds.iter().enumerate() {
        let Prediction::PseudoBulk(profile) = pred else {
            panic!("C3TL predicts pseudo-bulk")
        };
        for g in 0..5 {
            assert!(
                (profile[g] - 2.0 - direct[[row, g]]).abs() < 1e-5,
                "loaded model differs"
            );
        }
    }
    // A second fit into the same run directory loads the finished fit instead of retraining.
    let mut again = C3tl::for_data(&data, "tiny", cellshift_data::DeviceSpec::Cpu).unwrap();
    again.config_mut().max_epochs = 30;
    let h = again
        .fit_with_validation(&data, &train, &fold.validation, &mut ctx)
        .unwrap();
    assert!(h.loaded_from_run);
    assert_eq!(again.predict_entries(&entries).unwrap(), direct);
    // Unknown perturbations are refused with their name.
    let mut bad = task(fold.test[0]);
    bad.query = TaskTreatment::from_label("NOPE", "control", 1.0);
    let err = loaded.predict(&bad, 1, 0).unwrap_err().to_string();
    assert!(err.contains("`NOPE`"), "{err}");
}

#[test]
fn chunked_loss_equals_the_whole_table_loss() {
    let s = additive_table(3, 7, 9, 2);
    let config = tiny_config(&s);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = C3tlNet::new(&ParamBuilder::new(vs.root(), 1), &config);
    let (p, c) = (
        index(&s.table, |e| e.perturbation),
        index(&s.table, |e| e.context),
    );
    let x = tensor(&s.table.deltas);
    let (latent, _) = net.leave_one_out_latents(&x, &p, &c);
    let whole = net
        .decoder
        .forward(&latent)
        .mse_loss(&x, tch::Reduction::Mean);
    for chunk in [1, 9, 20, 1000] {
        let chunked = net.chunked_mse(&latent, &x, chunk);
        let diff = (&chunked - &whole).abs().double_value(&[]);
        assert!(diff < 1e-6, "chunk {chunk}: {diff}");
    }
}
