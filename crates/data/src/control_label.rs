//! Finding the control label of a screen without being told: `--control auto` (the default) picks the one
//! label that reads like a control (`control`, `ctrl`, `non-targeting`, `NTC`, `DMSO`, …), and says so —
//! with the most frequent labels as candidates — when none or several do.

use std::collections::BTreeMap;

use crate::error::DataError;

/// The `--control` value that asks for automatic detection.
pub const AUTO_CONTROL: &str = "auto";

/// Spellings of control labels in public screens, compared after lower-casing and dropping every
/// character that is not a letter or digit (`Non-Targeting`, `non_targeting` and `NonTargeting` match
/// `nontargeting`).
const CONTROL_SPELLINGS: [&str; 17] = [
    "control",
    "ctrl",
    "nontargeting",
    "nontarget",
    "nt",
    "ntc",
    "negativecontrol",
    "negctrl",
    "negcontrol",
    "safetargeting",
    "scramble",
    "scrambled",
    "unperturbed",
    "dmso",
    "vehicle",
    "mock",
    "wildtype",
];

/// How many frequent labels an error lists as candidates.
const CANDIDATES_SHOWN: usize = 8;

/// Whether `label` is spelt like a control label.
pub fn looks_like_control(label: &str) -> bool {
    let folded: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    CONTROL_SPELLINGS.contains(&folded.as_str())
}

/// Picks the control label among the per-cell `labels`: the single distinct label spelt like a control.
/// Errors with [`DataError::NoControlLabel`] (listing the most frequent labels) when none is, and when
/// several are (listing those), so that the user passes `--control LABEL`.
pub fn detect_control_label(labels: &[String]) -> Result<String, DataError> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for label in labels {
        *counts.entry(label.as_str()).or_default() += 1;
    }
    let mut by_size: Vec<(&str, usize)> = counts.into_iter().collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let controls: Vec<(&str, usize)> = by_size
        .iter()
        .copied()
        .filter(|(label, _)| looks_like_control(label))
        .collect();
    match controls.as_slice() {
        [(only, _)] => Ok(only.to_string()),
        [] => Err(DataError::NoControlLabel {
            reason: "no label looks like a control".to_string(),
            candidates: describe(&by_size),
        }),
        several => Err(DataError::NoControlLabel {
            reason: format!("{} labels look like a control", several.len()),
            candidates: describe(several),
        }),
    }
}

/// Resolves the `--control` value: `auto` detects the label from `labels`, anything else is taken as is.
pub fn resolve_control_label(requested: &str, labels: &[String]) -> Result<String, DataError> {
    if requested == AUTO_CONTROL {
        detect_control_label(labels)
    } else {
        Ok(requested.to_string())
    }
}

fn describe(labels: &[(&str, usize)]) -> String {
    let shown: Vec<String> = labels
        .iter()
        .take(CANDIDATES_SHOWN)
        .map(|(label, n)| format!("`{label}` ({n} cells)"))
        .collect();
    let more = labels.len().saturating_sub(CANDIDATES_SHOWN);
    if more > 0 {
        format!("{}, … {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(spec: &[(&str, usize)]) -> Vec<String> {
        spec.iter()
            .flat_map(|(l, n)| std::iter::repeat(l.to_string()).take(*n))
            .collect()
    }

    #[test]
    fn spellings_fold_case_and_punctuation() {
        for label in [
            "non-targeting",
            "Non_Targeting",
            "NT",
            "ctrl",
            "DMSO",
            "control",
        ] {
            assert!(looks_like_control(label), "{label}");
        }
        for label in ["CD86", "NTRK1", "controlled", "IRF7+STAT1", ""] {
            assert!(!looks_like_control(label), "{label}");
        }
    }

    #[test]
    fn the_single_control_like_label_is_chosen() {
        let l = labels(&[("IRF7", 30), ("non-targeting", 10), ("STAT1", 20)]);
        assert_eq!(detect_control_label(&l).unwrap(), "non-targeting");
        assert_eq!(resolve_control_label("IRF7", &l).unwrap(), "IRF7");
    }

    #[test]
    fn none_or_several_is_an_error_that_lists_candidates() {
        let none = labels(&[("IRF7", 30), ("STAT1", 20)]);
        let message = detect_control_label(&none).unwrap_err().to_string();
        assert!(
            message.contains("no label looks like a control"),
            "{message}"
        );
        assert!(message.contains("`IRF7` (30 cells)"), "{message}");
        assert!(message.contains("--control"), "{message}");

        let two = labels(&[("ctrl", 5), ("DMSO", 7), ("STAT1", 20)]);
        let message = detect_control_label(&two).unwrap_err().to_string();
        assert!(
            message.contains("2 labels look like a control"),
            "{message}"
        );
        assert!(
            message.contains("`DMSO` (7 cells), `ctrl` (5 cells)"),
            "{message}"
        );
    }
}
