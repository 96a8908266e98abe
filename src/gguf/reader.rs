//! The GGUF header parser: magic, version, metadata and tensor index, validated against the
//! bytes that are really there before anything is allocated.
//!
//! Layout (little-endian throughout):
//! `"GGUF" | version u32 | n_tensors u64 | n_kv u64 | n_kv x (key string, type u32, value)
//!  | n_tensors x (name string, n_dims u32, dims u64 x n_dims, type u32, offset u64)
//!  | padding to alignment | tensor data`
//! where a string is `len u64 | bytes` and an array is `elem type u32 | count u64 | elements`.

use std::collections::HashMap;
use std::sync::Arc;

use tramontane_kernels::{GgmlType, TypeId};

use super::mmap::Storage;
use super::string_array::StringArrayBuilder;
use super::tensor::TensorInfo;
use super::value::{type_id, type_name_of_id, Array, Metadata, Value};
use crate::{Error, Result};

/// The four bytes every GGUF file starts with.
pub const MAGIC: &[u8; 4] = b"GGUF";
/// The alignment of the data section and of every tensor when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The metadata key that overrides the alignment.
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// The largest `general.alignment` accepted (16 MiB). llama.cpp sets no bound, but a larger one
/// only pads: writing such a file again would mean gigabytes of zeros in one allocation (a
/// 109-byte file asking for 1 GiB alignment made the writer abort), and no real file uses one.
pub const MAX_ALIGNMENT: u32 = 1 << 24;
/// How deep arrays of arrays may nest (an array directly under a key is depth 1).
pub const MAX_ARRAY_DEPTH: usize = 16;
/// ggml tensors have at most this many dimensions.
pub const MAX_DIMS: u32 = 4;

/// The smallest possible metadata entry: key length (8), an empty key, type (4), a 1-byte value.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
/// The smallest possible tensor info: name length (8), n_dims (4), one dim (8), type (4), offset (8).
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 8 + 4 + 8;

/// Everything the header says, validated.
pub(crate) struct Header {
    pub version: u32,
    pub alignment: u64,
    pub data_offset: u64,
    pub metadata: Metadata,
    /// Where each metadata value starts in the file, in metadata order.
    pub value_offsets: Vec<u64>,
    pub tensors: Vec<TensorInfo>,
    pub tensor_index: HashMap<String, usize>,
}

/// Parses and validates the header of the GGUF file in `storage` (the whole file: tensor bounds
/// are checked against its length). String arrays in the metadata keep a reference to
/// `storage` and point into it.
pub(crate) fn parse_header(storage: &Arc<Storage>) -> Result<Header> {
    let buf = storage.bytes();
    let mut c = Cursor {
        buf,
        pos: 0,
        storage,
    };

    let magic_len = buf.len().min(4);
    if buf.get(..magic_len) != MAGIC.get(..magic_len) {
        return Err(Error::BadMagic {
            found: buf.get(..magic_len).unwrap_or_default().to_vec(),
        });
    }
    c.take(4, || "magic".into())?;

    let version = c.u32(|| "version".into())?;
    match version {
        2 | 3 => {}
        // The magic reads the same either way round, so a big-endian file shows itself only
        // through its byte-swapped version.
        v if (1..=3).contains(&v.swap_bytes()) => {
            return Err(Error::BigEndian {
                version: v.swap_bytes(),
            })
        }
        v => return Err(Error::UnsupportedVersion { version: v }),
    }

    let n_tensors = c.u64(|| "tensor count".into())?;
    let n_kv = c.u64(|| "metadata key count".into())?;
    c.check_count(n_kv, MIN_KV_BYTES, || "metadata keys".into())?;
    c.check_count(n_tensors, MIN_TENSOR_INFO_BYTES, || "tensors".into())?;

    let mut metadata = Metadata::new();
    let mut value_offsets = Vec::new();
    for _ in 0..n_kv {
        let key_offset = c.offset();
        let key = c.string(|| "metadata key".into())?;
        let id_offset = c.offset();
        let id = c.u32(|| format!("value type of key '{key}'"))?;
        value_offsets.push(c.offset());
        let value = read_value(&mut c, &key, id, id_offset, 1)?;
        metadata
            .insert_new(key, value)
            .map_err(|(key, _)| Error::DuplicateKey {
                key,
                offset: key_offset,
            })?;
    }

    let alignment = alignment_of(&metadata)?;

    // Checked again now that the metadata is behind us: the bound is tighter.
    c.check_count(n_tensors, MIN_TENSOR_INFO_BYTES, || "tensors".into())?;
    let mut tensors = Vec::with_capacity(usize::try_from(n_tensors).unwrap_or(0));
    let mut tensor_index = HashMap::with_capacity(tensors.capacity());
    for _ in 0..n_tensors {
        let name_offset = c.offset();
        let info = read_tensor_info(&mut c, alignment)?;
        if tensor_index.contains_key(&info.name) {
            return Err(Error::DuplicateTensor {
                name: info.name,
                offset: name_offset,
            });
        }
        tensor_index.insert(info.name.clone(), tensors.len());
        tensors.push(info);
    }

    let data_offset = align_up(c.offset(), alignment).ok_or_else(|| Error::Overflow {
        what: "data section offset".into(),
    })?;
    let data_len = (buf.len() as u64).saturating_sub(data_offset);
    for t in &tensors {
        let fits = t
            .offset
            .checked_add(t.n_bytes)
            .is_some_and(|end| end <= data_len);
        if !fits {
            return Err(Error::TensorOutOfBounds {
                tensor: t.name.clone(),
                offset: t.offset,
                n_bytes: t.n_bytes,
                data_len,
            });
        }
    }

    Ok(Header {
        version,
        alignment,
        data_offset,
        metadata,
        value_offsets,
        tensors,
        tensor_index,
    })
}

/// `general.alignment` if present ([`checked_alignment`]), else the default.
fn alignment_of(metadata: &Metadata) -> Result<u64> {
    metadata
        .get(ALIGNMENT_KEY)
        .map_or(Ok(DEFAULT_ALIGNMENT), checked_alignment)
}

/// The alignment a `general.alignment` value sets: a u32, a non-zero power of two, at most
/// [`MAX_ALIGNMENT`] (the reader and the writer accept the same values).
pub(crate) fn checked_alignment(value: &Value) -> Result<u64> {
    match value {
        Value::U32(a) if a.is_power_of_two() && *a <= MAX_ALIGNMENT => Ok(u64::from(*a)),
        other => Err(Error::BadAlignment {
            found: other.describe(),
        }),
    }
}

/// Rounds `x` up to a multiple of `alignment` (a power of two), or `None` on overflow.
pub(crate) fn align_up(x: u64, alignment: u64) -> Option<u64> {
    let mask = alignment.checked_sub(1)?;
    x.checked_add(mask).map(|v| v & !mask)
}

/// Reads one tensor info and checks it on its own (bounds come later, once the data section
/// start is known).
fn read_tensor_info(c: &mut Cursor<'_>, alignment: u64) -> Result<TensorInfo> {
    let name = c.string(|| "tensor name".into())?;
    let n_dims = c.u32(|| format!("dimension count of tensor '{name}'"))?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(Error::BadDims {
            tensor: name,
            dims: Vec::new(),
            reason: format!("{n_dims} dimensions, must be 1 to {MAX_DIMS}"),
        });
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(c.u64(|| format!("dimensions of tensor '{name}'"))?);
    }
    let id = c.u32(|| format!("type of tensor '{name}'"))?;
    let offset = c.u64(|| format!("offset of tensor '{name}'"))?;

    if let Some(bad) = dims.iter().find(|&&d| d == 0 || d > i64::MAX as u64) {
        let reason = if *bad == 0 {
            "a dimension is 0".to_string()
        } else {
            format!("dimension {bad} is negative as ggml's int64")
        };
        return Err(Error::BadDims {
            tensor: name,
            dims,
            reason,
        });
    }
    let n_elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= i64::MAX as u64);
    if n_elements.is_none() {
        return Err(Error::Overflow {
            what: format!("element count of tensor '{name}' with dims {dims:?}"),
        });
    }

    let ty = match GgmlType::from_id(id) {
        TypeId::Known(t) => t,
        TypeId::Retired(retired) => {
            return Err(Error::RetiredTensorType {
                tensor: name,
                id,
                name: retired,
            })
        }
        TypeId::Unknown(_) => return Err(Error::UnknownTensorType { tensor: name, id }),
    };

    let ne0 = dims.first().copied().unwrap_or(1); // n_dims >= 1 was checked above
    let block = ty.block_size();
    let Some(row_bytes) = ty.row_bytes(ne0) else {
        return Err(Error::NotBlockMultiple {
            tensor: name,
            ty,
            ne0,
            block,
        });
    };
    let n_rows = dims.iter().skip(1).product::<u64>(); // bounded by n_elements above
    let Some(n_bytes) = row_bytes.checked_mul(n_rows) else {
        return Err(Error::Overflow {
            what: format!("byte size of tensor '{name}' ({ty}, dims {dims:?})"),
        });
    };
    if offset % alignment != 0 {
        return Err(Error::MisalignedTensor {
            tensor: name,
            offset,
            alignment,
        });
    }
    Ok(TensorInfo {
        name,
        ty,
        dims,
        offset,
        n_bytes,
    })
}

/// Reads a value of type `id` for `key`; `depth` is the array nesting level this value would
/// have if it is an array.
fn read_value(
    c: &mut Cursor<'_>,
    key: &str,
    id: u32,
    id_offset: u64,
    depth: usize,
) -> Result<Value> {
    let what = || format!("value of key '{key}'");
    Ok(match id {
        type_id::U8 => Value::U8(c.array::<1>(what)?[0]),
        type_id::I8 => Value::I8(i8::from_le_bytes(c.array(what)?)),
        type_id::U16 => Value::U16(u16::from_le_bytes(c.array(what)?)),
        type_id::I16 => Value::I16(i16::from_le_bytes(c.array(what)?)),
        type_id::U32 => Value::U32(u32::from_le_bytes(c.array(what)?)),
        type_id::I32 => Value::I32(i32::from_le_bytes(c.array(what)?)),
        type_id::U64 => Value::U64(u64::from_le_bytes(c.array(what)?)),
        type_id::I64 => Value::I64(i64::from_le_bytes(c.array(what)?)),
        type_id::F32 => Value::F32(f32::from_le_bytes(c.array(what)?)),
        type_id::F64 => Value::F64(f64::from_le_bytes(c.array(what)?)),
        type_id::BOOL => Value::Bool(c.array::<1>(what)?[0] != 0),
        type_id::STRING => Value::String(c.string(what)?),
        type_id::ARRAY => Value::Array(read_array(c, key, depth)?),
        _ => {
            return Err(Error::InvalidValueType {
                key: key.to_string(),
                id,
                offset: id_offset,
            })
        }
    })
}

/// The fewest bytes one array element of type `id` can take.
fn min_element_bytes(id: u32) -> u64 {
    match id {
        type_id::U8 | type_id::I8 | type_id::BOOL => 1,
        type_id::U16 | type_id::I16 => 2,
        type_id::U32 | type_id::I32 | type_id::F32 => 4,
        type_id::U64 | type_id::I64 | type_id::F64 => 8,
        type_id::STRING => 8,
        // element type + count
        _ => 4 + 8,
    }
}

/// Reads an array (element type, count, elements) at nesting level `depth`.
fn read_array(c: &mut Cursor<'_>, key: &str, depth: usize) -> Result<Array> {
    let start = c.offset();
    if depth > MAX_ARRAY_DEPTH {
        return Err(Error::NestingTooDeep {
            key: key.to_string(),
            limit: MAX_ARRAY_DEPTH,
            offset: start,
        });
    }
    let id_offset = c.offset();
    let id = c.u32(|| format!("array element type of key '{key}'"))?;
    if type_name_of_id(id).is_none() {
        return Err(Error::InvalidValueType {
            key: key.to_string(),
            id,
            offset: id_offset,
        });
    }
    let count = c.u64(|| format!("array length of key '{key}'"))?;
    let min = min_element_bytes(id);
    c.check_count(count, min, || format!("array elements of key '{key}'"))?;
    // Bounded by the bytes that remain (at least one byte per element), so this fits usize.
    let n = usize::try_from(count).map_err(|_| Error::Overflow {
        what: format!("array length of key '{key}'"),
    })?;
    let what = || format!("array of key '{key}'");

    fn fixed<const N: usize, T>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
        bytes
            .chunks_exact(N)
            .map(|ch| {
                let mut a = [0u8; N];
                a.copy_from_slice(ch);
                f(a)
            })
            .collect()
    }

    Ok(match id {
        type_id::STRING => {
            // The strings stay in the file, checked here once; the array records where every
            // 8th one starts (`n` is bounded by the remaining bytes at 8 per string).
            let mut v = StringArrayBuilder::new(Arc::clone(c.storage), c.pos, n);
            for _ in 0..n {
                c.str_bytes(|| format!("string in array of key '{key}'"))?;
                v.push_end(c.pos);
            }
            Array::String(v.finish())
        }
        type_id::ARRAY => {
            // No reservation here: nested arrays each bound their count by the same remaining
            // bytes, so reserving at every level could multiply the memory asked for by the
            // depth; growing as elements really arrive cannot.
            let mut v = Vec::new();
            for _ in 0..n {
                v.push(read_array(c, key, depth + 1)?);
            }
            Array::Array(v)
        }
        _ => {
            // Fixed-size elements: one bounds check, then a straight conversion.
            let bytes = c.take(count * min, what)?;
            match id {
                type_id::U8 => Array::U8(bytes.to_vec()),
                type_id::I8 => Array::I8(fixed(bytes, i8::from_le_bytes)),
                type_id::U16 => Array::U16(fixed(bytes, u16::from_le_bytes)),
                type_id::I16 => Array::I16(fixed(bytes, i16::from_le_bytes)),
                type_id::U32 => Array::U32(fixed(bytes, u32::from_le_bytes)),
                type_id::I32 => Array::I32(fixed(bytes, i32::from_le_bytes)),
                type_id::U64 => Array::U64(fixed(bytes, u64::from_le_bytes)),
                type_id::I64 => Array::I64(fixed(bytes, i64::from_le_bytes)),
                type_id::F32 => Array::F32(fixed(bytes, f32::from_le_bytes)),
                type_id::F64 => Array::F64(fixed(bytes, f64::from_le_bytes)),
                _ => Array::Bool(bytes.iter().map(|&b| b != 0).collect()),
            }
        }
    })
}

/// A read position in the file; every read is checked against the bytes that remain.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// What `buf` is the bytes of, for the string arrays that point into it.
    storage: &'a Arc<Storage>,
}

impl<'a> Cursor<'a> {
    fn offset(&self) -> u64 {
        self.pos as u64
    }

    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos.min(self.buf.len())) as u64
    }

    /// The next `n` bytes, or `Truncated` naming `what`.
    fn take(&mut self, n: u64, what: impl FnOnce() -> String) -> Result<&'a [u8]> {
        let slice = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .and_then(|end| self.buf.get(self.pos..end));
        match slice {
            Some(s) => {
                self.pos += s.len();
                Ok(s)
            }
            None => Err(Error::Truncated {
                what: what(),
                offset: self.offset(),
                needed: n,
                available: self.remaining(),
            }),
        }
    }

    fn array<const N: usize>(&mut self, what: impl FnOnce() -> String) -> Result<[u8; N]> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A GGUF string: u64 length, then that many bytes of UTF-8.
    fn string(&mut self, what: impl Fn() -> String) -> Result<String> {
        self.str_bytes(what).map(str::to_owned)
    }

    /// A GGUF string, checked and left in place.
    fn str_bytes(&mut self, what: impl Fn() -> String) -> Result<&'a str> {
        let len_offset = self.offset();
        let len = self.u64(&what)?;
        if len > self.remaining() {
            return Err(Error::LengthPastEnd {
                what: format!("string ({})", what()),
                len,
                offset: len_offset,
                available: self.remaining(),
            });
        }
        let bytes_offset = self.offset();
        let bytes = self.take(len, &what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s),
            Err(_) => Err(Error::InvalidUtf8 {
                what: what(),
                offset: bytes_offset,
            }),
        }
    }

    /// Refuses a `count` of items of at least `min_bytes` each that the remaining bytes cannot
    /// hold, before anything is allocated for them.
    fn check_count(&self, count: u64, min_bytes: u64, what: impl FnOnce() -> String) -> Result<()> {
        let need = u128::from(count) * u128::from(min_bytes);
        if need > u128::from(self.remaining()) {
            return Err(Error::TooMany {
                what: what(),
                count,
                offset: self.offset(),
                min_bytes: need,
                available: self.remaining(),
            });
        }
        Ok(())
    }
}
