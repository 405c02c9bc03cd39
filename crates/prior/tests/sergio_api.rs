//! Knock-out semantics, GRN file formats, the random SERGIO prior, the background stream and the
//! invalid-parameter errors.

use std::io::Write;

use cellshift_prior::sergio::knockout::simulate_conditions;
use cellshift_prior::stream::dataset_seed;
use cellshift_prior::{
    normalize_dataset, simulate_knockouts, simulate_knockouts_detailed, DatasetSource, GrnDefaults,
    GrnSpec, KnockoutMode, KnockoutSelection, LinearScmConfig, LinearScmPrior, PriorError,
    PriorStream, SergioPrior, SergioPriorConfig, StreamConfig,
};

/// A → B → C, A → D; E isolated. Explicit MR and orphan rates; noise-free unless changed.
fn toy_json(extra: &str) -> String {
    format!(
        r#"{{"name": "toy", "genes": ["A", "B", "C", "D", "E"],
            "edges": [{{"source": "A", "target": "B", "K": 2.0, "n": 2}},
                      {{"source": "B", "target": "C", "K": 3.0, "n": 1}},
                      {{"source": "A", "target": "D", "K": 1.5, "n": 2}}],
            "decay": 0.8, "mr_production_rates": {{"A": 2.0}},
            "orphan_production_rates": {{"B": 1.2, "C": 0.9, "D": 0.7}},
            "noise_s": 0.0, "num_cells": 4, "seed": 3 {extra}}}"#
    )
}

fn toy(extra: &str) -> GrnSpec {
    GrnSpec::from_json_str(&toy_json(extra), None).unwrap()
}

fn close(a: f32, b: f64) -> bool {
    (f64::from(a) - b).abs() <= 1e-6 * b.abs().max(1.0)
}

fn rows_of(data: &cellshift_data::PerturbationData, label: &str) -> ndarray::Array2<f32> {
    let t = data.treatment_index(label).unwrap();
    data.cells_of(data.condition(0, t).unwrap())
}

#[test]
fn knockout_removes_the_gene_and_orphans_become_master_regulators() {
    let spec = toy("");
    let before = spec.clone();
    let data = simulate_knockouts(&spec, KnockoutSelection::All, 5).unwrap();
    assert_eq!(
        spec, before,
        "the spec is never modified (each condition builds its own network)"
    );
    assert_eq!(data.treatments.len(), 6, "control + 5 knock-outs");
    let ctrl = rows_of(&data, "control");
    let expect_ctrl = [2.0 / 0.8, 1.0 / 0.8, 1.5 / 0.8, 0.75 / 0.8, 0.0];
    let ko_a = rows_of(&data, "A");
    // Remove semantics: B and D lose their only regulator and get their reserve rates; C's
    // half-response follows B's new steady state, so C (two hops away) is unchanged.
    let expect_ko_a = [0.0, 1.2 / 0.8, 1.5 / 0.8, 0.7 / 0.8, 0.0];
    let ko_b = rows_of(&data, "B");
    let expect_ko_b = [2.5, 0.0, 0.9 / 0.8, 0.75 / 0.8, 0.0];
    for (rows, expect) in [
        (&ctrl, expect_ctrl),
        (&ko_a, expect_ko_a),
        (&ko_b, expect_ko_b),
    ] {
        for row in rows.rows() {
            for g in 0..5 {
                assert!(close(row[g], expect[g]), "{row:?} vs {expect:?}");
            }
        }
    }
    // Knocking out the unconnected gene E leaves the network unchanged: identical to the control.
    assert_eq!(rows_of(&data, "E"), ctrl);
}

#[test]
fn clamp_mode_holds_the_gene_at_zero_on_the_unchanged_network() {
    let spec = toy(r#", "knockout_mode": "clamp""#);
    assert_eq!(spec.knockout_mode, KnockoutMode::ClampToZero);
    let data = simulate_knockouts(&spec, KnockoutSelection::Genes(vec!["B".into()]), 1).unwrap();
    // B = 0 ⇒ C has no input (activation with h = control steady state of B) ⇒ C = 0; A, D unchanged.
    for row in rows_of(&data, "B").rows() {
        let expect = [2.5, 0.0, 0.0, 0.75 / 0.8, 0.0];
        for g in 0..5 {
            assert!(close(row[g], expect[g]), "{row:?}");
        }
    }
}

#[test]
fn several_cell_types_use_their_own_profiles_and_a_shared_half_response() {
    let json = toy_json("")
        .replace(r#""A": 2.0}"#, r#""A": [2.0, 4.0]}"#)
        .replace(
            r#"{"B": 1.2, "C": 0.9, "D": 0.7}"#,
            r#"{"B": [1.2, 1.2], "C": [0.9, 0.9], "D": [0.7, 0.7]}"#,
        );
    let spec = GrnSpec::from_json_str(&json, None).unwrap();
    assert_eq!(spec.n_cell_types, 2);
    let data = simulate_knockouts(&spec, KnockoutSelection::Genes(vec![]), 1).unwrap();
    assert_eq!(
        data.contexts,
        vec!["toy/ct0".to_string(), "toy/ct1".to_string()]
    );
    // h(A→B) = mean over cell types of A's steady state = (2.5 + 5) / 2.
    let h = 3.75f64;
    for (ct, a) in [(0usize, 2.5f64), (1, 5.0)] {
        let cond = data.condition(ct, 0).unwrap();
        let b = 2.0 * a * a / (a * a + h * h) / 0.8;
        for row in data.cells_of(cond).rows() {
            assert!(
                close(row[0], a) && close(row[1], b),
                "cell type {ct}: {row:?}"
            );
        }
    }
}

#[test]
fn technical_noise_gives_paired_counts_and_the_csv_reader_matches_json() {
    let mut spec = toy(
        r#", "technical_noise": {"outlier_mu": 2.0, "library_mu": 5.0, "library_sigma": 0.5, "dropout_k": 8.0, "dropout_q": 60.0}"#,
    );
    spec.noise_s = 1.0;
    spec.num_cells = 100;
    let data = simulate_knockouts(
        &spec,
        KnockoutSelection::Genes(vec!["A".into(), "D".into()]),
        9,
    )
    .unwrap();
    assert_eq!(data.scale, cellshift_data::ExpressionScale::RawCounts);
    assert!(
        rows_of(&data, "A").column(0).iter().all(|&v| v == 0.0),
        "the knocked-out gene is 0"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toy.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(
        f,
        "regulator,target,K,n\n# comment\nA,B,2.0,2\nB,C,3.0,1\nA,D,1.5,2"
    )
    .unwrap();
    let defaults = GrnDefaults {
        mr_profile: cellshift_prior::RandomProfileRecipe {
            low_range: (0.5, 2.0),
            high_range: (3.0, 5.0),
            seed: 11,
            num_cell_types: 1,
        },
        ..GrnDefaults::default()
    };
    let csv = GrnSpec::from_edge_csv(&path, &defaults).unwrap();
    assert_eq!(csv.name, "toy");
    assert_eq!(csv.genes, vec!["A", "B", "C", "D"]);
    assert_eq!(csv.edges, toy("").edges);
    assert!(
        csv.rates.iter().all(Option::is_some),
        "recipe gives MR and reserve rates for every gene"
    );
    writeln!(f, "A,C,x,1").unwrap();
    let err = GrnSpec::from_edge_csv(&path, &defaults).unwrap_err();
    assert!(err.to_string().contains("`x` is not a number"), "{err}");
}

fn sorted_log_totals(m: ndarray::Array2<f32>) -> Vec<f64> {
    let mut t: Vec<f64> = m
        .rows()
        .into_iter()
        .map(|r| f64::from(r.sum() + 1.0).ln())
        .collect();
    t.sort_by(f64::total_cmp);
    t
}

/// Mean over knock-outs of the mean |Δ| between the sorted log cell totals of control and knock-out.
fn library_gap(data: &cellshift_data::PerturbationData) -> f64 {
    let c = sorted_log_totals(rows_of(data, "control"));
    let mut gaps = Vec::new();
    for t in data.treatments.iter().skip(1) {
        let k = sorted_log_totals(rows_of(data, &t.label("control")));
        gaps.push(c.iter().zip(&k).map(|(a, b)| (a - b).abs()).sum::<f64>() / c.len() as f64);
    }
    gaps.iter().sum::<f64>() / gaps.len() as f64
}

#[test]
fn paired_prior_shares_library_sizes_across_conditions() {
    // Spec §1.4 [EMP]: mean |Δ sorted log total| control vs KO ≈ 0.05 paired vs ≈ 0.14 unpaired.
    let mut paired = Vec::new();
    let mut unpaired = Vec::new();
    for seed in 0..2 {
        let cfg = SergioPriorConfig {
            n_genes: 30,
            n_cells: 100,
            ..SergioPriorConfig::default()
        };
        paired.push(library_gap(
            &SergioPrior::sample_dataset(&cfg, seed).unwrap(),
        ));
        let cfg = SergioPriorConfig {
            paired: false,
            ..cfg
        };
        unpaired.push(library_gap(
            &SergioPrior::sample_dataset(&cfg, seed).unwrap(),
        ));
    }
    eprintln!("library gap paired {paired:?} unpaired {unpaired:?}");
    for (p, u) in paired.iter().zip(&unpaired) {
        assert!(p < u, "paired {p} must be below unpaired {u}");
    }
}

#[test]
fn error_non_positive_decay() {
    let err = GrnSpec::from_json_str(
        &toy_json("").replace(
            r#""decay": 0.8"#,
            r#""decay": {"A": 0.8, "B": 0.0, "C": 1, "D": 1}"#,
        ),
        None,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, PriorError::InvalidParameter { .. })
            && msg.contains("decay of gene B")
            && msg.contains("> 0"),
        "{msg}"
    );
}

#[test]
fn error_negative_rates() {
    let err = GrnSpec::from_json_str(&toy_json("").replace(r#""A": 2.0}"#, r#""A": -1.0}"#), None)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("mr_production_rates[A]") && msg.contains("≥ 0"),
        "{msg}"
    );
}

#[test]
fn error_cyclic_user_grn() {
    let json = toy_json("").replace(
        r#"{"source": "A", "target": "D""#,
        r#"{"source": "C", "target": "A""#,
    );
    let err = GrnSpec::from_json_str(&json, None).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, PriorError::CyclicGrn { .. })
            && msg.contains("A -> B -> C -> A")
            && msg.contains("remove"),
        "{msg}"
    );
}

#[test]
fn error_knockout_of_unknown_gene() {
    let err =
        simulate_knockouts(&toy(""), KnockoutSelection::Genes(vec!["Z".into()]), 0).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, PriorError::UnknownGene { .. })
            && msg.contains("`Z`")
            && msg.contains("A, B, C, D, E"),
        "{msg}"
    );
}

#[test]
fn error_more_context_experiments_than_genes() {
    let cfg = LinearScmConfig {
        n_nodes: 4,
        n_interventions: Some(9),
        ..LinearScmConfig::default()
    };
    let err = cfg.validate().unwrap_err();
    assert!(
        err.to_string()
            .contains("9 context experiments requested but the data set has only 4 genes"),
        "{err}"
    );
}

fn small_prior() -> SergioPriorConfig {
    SergioPriorConfig {
        n_genes: 12,
        n_cells: 40,
        parallel: false,
        ..SergioPriorConfig::default()
    }
}

#[test]
fn random_grns_follow_the_reference_parameterisation() {
    let cfg = SergioPriorConfig::default();
    for seed in 0..20 {
        let s = SergioPrior::sample_grn(&cfg, seed, "g").unwrap();
        assert!(cellshift_prior::grn::find_cycle(50, &s.grn.edges).is_none());
        let m = s.spec.edges.len();
        assert!((30..=160).contains(&m), "{m} edges");
        for e in &s.spec.edges {
            assert!(
                (1.0..5.0).contains(&e.k),
                "all interactions activating, K in [1, 5)"
            );
            assert!(e.n == 1.0 || e.n == 2.0, "truncated Hill coefficient");
        }
        assert!(s.spec.decay.iter().all(|&d| (0.5..1.0).contains(&d)));
        assert!((0.5..1.5).contains(&s.spec.noise_s));
        let tn = s.spec.technical_noise.as_ref().unwrap();
        assert!((45.0..82.0).contains(&tn.dropout_q) && tn.dropout_k == 8.0);
    }
}

#[test]
fn sergio_prior_dataset_is_deterministic_and_well_formed() {
    let cfg = small_prior();
    let data = SergioPrior::sample_dataset(&cfg, 4).unwrap();
    assert_eq!(data.contexts, vec!["grn_4".to_string()]);
    assert!(data.treatments.len() >= 10 && data.treatments[0].is_control());
    assert_eq!(data.n_cells(), data.treatments.len() * 40);
    assert!(
        data.x
            .stored_values()
            .iter()
            .all(|&v| v >= 0.0 && v.fract() == 0.0),
        "raw UMI counts"
    );
    for cond in data.conditions() {
        if let Some(g) = data.treatments[cond.treatment].target_genes().first() {
            let j = data.gene_index(g).unwrap();
            assert!(
                data.cells_of(cond).column(j).iter().all(|&v| v == 0.0),
                "KO gene {g} is zero"
            );
        }
    }
    let zero_frac = data.x.stored_values().iter().filter(|&&v| v == 0.0).count() as f64
        / (data.n_cells() * data.n_genes()) as f64;
    assert!(
        (0.2..0.95).contains(&zero_frac),
        "zero fraction {zero_frac}"
    );
    let again = SergioPrior::sample_dataset(
        &SergioPriorConfig {
            parallel: true,
            ..cfg.clone()
        },
        4,
    )
    .unwrap();
    assert_eq!(
        again.x, data.x,
        "same seed ⇒ same data, sequential or parallel"
    );
    // Dataset-level normalisation: every non-zero cell sums (in count space) to the median total.
    let norm = normalize_dataset(
        &data,
        Some(cellshift_data::preprocess::NormalizeTarget::MedianOfTotals),
    )
    .unwrap();
    let median = cellshift_prior::normalize::median_nonzero_total(&data.x.to_dense()).unwrap();
    for row in norm.x.to_dense().rows() {
        let total: f64 = row.iter().map(|&v| f64::from(v).exp_m1()).sum();
        assert!(
            total == 0.0 || (total / median - 1.0).abs() < 1e-4,
            "{total} vs {median}"
        );
    }
}

#[test]
fn unpaired_knockouts_use_seed_plus_j_plus_one_and_paired_share_the_seed() {
    for paired in [false, true] {
        let mut cfg = small_prior();
        cfg.paired = paired;
        cfg.technical_noise = false;
        let s = SergioPrior::sample_grn(&cfg, 1, "g").unwrap();
        let seeds = std::sync::Mutex::new(Vec::new());
        let noise_of = |_ko: Option<usize>, seed: u64| {
            seeds.lock().unwrap().push(seed);
            1.0
        };
        // Genes 0..3 may be outside the network; in paired mode those copy the control without simulating.
        let kos: Vec<usize> = (0..12)
            .filter(|&g| s.spec.in_network()[g])
            .take(3)
            .collect();
        let conds = simulate_conditions(&s.spec, &kos, s.sim_seed, false, &noise_of).unwrap();
        assert_eq!(conds.len(), 4);
        let mut expected = vec![s.sim_seed];
        expected.extend(kos.iter().map(|&j| {
            if paired {
                s.sim_seed
            } else {
                s.sim_seed + j as u64 + 1
            }
        }));
        assert_eq!(seeds.into_inner().unwrap(), expected, "paired = {paired}");
    }
    let s = SergioPrior::sample_grn(&small_prior(), 1, "g").unwrap();
    let report = simulate_knockouts_detailed(&s.spec, &KnockoutSelection::All, 0, false).unwrap();
    assert_eq!(report.data.treatments.len() + report.discarded.len(), 13);
}

#[test]
fn stream_delivers_in_order_deterministically_and_resumes() {
    let source = LinearScmPrior {
        config: LinearScmConfig {
            n_nodes: 5,
            n_samples: 20,
            ..LinearScmConfig::default()
        },
    };
    let cfg = StreamConfig {
        base_seed: 9,
        start_index: 0,
        count: Some(6),
        workers: 2,
        capacity: 2,
    };
    let mut stream = PriorStream::new(source.clone(), cfg.clone()).unwrap();
    let all: Vec<_> = std::iter::from_fn(|| stream.next_dataset()).collect();
    assert_eq!(
        all.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (0..6).collect::<Vec<_>>()
    );
    for (i, d) in &all {
        let direct = source.sample(*i, dataset_seed(9, *i)).unwrap();
        assert_eq!(
            d.as_ref().unwrap().x,
            direct.x,
            "data set {i} depends only on (base seed, index)"
        );
    }
    let mut resumed = PriorStream::new(
        source.clone(),
        StreamConfig {
            start_index: 4,
            count: Some(2),
            ..cfg
        },
    )
    .unwrap();
    let batch = resumed.next_batch(5);
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[0].1.as_ref().unwrap().x, all[4].1.as_ref().unwrap().x);
    assert_eq!(resumed.next_index(), 6);
    // An endless stream can be dropped while workers are blocked on the full channel.
    let mut endless = PriorStream::new(
        source,
        StreamConfig {
            count: None,
            capacity: 1,
            ..StreamConfig::default()
        },
    )
    .unwrap();
    assert!(endless.next_dataset().is_some());
    drop(endless);
}
