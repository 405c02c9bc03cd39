//! The method registry: the table naming every method of the workspace, and the lookups over it. Every
//! command goes through it (a checkpoint names its method, the registry finds the loader), so adding a
//! method is one folder plus one line of [`METHODS`]. The entry types live in [`crate::method`] (re-exported
//! here for the commands); method folders import them from there, never from this table.

use std::path::Path;

use crate::error::{ModelError, Result};
use crate::train::checkpoint;
use crate::train::Preprocessing;

pub use crate::hooks::{MethodHooks, SplitParams, Splits};
pub use crate::method::{
    apply_model_options, torch_device, CreateRequest, InferenceOptions, MethodEntry, MethodModel,
    PretrainFn, PretrainRequest,
};

/// Every method, in the order listings show them.
#[cfg(not(any(test, feature = "test-methods")))]
pub static METHODS: &[&MethodEntry] = &[
    &crate::mappfn::METHOD,
    &crate::c3tl::METHOD,
    &crate::scdfm::METHOD,
    &crate::celltarnet::METHOD,
];

/// Every method, in the order listings show them, and the test-only `toy-gaussian` (compiled for tests
/// only: the `test-methods` feature, which the command line's tests enable).
#[cfg(any(test, feature = "test-methods"))]
pub static METHODS: &[&MethodEntry] = &[
    &crate::mappfn::METHOD,
    &crate::c3tl::METHOD,
    &crate::scdfm::METHOD,
    &crate::celltarnet::METHOD,
    &crate::toy::METHOD,
];

/// The entry of a method by name; errors list the valid names.
pub fn method(name: &str) -> Result<&'static MethodEntry> {
    METHODS
        .iter()
        .copied()
        .find(|m| m.name == name)
        .ok_or_else(|| {
            ModelError::Config(format!(
                "unknown method `{name}`; the methods are {}",
                names().join(", ")
            ))
        })
}

/// The method `cellshift pretrain` trains when none is named (the first one pre-trained on priors).
pub const DEFAULT_PRETRAINED: &str = crate::mappfn::METHOD.name;

/// The method names.
pub fn names() -> Vec<&'static str> {
    METHODS.iter().map(|m| m.name).collect()
}

/// The method that wrote the checkpoint at `path` and its preprocessing, read from the sidecar only.
pub fn checkpoint_method(path: &Path) -> Result<(&'static MethodEntry, Preprocessing)> {
    let (dir, meta) = checkpoint::read_meta(path)?;
    let entry = method(&meta.method).map_err(|_| ModelError::CheckpointCorrupt {
        path: dir,
        reason: format!(
            "it was written by method `{}`, which this build does not know ({})",
            meta.method,
            names().join(", ")
        ),
    })?;
    Ok((entry, meta.preprocessing))
}

/// Loads the model of the checkpoint at `path`, whatever its method.
pub fn load(path: &Path, options: &InferenceOptions) -> Result<MethodModel> {
    let (entry, _) = checkpoint_method(path)?;
    (entry.load)(path, options)
}

/// A fresh, untrained model of method `name`; errors for methods that are pre-trained on priors.
pub fn create(name: &str, request: &CreateRequest<'_>) -> Result<MethodModel> {
    let entry = method(name)?;
    let create = entry.create.ok_or_else(|| {
        ModelError::Config(format!(
            "{} is pre-trained on a synthetic prior, not trained from scratch on a data set; run \
             `cellshift pretrain --method {}` and then `cellshift finetune`",
            entry.name, entry.name
        ))
    })?;
    if !entry.presets.contains(&request.preset) {
        return Err(ModelError::Config(format!(
            "{} has no size `{}`; use one of {}",
            entry.name,
            request.preset,
            entry.presets.join(", ")
        )));
    }
    create(request)
}

/// The entry of method `name` and its hook `get` (`what` names the hook in errors, which list the methods
/// that have it).
pub fn hook<T>(
    name: &str,
    what: &str,
    get: fn(&MethodHooks) -> Option<T>,
) -> Result<(&'static MethodEntry, T)> {
    let entry = method(name)?;
    get(&entry.hooks).map(|h| (entry, h)).ok_or_else(|| {
        let with: Vec<&str> = METHODS
            .iter()
            .filter(|m| get(&m.hooks).is_some())
            .map(|m| m.name)
            .collect();
        ModelError::Config(format!(
            "method {} has no {what} (methods with one: {})",
            entry.name,
            with.join(", ")
        ))
    })
}

/// The named splits of every method, the method `preferred` first.
pub fn named_splits(preferred: Option<&str>) -> Vec<Splits> {
    let first = METHODS.iter().filter(|m| Some(m.name) == preferred);
    let rest = METHODS.iter().filter(|m| Some(m.name) != preferred);
    first.chain(rest).filter_map(|m| m.hooks.splits).collect()
}

#[cfg(test)]
mod hook_tests {
    use super::*;

    #[test]
    fn hook_lookups_name_the_methods_that_have_the_hook() {
        let (entry, _) = hook("scdfm", "reference importer", |h| h.import).unwrap();
        assert_eq!(entry.name, "scdfm");
        let err = hook("mappfn", "reference importer", |h| h.import)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("method mappfn has no reference importer (methods with one: scdfm)"),
            "{err}"
        );
        assert!(hook("nosuch", "speed benchmark", |h| h.speed).is_err());
        let splits = named_splits(None);
        assert!(splits.iter().any(|s| s.names.contains(&"additive")));
        assert_eq!(DEFAULT_PRETRAINED, "mappfn");
    }
}

#[cfg(test)]
mod option_tests {
    use super::apply_model_options;
    use crate::MapPfnConfig;

    #[test]
    fn model_options_set_known_keys_and_reject_unknown_ones() {
        let base = MapPfnConfig::tiny(8);
        let set = apply_model_options(
            &base,
            &[
                "standardize_tasks=true".into(),
                "condition_dropout=0.1".into(),
            ],
        )
        .unwrap();
        assert!(set.standardize_tasks);
        assert_eq!(set.condition_dropout, 0.1);
        assert_eq!(set.width, base.width);
        let err = apply_model_options(&base, &["widht=3".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown field `widht`") && err.contains("width"),
            "{err}"
        );
        let err = apply_model_options(&base, &["width".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not KEY=VALUE"), "{err}");
        let err = apply_model_options(&base, &["width=wide".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("width=wide"), "{err}");
    }

    #[test]
    fn dotted_model_options_reach_nested_sections() {
        let base = crate::celltarnet::CellTarNetConfig::preset(
            "tiny",
            (0..6).map(|g| format!("g{g}")).collect(),
            vec!["g0".into(), "g1".into()],
        )
        .unwrap();
        assert!(base.prior.enabled);
        let set = apply_model_options(
            &base,
            &["prior.enabled=false".into(), "prior.top_k=4".into()],
        )
        .unwrap();
        assert!(!set.prior.enabled);
        assert_eq!(set.prior.top_k, 4);
        assert_eq!(set.prior.rank, base.prior.rank);
        let err = apply_model_options(&base, &["priors.enabled=false".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no section `priors`"), "{err}");
        let err = apply_model_options(&base, &["prior.enable=false".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `enable`"), "{err}");
    }
}
