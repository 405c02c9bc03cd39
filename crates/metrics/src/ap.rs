//! Ranking-quality scores of binary labels against real-valued scores, as scikit-learn computes them:
//! average precision (step-wise, ties grouped into one threshold) and ROC AUC (trapezoid over distinct
//! thresholds).

/// Cumulative (true positives, false positives) at each distinct score threshold, scores descending.
fn binary_curve(labels: &[bool], scores: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    // descending score; NaN treated as the smallest
    idx.sort_by(|&i, &j| scores[j].total_cmp(&scores[i]));
    let (mut tps, mut fps) = (Vec::new(), Vec::new());
    let (mut tp, mut fp) = (0.0, 0.0);
    for (k, &i) in idx.iter().enumerate() {
        if labels[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_group = k + 1 == idx.len() || scores[idx[k + 1]] != scores[i];
        if last_of_group {
            tps.push(tp);
            fps.push(fp);
        }
    }
    (tps, fps)
}

/// scikit-learn `average_precision_score`: Σ_k (R_k − R_{k−1}) P_k over distinct thresholds in
/// decreasing order. NaN when there is no positive label.
pub fn average_precision(labels: &[bool], scores: &[f64]) -> f64 {
    assert_eq!(
        labels.len(),
        scores.len(),
        "average_precision: labels and scores differ in length"
    );
    let (tps, fps) = binary_curve(labels, scores);
    let total_pos = tps.last().copied().unwrap_or(0.0);
    if total_pos == 0.0 {
        return f64::NAN;
    }
    let mut ap = 0.0;
    let mut prev_recall = 0.0;
    for (tp, fp) in tps.iter().zip(&fps) {
        let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
        let recall = tp / total_pos;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
    }
    ap
}

/// scikit-learn `roc_auc_score` (= `auc(roc_curve(...))`): trapezoidal area under (FPR, TPR) through the
/// distinct thresholds starting at (0, 0). NaN unless both classes are present.
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> f64 {
    assert_eq!(
        labels.len(),
        scores.len(),
        "roc_auc: labels and scores differ in length"
    );
    let (tps, fps) = binary_curve(labels, scores);
    let (p, n) = (
        tps.last().copied().unwrap_or(0.0),
        fps.last().copied().unwrap_or(0.0),
    );
    if p == 0.0 || n == 0.0 {
        return f64::NAN;
    }
    let (mut area, mut px, mut py) = (0.0, 0.0, 0.0);
    for (tp, fp) in tps.iter().zip(&fps) {
        let (x, y) = (fp / n, tp / p);
        area += (x - px) * (y + py) / 2.0;
        px = x;
        py = y;
    }
    area
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sklearn_examples() {
        // sklearn docs: y=[0,0,1,1], s=[0.1,0.4,0.35,0.8] → AP 0.8333…, AUC 0.75
        let y = [false, false, true, true];
        let s = [0.1, 0.4, 0.35, 0.8];
        assert!((average_precision(&y, &s) - 0.8333333333333333).abs() < 1e-15);
        assert!((roc_auc(&y, &s) - 0.75).abs() < 1e-15);
        // ties grouped: all scores equal → AP = prevalence, AUC = 0.5
        assert!((average_precision(&y, &[1.0; 4]) - 0.5).abs() < 1e-15);
        assert!((roc_auc(&y, &[1.0; 4]) - 0.5).abs() < 1e-15);
        assert!(average_precision(&[false, false], &[1.0, 0.0]).is_nan());
        assert!(roc_auc(&[true, true], &[1.0, 0.0]).is_nan());
    }
}
