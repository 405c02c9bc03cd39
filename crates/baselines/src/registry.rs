//! Baselines by name, for the command line and the benchmark suites.

use cellshift_data::Predictor;

use crate::{
    Additive, BaselineError, ClosestContext, ContextMean, ContextMeanSource, ControlBaseline,
    LinearModel, MatchingMean, OracleBaseline, PerturbationMean,
};

/// Names accepted by [`baseline_by_name`], in the order tables list them.
pub const BASELINE_NAMES: &[&str] = &[
    ControlBaseline::NAME,
    OracleBaseline::NAME,
    PerturbationMean::NAME,
    ContextMean::NAME,
    Additive::NAME,
    MatchingMean::NAME,
    LinearModel::NAME,
    ClosestContext::NAME,
];

/// A new, unfitted baseline with its default settings (`context_mean` reads the training conditions,
/// `linear` uses 10 components, unit-length perturbation embeddings and a cross-validated ridge). Errors on
/// an unknown name, listing the valid ones.
pub fn baseline_by_name(name: &str) -> Result<Box<dyn Predictor + Send + Sync>, BaselineError> {
    Ok(match name {
        ControlBaseline::NAME => Box::new(ControlBaseline::new()),
        OracleBaseline::NAME => Box::new(OracleBaseline::new()),
        PerturbationMean::NAME => Box::new(PerturbationMean::new()),
        ContextMean::NAME => Box::new(ContextMean::new(ContextMeanSource::Training)),
        Additive::NAME => Box::new(Additive::new()),
        MatchingMean::NAME => Box::new(MatchingMean::new()),
        LinearModel::NAME => Box::new(LinearModel::default()),
        ClosestContext::NAME => Box::new(ClosestContext::new()),
        _ => {
            return Err(BaselineError::UnknownName {
                name: name.to_string(),
                valid: BASELINE_NAMES.iter().map(|n| n.to_string()).collect(),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::fixture;
    use cellshift_data::FitContext;

    #[test]
    fn every_name_builds_a_baseline_that_reports_that_name() {
        for &name in BASELINE_NAMES {
            let baseline = baseline_by_name(name).unwrap();
            assert_eq!(baseline.name(), name);
        }
        let mut unique = BASELINE_NAMES.to_vec();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 8);
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let err = baseline_by_name("mean")
            .err()
            .expect("unknown name must fail");
        let message = err.to_string();
        assert!(message.contains("unknown baseline `mean`"), "{message}");
        for name in BASELINE_NAMES {
            assert!(message.contains(name), "{message} lacks {name}");
        }
    }

    #[test]
    fn registry_baselines_fit_and_predict_the_fixture() {
        // Every baseline through the trait object, on a query each can answer: A's held-out G3 (all but
        // linear, whose fixture genes G1..G3 do have G3 measured; all but additive/matching on singles too).
        let data = fixture::data();
        let train = fixture::train_conditions(&data);
        let task = fixture::query_in_a(&data, "G3");
        let expected: &[(&str, [f64; 3])] = &[
            ("control", [2.0, 2.0, 2.0]),
            ("oracle", [2.0, 2.0, 0.0]),
            ("perturbation_mean", [2.5, 2.5, 1.0]),
            ("context_mean", [1.5, 1.5, 2.5]),
            ("additive", [2.5, 2.5, 1.0]),
            ("matching_mean", [1.6, 1.4, 2.4]),
            ("closest_context", [3.0, 3.0, 3.0]),
        ];
        for (name, mean) in expected {
            let mut baseline = baseline_by_name(name).unwrap();
            baseline
                .fit(&data, &train, &mut FitContext::default())
                .unwrap();
            fixture::assert_mean(&baseline.predict(&task, 2, 0).unwrap(), mean);
        }
        let mut linear = baseline_by_name("linear").unwrap();
        linear
            .fit(&data, &train, &mut FitContext::default())
            .unwrap();
        let Ok(cellshift_data::Prediction::Cells(cells)) = linear.predict(&task, 2, 0) else {
            panic!("linear predicts cells for a measured single gene")
        };
        assert!(cells.iter().all(|v| v.is_finite()));
    }
}
