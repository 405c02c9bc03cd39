//! CellTarNet's speed benchmark (`cellshift bench speed --method celltarnet`): sampling time of the
//! KV-cached against the uncached decoding (1,000 genes × 128 cells by default), and the largest
//! difference between the modes' cells.

use std::fmt::Write as _;
use std::time::Instant;

use rand_pcg::Pcg64;
use tch::{nn, Device, Kind, Tensor};

use super::config::CellTarNetConfig;
use super::train::{tensor, Fitted};
#[cfg(test)]
use super::CellTarNet;
use super::Decoding;
use crate::error::Result;
use crate::hooks::{comma_list, parse_options, HookReport, SpeedRequest};
use crate::rng;

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

/// Sets the flow's output heads (zero at initialisation, so an untrained flow is the identity) to
/// N(0, scale²) draws from `r`: a flow that transforms its input, for speed and sampling checks.
fn randomize_heads(vs: &nn::VarStore, r: &mut Pcg64, scale: f64) {
    tch::no_grad(|| {
        for (name, mut v) in vs.variables() {
            if name.contains(".head.") {
                let values = rng::normals(r, v.numel());
                v.copy_(&(Tensor::from_slice(&values).view(v.size().as_slice()) * scale));
            }
        }
    });
}

#[cfg(test)]
impl CellTarNet {
    /// Test hook: [`randomize_heads`] on the fitted flow.
    pub(super) fn randomize_heads_for_test(&self, seed: u64, scale: f64) {
        let fitted = self.fitted().expect("a fitted model");
        randomize_heads(
            &fitted.vs,
            &mut rng::stream(seed, "celltarnet-test-heads", 0),
            scale,
        );
    }
}

/// One sampling-speed measurement of [`sampling_speed`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SamplingTime {
    /// Genes G.
    pub genes: usize,
    /// Cells sampled at once.
    pub cells: usize,
    /// Flow tokens T (G / patch).
    pub tokens: usize,
    /// `cached` or `uncached`.
    pub decoding: String,
    /// Wall-clock seconds of the whole sampling (context encoding, decoding, Tweedie step).
    pub seconds: f64,
    /// Of which the sequential decoding of the flow (what the cache changes), timed separately.
    pub decode_seconds: f64,
}

/// Times sampling `cells` cells of `genes` genes with a freshly initialised model of `preset` (with
/// randomised affine heads, so the flow is not the identity, and the prior enabled at about 30 neighbours
/// per token), once per decoding mode in `modes`; returns the times and the largest difference between the
/// cells of the first mode and each other mode (the modes must agree).
pub fn sampling_speed(
    preset: &str,
    patch: Option<usize>,
    genes: usize,
    cells: usize,
    modes: &[Decoding],
    seed: u64,
) -> Result<(Vec<SamplingTime>, f64)> {
    let gene_names: Vec<String> = (0..genes).map(|g| format!("gene{g}")).collect();
    let mut config = CellTarNetConfig::preset(preset, gene_names, vec!["pert0".into()])?;
    if let Some(p) = patch {
        config.patch = p;
    }
    config.seed = seed;
    config.validate()?;
    let t = config.n_tokens();
    let adj: Vec<bool> = (0..t * t)
        .map(|x| {
            let (i, j) = (x / t, x % t);
            i == j || (i * 31 + j * 17) % t.max(1) < 30.min(t)
        })
        .collect();
    let (mean, std) = (vec![0.0f32; genes], vec![1.0f32; genes]);
    let fitted = Fitted::build(config.clone(), Device::Cpu, Some((&mean, &std)), Some(&adj))?;
    let mut r = rng::stream(seed, "celltarnet-speed", 0);
    randomize_heads(&fitted.vs, &mut r, 0.05);
    let (n, g) = (cells as i64, genes as i64);
    let control = tensor(rng::normals(&mut r, cells * genes), &[n, g]);
    let z = tensor(rng::normals(&mut r, cells * genes), &[n, g]);
    let pert = Tensor::ones([n, 1], (Kind::Float, Device::Cpu));
    let mut times = Vec::new();
    let mut first: Option<Tensor> = None;
    let mut max_diff = 0.0f64;
    for &mode in modes {
        let started = Instant::now();
        let x = fitted.net.sample(
            &z,
            &control,
            &pert,
            config.guidance,
            if config.tweedie {
                config.flow_noise
            } else {
                0.0
            },
            mode,
        );
        let seconds = started.elapsed().as_secs_f64();
        // The decoding alone, for the same inputs (context keys and values computed beforehand).
        let decode_seconds = tch::no_grad(|| {
            let (_, kv) = fitted.net.context_kv(&control, &pert);
            let tokens = fitted.net.flow.to_tokens(&z);
            let t0 = Instant::now();
            let _ = fitted.net.flow.decode(&tokens, &kv, None, mode);
            t0.elapsed().as_secs_f64()
        });
        match &first {
            None => first = Some(x),
            Some(f) => max_diff = max_diff.max((f - &x).abs().max().double_value(&[])),
        }
        times.push(SamplingTime {
            genes,
            cells,
            tokens: t,
            decoding: format!("{mode:?}").to_lowercase(),
            seconds,
            decode_seconds,
        });
    }
    Ok((times, max_diff))
}
