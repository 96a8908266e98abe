//! A streaming GGUF (version 3) writer.
//!
//! First declare everything (metadata, and each tensor's name, type and shape); then
//! [`GgufWriter::write_header`] writes the header with every offset precomputed, and the
//! returned [`TensorDataWriter`] takes the tensors' bytes one by one, in declaration order, so a
//! big file never has to be held in memory.
//!
//! ```
//! use tramontane::gguf::{GgufWriter, Value};
//! use tramontane::kernels::GgmlType;
//! # fn main() -> tramontane::Result<()> {
//! let mut w = GgufWriter::new();
//! w.add("general.architecture", Value::String("llama".into()))?;
//! w.add_tensor("x", GgmlType::F32, &[2])?;
//! let mut data = w.write_header(Vec::new())?;
//! data.write_tensor(&[0u8; 8])?;
//! let bytes = data.finish()?;
//! let f = tramontane::GgufFile::from_bytes(bytes)?;
//! assert_eq!(f.tensor("x")?.data.len(), 8);
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use tramontane_kernels::GgmlType;

use super::reader::{
    align_up, checked_alignment, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC, MAX_ARRAY_DEPTH, MAX_DIMS,
};
use super::tensor::TensorInfo;
use super::value::{Array, Value};
use crate::{Error, Result};

/// The GGUF version this writer produces.
pub const WRITE_VERSION: u32 = 3;

/// Collects metadata and tensor declarations, then writes the header.
#[derive(Debug, Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    keys: HashSet<String>,
    tensors: Vec<(String, GgmlType, Vec<u64>, u64)>,
    names: HashSet<String>,
    alignment: Option<u64>,
}

impl GgufWriter {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a metadata key (written in the order added). `general.alignment` must be a
    /// `Value::U32` power of two of at most 16 MiB and
    /// sets the alignment of the data section and tensors.
    pub fn add(&mut self, key: impl Into<String>, value: Value) -> Result<()> {
        let key = key.into();
        if self.keys.contains(&key) {
            return Err(Error::InvalidArgument {
                what: format!("metadata key '{key}' added twice"),
            });
        }
        if key == ALIGNMENT_KEY {
            self.alignment = Some(checked_alignment(&value)?);
        }
        if let Value::Array(a) = &value {
            check_depth(&key, a, 1)?;
        }
        self.keys.insert(key.clone());
        self.metadata.push((key, value));
        Ok(())
    }

    /// Declares a tensor; its bytes are given later, in declaration order, to
    /// [`TensorDataWriter::write_tensor`]. Returns its size in bytes.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        ty: GgmlType,
        dims: &[u64],
    ) -> Result<u64> {
        let name = name.into();
        if self.names.contains(&name) {
            return Err(Error::InvalidArgument {
                what: format!("tensor '{name}' added twice"),
            });
        }
        let bad = |reason: String| Error::BadDims {
            tensor: name.clone(),
            dims: dims.to_vec(),
            reason,
        };
        if dims.is_empty() || dims.len() > MAX_DIMS as usize {
            return Err(bad(format!(
                "{} dimensions, must be 1 to {MAX_DIMS}",
                dims.len()
            )));
        }
        if dims.iter().any(|&d| d == 0 || d > i64::MAX as u64) {
            return Err(bad("every dimension must be 1 to i64::MAX".into()));
        }
        let overflow = || Error::Overflow {
            what: format!("size of tensor '{name}' ({ty}, dims {dims:?})"),
        };
        dims.iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(overflow)?;
        let ne0 = dims.first().copied().unwrap_or(1);
        let row = ty.row_bytes(ne0).ok_or_else(|| Error::NotBlockMultiple {
            tensor: name.clone(),
            ty,
            ne0,
            block: ty.block_size(),
        })?;
        let n_bytes = row
            .checked_mul(dims.iter().skip(1).product())
            .ok_or_else(overflow)?;
        self.names.insert(name.clone());
        self.tensors.push((name, ty, dims.to_vec(), n_bytes));
        Ok(n_bytes)
    }

    /// The alignment the file will have.
    pub fn alignment(&self) -> u64 {
        self.alignment.unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// The tensor index as it will be written (offsets relative to the data section).
    pub fn tensor_infos(&self) -> Result<Vec<TensorInfo>> {
        let alignment = self.alignment();
        let mut offset = 0u64;
        let mut infos = Vec::with_capacity(self.tensors.len());
        for (name, ty, dims, n_bytes) in &self.tensors {
            infos.push(TensorInfo {
                name: name.clone(),
                ty: *ty,
                dims: dims.clone(),
                offset,
                n_bytes: *n_bytes,
            });
            offset = offset
                .checked_add(*n_bytes)
                .and_then(|end| align_up(end, alignment))
                .ok_or_else(|| Error::Overflow {
                    what: format!("data offset after tensor '{name}'"),
                })?;
        }
        Ok(infos)
    }

    /// Creates `path` and writes the header into it.
    pub fn create(self, path: impl AsRef<Path>) -> Result<TensorDataWriter<BufWriter<File>>> {
        let path = path.as_ref();
        let file = File::create(path).map_err(|e| Error::io("create", path, e))?;
        self.write_header_labelled(BufWriter::new(file), path.to_path_buf())
    }

    /// Writes the header into `out`.
    pub fn write_header<W: Write>(self, out: W) -> Result<TensorDataWriter<W>> {
        self.write_header_labelled(out, PathBuf::from("<writer>"))
    }

    fn write_header_labelled<W: Write>(
        self,
        out: W,
        label: PathBuf,
    ) -> Result<TensorDataWriter<W>> {
        let alignment = self.alignment();
        let infos = self.tensor_infos()?;
        let mut header = Vec::new();
        header.extend_from_slice(MAGIC);
        put_u32(&mut header, WRITE_VERSION);
        put_u64(&mut header, self.tensors.len() as u64);
        put_u64(&mut header, self.metadata.len() as u64);
        for (key, value) in &self.metadata {
            put_str(&mut header, key);
            put_u32(&mut header, value.type_id());
            put_value(&mut header, value);
        }
        for t in &infos {
            put_str(&mut header, &t.name);
            put_u32(&mut header, t.dims.len() as u32);
            for &d in &t.dims {
                put_u64(&mut header, d);
            }
            put_u32(&mut header, t.ty.id());
            put_u64(&mut header, t.offset);
        }
        let padded = align_up(header.len() as u64, alignment).ok_or_else(|| Error::Overflow {
            what: "header size".into(),
        })?;
        header.resize(padded as usize, 0);
        let mut w = TensorDataWriter {
            out,
            label,
            infos,
            next: 0,
            written: 0,
            alignment,
        };
        w.put(&header)?;
        Ok(w)
    }
}

/// Refuses arrays nested deeper than the reader accepts.
fn check_depth(key: &str, a: &Array, depth: usize) -> Result<()> {
    if depth > MAX_ARRAY_DEPTH {
        return Err(Error::InvalidArgument {
            what: format!(
                "metadata key '{key}': arrays nested deeper than {MAX_ARRAY_DEPTH} levels"
            ),
        });
    }
    if let Array::Array(inner) = a {
        for x in inner {
            check_depth(key, x, depth + 1)?;
        }
    }
    Ok(())
}

/// Takes the tensors' bytes, in declaration order, after the header has been written.
#[derive(Debug)]
pub struct TensorDataWriter<W: Write> {
    out: W,
    label: PathBuf,
    infos: Vec<TensorInfo>,
    next: usize,
    /// Bytes written into the data section so far.
    written: u64,
    alignment: u64,
}

impl<W: Write> TensorDataWriter<W> {
    /// The tensor whose bytes [`write_tensor`](Self::write_tensor) expects next.
    pub fn next_tensor(&self) -> Option<&TensorInfo> {
        self.infos.get(self.next)
    }

    /// The tensor index of the file being written.
    pub fn tensor_infos(&self) -> &[TensorInfo] {
        &self.infos
    }

    /// Writes the bytes of the next tensor (exactly its `n_bytes`) and the padding after it.
    pub fn write_tensor(&mut self, data: &[u8]) -> Result<()> {
        let Some(info) = self.infos.get(self.next) else {
            return Err(Error::InvalidArgument {
                what: format!(
                    "all {} declared tensors are already written",
                    self.infos.len()
                ),
            });
        };
        if data.len() as u64 != info.n_bytes {
            return Err(Error::InvalidArgument {
                what: format!(
                    "tensor '{}' ({} {:?}) needs {} bytes, got {}",
                    info.name,
                    info.ty,
                    info.dims,
                    info.n_bytes,
                    data.len()
                ),
            });
        }
        let end = info.offset + info.n_bytes; // checked in tensor_infos
        let padded = align_up(end, self.alignment).unwrap_or(end);
        self.put(data)?;
        self.put(&vec![0u8; (padded - end) as usize])?;
        self.written = padded;
        self.next += 1;
        Ok(())
    }

    /// Checks that every tensor was written, flushes, and returns the output.
    pub fn finish(mut self) -> Result<W> {
        if let Some(info) = self.infos.get(self.next) {
            return Err(Error::InvalidArgument {
                what: format!(
                    "tensor '{}' and {} after it were declared but not written",
                    info.name,
                    self.infos.len() - self.next - 1
                ),
            });
        }
        self.out
            .flush()
            .map_err(|e| Error::io("write", &self.label, e))?;
        Ok(self.out)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io("write", &self.label, e))
    }
}

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    put_u64(b, s.len() as u64);
    b.extend_from_slice(s.as_bytes());
}

fn put_value(b: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => b.push(*x),
        Value::I8(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::U64(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => b.push(u8::from(*x)),
        Value::String(s) => put_str(b, s),
        Value::Array(a) => put_array(b, a),
    }
}

fn put_array(b: &mut Vec<u8>, a: &Array) {
    put_u32(b, a.element_type_id());
    put_u64(b, a.len() as u64);
    macro_rules! each_le {
        ($v:expr) => {
            for x in $v {
                b.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        Array::U8(v) => b.extend_from_slice(v),
        Array::I8(v) => each_le!(v),
        Array::U16(v) => each_le!(v),
        Array::I16(v) => each_le!(v),
        Array::U32(v) => each_le!(v),
        Array::I32(v) => each_le!(v),
        Array::U64(v) => each_le!(v),
        Array::I64(v) => each_le!(v),
        Array::F32(v) => each_le!(v),
        Array::F64(v) => each_le!(v),
        Array::Bool(v) => b.extend(v.iter().map(|&x| u8::from(x))),
        // Kept in GGUF's own layout (`len u64 | bytes` per string): copied as it is.
        Array::String(v) => b.extend_from_slice(v.gguf_bytes()),
        Array::Array(v) => {
            for x in v {
                put_array(b, x);
            }
        }
    }
}
