//! Low-level HDF5 helpers shared by the h5ad reader and writer: opening a file with clear errors,
//! mapping library errors to [`DataError`], reading and writing string attributes, string datasets and
//! numeric datasets with on-read type conversion.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::str::FromStr;

use hdf5::types::{
    FixedAscii, FixedUnicode, FloatSize, IntSize, TypeDescriptor, VarLenAscii, VarLenUnicode,
};
use hdf5::{Dataset, Group, H5Type, Location};

use crate::error::DataError;

/// The 8-byte signature that starts the superblock of every HDF5 file.
const HDF5_SIGNATURE: [u8; 8] = [0x89, b'H', b'D', b'F', b'\r', b'\n', 0x1a, b'\n'];

/// Attaches the file path and what was being done to an HDF5 library error, so that the user sees one
/// line naming the file and the object instead of a library stack trace.
pub(crate) trait H5Context<T> {
    /// Converts the error into [`DataError::Hdf5`] with `what` as context.
    fn ctx(self, path: &Path, what: &str) -> Result<T, DataError>;
}

impl<T> H5Context<T> for hdf5::Result<T> {
    fn ctx(self, path: &Path, what: &str) -> Result<T, DataError> {
        self.map_err(|e| DataError::Hdf5 {
            path: path.to_path_buf(),
            message: format!("{what}: {e}"),
        })
    }
}

/// Error for a file whose layout is not the AnnData one.
pub(crate) fn not_anndata(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::NotAnnData {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Turns off HDF5's own error printing to stderr (the `hdf5` crate also does this on first use; calling
/// it again is cheap and makes the intent explicit).
pub(crate) fn silence_hdf5() {
    hdf5::silence_errors(true);
}

/// True when the file carries the HDF5 signature at offset 0 or at one of the user-block offsets
/// (512, 1024, 2048, …) where the format allows it.
fn has_hdf5_signature(path: &Path) -> Result<bool, DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut offset = 0u64;
    let mut buf = [0u8; 8];
    while offset + 8 <= len {
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        file.read_exact(&mut buf).map_err(io)?;
        if buf == HDF5_SIGNATURE {
            return Ok(true);
        }
        offset = if offset == 0 { 512 } else { offset * 2 };
    }
    Ok(false)
}

/// Opens an existing file read-only: [`DataError::NotFound`] when absent, [`DataError::NotHdf5`] when
/// it is not HDF5, [`DataError::Hdf5`] when the library cannot open it.
pub(crate) fn open_hdf5(path: &Path) -> Result<hdf5::File, DataError> {
    silence_hdf5();
    if !path.exists() {
        return Err(DataError::NotFound(path.to_path_buf()));
    }
    if path.is_dir() {
        return Err(DataError::Invalid(format!(
            "{} is a directory; give an AnnData .h5ad file (zarr stores are not supported)",
            path.display()
        )));
    }
    if !has_hdf5_signature(path)? {
        return Err(DataError::NotHdf5(path.to_path_buf()));
    }
    hdf5::File::open(path).ctx(path, "opening the file")
}

/// What kind of object a group member is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Member {
    /// An HDF5 group.
    Group,
    /// An HDF5 dataset.
    Dataset,
    /// Absent, or something else (a named datatype, a dangling link).
    Other,
}

/// Classifies the member `name` of `group`.
pub(crate) fn member_kind(group: &Group, name: &str) -> Member {
    if !group.link_exists(name) {
        return Member::Other;
    }
    match group.loc_type_by_name(name) {
        Ok(hdf5::LocationType::Group) => Member::Group,
        Ok(hdf5::LocationType::Dataset) => Member::Dataset,
        _ => Member::Other,
    }
}

/// Names of the members of a group, sorted as HDF5 lists them (by name).
pub(crate) fn member_names(group: &Group, path: &Path) -> Result<Vec<String>, DataError> {
    group
        .member_names()
        .ctx(path, &format!("listing {}", group.name()))
}

/// Reads a string attribute; `None` when absent or not a string.
pub(crate) fn attr_string(loc: &Location, name: &str) -> Option<String> {
    let attr = loc.attr(name).ok()?;
    if !attr.is_scalar() {
        return None;
    }
    let desc = attr.dtype().ok()?.to_descriptor().ok()?;
    match desc {
        TypeDescriptor::VarLenUnicode => attr
            .read_scalar::<VarLenUnicode>()
            .ok()
            .map(|s| lossy(s.as_bytes())),
        TypeDescriptor::VarLenAscii => attr
            .read_scalar::<VarLenAscii>()
            .ok()
            .map(|s| lossy(s.as_bytes())),
        TypeDescriptor::FixedAscii(_) | TypeDescriptor::FixedUnicode(_) => {
            read_fixed_strings(&desc, || attr.as_reader())
                .ok()
                .and_then(|v| v.into_iter().next())
        }
        _ => None,
    }
}

/// The `encoding-type` attribute of an AnnData element, if any.
pub(crate) fn encoding_type(loc: &Location) -> Option<String> {
    attr_string(loc, "encoding-type")
}

/// Reads a 1-D string-array attribute (e.g. `column-order`). An empty numeric array — what anndata
/// writes for an empty list — reads as an empty list; `None` when absent.
pub(crate) fn attr_string_array(
    loc: &Location,
    name: &str,
    path: &Path,
) -> Result<Option<Vec<String>>, DataError> {
    let Ok(attr) = loc.attr(name) else {
        return Ok(None);
    };
    if attr.is_scalar() {
        return Ok(attr_string(loc, name).map(|s| vec![s]));
    }
    if attr.size() == 0 {
        return Ok(Some(Vec::new()));
    }
    let what = format!("reading attribute `{name}` of {}", loc.name());
    let desc = attr
        .dtype()
        .and_then(|t| t.to_descriptor())
        .ctx(path, &what)?;
    let strings = read_strings_with(&desc, || attr.as_reader(), path, &what)?;
    Ok(Some(strings))
}

/// Reads a boolean attribute stored as a numpy bool (an HDF5 enum) or as an integer.
pub(crate) fn attr_bool(loc: &Location, name: &str) -> Option<bool> {
    let attr = loc.attr(name).ok()?;
    if let Ok(b) = attr.read_scalar::<bool>() {
        return Some(b);
    }
    attr.read_scalar::<i64>().ok().map(|v| v != 0)
}

/// Reads a 1-D integer attribute (e.g. the `shape` of a sparse matrix).
pub(crate) fn attr_usize_array(
    loc: &Location,
    name: &str,
    path: &Path,
) -> Result<Vec<usize>, DataError> {
    let what = format!("reading attribute `{name}` of {}", loc.name());
    let attr = loc.attr(name).ctx(path, &what)?;
    let values: Vec<i64> = attr.read_raw::<i64>().ctx(path, &what)?;
    values
        .into_iter()
        .map(|v| {
            usize::try_from(v).map_err(|_| not_anndata(path, format!("{what}: negative value {v}")))
        })
        .collect()
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Reads fixed-length strings of any width up to 4096 bytes by converting them (in the library) to
/// the next larger width tier, then trimming the padding.
fn read_fixed_strings<'a, F>(desc: &TypeDescriptor, reader: F) -> hdf5::Result<Vec<String>>
where
    F: Fn() -> hdf5::Reader<'a>,
{
    macro_rules! tier {
        ($ty:ident, $n:literal) => {
            reader()
                .read_raw::<$ty<$n>>()
                .map(|v| v.iter().map(|s| lossy(s.as_bytes())).collect())
        };
    }
    match *desc {
        TypeDescriptor::FixedAscii(n) if n <= 16 => tier!(FixedAscii, 16),
        TypeDescriptor::FixedAscii(n) if n <= 64 => tier!(FixedAscii, 64),
        TypeDescriptor::FixedAscii(n) if n <= 256 => tier!(FixedAscii, 256),
        TypeDescriptor::FixedAscii(n) if n <= 4096 => tier!(FixedAscii, 4096),
        TypeDescriptor::FixedUnicode(n) if n <= 16 => tier!(FixedUnicode, 16),
        TypeDescriptor::FixedUnicode(n) if n <= 64 => tier!(FixedUnicode, 64),
        TypeDescriptor::FixedUnicode(n) if n <= 256 => tier!(FixedUnicode, 256),
        TypeDescriptor::FixedUnicode(n) if n <= 4096 => tier!(FixedUnicode, 4096),
        _ => Err(hdf5::Error::from(format!("unsupported string type {desc}"))),
    }
}

fn read_strings_with<'a, F>(
    desc: &TypeDescriptor,
    reader: F,
    path: &Path,
    what: &str,
) -> Result<Vec<String>, DataError>
where
    F: Fn() -> hdf5::Reader<'a>,
{
    match desc {
        TypeDescriptor::VarLenUnicode => {
            let raw = reader().read_raw::<VarLenUnicode>().ctx(path, what)?;
            Ok(raw.iter().map(|s| lossy(s.as_bytes())).collect())
        }
        TypeDescriptor::VarLenAscii => {
            let raw = reader().read_raw::<VarLenAscii>().ctx(path, what)?;
            Ok(raw.iter().map(|s| lossy(s.as_bytes())).collect())
        }
        TypeDescriptor::FixedAscii(_) | TypeDescriptor::FixedUnicode(_) => {
            read_fixed_strings(desc, reader).ctx(path, what)
        }
        other => Err(not_anndata(
            path,
            format!("{what}: expected strings, found {other}"),
        )),
    }
}

/// The element type of a dataset, as a descriptor.
pub(crate) fn descriptor(ds: &Dataset, path: &Path) -> Result<TypeDescriptor, DataError> {
    ds.dtype()
        .and_then(|t| t.to_descriptor())
        .ctx(path, &format!("reading the type of {}", ds.name()))
}

/// True for variable- or fixed-length string types.
pub(crate) fn is_string_type(desc: &TypeDescriptor) -> bool {
    matches!(
        desc,
        TypeDescriptor::VarLenUnicode
            | TypeDescriptor::VarLenAscii
            | TypeDescriptor::FixedAscii(_)
            | TypeDescriptor::FixedUnicode(_)
    )
}

/// Reads a whole string dataset (any dimensionality, flattened in C order).
pub(crate) fn read_strings(ds: &Dataset, path: &Path) -> Result<Vec<String>, DataError> {
    let desc = descriptor(ds, path)?;
    read_strings_with(
        &desc,
        || ds.as_reader(),
        path,
        &format!("reading strings {}", ds.name()),
    )
}

/// Reads a whole numeric (or boolean) dataset, converting to `T` in the library.
pub(crate) fn read_numbers<T: H5Type>(ds: &Dataset, path: &Path) -> Result<Vec<T>, DataError> {
    ds.read_raw::<T>()
        .ctx(path, &format!("reading {}", ds.name()))
}

/// Reads the elements `range` of a 1-D numeric dataset, converting to `T` in the library.
pub(crate) fn read_range<T: H5Type>(
    ds: &Dataset,
    range: std::ops::Range<usize>,
    path: &Path,
) -> Result<Vec<T>, DataError> {
    if range.is_empty() {
        return Ok(Vec::new());
    }
    let arr = ds.read_slice_1d::<T, _>(range.clone()).ctx(
        path,
        &format!(
            "reading elements {}..{} of {}",
            range.start,
            range.end,
            ds.name()
        ),
    )?;
    Ok(arr.into_raw_vec_and_offset().0)
}

/// Broad numeric class of a dataset's element type, used to pick the in-memory type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumClass {
    /// 64-bit float.
    F64,
    /// 32-bit (or 16-bit) float.
    F32,
    /// Signed integers up to 32 bits, unsigned up to 16 bits.
    I32,
    /// 64-bit signed, or unsigned 32/64-bit integers.
    I64,
    /// numpy bool (HDF5 enum FALSE/TRUE).
    Bool,
}

/// Maps a type descriptor to its numeric class; `None` for strings, compounds and the like.
pub(crate) fn num_class(desc: &TypeDescriptor) -> Option<NumClass> {
    match desc {
        TypeDescriptor::Float(FloatSize::U8) => Some(NumClass::F64),
        TypeDescriptor::Float(_) => Some(NumClass::F32),
        TypeDescriptor::Integer(IntSize::U8) => Some(NumClass::I64),
        TypeDescriptor::Integer(_) => Some(NumClass::I32),
        TypeDescriptor::Unsigned(IntSize::U4 | IntSize::U8) => Some(NumClass::I64),
        TypeDescriptor::Unsigned(_) => Some(NumClass::I32),
        TypeDescriptor::Boolean => Some(NumClass::Bool),
        TypeDescriptor::Enum(e) if e.members.len() <= 2 => Some(NumClass::Bool),
        _ => None,
    }
}

/// Writes a scalar UTF-8 string attribute, replacing an existing one.
pub(crate) fn set_attr_str(
    loc: &Location,
    name: &str,
    value: &str,
    path: &Path,
) -> Result<(), DataError> {
    let what = format!("writing attribute `{name}` of {}", loc.name());
    let v = to_vlen(value, &what)?;
    if loc.attr(name).is_ok() {
        loc.delete_attr(name).ctx(path, &what)?;
    }
    loc.new_attr::<VarLenUnicode>()
        .shape(())
        .create(name)
        .and_then(|a| a.write_scalar(&v))
        .ctx(path, &what)
}

/// Writes the `encoding-type` and `encoding-version` attributes of an AnnData element.
pub(crate) fn set_encoding(
    loc: &Location,
    kind: &str,
    version: &str,
    path: &Path,
) -> Result<(), DataError> {
    set_attr_str(loc, "encoding-type", kind, path)?;
    set_attr_str(loc, "encoding-version", version, path)
}

/// Writes a 1-D UTF-8 string-array attribute; an empty list is written as an empty float64 array,
/// exactly as anndata does.
pub(crate) fn set_attr_str_array(
    loc: &Location,
    name: &str,
    values: &[String],
    path: &Path,
) -> Result<(), DataError> {
    let what = format!("writing attribute `{name}` of {}", loc.name());
    if values.is_empty() {
        let empty: [f64; 0] = [];
        return loc
            .new_attr::<f64>()
            .shape([0])
            .create(name)
            .and_then(|a| a.write_raw(&empty[..]))
            .ctx(path, &what);
    }
    let v: Vec<VarLenUnicode> = values
        .iter()
        .map(|s| to_vlen(s, &what))
        .collect::<Result<_, _>>()?;
    loc.new_attr::<VarLenUnicode>()
        .shape([v.len()])
        .create(name)
        .and_then(|a| a.write_raw(&v[..]))
        .ctx(path, &what)
}

/// Writes a scalar boolean attribute (a numpy bool for Python readers).
pub(crate) fn set_attr_bool(
    loc: &Location,
    name: &str,
    value: bool,
    path: &Path,
) -> Result<(), DataError> {
    let what = format!("writing attribute `{name}` of {}", loc.name());
    loc.new_attr::<bool>()
        .shape(())
        .create(name)
        .and_then(|a| a.write_scalar(&value))
        .ctx(path, &what)
}

/// Writes a 1-D int64 attribute (the `shape` of a sparse matrix).
pub(crate) fn set_attr_i64_array(
    loc: &Location,
    name: &str,
    values: &[i64],
    path: &Path,
) -> Result<(), DataError> {
    let what = format!("writing attribute `{name}` of {}", loc.name());
    loc.new_attr::<i64>()
        .shape([values.len()])
        .create(name)
        .and_then(|a| a.write_raw(values))
        .ctx(path, &what)
}

/// Converts a Rust string to an HDF5 variable-length UTF-8 string (fails on an interior NUL).
pub(crate) fn to_vlen(s: &str, what: &str) -> Result<VarLenUnicode, DataError> {
    VarLenUnicode::from_str(s).map_err(|_| {
        DataError::Invalid(format!(
            "{what}: the string {s:?} contains a NUL character, which HDF5 cannot store; remove it"
        ))
    })
}
