//! Failures crossing into Python: every error becomes a Python exception carrying the command line's
//! one-line message (`FileNotFoundError` for a missing file or checkpoint, `KeyboardInterrupt` for Ctrl-C,
//! `RuntimeError` for a libtorch failure, `ValueError` for everything the caller's data or options
//! caused), and a Rust panic becomes a `RuntimeError` instead of aborting the interpreter.

use std::any::Any;

use cellshift_data::DataError;
use cellshift_models::ModelError;
use pyo3::exceptions::{PyFileNotFoundError, PyKeyboardInterrupt, PyRuntimeError, PyValueError};
use pyo3::PyErr;

/// The error of a call stopped by Ctrl-C (raised in Python as `KeyboardInterrupt`).
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Joins an error and its causes into one line ("outer: inner: root"), as the command line prints it.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ").replace('\n', " ")
}

/// Whether the error (or a cause) says a file or folder is missing.
fn is_not_found(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<DataError>(),
            Some(DataError::NotFound(_))
        ) || matches!(
            cause.downcast_ref::<ModelError>(),
            Some(ModelError::CheckpointMissing { .. })
        ) || cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    })
}

/// The Python exception for an error of the library crates.
pub fn to_py(err: anyhow::Error) -> PyErr {
    if err
        .chain()
        .any(|c| c.downcast_ref::<Interrupted>().is_some())
    {
        return PyKeyboardInterrupt::new_err("interrupted; nothing was written");
    }
    let message = one_line(&err);
    if is_not_found(&err) {
        PyFileNotFoundError::new_err(message)
    } else if err
        .chain()
        .any(|c| matches!(c.downcast_ref::<ModelError>(), Some(ModelError::Torch(_))))
    {
        PyRuntimeError::new_err(message)
    } else {
        PyValueError::new_err(message)
    }
}

/// The message of a caught panic.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// The Python exception for a panic caught at the boundary (a bug in cellshift, never the caller's fault).
pub fn panic_to_py(payload: Box<dyn Any + Send>) -> PyErr {
    if payload.downcast_ref::<Interrupted>().is_some() {
        return PyKeyboardInterrupt::new_err("interrupted; nothing was written");
    }
    PyRuntimeError::new_err(format!(
        "internal error in cellshift (please report it): {}",
        panic_message(payload.as_ref())
    ))
}
