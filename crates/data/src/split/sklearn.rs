//! scikit-learn 1.7 `train_test_split(items, test_size=share, random_state=seed[, stratify=classes])`
//! semantics for shuffled splits, driven by the numpy `RandomState` emulation: the same seed gives the
//! same partition as scikit-learn (checked in the golden tests).
//!
//! Restated from scikit-learn's documented behaviour: `n_test = ceil(share · n)`, `n_train = n − n_test`;
//! a plain split takes one permutation of `0..n`, the first `n_test` entries are the test part and the rest
//! (in permutation order) the train part. A stratified split allocates per-class train counts and then
//! per-class test counts by the "approximate mode" rule (floor of the proportional share, the remaining
//! draws going to the classes with the largest fractional parts, ties broken by a random choice), then
//! permutes each class's members (classes in sorted order, members in their input order) and takes the
//! train part first, then the test part.

use super::numpy_random::NumpyRandomState;
use crate::error::DataError;

/// Train and test positions (indices into the input list).
pub(crate) struct TrainTest {
    /// Train positions; for a plain split in scikit-learn's order (the permutation's tail).
    pub train: Vec<usize>,
    /// Test positions.
    pub test: Vec<usize>,
}

fn sizes(n: usize, test_share: f64, what: &str) -> Result<(usize, usize), DataError> {
    if !(test_share > 0.0 && test_share < 1.0) {
        return Err(DataError::Invalid(format!(
            "{what}: share {test_share} must lie strictly between 0 and 1; choose e.g. 0.1 or 0.5"
        )));
    }
    let n_test = (test_share * n as f64).ceil() as usize;
    let n_train = n.saturating_sub(n_test);
    if n_train == 0 || n_test == 0 {
        return Err(DataError::Invalid(format!(
            "{what}: cannot split {n} condition(s) with share {test_share} (one side would be empty; \
             scikit-learn raises here too); give this context more perturbations or choose another \
             split mode"
        )));
    }
    Ok((n_train, n_test))
}

/// Plain shuffled split of `n` items.
pub(crate) fn shuffle_split(
    n: usize,
    test_share: f64,
    seed: u32,
    what: &str,
) -> Result<TrainTest, DataError> {
    let (n_train, n_test) = sizes(n, test_share, what)?;
    let mut rng = NumpyRandomState::new(seed);
    let perm = rng.permutation(n);
    Ok(TrainTest {
        test: perm[..n_test].to_vec(),
        train: perm[n_test..n_test + n_train].to_vec(),
    })
}

/// scikit-learn's `_approximate_mode`: per-class draw counts summing to `n_draws`.
fn approximate_mode(
    class_counts: &[usize],
    n_draws: usize,
    rng: &mut NumpyRandomState,
) -> Vec<usize> {
    let total: usize = class_counts.iter().sum();
    let continuous: Vec<f64> = class_counts
        .iter()
        .map(|&c| c as f64 / total as f64 * n_draws as f64)
        .collect();
    let mut floored: Vec<f64> = continuous.iter().map(|c| c.floor()).collect();
    let floored_sum: f64 = floored.iter().sum();
    let mut need = (n_draws as f64 - floored_sum) as i64;
    if need > 0 {
        let remainder: Vec<f64> = continuous
            .iter()
            .zip(&floored)
            .map(|(c, f)| c - f)
            .collect();
        let mut values = remainder.clone();
        values.sort_by(|a, b| b.total_cmp(a));
        values.dedup();
        for value in values {
            let inds: Vec<usize> = (0..remainder.len())
                .filter(|&i| remainder[i] == value)
                .collect();
            let add_now = (inds.len() as i64).min(need) as usize;
            for i in rng.choice_without_replacement(&inds, add_now) {
                floored[i] += 1.0;
            }
            need -= add_now as i64;
            if need == 0 {
                break;
            }
        }
    }
    floored.iter().map(|&f| f as usize).collect()
}

/// Stratified shuffled split; `classes[i]` is the class of item `i`, classes compare by their index
/// (which must follow the sorted order of the class labels, as numpy's `unique` does).
pub(crate) fn stratified_shuffle_split(
    classes: &[usize],
    class_names: &[String],
    test_share: f64,
    seed: u32,
    what: &str,
) -> Result<TrainTest, DataError> {
    let n = classes.len();
    let (n_train, n_test) = sizes(n, test_share, what)?;
    let mut present: Vec<usize> = classes.to_vec();
    present.sort_unstable();
    present.dedup();
    let class_members: Vec<Vec<usize>> = present
        .iter()
        .map(|&c| (0..n).filter(|&i| classes[i] == c).collect())
        .collect();
    let class_counts: Vec<usize> = class_members.iter().map(Vec::len).collect();
    if let Some(pos) = class_counts.iter().position(|&c| c < 2) {
        return Err(DataError::Invalid(format!(
            "{what}: context `{}` has only {} non-control condition(s); a stratified split needs at least 2 \
             per context (scikit-learn raises here too); remove that context or add perturbations",
            class_names.get(present[pos]).map(String::as_str).unwrap_or("?"),
            class_counts[pos]
        )));
    }
    if n_train < present.len() || n_test < present.len() {
        return Err(DataError::Invalid(format!(
            "{what}: {n} conditions over {} contexts give {n_train} train / {n_test} validation conditions, \
             fewer than the number of contexts; a stratified split needs at least one per context \
             (scikit-learn raises here too); use a larger share or fewer contexts",
            present.len()
        )));
    }
    let mut rng = NumpyRandomState::new(seed);
    let n_i = approximate_mode(&class_counts, n_train, &mut rng);
    let remaining: Vec<usize> = class_counts.iter().zip(&n_i).map(|(c, t)| c - t).collect();
    let t_i = approximate_mode(&remaining, n_test, &mut rng);
    let mut train = Vec::with_capacity(n_train);
    let mut test = Vec::with_capacity(n_test);
    for (c, members) in class_members.iter().enumerate() {
        let perm = rng.permutation(members.len());
        let permuted: Vec<usize> = perm.iter().map(|&p| members[p]).collect();
        train.extend_from_slice(&permuted[..n_i[c]]);
        test.extend_from_slice(&permuted[n_i[c]..n_i[c] + t_i[c]]);
    }
    // scikit-learn finally permutes both parts; membership does not depend on it.
    Ok(TrainTest { train, test })
}
