//! The bytes behind a [`GgufFile`](super::GgufFile): a read-only memory map of the file, or an
//! owned buffer. This is the only place in the library outside the kernels with `unsafe`.
//!
//! Opening refuses anything but a regular file by name before reading a byte: a FIFO would
//! block the open (and then the read) forever, a directory fails to map with an unhelpful
//! "No such device", and a device is not a model.

use std::fs::{File, Metadata};
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

/// Which file an open handle is: device and inode on Unix. Two paths (through links, hard or
/// symbolic) name the same file exactly when their ids are equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The id of the file `meta` describes (None where the platform has no inode numbers).
    pub(crate) fn of(meta: &Metadata) -> Option<FileId> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(FileId {
                dev: meta.dev(),
                ino: meta.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            None
        }
    }
}

/// What a file that is not a regular file is, in words for a message; None for a regular file.
pub(crate) fn special_kind(ty: std::fs::FileType) -> Option<&'static str> {
    if ty.is_file() {
        return None;
    }
    if ty.is_dir() {
        return Some("directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ty.is_fifo() {
            return Some("FIFO");
        }
        if ty.is_socket() {
            return Some("socket");
        }
        if ty.is_char_device() {
            return Some("character device");
        }
        if ty.is_block_device() {
            return Some("block device");
        }
    }
    Some("special file")
}

/// Refuses `meta` unless it describes a regular file.
fn require_regular(path: &Path, meta: &Metadata) -> Result<()> {
    match special_kind(meta.file_type()) {
        None => Ok(()),
        Some(kind) => Err(Error::NotAFile {
            path: path.to_path_buf(),
            kind,
        }),
    }
}

/// `O_NONBLOCK` where its value is known without libc (0, no flag, elsewhere: the type check
/// before the open still refuses a FIFO): opening a FIFO with it returns at once instead of
/// waiting for a writer. Regular files ignore the flag, so the map is unaffected.
#[cfg(unix)]
const NONBLOCKING_OPEN: i32 = if cfg!(all(
    any(target_os = "linux", target_os = "android"),
    any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "riscv64",
        target_arch = "powerpc64",
        target_arch = "s390x",
        target_arch = "loongarch64"
    )
)) {
    0o4000
} else {
    0
};

/// Opens `path` for reading without waiting on a FIFO.
fn open_for_reading(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(NONBLOCKING_OPEN);
    }
    options.open(path)
}

impl Storage {
    /// Maps `path` read-only, refusing anything but a regular file; also returns the file's id.
    pub(crate) fn map(path: &Path) -> Result<(Storage, Option<FileId>)> {
        // The type is checked before opening, since opening is what blocks on a FIFO and what
        // has side effects on some devices...
        let meta = std::fs::metadata(path).map_err(|e| Error::io("open", path, e))?;
        require_regular(path, &meta)?;
        let file = open_for_reading(path).map_err(|e| Error::io("open", path, e))?;
        // ...and again on the opened handle, in case the path was replaced in between.
        let meta = file.metadata().map_err(|e| Error::io("stat", path, e))?;
        require_regular(path, &meta)?;
        let id = FileId::of(&meta);
        if meta.len() == 0 {
            // Mapping zero bytes fails on some systems; an empty file is simply too short.
            return Ok((Storage::Owned(Vec::new()), id));
        }
        let map = map_file(&file).map_err(|e| Error::io("map", path, e))?;
        Ok((Storage::Mapped(map), id))
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
