//! The one error type of the library: every variant says what went wrong and where.
//!
//! GGUF errors carry the byte offset in the file (or the key / tensor name) at which the problem
//! was found; model, tokenizer and session errors carry the key, tensor or argument at fault.

use std::path::PathBuf;

use tramontane_kernels::{GgmlType, KernelError};

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, as values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---------------------------------------------------------------- I/O
    /// A file could not be opened, mapped, read or written. `Display` names the action and the
    /// file; the operating system's reason is the [`source`](std::error::Error::source).
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done: "open", "map", "read", "write", "create", "rename", ...
        action: &'static str,
        /// The file (or a label such as `<writer>` for an anonymous stream).
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A path that names a directory, FIFO, device or socket where a regular file is needed
    /// (a model to read, an output to replace). Refused before anything is read or written.
    #[error("{} is a {kind}, not a regular file", path.display())]
    NotAFile {
        path: PathBuf,
        /// "directory", "FIFO", "socket", "character device", "block device".
        kind: &'static str,
    },
    /// An error found in the file at `path`. `Display` is the path alone and the error is the
    /// [`source`](std::error::Error::source), so a chain reads once:
    /// `models/x.gguf: GGUF truncated at offset 24: ...`. [`Error::inner`] reaches the error.
    #[error("{}", path.display())]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<Error>,
    },
    /// A quantization whose output is its input file (same device and inode, links followed):
    /// writing it would destroy the only copy of the input.
    #[error("the output {} is the input file {}; choose another output path", output.display(), input.display())]
    OutputIsInput { output: PathBuf, input: PathBuf },

    // ---------------------------------------------------------------- GGUF structure
    /// The file ends before a field that must be there.
    #[error("GGUF truncated at offset {offset}: {what} needs {needed} bytes, {available} remain")]
    Truncated {
        /// What was being read (e.g. "tensor count", "value of key 'general.name'").
        what: String,
        offset: u64,
        needed: u64,
        available: u64,
    },
    /// The first four bytes are not `GGUF`.
    #[error("not a GGUF file: magic is {found:02x?}, expected \"GGUF\"")]
    BadMagic { found: Vec<u8> },
    /// A GGUF version this reader does not handle (1, or anything above 3).
    #[error("unsupported GGUF version {version} (only versions 2 and 3 are supported)")]
    UnsupportedVersion { version: u32 },
    /// The version field reads byte-swapped: the file was written big-endian.
    #[error("big-endian GGUF file (version {version} stored byte-swapped); only little-endian files are supported")]
    BigEndian { version: u32 },
    /// A metadata value type id outside 0..=12.
    #[error("invalid GGUF value type id {id} at offset {offset} (key '{key}')")]
    InvalidValueType { key: String, id: u32, offset: u64 },
    /// A count (keys, tensors, array elements) larger than the remaining bytes could hold.
    #[error("too many {what} at offset {offset}: {count} need at least {min_bytes} bytes, {available} remain")]
    TooMany {
        /// "metadata keys", "tensors", "array elements of key 'x'".
        what: String,
        count: u64,
        offset: u64,
        min_bytes: u128,
        available: u64,
    },
    /// A string or array length that runs past the end of the file.
    #[error("{what} at offset {offset} has length {len}, past the end of the file ({available} bytes remain)")]
    LengthPastEnd {
        what: String,
        len: u64,
        offset: u64,
        available: u64,
    },
    /// A string (key, value or tensor name) that is not UTF-8.
    #[error("invalid UTF-8 in {what} at offset {offset}")]
    InvalidUtf8 { what: String, offset: u64 },
    /// Arrays nested deeper than the reader allows.
    #[error("arrays nested deeper than {limit} levels in key '{key}' at offset {offset}")]
    NestingTooDeep {
        key: String,
        limit: usize,
        offset: u64,
    },
    /// The same metadata key appears twice.
    #[error("duplicate metadata key '{key}' at offset {offset}")]
    DuplicateKey { key: String, offset: u64 },
    /// The same tensor name appears twice.
    #[error("duplicate tensor '{name}' at offset {offset}")]
    DuplicateTensor { name: String, offset: u64 },
    /// `general.alignment` is not a non-zero power of two stored as u32, up to 16 MiB.
    #[error(
        "bad general.alignment: {found} (must be a u32 that is a non-zero power of two, at most 16777216)"
    )]
    BadAlignment { found: String },
    /// A tensor type id that ggml never assigned.
    #[error("tensor '{tensor}' has unknown ggml type id {id}")]
    UnknownTensorType { tensor: String, id: u32 },
    /// A tensor type id that ggml assigned once and has since retired.
    #[error("tensor '{tensor}' has retired ggml type {name} (id {id}); requantize the model with a current llama.cpp")]
    RetiredTensorType {
        tensor: String,
        id: u32,
        name: &'static str,
    },
    /// A tensor with 0 or more than 4 dimensions, or a dimension that is 0 or above i64::MAX.
    #[error("tensor '{tensor}' has bad dimensions {dims:?}: {reason}")]
    BadDims {
        tensor: String,
        dims: Vec<u64>,
        reason: String,
    },
    /// An element count, byte size or offset that overflows.
    #[error("arithmetic overflow computing {what}")]
    Overflow { what: String },
    /// A tensor whose rows are not whole blocks of its type.
    #[error("tensor '{tensor}': ne0 = {ne0} is not a multiple of the {ty} block size {block}")]
    NotBlockMultiple {
        tensor: String,
        ty: GgmlType,
        ne0: u64,
        block: usize,
    },
    /// A tensor whose bytes lie (partly) outside the data section.
    #[error("tensor '{tensor}' at data offset {offset} with {n_bytes} bytes lies outside the data section ({data_len} bytes)")]
    TensorOutOfBounds {
        tensor: String,
        offset: u64,
        n_bytes: u64,
        data_len: u64,
    },
    /// A tensor offset that is not a multiple of the file's alignment.
    #[error("tensor '{tensor}' offset {offset} is not a multiple of the alignment {alignment}")]
    MisalignedTensor {
        tensor: String,
        offset: u64,
        alignment: u64,
    },

    // ---------------------------------------------------------------- metadata / tensors as used by models
    /// A required metadata key is absent.
    #[error("missing metadata key '{key}'")]
    MissingKey { key: String },
    /// Metadata of the wrong type, or out of the accepted range.
    #[error("metadata key '{key}': expected {expected}, found {found}")]
    WrongValueType {
        key: String,
        expected: String,
        found: String,
    },
    /// A required tensor is absent.
    #[error("missing tensor '{name}'")]
    MissingTensor { name: String },
    /// A tensor has a shape the model cannot use.
    #[error("tensor '{name}' has shape {found}, expected {expected}")]
    TensorShape {
        name: String,
        expected: String,
        found: String,
    },
    /// A tensor has a type the model cannot use here.
    #[error("tensor '{name}' has type {ty}: {reason}")]
    TensorType {
        name: String,
        ty: GgmlType,
        reason: String,
    },
    /// Model metadata that is inconsistent.
    #[error("invalid model configuration: {what}")]
    InvalidConfig { what: String },
    /// A feature, architecture or combination not supported (yet).
    #[error("unsupported: {what}")]
    Unsupported { what: String },

    // ---------------------------------------------------------------- tokenizer, session, arguments
    /// The tokenizer cannot be built or cannot encode/decode.
    #[error("tokenizer: {what}")]
    Tokenizer { what: String },
    /// The context window has no room for more tokens.
    #[error("context full: all {n_ctx} positions are in use")]
    ContextFull { n_ctx: usize },
    /// A caller-supplied argument is out of range or inconsistent.
    #[error("invalid argument: {what}")]
    InvalidArgument { what: String },
    /// The engine's queue of waiting requests is full: try again later.
    #[error("the queue is full ({capacity} requests waiting)")]
    QueueFull { capacity: usize },
    /// An allocation whose size comes from input (context, prompt, state file) failed.
    #[error("out of memory: cannot allocate {what}")]
    OutOfMemory { what: String },
    /// A saved session state that cannot be loaded: not a state file, another model, another
    /// format version, inconsistent sizes, or truncated.
    #[error("bad session state: {what}")]
    BadState { what: String },

    // ---------------------------------------------------------------- kernels
    /// A kernel refused its arguments.
    #[error(transparent)]
    Kernel(#[from] KernelError),
}

impl Error {
    /// `error`, found in the file at `path` (an [`Error::InFile`]); an error that is already
    /// about that same path is returned as it is, so the path is never named twice.
    pub fn in_file(path: impl Into<PathBuf>, error: Error) -> Self {
        let path = path.into();
        let names_it = matches!(
            &error,
            Error::InFile { path: p, .. } | Error::Io { path: p, .. } | Error::NotAFile { path: p, .. }
                if *p == path
        );
        if names_it {
            error
        } else {
            Error::InFile {
                path,
                source: Box::new(error),
            }
        }
    }

    /// The error itself, without the [`Error::InFile`] wrappers that say where it was found:
    /// match on this (`matches!(e.inner(), Error::Truncated { .. })`).
    pub fn inner(&self) -> &Error {
        match self {
            Error::InFile { source, .. } => source.inner(),
            other => other,
        }
    }

    /// An [`Error::Io`]: `action` ("open", "read", ...) on `path` failed with `source`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
