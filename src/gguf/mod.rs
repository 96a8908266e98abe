//! GGUF files: a zero-copy reader over a memory map, and a streaming writer.
//!
//! ```no_run
//! # fn main() -> tramontane::Result<()> {
//! let f = tramontane::GgufFile::open("models/SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! let n_layer = f.get_u32("llama.block_count")?;
//! let emb = f.tensor("token_embd.weight")?; // bytes borrowed from the map
//! println!("{n_layer} layers, embedding {:?} {} ({} bytes)", emb.dims(), emb.ty(), emb.data.len());
//! # Ok(()) }
//! ```

mod getters;
mod mmap;
mod reader;
mod string_array;
mod tensor;
mod value;
mod view;
pub mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use reader::{ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC, MAX_ARRAY_DEPTH, MAX_DIMS};
pub use string_array::{Iter as StringArrayIter, StringArray};
pub use tensor::{Tensor, TensorInfo};
pub use value::{Array, Metadata, Value};
pub use writer::{GgufWriter, TensorDataWriter};

use crate::{Error, Result};
use mmap::Storage;
pub(crate) use mmap::{special_kind, FileId};
pub(crate) use view::F32View;

/// An open GGUF file: the parsed header, and the tensor bytes left in place.
pub struct GgufFile {
    /// Shared with the [`StringArray`]s of the metadata, which point into it.
    storage: Arc<Storage>,
    path: Option<PathBuf>,
    /// The opened file's device and inode (files opened from a path, on Unix).
    id: Option<FileId>,
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: Metadata,
    /// Where each metadata value starts in the file, in metadata order (for [`F32View`]s).
    value_offsets: Vec<u64>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .field("n_keys", &self.metadata.len())
            .field("n_tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Maps the file at `path` and parses its header; tensor data is not read (opening a 4 GB
    /// file costs the same as a 4 MB one with the same header).
    ///
    /// A directory, FIFO, device or socket is refused by name ([`Error::NotAFile`]) without
    /// reading from it (a FIFO would block forever). An error in the file's contents comes
    /// wrapped in an [`Error::InFile`] that names `path`; [`Error::inner`] gives the error.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let (storage, id) = Storage::map(path)?;
        let mut f = Self::from_storage(storage).map_err(|e| Error::in_file(path, e))?;
        f.path = Some(path.to_path_buf());
        f.id = id;
        Ok(f)
    }

    /// Parses a GGUF file held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile> {
        Self::from_storage(Storage::Owned(bytes))
    }

    fn from_storage(storage: Storage) -> Result<GgufFile> {
        let storage = Arc::new(storage);
        let h = reader::parse_header(&storage)?;
        Ok(GgufFile {
            storage,
            path: None,
            id: None,
            version: h.version,
            alignment: h.alignment,
            data_offset: h.data_offset,
            metadata: h.metadata,
            value_offsets: h.value_offsets,
            tensors: h.tensors,
            tensor_index: h.tensor_index,
        })
    }

    /// The path given to [`open`](Self::open), if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The device and inode of the file given to [`open`](Self::open) (Unix), taken from the
    /// opened handle: what the file is, whatever its path names now.
    pub(crate) fn file_id(&self) -> Option<FileId> {
        self.id
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The alignment of the data section and of every tensor (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Where the data section starts, in bytes from the start of the file.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The file size in bytes.
    pub fn file_len(&self) -> u64 {
        self.storage.bytes().len() as u64
    }

    /// The whole file's bytes (mapped, not copied).
    pub fn bytes(&self) -> &[u8] {
        self.storage.bytes()
    }

    /// The metadata, in file order.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The tensor index, in file order.
    pub fn tensors(&self) -> impl ExactSizeIterator<Item = &TensorInfo> {
        self.tensors.iter()
    }

    /// The number of tensors.
    pub fn n_tensors(&self) -> usize {
        self.tensors.len()
    }

    /// The index entry of tensor `name`, if present.
    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index
            .get(name)
            .and_then(|&i| self.tensors.get(i))
    }

    /// Tensor `name` with its bytes borrowed from the file; `MissingTensor` if absent.
    pub fn tensor(&self, name: &str) -> Result<Tensor<'_>> {
        let info = self.tensor_info(name).ok_or_else(|| Error::MissingTensor {
            name: name.to_string(),
        })?;
        self.tensor_of(info)
    }

    /// The tensor described by `info` (an entry of [`tensors`](Self::tensors)).
    pub fn tensor_of<'a>(&'a self, info: &'a TensorInfo) -> Result<Tensor<'a>> {
        // Bounds were checked at parse time; checked again here so that a `TensorInfo` from
        // another file cannot index out of this one.
        let data = self
            .data_offset
            .checked_add(info.offset)
            .and_then(|start| Some((start, start.checked_add(info.n_bytes)?)))
            .and_then(|(s, e)| {
                let (s, e) = (usize::try_from(s).ok()?, usize::try_from(e).ok()?);
                self.storage.bytes().get(s..e)
            })
            .ok_or_else(|| Error::TensorOutOfBounds {
                tensor: info.name.clone(),
                offset: info.offset,
                n_bytes: info.n_bytes,
                data_len: self.file_len().saturating_sub(self.data_offset),
            })?;
        Ok(Tensor { info, data })
    }

    /// The f32 array under `key` read in place from the file, if that is what `key` holds.
    pub(crate) fn f32_view(&self, key: &str) -> Option<F32View> {
        let Some(Value::Array(Array::F32(v))) = self.metadata.get(key) else {
            return None;
        };
        let offset = *self.value_offsets.get(self.metadata.index_of(key)?)?;
        // The value is: element type (u32), count (u64), then the elements.
        let start = usize::try_from(offset).ok()?.checked_add(4 + 8)?;
        F32View::new(Arc::clone(&self.storage), start, v.len())
    }

    /// See [`Metadata::get_u32`].
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        self.metadata.get_u32(key)
    }
    /// See [`Metadata::get_u64`].
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.metadata.get_u64(key)
    }
    /// See [`Metadata::get_i64`].
    pub fn get_i64(&self, key: &str) -> Result<i64> {
        self.metadata.get_i64(key)
    }
    /// See [`Metadata::get_f32`].
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        self.metadata.get_f32(key)
    }
    /// See [`Metadata::get_bool`].
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        self.metadata.get_bool(key)
    }
    /// See [`Metadata::get_str`].
    pub fn get_str(&self, key: &str) -> Result<&str> {
        self.metadata.get_str(key)
    }
    /// See [`Metadata::get_array`].
    pub fn get_array(&self, key: &str) -> Result<&Array> {
        self.metadata.get_array(key)
    }
    /// See [`Metadata::opt_u32`].
    pub fn opt_u32(&self, key: &str) -> Result<Option<u32>> {
        self.metadata.opt_u32(key)
    }
    /// See [`Metadata::opt_u64`].
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        self.metadata.opt_u64(key)
    }
    /// See [`Metadata::opt_i64`].
    pub fn opt_i64(&self, key: &str) -> Result<Option<i64>> {
        self.metadata.opt_i64(key)
    }
    /// See [`Metadata::opt_f32`].
    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>> {
        self.metadata.opt_f32(key)
    }
    /// See [`Metadata::opt_bool`].
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        self.metadata.opt_bool(key)
    }
    /// See [`Metadata::opt_str`].
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        self.metadata.opt_str(key)
    }
    /// See [`Metadata::opt_array`].
    pub fn opt_array(&self, key: &str) -> Result<Option<&Array>> {
        self.metadata.opt_array(key)
    }
}
