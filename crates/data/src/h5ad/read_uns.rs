//! Reading `uns`: nested dictionaries of scalars, strings and 1-D arrays. Other elements are recorded
//! as [`UnsValue::Unsupported`] with a description instead of failing the whole read.

use std::collections::BTreeMap;
use std::path::Path;

use hdf5::{Dataset, Group};

use super::h5::{self, H5Context, Member, NumClass};
use super::uns::UnsValue;
use crate::error::DataError;

/// Reads a dictionary group (the `uns` group itself or a nested dict) recursively.
pub(crate) fn read_uns_dict(
    group: &Group,
    path: &Path,
) -> Result<BTreeMap<String, UnsValue>, DataError> {
    let mut out = BTreeMap::new();
    for name in h5::member_names(group, path)? {
        let value = match h5::member_kind(group, &name) {
            Member::Group => {
                let sub = group
                    .group(&name)
                    .ctx(path, &format!("opening uns entry `{name}`"))?;
                match h5::encoding_type(&sub).as_deref() {
                    None | Some("dict") => UnsValue::Dict(read_uns_dict(&sub, path)?),
                    Some(other) => UnsValue::Unsupported(format!("element of encoding `{other}`")),
                }
            }
            Member::Dataset => {
                let ds = group
                    .dataset(&name)
                    .ctx(path, &format!("opening uns entry `{name}`"))?;
                read_uns_dataset(&ds, path)?
            }
            Member::Other => UnsValue::Unsupported("link or named type".to_string()),
        };
        out.insert(name, value);
    }
    Ok(out)
}

/// Reads a scalar or 1-D dataset of `uns`.
fn read_uns_dataset(ds: &Dataset, path: &Path) -> Result<UnsValue, DataError> {
    let desc = h5::descriptor(ds, path)?;
    let shape = ds.shape();
    let scalar = shape.is_empty();
    if h5::is_string_type(&desc) {
        let mut strings = h5::read_strings(ds, path)?;
        return Ok(match (scalar, shape.len()) {
            (true, _) => UnsValue::Str(strings.pop().unwrap_or_default()),
            (false, 1) => UnsValue::StrArray(strings),
            _ => UnsValue::Unsupported(format!("{}-D string array {shape:?}", shape.len())),
        });
    }
    let Some(class) = h5::num_class(&desc) else {
        return Ok(UnsValue::Unsupported(format!("dataset of type {desc}")));
    };
    if shape.len() > 1 {
        return Ok(UnsValue::Unsupported(format!(
            "{}-D {desc} array {shape:?}",
            shape.len()
        )));
    }
    Ok(match (class, scalar) {
        (NumClass::F64 | NumClass::F32, true) => {
            UnsValue::F64(first(h5::read_numbers::<f64>(ds, path)?))
        }
        (NumClass::I64 | NumClass::I32, true) => {
            UnsValue::I64(first(h5::read_numbers::<i64>(ds, path)?))
        }
        (NumClass::Bool, true) => UnsValue::Bool(first(h5::read_numbers::<bool>(ds, path)?)),
        (NumClass::F64 | NumClass::F32, false) => UnsValue::F64Array(h5::read_numbers(ds, path)?),
        (NumClass::I64 | NumClass::I32, false) => UnsValue::I64Array(h5::read_numbers(ds, path)?),
        (NumClass::Bool, false) => UnsValue::BoolArray(h5::read_numbers(ds, path)?),
    })
}

fn first<T: Default>(values: Vec<T>) -> T {
    values.into_iter().next().unwrap_or_default()
}
