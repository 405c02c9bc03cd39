//! Writes what a benchmark hook hands back: its text to standard output, its heat map to `--plot` and
//! its JSON to `--json`.

use std::path::Path;

use cellshift_bench::plots::heatmap_png;
use cellshift_data::atomic::write_bytes_atomically;
use cellshift_models::hooks::HookReport;

/// Prints `report.text`, then draws the heat map to `plot` and writes the JSON to `json` when given.
pub fn write_report(
    report: &HookReport,
    plot: Option<&Path>,
    json: Option<&Path>,
) -> anyhow::Result<()> {
    print!("{}", report.text);
    if let (Some(path), Some(map)) = (plot, &report.heatmap) {
        heatmap_png(
            path,
            &map.values,
            &map.rows,
            &map.columns,
            (&map.axes.0, &map.axes.1),
            &map.title,
            false,
        )?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = json {
        write_bytes_atomically(path, serde_json::to_string_pretty(&report.json)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
