//! Energy distance between two cell populations (Székely–Rizzo; used by CellFlow, STATE and pertpy):
//! E(X, Y) = 2·E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖, here the V-statistic (all pairs, zero diagonal
//! included), Euclidean norm. E ≥ 0, and 0 iff the two empirical distributions coincide.

use crate::celleval::mean_pairwise_euclidean;
use ndarray::ArrayView2;

/// Energy distance between the rows of x and y (same number of columns).
pub fn energy_distance(x: ArrayView2<f64>, y: ArrayView2<f64>) -> f64 {
    2.0 * mean_pairwise_euclidean(x, y)
        - mean_pairwise_euclidean(x, x)
        - mean_pairwise_euclidean(y, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn analytic_values() {
        // single points at distance 5 → 2·5
        assert_eq!(
            energy_distance(array![[0.0, 0.0]].view(), array![[3.0, 4.0]].view()),
            10.0
        );
        // X = {0, 2}, Y = {1}: E|X−Y| = 1, E|X−X'| = (0+2+2+0)/4 = 1, E|Y−Y'| = 0 → 2 − 1 − 0 = 1
        assert!(
            (energy_distance(array![[0.0], [2.0]].view(), array![[1.0]].view()) - 1.0).abs()
                < 1e-15
        );
        let x = array![[1.0, 2.0], [3.0, -1.0]];
        assert!(energy_distance(x.view(), x.view()).abs() < 1e-15);
    }
}
