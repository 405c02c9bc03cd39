//! In-memory `obs` / `var` data frames: a string index plus typed columns in file order.

use std::collections::HashSet;

use crate::error::DataError;

/// One column of an `obs` / `var` data frame. Equality treats NaN as equal to NaN (a missing value
/// equals a missing value), as pandas' `DataFrame.equals` does.
#[derive(Clone, Debug)]
pub enum Column {
    /// Strings (anndata `string-array`).
    Str(Vec<String>),
    /// A pandas categorical: per-row codes into `categories`, `-1` for a missing value.
    /// Numeric categories are rendered as strings.
    Categorical {
        /// Per row: index into `categories`, or `-1` for missing.
        codes: Vec<i32>,
        /// The category labels.
        categories: Vec<String>,
        /// Whether the categories are ordered.
        ordered: bool,
    },
    /// 64-bit floats (NaN marks missing values, as in pandas).
    F64(Vec<f64>),
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 64-bit integers (also unsigned 32/64-bit columns).
    I64(Vec<i64>),
    /// 32-bit integers (also 8/16-bit columns).
    I32(Vec<i32>),
    /// Booleans.
    Bool(Vec<bool>),
}

impl PartialEq for Column {
    fn eq(&self, other: &Self) -> bool {
        fn same_floats<T: Copy + Into<f64>>(a: &[T], b: &[T]) -> bool {
            a.len() == b.len()
                && a.iter().zip(b).all(|(&x, &y)| {
                    let (x, y): (f64, f64) = (x.into(), y.into());
                    x == y || (x.is_nan() && y.is_nan())
                })
        }
        match (self, other) {
            (Column::Str(a), Column::Str(b)) => a == b,
            (
                Column::Categorical {
                    codes: a,
                    categories: ca,
                    ordered: oa,
                },
                Column::Categorical {
                    codes: b,
                    categories: cb,
                    ordered: ob,
                },
            ) => a == b && ca == cb && oa == ob,
            (Column::F64(a), Column::F64(b)) => same_floats(a, b),
            (Column::F32(a), Column::F32(b)) => same_floats(a, b),
            (Column::I64(a), Column::I64(b)) => a == b,
            (Column::I32(a), Column::I32(b)) => a == b,
            (Column::Bool(a), Column::Bool(b)) => a == b,
            _ => false,
        }
    }
}

impl Column {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Column::Str(v) => v.len(),
            Column::Categorical { codes, .. } => codes.len(),
            Column::F64(v) => v.len(),
            Column::F32(v) => v.len(),
            Column::I64(v) => v.len(),
            Column::I32(v) => v.len(),
            Column::Bool(v) => v.len(),
        }
    }

    /// True when the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Short name of the column kind for messages (`categorical`, `float64`, …).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Column::Str(_) => "string",
            Column::Categorical { .. } => "categorical",
            Column::F64(_) => "float64",
            Column::F32(_) => "float32",
            Column::I64(_) => "int64",
            Column::I32(_) => "int32",
            Column::Bool(_) => "bool",
        }
    }

    /// Builds a categorical column from labels; categories are the distinct labels, sorted.
    pub fn categorical_from_labels(labels: &[String]) -> Column {
        let mut categories: Vec<String> = labels.to_vec();
        categories.sort();
        categories.dedup();
        let index: std::collections::HashMap<&str, i32> = categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i as i32))
            .collect();
        let codes = labels.iter().map(|l| index[l.as_str()]).collect();
        Column::Categorical {
            codes,
            categories,
            ordered: false,
        }
    }

    /// Number of missing values: categorical code `-1` or a NaN float.
    pub fn missing_count(&self) -> usize {
        match self {
            Column::Categorical { codes, .. } => codes.iter().filter(|&&c| c < 0).count(),
            Column::F64(v) => v.iter().filter(|x| x.is_nan()).count(),
            Column::F32(v) => v.iter().filter(|x| x.is_nan()).count(),
            _ => 0,
        }
    }

    /// Every value rendered as a string: categorical labels, strings as is, numbers in Rust's shortest
    /// round-trip form, booleans as `True`/`False` (as pandas prints them). Missing values render as
    /// the empty string.
    pub fn as_strings(&self) -> Vec<String> {
        match self {
            Column::Str(v) => v.clone(),
            Column::Categorical {
                codes, categories, ..
            } => codes
                .iter()
                .map(|&c| {
                    usize::try_from(c)
                        .ok()
                        .and_then(|c| categories.get(c))
                        .cloned()
                        .unwrap_or_default()
                })
                .collect(),
            Column::F64(v) => v
                .iter()
                .map(|x| {
                    if x.is_nan() {
                        String::new()
                    } else {
                        x.to_string()
                    }
                })
                .collect(),
            Column::F32(v) => v
                .iter()
                .map(|x| {
                    if x.is_nan() {
                        String::new()
                    } else {
                        x.to_string()
                    }
                })
                .collect(),
            Column::I64(v) => v.iter().map(i64::to_string).collect(),
            Column::I32(v) => v.iter().map(i32::to_string).collect(),
            Column::Bool(v) => v
                .iter()
                .map(|&b| if b { "True" } else { "False" }.to_string())
                .collect(),
        }
    }

    /// The values as f64: numbers converted, booleans as 0/1, strings and categoricals parsed when every
    /// value is a number (missing → NaN); `None` when some value is not numeric.
    pub fn as_f64(&self) -> Option<Vec<f64>> {
        match self {
            Column::F64(v) => Some(v.clone()),
            Column::F32(v) => Some(v.iter().map(|&x| x as f64).collect()),
            Column::I64(v) => Some(v.iter().map(|&x| x as f64).collect()),
            Column::I32(v) => Some(v.iter().map(|&x| x as f64).collect()),
            Column::Bool(v) => Some(v.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect()),
            Column::Str(v) => v.iter().map(|s| s.trim().parse::<f64>().ok()).collect(),
            Column::Categorical {
                codes, categories, ..
            } => {
                let parsed: Option<Vec<f64>> = categories
                    .iter()
                    .map(|s| s.trim().parse::<f64>().ok())
                    .collect();
                let parsed = parsed?;
                Some(
                    codes
                        .iter()
                        .map(|&c| usize::try_from(c).ok().map_or(f64::NAN, |c| parsed[c]))
                        .collect(),
                )
            }
        }
    }

    /// The rows `rows` of this column, in that order (categories are kept whole).
    pub fn select(&self, rows: &[usize]) -> Column {
        fn pick<T: Clone>(v: &[T], rows: &[usize]) -> Vec<T> {
            rows.iter().map(|&r| v[r].clone()).collect()
        }
        match self {
            Column::Str(v) => Column::Str(pick(v, rows)),
            Column::Categorical {
                codes,
                categories,
                ordered,
            } => Column::Categorical {
                codes: pick(codes, rows),
                categories: categories.clone(),
                ordered: *ordered,
            },
            Column::F64(v) => Column::F64(pick(v, rows)),
            Column::F32(v) => Column::F32(pick(v, rows)),
            Column::I64(v) => Column::I64(pick(v, rows)),
            Column::I32(v) => Column::I32(pick(v, rows)),
            Column::Bool(v) => Column::Bool(pick(v, rows)),
        }
    }

    /// Checks that every categorical code is `-1` or a valid category index.
    pub fn validate(&self, name: &str) -> Result<(), DataError> {
        if let Column::Categorical {
            codes, categories, ..
        } = self
        {
            if let Some(&bad) = codes
                .iter()
                .find(|&&c| c < -1 || c >= categories.len() as i32)
            {
                return Err(DataError::Invalid(format!(
                    "categorical column `{name}` has code {bad} but only {} categories; \
                     codes must be -1 (missing) or a category index",
                    categories.len()
                )));
            }
        }
        Ok(())
    }
}

/// An `obs` or `var` table: row names (the index) and named columns, in file order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct DataFrame {
    /// Name of the index (anndata's `_index` attribute); `_index` when the pandas index is unnamed.
    pub index_name: String,
    /// Row names (cell barcodes for `obs`, gene names for `var`).
    pub index: Vec<String>,
    /// Columns as (name, values), in the file's `column-order`.
    pub columns: Vec<(String, Column)>,
}

impl DataFrame {
    /// An empty frame (no columns) over the given row names, with an unnamed index.
    pub fn from_index(index: Vec<String>) -> DataFrame {
        DataFrame {
            index_name: "_index".to_string(),
            index,
            columns: Vec::new(),
        }
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.index.len()
    }

    /// The column called `name`, if any.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// Column names in order.
    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Adds a column (or replaces one of the same name, keeping its position); errors when its length
    /// is not the number of rows.
    pub fn set_column(&mut self, name: &str, column: Column) -> Result<(), DataError> {
        if column.len() != self.n_rows() {
            return Err(DataError::Invalid(format!(
                "column `{name}` has {} values for {} rows; give one value per row",
                column.len(),
                self.n_rows()
            )));
        }
        column.validate(name)?;
        match self.columns.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = column,
            None => self.columns.push((name.to_string(), column)),
        }
        Ok(())
    }

    /// The rows `rows` of this frame, in that order.
    pub fn select_rows(&self, rows: &[usize]) -> DataFrame {
        DataFrame {
            index_name: self.index_name.clone(),
            index: rows.iter().map(|&r| self.index[r].clone()).collect(),
            columns: self
                .columns
                .iter()
                .map(|(n, c)| (n.clone(), c.select(rows)))
                .collect(),
        }
    }

    /// Errors with [`DataError::Duplicate`] on the first repeated row name; `what` is `cell` or `gene`.
    pub fn check_unique_index(&self, what: &str) -> Result<(), DataError> {
        let mut seen = HashSet::with_capacity(self.index.len());
        for name in &self.index {
            if !seen.insert(name.as_str()) {
                return Err(DataError::Duplicate {
                    what: what.to_string(),
                    name: name.clone(),
                });
            }
        }
        Ok(())
    }

    /// Checks that every column has one value per row, that names are unique and do not clash with
    /// the index name, and that categorical codes are valid. Run before writing.
    pub fn validate(&self, what: &str) -> Result<(), DataError> {
        let mut names = HashSet::new();
        for (name, column) in &self.columns {
            if column.len() != self.n_rows() {
                return Err(DataError::Invalid(format!(
                    "{what} column `{name}` has {} values for {} rows; give one value per row",
                    column.len(),
                    self.n_rows()
                )));
            }
            if !names.insert(name.as_str()) {
                return Err(DataError::Invalid(format!(
                    "{what} has two columns named `{name}`; rename one"
                )));
            }
            if *name == self.index_name || name.contains('/') || name.is_empty() {
                return Err(DataError::Invalid(format!(
                    "{what} column name `{name}` is empty, contains `/` or equals the index name; rename it"
                )));
            }
            column.validate(name)?;
        }
        Ok(())
    }
}
