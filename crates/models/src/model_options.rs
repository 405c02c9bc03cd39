//! `--model-option KEY=VALUE` settings applied to a method's configuration through its JSON form.

use crate::error::{ModelError, Result};

/// Applies `KEY=VALUE` settings to a method's configuration through its JSON form: `VALUE` is read as
/// JSON (`true`, `0.1`, `[1,2]`) and else as a string; `a.b=…` sets field `b` of section `a`. Unknown keys (the configuration must deny unknown
/// fields) and values of the wrong type are errors that name the option.
pub fn apply_model_options<T>(config: &T, options: &[String]) -> Result<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let mut json = serde_json::to_value(config)
        .map_err(|e| ModelError::Config(format!("model options: {e}")))?;
    for option in options {
        let (key, value) = option.split_once('=').ok_or_else(|| {
            ModelError::Config(format!(
                "model option `{option}` is not KEY=VALUE; e.g. --model-option standardize_tasks=true"
            ))
        })?;
        let value = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        let mut path: Vec<&str> = key.trim().split('.').collect();
        let last = path.pop().unwrap_or_default();
        let mut node = &mut json;
        for part in &path {
            node = node
                .get_mut(*part)
                .filter(|n| n.is_object())
                .ok_or_else(|| {
                    ModelError::Config(format!(
                        "model option `{option}`: the configuration has no section `{part}`"
                    ))
                })?;
        }
        node.as_object_mut()
            .ok_or_else(|| ModelError::Config("the configuration is not a JSON object".into()))?
            .insert(last.to_string(), value);
    }
    serde_json::from_value(json)
        .map_err(|e| ModelError::Config(format!("model options {}: {e}", options.join(" "))))
}
