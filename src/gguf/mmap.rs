//! The bytes behind a [`GgufFile`](super::GgufFile): a read-only memory map of the file, or an
//! owned buffer. This is the only place in the library outside the kernels with `unsafe`.

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use crate::{Error, Result};

/// Where the file's bytes live.
pub(crate) enum Storage {
    /// A read-only map of the whole file.
    Mapped(Mmap),
    /// An owned copy (tests, fuzzing, data that never was a file).
    Owned(Vec<u8>),
}

impl Storage {
    /// Maps `path` read-only.
    pub(crate) fn map(path: &Path) -> Result<Storage> {
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        if len == 0 {
            // Mapping zero bytes fails on some systems; an empty file is simply too short.
            return Ok(Storage::Owned(Vec::new()));
        }
        map_file(&file)
            .map(Storage::Mapped)
            .map_err(|e| Error::io("map", path, e))
    }

    /// The bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mapped(m) => m,
            Storage::Owned(v) => v,
        }
    }
}

/// Maps `file` read-only, whole.
fn map_file(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: `Mmap::map` is unsafe because the mapped bytes can change (or vanish, raising SIGBUS)
    // if another process modifies or truncates the file while it is mapped, and Rust assumes a
    // `&[u8]` does not change underneath it. We never write through the map and only open model
    // files that nobody is expected to edit while they run, which is the same contract every mmap
    // based model loader (llama.cpp included) accepts in exchange for zero-copy loading: the
    // alternative, reading gigabytes of weights into memory, defeats the purpose. Every read of
    // the bytes is bounds-checked against the length taken at map time, so a concurrent change
    // can give wrong values but no out-of-bounds access within this process' view of the map.
    unsafe { Mmap::map(file) }
}
