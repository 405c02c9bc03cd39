//! CellTarNet's speed benchmark (`cellshift bench speed --method celltarnet`): sampling time of the
//! KV-cached against the uncached decoding (1,000 genes × 128 cells by default), and the largest
//! difference between the modes' cells.

use std::fmt::Write as _;

use super::{sampling_speed, Decoding};
use crate::hooks::{comma_list, parse_options, HookReport, SpeedRequest};

/// The benchmark's `--option` settings.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Genes per token (default: the preset's).
    patch: Option<usize>,
    /// Decoding modes timed, in order: cached, uncached.
    #[serde(deserialize_with = "comma_list")]
    modes: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            patch: None,
            modes: vec!["cached".into(), "uncached".into()],
        }
    }
}

/// The speed hook of CellTarNet's registry entry.
pub fn speed(request: &SpeedRequest<'_>) -> anyhow::Result<HookReport> {
    let settings: Settings = parse_options(request.options)?;
    let preset = match request.presets {
        [] => "tiny",
        [one] => one.as_str(),
        more => anyhow::bail!(
            "CellTarNet's speed benchmark times one preset; give one --preset, not {}",
            more.join(",")
        ),
    };
    let modes = settings
        .modes
        .iter()
        .map(|m| match m.trim() {
            "cached" => Ok(Decoding::Cached),
            "uncached" => Ok(Decoding::Uncached),
            other => anyhow::bail!("unknown decoding `{other}`; use cached or uncached"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if modes.is_empty() {
        anyhow::bail!("give at least one decoding mode (--option modes=cached,uncached)");
    }
    let (times, max_diff) = sampling_speed(
        preset,
        settings.patch,
        request.genes.unwrap_or(1000),
        request.cells.unwrap_or(128),
        &modes,
        request.seed,
    )?;
    let mut text = String::from(
        "| decoding | genes | tokens | cells | sampling s | of which decoding s |\n|---|---|---|---|---|---|\n",
    );
    for t in &times {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {:.2} | {:.2} |",
            t.decoding, t.genes, t.tokens, t.cells, t.seconds, t.decode_seconds
        );
    }
    if times.len() > 1 {
        let _ = writeln!(
            text,
            "largest difference between the modes' cells: {max_diff:.3e}"
        );
    }
    let json = serde_json::json!({
        "preset": preset,
        "threads": tch::get_num_threads(),
        "times": times,
        "max_abs_difference": max_diff,
    });
    Ok(HookReport {
        text,
        json,
        heatmap: None,
    })
}
