//! MapPFN's perturbation discrimination score ("transposed rank"): for each predicted perturbation j,
//! the fraction of other true perturbations i ≠ j whose mean is at least as close to the predicted mean
//! as the matching true mean, ‖μ_i − μ̂_j‖² ≤ ‖μ_j − μ̂_j‖². 0 is perfect, ≈ 0.5 random.

use ndarray::Array2;
use rayon::prelude::*;

/// Per-perturbation ranks and their mean (the PDS) from true means `mt` and predicted means `mp`
/// (both P × d). Returns `None` when P < 2 (the score is undefined).
pub fn pds_mappfn(mt: &Array2<f64>, mp: &Array2<f64>) -> Option<(f64, Vec<f64>)> {
    let p = mt.nrows();
    if p < 2 {
        return None;
    }
    let dist = |i: usize, j: usize| {
        mt.row(i)
            .iter()
            .zip(mp.row(j).iter())
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
    };
    let ranks: Vec<f64> = (0..p)
        .into_par_iter()
        .map(|j| {
            let djj = dist(j, j);
            let c = (0..p).filter(|&i| i != j && dist(i, j) <= djj).count();
            c as f64 / (p - 1) as f64
        })
        .collect();
    let mean = ranks.iter().sum::<f64>() / p as f64;
    Some((mean, ranks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn perfect_and_swapped() {
        let mt = array![[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]];
        let (s, r) = pds_mappfn(&mt, &mt).unwrap();
        assert_eq!(s, 0.0);
        assert_eq!(r, vec![0.0, 0.0, 0.0]);
        // predictions of 0 and 1 swapped: j=0 (pred (5,0), own distance 25): true 1 closer, true 2 not → ½;
        // j=1 (pred (0,0), own distance 25): true 0 closer and true 2 tied (≤ counts) → 1; j=2 exact → 0
        let mp = array![[5.0, 0.0], [0.0, 0.0], [0.0, 5.0]];
        let (s, r) = pds_mappfn(&mt, &mp).unwrap();
        assert_eq!(r, vec![0.5, 1.0, 0.0]);
        assert!((s - 0.5).abs() < 1e-15);
        assert!(pds_mappfn(
            &mt.slice(ndarray::s![0..1, ..]).to_owned(),
            &mt.slice(ndarray::s![0..1, ..]).to_owned()
        )
        .is_none());
    }
}
