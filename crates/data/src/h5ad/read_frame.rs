//! Reading an AnnData `dataframe` group (`obs`, `var`): the index named by the `_index` attribute and
//! the columns in `column-order`, each a numeric/bool/string array, a categorical, or a pandas nullable
//! array (`nullable-integer`, `nullable-boolean`, `nullable-string-array`).

use std::path::Path;

use hdf5::Group;

use super::dataframe::{Column, DataFrame};
use super::h5::{self, not_anndata, H5Context, Member, NumClass};
use crate::error::DataError;

/// Reads the data frame stored in group `name` of the root (`obs` or `var`).
pub(crate) fn read_dataframe(
    root: &Group,
    name: &str,
    path: &Path,
) -> Result<DataFrame, DataError> {
    let (frame, _) = read_dataframe_columns(root, name, path, |_| true)?;
    Ok(frame)
}

/// Reads the index and only the columns for which `wanted(column)` is true; also returns the names
/// of all columns in file order (for messages listing what is available).
pub(crate) fn read_dataframe_columns(
    root: &Group,
    name: &str,
    path: &Path,
    wanted: impl Fn(&str) -> bool,
) -> Result<(DataFrame, Vec<String>), DataError> {
    match h5::member_kind(root, name) {
        Member::Group => {}
        Member::Dataset => {
            return Err(not_anndata(
                path,
                format!("`{name}` is a compound dataset (the format of anndata < 0.7); re-write the file with a current anndata"),
            ))
        }
        Member::Other => return Err(not_anndata(path, format!("it has no `{name}` group"))),
    }
    let group = root.group(name).ctx(path, &format!("opening {name}"))?;
    let index_name = h5::attr_string(&group, "_index").ok_or_else(|| {
        not_anndata(
            path,
            format!("`{name}` has no `_index` attribute naming its index"),
        )
    })?;
    let index_ds = group
        .dataset(&index_name)
        .ctx(path, &format!("opening the index {name}/{index_name}"))?;
    let index = read_index(&index_ds, path)?;
    let order = match h5::attr_string_array(&group, "column-order", path)? {
        Some(order) => order,
        None => {
            // Tolerate files without `column-order`: every member but the index, in name order.
            h5::member_names(&group, path)?
                .into_iter()
                .filter(|m| *m != index_name)
                .collect()
        }
    };
    let mut columns = Vec::with_capacity(order.len());
    for column in order.iter().filter(|c| wanted(c)).cloned() {
        let values = read_column(&group, &column, path)
            .map_err(|e| prefix_error(e, &format!("{name} column `{column}`")))?;
        if values.len() != index.len() {
            return Err(not_anndata(
                path,
                format!(
                    "{name} column `{column}` has {} values for {} rows",
                    values.len(),
                    index.len()
                ),
            ));
        }
        values.validate(&column)?;
        columns.push((column, values));
    }
    Ok((
        DataFrame {
            index_name,
            index,
            columns,
        },
        order,
    ))
}

/// Reads just the index (row names) of `obs` or `var`.
pub(crate) fn read_dataframe_index(
    root: &Group,
    name: &str,
    path: &Path,
) -> Result<Vec<String>, DataError> {
    if h5::member_kind(root, name) != Member::Group {
        return Err(not_anndata(path, format!("it has no `{name}` group")));
    }
    let group = root.group(name).ctx(path, &format!("opening {name}"))?;
    let index_name = h5::attr_string(&group, "_index").ok_or_else(|| {
        not_anndata(
            path,
            format!("`{name}` has no `_index` attribute naming its index"),
        )
    })?;
    let index_ds = group
        .dataset(&index_name)
        .ctx(path, &format!("opening the index {name}/{index_name}"))?;
    read_index(&index_ds, path)
}

fn prefix_error(e: DataError, context: &str) -> DataError {
    match e {
        DataError::NotAnnData { path, reason } => DataError::NotAnnData {
            path,
            reason: format!("{context}: {reason}"),
        },
        other => other,
    }
}

/// Reads an index: strings as is, numbers rendered (anndata always writes strings, older tools may not).
fn read_index(ds: &hdf5::Dataset, path: &Path) -> Result<Vec<String>, DataError> {
    let desc = h5::descriptor(ds, path)?;
    if h5::is_string_type(&desc) {
        h5::read_strings(ds, path)
    } else {
        Ok(read_numeric_column(ds, path)?.as_strings())
    }
}

/// Reads one column (a dataset or an encoded group) of a data frame group.
fn read_column(group: &Group, name: &str, path: &Path) -> Result<Column, DataError> {
    match h5::member_kind(group, name) {
        Member::Dataset => {
            let ds = group.dataset(name).ctx(path, &format!("opening {name}"))?;
            let desc = h5::descriptor(&ds, path)?;
            if ds.ndim() != 1 {
                return Err(not_anndata(
                    path,
                    format!("it is {}-dimensional, expected 1-D", ds.ndim()),
                ));
            }
            if h5::is_string_type(&desc) {
                Ok(Column::Str(h5::read_strings(&ds, path)?))
            } else {
                read_numeric_column(&ds, path)
            }
        }
        Member::Group => {
            let sub = group.group(name).ctx(path, &format!("opening {name}"))?;
            let encoding = h5::encoding_type(&sub).unwrap_or_default();
            match encoding.as_str() {
                "categorical" => read_categorical(&sub, path),
                "nullable-integer" | "nullable-boolean" | "nullable-string-array" => {
                    read_nullable(&sub, &encoding, path)
                }
                other => Err(not_anndata(
                    path,
                    format!("unsupported column encoding `{other}`"),
                )),
            }
        }
        Member::Other => Err(not_anndata(path, "listed in column-order but absent")),
    }
}

/// Reads a 1-D numeric or boolean dataset into the matching column kind.
fn read_numeric_column(ds: &hdf5::Dataset, path: &Path) -> Result<Column, DataError> {
    let desc = h5::descriptor(ds, path)?;
    match h5::num_class(&desc) {
        Some(NumClass::F64) => Ok(Column::F64(h5::read_numbers(ds, path)?)),
        Some(NumClass::F32) => Ok(Column::F32(h5::read_numbers(ds, path)?)),
        Some(NumClass::I64) => Ok(Column::I64(h5::read_numbers(ds, path)?)),
        Some(NumClass::I32) => Ok(Column::I32(h5::read_numbers(ds, path)?)),
        Some(NumClass::Bool) => Ok(Column::Bool(h5::read_numbers(ds, path)?)),
        None => Err(not_anndata(
            path,
            format!("element type {desc} is not supported in a data frame"),
        )),
    }
}

/// Reads a `categorical` group: `codes` (any integer type) and `categories` (strings or numbers).
fn read_categorical(group: &Group, path: &Path) -> Result<Column, DataError> {
    let codes_ds = group.dataset("codes").ctx(path, "opening codes")?;
    let codes: Vec<i32> = h5::read_numbers(&codes_ds, path)?;
    let cats_ds = group
        .dataset("categories")
        .ctx(path, "opening categories")?;
    let desc = h5::descriptor(&cats_ds, path)?;
    let categories = if h5::is_string_type(&desc) {
        h5::read_strings(&cats_ds, path)?
    } else {
        read_numeric_column(&cats_ds, path)?.as_strings()
    };
    let ordered = h5::attr_bool(group, "ordered").unwrap_or(false);
    Ok(Column::Categorical {
        codes,
        categories,
        ordered,
    })
}

/// Reads a pandas nullable array (`values` + boolean `mask`, true = missing). Integers without missing
/// values stay integers; with missing values they become floats with NaN. Booleans without missing
/// values stay booleans; with missing values they become floats (1/0/NaN). Nullable strings become a
/// categorical with code -1 for missing values.
fn read_nullable(group: &Group, encoding: &str, path: &Path) -> Result<Column, DataError> {
    let values_ds = group.dataset("values").ctx(path, "opening values")?;
    let mask: Vec<bool> = match group.dataset("mask") {
        Ok(ds) => h5::read_numbers(&ds, path)?,
        Err(_) => vec![false; values_ds.size()],
    };
    if mask.len() != values_ds.size() {
        return Err(not_anndata(
            path,
            format!(
                "mask has {} entries for {} values",
                mask.len(),
                values_ds.size()
            ),
        ));
    }
    let any_missing = mask.iter().any(|&m| m);
    match encoding {
        "nullable-integer" => {
            let values: Vec<i64> = h5::read_numbers(&values_ds, path)?;
            if any_missing {
                Ok(Column::F64(
                    values
                        .iter()
                        .zip(&mask)
                        .map(|(&v, &m)| if m { f64::NAN } else { v as f64 })
                        .collect(),
                ))
            } else {
                Ok(Column::I64(values))
            }
        }
        "nullable-boolean" => {
            let values: Vec<bool> = h5::read_numbers(&values_ds, path)?;
            if any_missing {
                Ok(Column::F64(
                    values
                        .iter()
                        .zip(&mask)
                        .map(|(&v, &m)| {
                            if m {
                                f64::NAN
                            } else if v {
                                1.0
                            } else {
                                0.0
                            }
                        })
                        .collect(),
                ))
            } else {
                Ok(Column::Bool(values))
            }
        }
        _ => {
            let values = h5::read_strings(&values_ds, path)?;
            let mut categories: Vec<String> = values
                .iter()
                .zip(&mask)
                .filter(|(_, &m)| !m)
                .map(|(v, _)| v.clone())
                .collect();
            categories.sort();
            categories.dedup();
            let index: std::collections::HashMap<&str, i32> = categories
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i as i32))
                .collect();
            let codes = values
                .iter()
                .zip(&mask)
                .map(|(v, &m)| if m { -1 } else { index[v.as_str()] })
                .collect();
            Ok(Column::Categorical {
                codes,
                categories,
                ordered: false,
            })
        }
    }
}
