//! `cellshift inspect FILE`: what a screen holds and how cellshift will read it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cellshift_data::control_label::AUTO_CONTROL;
use cellshift_data::{h5ad, PerturbationData};

use super::DataArgs;

/// Arguments of `cellshift inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// The `.h5ad` file to summarise.
    pub file: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Print every condition (default: the 40 largest treatments).
    #[arg(long)]
    pub all: bool,
}

/// Runs `cellshift inspect`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let data = args.data.read(&args.file)?;
    let obs_columns = h5ad::obs_column_names(&args.file)?;
    let context_column = h5ad::chosen_context_column(&obs_columns, &args.data.columns());
    print!("{}", summary(&args, &data, context_column.as_deref()));
    Ok(())
}

/// How the context column was chosen, for the summary.
fn context_column_line(args: &Args, chosen: Option<&str>) -> String {
    match (chosen, &args.data.context_column) {
        (Some(name), Some(_)) => format!("{name} (given with --context-column)"),
        (Some(name), None) => format!("{name} (detected; override with --context-column)"),
        (None, _) => format!(
            "none — every cell is in one context (looked for: {}; name one with --context-column)",
            h5ad::AUTO_CONTEXT_COLUMNS.join(", ")
        ),
    }
}

fn summary(args: &Args, data: &PerturbationData, context_column: Option<&str>) -> String {
    let mut out = String::new();
    let control = data.treatments.iter().position(|t| t.is_control());
    let n_control = control
        .map(|c| data.cell_treatment.iter().filter(|&&t| t == c).count())
        .unwrap_or(0);
    out += &format!("file              {}\n", args.file.display());
    out += &format!(
        "cells × genes     {} × {}\n",
        data.n_cells(),
        data.n_genes()
    );
    out += &format!(
        "expression        {}{}\n",
        data.scale.describe(),
        layer_note(&args.data.layer)
    );
    out += &format!("label column      {}\n", args.data.perturbation_column);
    let how = if args.data.control == AUTO_CONTROL {
        "detected; override with --control"
    } else {
        "given with --control"
    };
    out += &format!(
        "control label     {} ({} cells) — {how}\n",
        data.control_label, n_control
    );
    out += &format!(
        "context column    {}\n",
        context_column_line(args, context_column)
    );
    out += &format!(
        "contexts          {} ({})\n",
        data.contexts.len(),
        data.contexts.join(", ")
    );
    let measured = data
        .treatments
        .iter()
        .filter(|t| !t.is_control())
        .filter(|t| {
            t.target_genes()
                .iter()
                .all(|g| data.gene_index(g).is_some())
        })
        .count();
    let n_treat = data.treatments.iter().filter(|t| !t.is_control()).count();
    out += &format!("treatments        {n_treat} ({measured} target measured genes and can be one-hot encoded)\n");
    if n_control == 0 {
        out += &format!(
            "warning           no cells carry the control label `{}`; pass the right one with --control\n",
            data.control_label
        );
    }
    out += "\ncells per condition\n";
    let mut per_treatment: BTreeMap<String, Vec<(String, usize)>> = BTreeMap::new();
    for condition in data.conditions() {
        let label = data.treatments[condition.treatment].label(&data.control_label);
        per_treatment.entry(label).or_default().push((
            data.contexts[condition.context].clone(),
            condition.cells.len(),
        ));
    }
    let mut rows: Vec<(String, usize, Vec<(String, usize)>)> = per_treatment
        .into_iter()
        .map(|(t, v)| (t, v.iter().map(|x| x.1).sum(), v))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let shown = if args.all {
        rows.len()
    } else {
        rows.len().min(40)
    };
    out += &format!("  {:<24} {:>8}  {}\n", "treatment", "cells", "per context");
    for (label, total, per_context) in &rows[..shown] {
        let contexts: Vec<String> = per_context
            .iter()
            .map(|(c, n)| format!("{c}:{n}"))
            .collect();
        out += &format!("  {:<24} {:>8}  {}\n", label, total, contexts.join(" "));
    }
    if shown < rows.len() {
        out += &format!("  … {} more (use --all)\n", rows.len() - shown);
    }
    out
}

fn layer_note(layer: &Option<String>) -> String {
    layer
        .as_ref()
        .map(|l| format!(" [layer {l}]"))
        .unwrap_or_default()
}
