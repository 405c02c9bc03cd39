//! Synthetic data sets for the split, sampler and preprocessing tests.

#![allow(dead_code)]

use cellshift_data::{CellAnnotations, PerturbationData};
use ndarray::Array2;

/// Contexts named as given, each with `n_treatments` knock-outs of genes `G0..`, `cells` cells per
/// perturbed condition (or `cells_of(context, treatment)` when given) and `controls` control cells.
/// Gene `ID` (column 0) holds the cell's row index and gene `COND` (column 1) a condition code
/// `1000·context + treatment + 1` (0 for control), so tests can see which cells a task drew.
pub fn synthetic(
    contexts: &[(&str, usize)],
    cells: usize,
    controls: usize,
    cells_of: Option<&dyn Fn(usize, usize) -> usize>,
) -> PerturbationData {
    let max_t = contexts.iter().map(|c| c.1).max().unwrap_or(0);
    let mut genes = vec!["ID".to_string(), "COND".to_string()];
    genes.extend((0..max_t).map(|t| format!("G{t}")));
    let mut ctx_labels = Vec::new();
    let mut t_labels = Vec::new();
    let mut codes = Vec::new();
    // interleave conditions so that first appearance differs from sorted order
    for (ci, (name, nt)) in contexts.iter().enumerate() {
        for _ in 0..controls {
            ctx_labels.push(name.to_string());
            t_labels.push("control".to_string());
            codes.push(0.0);
        }
        for t in (0..*nt).rev() {
            let n = cells_of.map(|f| f(ci, t)).unwrap_or(cells);
            for _ in 0..n {
                ctx_labels.push(name.to_string());
                t_labels.push(format!("G{t}"));
                codes.push((1000 * ci + t + 1) as f32);
            }
        }
    }
    let n = t_labels.len();
    let mut x = Array2::<f32>::zeros((n, genes.len()));
    for i in 0..n {
        x[[i, 0]] = i as f32;
        x[[i, 1]] = codes[i];
        for g in 2..genes.len() {
            x[[i, g]] = ((i * 7 + g * 3) % 5) as f32;
        }
    }
    PerturbationData::new(
        genes,
        x,
        CellAnnotations {
            contexts: ctx_labels,
            treatment_labels: t_labels,
            ..Default::default()
        },
        "control",
    )
    .expect("valid synthetic data")
}
