//! Linear-SCM prior (spec §5): structure, normalisation, interventions, standardisation, pairing.

use cellshift_prior::grn::find_cycle;
use cellshift_prior::rng::rng_from_seed;
use cellshift_prior::{LinearScm, LinearScmConfig, LinearScmPrior, PriorError};

fn edges_of(scm: &LinearScm) -> Vec<(usize, usize)> {
    let d = scm.d;
    (0..d * d)
        .filter(|&k| scm.adjacency[k] == 1)
        .map(|k| (k % d, k / d))
        .collect() // (parent, child)
}

#[test]
fn sampled_scms_are_dags_with_reference_density_and_weight_range() {
    let cfg = LinearScmConfig::default();
    let mut rng = rng_from_seed(1);
    let mut total_edges = 0usize;
    let reps = 60;
    for _ in 0..reps {
        let scm = LinearScm::sample(&cfg, &mut rng);
        let edges = edges_of(&scm);
        assert!(
            find_cycle(20, &edges).is_none(),
            "permuted upper triangle is acyclic"
        );
        for k in 0..400 {
            let w = scm.raw_weights[k].abs();
            assert!(w == 0.0 || (0.5..2.0).contains(&w), "raw |w| = {w}");
        }
        total_edges += edges.len();
    }
    // Edges ~ Binomial(190, 0.5) per SCM: mean 95, sd of the average sqrt(47.5 / reps).
    let mean = total_edges as f64 / reps as f64;
    assert!(
        (mean - 95.0).abs() < 4.0 * (47.5f64 / reps as f64).sqrt(),
        "mean edges {mean}"
    );
}

#[test]
fn normalisation_divides_each_row_by_the_pre_normalisation_std() {
    // Chain x0 → x1 → x2 with raw weights w1, w2: Var(x1) = 1 + w1², Var(x2) = 1 + w2²(1 + w1²).
    let (w1, w2) = (1.5, -0.8);
    let mut raw = vec![0.0; 9];
    raw[3] = w1; // W[1, 0]
    raw[7] = w2; // W[2, 1]
    let scm = LinearScm::from_raw_weights(3, raw);
    assert!((scm.weights[3] - w1 / (1.0f64 + w1 * w1).sqrt()).abs() < 1e-14);
    assert!((scm.weights[7] - w2 / (1.0 + w2 * w2 * (1.0 + w1 * w1)).sqrt()).abs() < 1e-14);
    // Covariance of the normalised SCM: Var(x1) = 1 + w1²/(1 + w1²).
    let cov = scm.observational_covariance();
    assert!((cov[4] - (1.0 + w1 * w1 / (1.0 + w1 * w1))).abs() < 1e-12);
}

#[test]
fn interventional_means_match_the_mutilated_transfer_matrix() {
    let cfg = LinearScmConfig {
        n_nodes: 6,
        ..LinearScmConfig::default()
    };
    let scm = LinearScm::sample(&cfg, &mut rng_from_seed(3));
    let d = 6;
    let n = 20_000;
    for j in 0..d {
        let c = 1.3;
        let x = scm.sample_condition(n, 1.0, Some((j, c)), &mut rng_from_seed(10 + j as u64));
        // Analytic mean: x = (I − W_j)^{-1} e with e_j = c, other noise mean 0 ⇒ mean = c · T_j[:, j].
        let mut m = vec![0.0; d * d];
        for a in 0..d {
            for b in 0..d {
                let w = if a == j { 0.0 } else { scm.weights[a * d + b] };
                m[a * d + b] = f64::from(u8::from(a == b)) - w;
            }
        }
        let t = cellshift_prior::linalg::Lu::new(&m, d).unwrap().inverse();
        for a in 0..d {
            let col: Vec<f64> = (0..n).map(|i| x[i * d + a]).collect();
            let mean = col.iter().sum::<f64>() / n as f64;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
            let expected = c * t[a * d + j];
            if a == j {
                assert!(
                    (mean - c / (1.0 + 1e-8)).abs() < 1e-9 && var < 1e-20,
                    "clamped node is constant"
                );
            } else {
                assert!(
                    (mean - expected).abs() < 5.0 * (var / n as f64).sqrt() + 1e-12,
                    "do(x{j}) node {a}: {mean} vs {expected}"
                );
            }
        }
    }
}

#[test]
fn dataset_layout_standardisation_and_determinism() {
    let cfg = LinearScmConfig {
        n_samples: 200,
        ..LinearScmConfig::default()
    };
    let data = LinearScmPrior::sample_dataset(&cfg, 7).unwrap();
    assert_eq!(data.n_cells(), 21 * 200);
    assert_eq!(data.n_genes(), 20);
    assert_eq!(data.contexts, vec!["scm_7".to_string()]);
    assert_eq!(data.conditions().len(), 21);
    for cond in data.conditions() {
        let x = data.cells_of(cond);
        let t = &data.treatments[cond.treatment];
        if t.is_control() {
            assert_eq!(cond.value, 0.0);
        } else {
            assert!(
                (0.5..1.5).contains(&cond.value),
                "intervention value {}",
                cond.value
            );
        }
        let target = t
            .target_genes()
            .first()
            .map(|g| data.gene_index(g).unwrap());
        for j in 0..20 {
            let col: Vec<f64> = x.column(j).iter().map(|&v| f64::from(v)).collect();
            assert!(col.iter().all(|v| v.abs() <= 10.0), "clipped to ±10");
            if Some(j) == target {
                assert!(
                    col.iter()
                        .all(|&v| (v - f64::from(cond.value)).abs() < 1e-6),
                    "clamped column keeps c"
                );
                continue;
            }
            if col.iter().any(|v| v.abs() >= 10.0) {
                continue; // clipped columns need not have unit std
            }
            let mean = col.iter().sum::<f64>() / col.len() as f64;
            let std =
                (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / col.len() as f64).sqrt();
            assert!(
                (std - 1.0).abs() < 1e-5,
                "population std {std} (not centred: mean {mean})"
            );
        }
    }
    let again = LinearScmPrior::sample_dataset(&cfg, 7).unwrap();
    assert_eq!(again.x, data.x, "same seed, same data");
    let other = LinearScmPrior::sample_dataset(&cfg, 8).unwrap();
    assert_ne!(other.x, data.x);
}

#[test]
fn paired_mode_shares_noise_across_interventions_only() {
    for paired in [true, false] {
        let cfg = LinearScmConfig {
            n_samples: 50,
            paired,
            ..LinearScmConfig::default()
        };
        let data = LinearScmPrior::sample_dataset(&cfg, 11).unwrap();
        let scm = LinearScm::sample(
            &cfg,
            &mut rng_from_seed(cellshift_prior::rng::derive_seed(11, 0)),
        );
        // A root node (no parents) is never a descendant of another intervention target.
        let d = 20;
        let root = (0..d)
            .find(|&a| (0..d).all(|b| scm.adjacency[a * d + b] == 0))
            .unwrap();
        let others: Vec<usize> = (0..d).filter(|&j| j != root).take(2).collect();
        let col = |label: &str| {
            let t = data.treatment_index(label).unwrap();
            data.cells_of(data.condition(0, t).unwrap())
                .column(root)
                .to_owned()
        };
        let (a, b) = (col(&data.genes[others[0]]), col(&data.genes[others[1]]));
        assert_eq!(
            a == b,
            paired,
            "paired={paired}: root column equal across interventions"
        );
        assert_ne!(
            col("control"),
            a,
            "observational noise is always a separate draw"
        );
    }
}

#[test]
fn chosen_number_of_interventions_and_too_many_is_an_error() {
    let cfg = LinearScmConfig {
        n_samples: 10,
        n_interventions: Some(5),
        ..LinearScmConfig::default()
    };
    let data = LinearScmPrior::sample_dataset(&cfg, 2).unwrap();
    assert_eq!(data.treatments.len(), 6);
    let bad = LinearScmConfig {
        n_interventions: Some(21),
        ..LinearScmConfig::default()
    };
    let err = LinearScmPrior::sample_dataset(&bad, 2).unwrap_err();
    assert!(
        matches!(
            err,
            PriorError::TooManyExperiments {
                requested: 21,
                genes: 20
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("at most 20"), "{err}");
}
