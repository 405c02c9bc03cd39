//! `--option KEY=VALUE` settings of a hook (a benchmark's own settings, beside the model's
//! `--model-option`s): read into the hook's settings struct through its JSON form.

use std::str::FromStr;

use serde::de::{DeserializeOwned, Deserializer, Error};

use crate::method::apply_model_options;

/// The hook settings `T` (defaults from `T::default()`) with `KEY=VALUE` options applied; unknown keys
/// and values of the wrong type are errors naming the option and the known keys.
pub fn parse_options<T>(options: &[String]) -> anyhow::Result<T>
where
    T: Default + serde::Serialize + DeserializeOwned,
{
    apply_model_options(&T::default(), options)
        .map_err(|e| anyhow::anyhow!("{}", e.to_string().replace("model option", "--option")))
}

/// Deserialises a list given as a JSON array (`[1,2]`), one value (`3`) or comma-separated text
/// (`1,2`, `f32,bf16`), for `--option KEY=A,B`.
pub fn comma_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let value = <serde_json::Value as serde::Deserialize>::deserialize(deserializer)?;
    let parts: Vec<String> = match value {
        serde_json::Value::Array(items) => items.iter().map(plain).collect(),
        other => plain(&other)
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    };
    parts
        .iter()
        .map(|p| {
            p.parse::<T>()
                .map_err(|e| D::Error::custom(format!("`{p}`: {e}")))
        })
        .collect()
}

fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        #[serde(deserialize_with = "comma_list")]
        counts: Vec<usize>,
        flag: bool,
    }

    #[test]
    fn options_read_lists_in_either_form_and_name_unknown_keys() {
        let s: Settings = parse_options(&["counts=1,2".into(), "flag=true".into()]).unwrap();
        assert_eq!((s.counts, s.flag), (vec![1, 2], true));
        let s: Settings = parse_options(&["counts=[3,4]".into()]).unwrap();
        assert_eq!(s.counts, vec![3, 4]);
        let s: Settings = parse_options(&["counts=5".into()]).unwrap();
        assert_eq!(s.counts, vec![5]);
        let err = parse_options::<Settings>(&["count=1".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown field `count`") && err.contains("counts"),
            "{err}"
        );
    }
}
