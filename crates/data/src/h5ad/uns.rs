//! In-memory `uns` values: the simple, JSON-like part of AnnData's unstructured annotations.

use std::collections::BTreeMap;

/// One value of `adata.uns`. Scalars, 1-D arrays and nested dictionaries are supported; anything else
/// found in a file (2-D arrays, data frames, sparse matrices, record arrays) is kept as
/// [`UnsValue::Unsupported`] so the caller can see it was there, and is not written back.
#[derive(Clone, Debug, PartialEq)]
pub enum UnsValue {
    /// A string.
    Str(String),
    /// A float.
    F64(f64),
    /// An integer.
    I64(i64),
    /// A boolean.
    Bool(bool),
    /// A 1-D float array.
    F64Array(Vec<f64>),
    /// A 1-D integer array.
    I64Array(Vec<i64>),
    /// A 1-D boolean array.
    BoolArray(Vec<bool>),
    /// A 1-D string array.
    StrArray(Vec<String>),
    /// A nested dictionary.
    Dict(BTreeMap<String, UnsValue>),
    /// An element this reader does not load; the text says what it was (encoding type, dtype, shape).
    Unsupported(String),
}

impl UnsValue {
    /// The nested value at `key` when this is a dictionary.
    pub fn get(&self, key: &str) -> Option<&UnsValue> {
        match self {
            UnsValue::Dict(map) => map.get(key),
            _ => None,
        }
    }

    /// The string, when this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            UnsValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as f64, when this is a numeric or boolean scalar.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            UnsValue::F64(v) => Some(*v),
            UnsValue::I64(v) => Some(*v as f64),
            UnsValue::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            _ => None,
        }
    }
}
