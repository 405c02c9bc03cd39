//! C3TL's speed benchmark (`cellshift bench speed --method c3tl`): seconds per training epoch on a
//! synthetic additive table (Replogle/Nadig-sized by default: 4 contexts × 1,677 perturbations × 2,000
//! genes), per preset and matrix-product precision.

use std::fmt::Write as _;
use std::time::Instant;

use super::config::MatmulPrecision;
use super::synthetic::additive_table;
use super::{C3tl, C3tlConfig};
use crate::hooks::speed::refuse_reference;
use crate::hooks::{comma_list, parse_options, HookReport, SpeedRequest};
use crate::train::Preprocessing;

/// The benchmark's `--option` settings.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Contexts of the synthetic table (Replogle/Nadig: 4).
    contexts: usize,
    /// Perturbations per context (Replogle/Nadig: 1,677).
    perturbations: usize,
    /// Element types of the matrix products to time: `f32`, `bf16`.
    #[serde(deserialize_with = "comma_list")]
    precision: Vec<String>,
    /// Timed epochs (after one warm-up epoch).
    epochs: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            contexts: 4,
            perturbations: 1677,
            precision: vec!["f32".into()],
            epochs: 10,
        }
    }
}

/// Genes by default (the paper's 2,000 HVGs).
const DEFAULT_GENES: usize = 2000;

/// Presets timed by default.
const DEFAULT_PRESETS: [&str; 2] = ["small", "paper"];

/// The speed hook of C3TL's registry entry.
pub fn speed(request: &SpeedRequest<'_>) -> anyhow::Result<HookReport> {
    refuse_reference(
        request,
        "C3TL's epoch timing (the authors' code is not runnable from here)",
    )?;
    let settings: Settings = parse_options(request.options)?;
    let genes = request.genes.unwrap_or(DEFAULT_GENES);
    let presets: Vec<String> = if request.presets.is_empty() {
        DEFAULT_PRESETS.iter().map(|p| p.to_string()).collect()
    } else {
        request.presets.to_vec()
    };
    let precisions: Vec<MatmulPrecision> = settings
        .precision
        .iter()
        .map(|p| MatmulPrecision::parse(p))
        .collect::<Result<_, _>>()?;
    let threads = tch::get_num_threads();
    let made = Instant::now();
    let syn = additive_table(
        settings.contexts,
        settings.perturbations,
        genes,
        request.seed,
    );
    eprintln!(
        "synthetic table: {} contexts × {} perturbations × {genes} genes ({} entries) in {:.1} s; {threads} threads",
        settings.contexts,
        settings.perturbations,
        syn.table.len(),
        made.elapsed().as_secs_f64()
    );
    let mut rows = Vec::new();
    let mut text = String::from(
        "| preset | precision | parameters | wall s/epoch (median) | min | max | CPU s/epoch (mean, all threads) |\n|---|---|---|---|---|---|---|\n",
    );
    let runs = presets
        .iter()
        .flat_map(|preset| precisions.iter().map(move |&p| (preset, p)));
    for (preset, precision) in runs {
        let mut config = C3tlConfig::preset(
            preset,
            syn.genes.clone(),
            syn.perturbations.clone(),
            syn.contexts.clone(),
        )?;
        config.matmul_precision = precision;
        let params = parameter_estimate(&config);
        let model = C3tl::new(config, Preprocessing::identity(genes), tch::Device::Cpu)?;
        let times = model.time_epochs(
            &syn.table,
            settings.epochs.max(1),
            request.seed,
            &process_cpu_seconds,
        )?;
        let mut wall: Vec<f64> = times.iter().map(|t| t.wall).collect();
        wall.sort_by(f64::total_cmp);
        let median = wall[wall.len() / 2];
        let cpu: Option<f64> = times
            .iter()
            .map(|t| t.cpu)
            .sum::<Option<f64>>()
            .map(|s| s / times.len() as f64);
        let _ = writeln!(
            text,
            "| {preset} | {} | {params} | {median:.3} | {:.3} | {:.3} | {} |",
            precision.name(),
            wall[0],
            wall[wall.len() - 1],
            cpu.map_or("n/a".into(), |c| format!("{c:.3}"))
        );
        rows.push(serde_json::json!({
            "preset": preset, "precision": precision.name(), "parameters": params, "epochs": times, "median_wall": median,
            "mean_cpu": cpu,
        }));
    }
    let json = serde_json::json!({
        "contexts": settings.contexts, "perturbations": settings.perturbations, "genes": genes,
        "threads": threads, "epochs": settings.epochs, "results": rows,
    });
    Ok(HookReport {
        text,
        json,
        heatmap: None,
    })
}

/// Trainable parameters of a configuration.
fn parameter_estimate(c: &C3tlConfig) -> usize {
    let d = c.n_genes();
    let encoder = |ids: usize| {
        let widths: Vec<usize> = c.encoder_hidden.iter().copied().chain([c.latent]).collect();
        (d + ids + 1) * widths[0] + widths.windows(2).map(|w| (w[0] + 1) * w[1]).sum::<usize>()
    };
    let widths: Vec<usize> = [c.latent]
        .into_iter()
        .chain(c.decoder_hidden.iter().copied())
        .chain([d])
        .collect();
    let decoder: usize = widths.windows(2).map(|w| (w[0] + 1) * w[1]).sum();
    encoder(c.contexts.len()) + encoder(c.perturbations.len()) + decoder
}

/// CPU time (user + system, all threads) of this process in seconds, from `/proc/self/stat` (Linux; `None`
/// elsewhere). Resolution: one clock tick (10 ms).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (1-based).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
