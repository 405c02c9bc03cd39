//! The `--split` choice of `train`, `finetune` and `bench`: the standard split, every context held out,
//! or a named split of a method's paper (the `splits` hook of its registry entry; any method may use it).

use cellshift_bench::score::all_holdout_split;
use cellshift_data::{PerturbationData, Split, SplitConfig};
use cellshift_models::registry::{self, SplitParams};

/// The reference split (seed `--split-seed`): one hold-out context, in-distribution conditions elsewhere.
pub const STANDARD: &str = "standard";

/// Every context is a hold-out context (files of entirely new contexts): half of each context's
/// perturbations are context experiments, the other half are queried.
pub const HOLDOUT: &str = "holdout";

/// Settings of the named splits (`--split additive|unseen|combinations`, scDFM's).
#[derive(clap::Args, Clone, Debug)]
pub struct SplitArgs {
    /// With `--split unseen`: single genes held out (their 12).
    #[arg(long, default_value_t = 12)]
    pub unseen_genes: usize,
    /// With `--split combinations`: doubles held out (their 15).
    #[arg(long, default_value_t = 15)]
    pub held_out_doubles: usize,
    /// Reproduce the authors' always-true `split_method == 'additive' or 'combinations'` test: every
    /// scDFM split (`unseen`, `combinations`) becomes `additive`, as in all their runs.
    #[arg(long)]
    pub scdfm_or_bug: bool,
}

impl SplitArgs {
    fn params(&self) -> SplitParams {
        SplitParams {
            unseen_genes: self.unseen_genes,
            held_out_doubles: self.held_out_doubles,
            reproduce_or_bug: self.scdfm_or_bug,
        }
    }
}

/// Every `--split` value: standard, holdout and the methods' named splits.
pub fn split_names() -> Vec<&'static str> {
    let mut names = vec![STANDARD, HOLDOUT];
    for splits in registry::named_splits(None) {
        for name in splits.names {
            if !names.contains(name) {
                names.push(name);
            }
        }
    }
    names
}

/// The split `name` of `data` with `seed`; a named split is computed by the `splits` hook of `method`
/// when it has that split, else by the method that has it.
pub fn split(
    name: &str,
    data: &PerturbationData,
    seed: u64,
    params: &SplitArgs,
    method: Option<&str>,
) -> anyhow::Result<Split> {
    match name {
        STANDARD => {
            let config = SplitConfig {
                seed,
                ..SplitConfig::default()
            };
            Ok(Split::new(data, &config)?)
        }
        HOLDOUT => Ok(Split::new(data, &all_holdout_split(seed))?),
        _ => {
            let splits = registry::named_splits(method)
                .into_iter()
                .find(|s| s.names.contains(&name))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown split `{name}`; use one of {}",
                        split_names().join(", ")
                    )
                })?;
            (splits.split)(data, name, seed, &params.params())
        }
    }
}

/// Checks a `--split` value (for a clear error before any data are read).
pub fn check_name(name: &str) -> anyhow::Result<()> {
    if split_names().contains(&name) {
        Ok(())
    } else {
        anyhow::bail!(
            "unknown split `{name}`; use one of {}",
            split_names().join(", ")
        )
    }
}
