//! Session state files: a session's history, logits and cached K/V, for one model.
//!
//! Layout (all integers little-endian):
//! ```text
//! magic "TRMSTATE" | version u32 | model fingerprint u64 | model file length u64
//! kv type u32 (0 f16, 1 f32) | n_ctx u64 | batch u64 | n_layer u32 | n_kv_head u32 | head_dim u32
//! n_tokens u64 | n_cached u64 | tokens u32 x n_tokens
//! n_logits u64 (0 or n_vocab) | logits f32 x n_logits
//! per layer, the cells of positions 0..n_cached: K then V (see KvCache::write_cells)
//! checksum u64 of everything above
//! ```
//! Every size is checked against the session loading it and against the file's length before
//! anything is allocated, so a damaged or hostile file is an error, never a huge allocation.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use super::Session;
use crate::kv_cache::{KvCache, KvCacheType};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"TRMSTATE";
const VERSION: u32 = 1;

fn bad(what: impl Into<String>) -> Error {
    Error::BadState { what: what.into() }
}

/// FNV-1a over 64 bits: enough to tell one model file or one damaged state from another, with
/// no dependency.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Identifies a model file: its header (metadata and tensor table) and its length.
fn fingerprint(session: &Session<'_>) -> (u64, u64) {
    let file = session.model.file();
    let header_len = usize::try_from(file.data_offset()).unwrap_or(usize::MAX);
    let bytes = file.bytes();
    let mut h = Fnv::new();
    h.update(bytes.get(..header_len).unwrap_or(bytes));
    (h.0, file.file_len())
}

/// A writer that hashes what passes through.
struct Hashing<W> {
    inner: W,
    hash: Fnv,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what passes through.
struct HashingReader<R> {
    inner: R,
    hash: Fnv,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

fn kv_code(ty: KvCacheType) -> u32 {
    match ty {
        KvCacheType::F16 => 0,
        KvCacheType::F32 => 1,
    }
}

/// The fixed-size part after the magic, as written and as expected.
struct Header {
    version: u32,
    model_hash: u64,
    model_len: u64,
    kv: u32,
    n_ctx: u64,
    batch: u64,
    n_layer: u32,
    n_kv_head: u32,
    head_dim: u32,
}

impl Header {
    fn of(session: &Session<'_>) -> Header {
        let (model_hash, model_len) = fingerprint(session);
        let shape = session.cache.shape();
        Header {
            version: VERSION,
            model_hash,
            model_len,
            kv: kv_code(session.cache.ty()),
            n_ctx: session.n_ctx as u64,
            batch: session.batch as u64,
            n_layer: shape.n_layer() as u32,
            n_kv_head: shape.n_kv_head as u32,
            head_dim: shape.head_dim as u32,
        }
    }

    fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(&self.version.to_le_bytes())?;
        out.write_all(&self.model_hash.to_le_bytes())?;
        out.write_all(&self.model_len.to_le_bytes())?;
        out.write_all(&self.kv.to_le_bytes())?;
        out.write_all(&self.n_ctx.to_le_bytes())?;
        out.write_all(&self.batch.to_le_bytes())?;
        out.write_all(&self.n_layer.to_le_bytes())?;
        out.write_all(&self.n_kv_head.to_le_bytes())?;
        out.write_all(&self.head_dim.to_le_bytes())
    }

    fn read(input: &mut impl Read) -> Result<Header> {
        Ok(Header {
            version: read_u32(input)?,
            model_hash: read_u64(input)?,
            model_len: read_u64(input)?,
            kv: read_u32(input)?,
            n_ctx: read_u64(input)?,
            batch: read_u64(input)?,
            n_layer: read_u32(input)?,
            n_kv_head: read_u32(input)?,
            head_dim: read_u32(input)?,
        })
    }

    /// Why a state with this header cannot load into a session with header `want`.
    fn mismatch(&self, want: &Header) -> Option<String> {
        if self.version != want.version {
            return Some(format!(
                "format version {} (this build reads version {})",
                self.version, want.version
            ));
        }
        if (self.model_hash, self.model_len) != (want.model_hash, want.model_len) {
            return Some("it was saved for another model file".into());
        }
        let settings = |h: &Header| (h.kv, h.n_ctx, h.batch);
        if settings(self) != settings(want) {
            return Some(format!(
                "it was saved with kv type {}, context {}, batch {}; this session has {}, {}, {}",
                self.kv, self.n_ctx, self.batch, want.kv, want.n_ctx, want.batch
            ));
        }
        let shape = |h: &Header| (h.n_layer, h.n_kv_head, h.head_dim);
        if shape(self) != shape(want) {
            return Some("its cache shape differs from the model's".into());
        }
        None
    }
}

const HEADER_BYTES: u64 = 4 + 8 + 8 + 4 + 8 + 8 + 4 + 4 + 4;

fn read_exact<const N: usize>(input: &mut impl Read) -> Result<[u8; N]> {
    let mut b = [0u8; N];
    input
        .read_exact(&mut b)
        .map_err(|e| bad(format!("the file ends early ({e})")))?;
    Ok(b)
}

fn read_u32(input: &mut impl Read) -> Result<u32> {
    read_exact::<4>(input).map(u32::from_le_bytes)
}

fn read_u64(input: &mut impl Read) -> Result<u64> {
    read_exact::<8>(input).map(u64::from_le_bytes)
}

/// A vector of `n` zeros, or an error instead of an abort.
fn try_zeroed<T: Copy + Default>(what: &str, n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::OutOfMemory {
        what: format!("{what} ({n} values)"),
    })?;
    v.resize(n, T::default());
    Ok(v)
}

pub(super) fn save(session: &Session<'_>, path: &Path) -> Result<()> {
    let io = |e| Error::io("write", path, e);
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".{}.partial", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| -> Result<()> {
        let file = File::create(&tmp).map_err(|e| Error::io("create", path, e))?;
        let mut out = Hashing {
            inner: BufWriter::new(file),
            hash: Fnv::new(),
        };
        out.write_all(MAGIC).map_err(io)?;
        Header::of(session).write(&mut out).map_err(io)?;
        let n_cached = session.n_cached;
        let tokens = &session.tokens;
        out.write_all(&(tokens.len() as u64).to_le_bytes())
            .map_err(io)?;
        out.write_all(&(n_cached as u64).to_le_bytes())
            .map_err(io)?;
        let mut buf = Vec::with_capacity(tokens.len() * 4);
        tokens
            .iter()
            .for_each(|t| buf.extend_from_slice(&t.to_le_bytes()));
        out.write_all(&buf).map_err(io)?;
        let logits = session.logits();
        out.write_all(&(logits.len() as u64).to_le_bytes())
            .map_err(io)?;
        buf.clear();
        logits
            .iter()
            .for_each(|l| buf.extend_from_slice(&l.to_le_bytes()));
        out.write_all(&buf).map_err(io)?;
        session.cache.write_cells(n_cached, &mut out).map_err(io)?;
        let sum = out.hash.0;
        out.inner.write_all(&sum.to_le_bytes()).map_err(io)?;
        let file = out.inner.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("rename onto", path, e))
    })();
    if result.is_err() {
        // Best effort: the error being returned matters more than a failed clean-up.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Everything read from a state file, checked, before it replaces the session's state.
struct Loaded {
    tokens: Vec<u32>,
    n_cached: usize,
    logits: Vec<f32>,
    cache: KvCache,
}

pub(super) fn load(session: &mut Session<'_>, path: &Path) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let file_len = file
        .metadata()
        .map_err(|e| Error::io("read", path, e))?
        .len();
    let mut input = HashingReader {
        inner: BufReader::new(file),
        hash: Fnv::new(),
    };
    let loaded = read_state(session, &mut input, file_len)?;
    session.tokens = loaded.tokens;
    session.n_cached = loaded.n_cached;
    session.logits_valid = !loaded.logits.is_empty();
    session.logits = loaded.logits;
    session.cache = loaded.cache;
    Ok(())
}

fn read_state<R: Read>(
    session: &Session<'_>,
    input: &mut HashingReader<R>,
    file_len: u64,
) -> Result<Loaded> {
    let magic: [u8; 8] = read_exact(input)?;
    if &magic != MAGIC {
        return Err(bad("not a tramontane session state (bad magic)"));
    }
    let header = Header::read(input)?;
    if let Some(why) = header.mismatch(&Header::of(session)) {
        return Err(bad(format!("cannot load into this session: {why}")));
    }
    let n_tokens = read_u64(input)?;
    let n_cached = read_u64(input)?;
    if n_tokens > session.n_ctx as u64 || n_cached > n_tokens {
        return Err(bad(format!(
            "{n_tokens} tokens ({n_cached} cached) do not fit a context of {}",
            session.n_ctx
        )));
    }
    // n_tokens <= n_ctx, so these fit usize.
    let (n_tokens, n_cached) = (n_tokens as usize, n_cached as usize);
    // Sizes are checked against the file's length before anything they size is allocated.
    let tokens_end = 8 + HEADER_BYTES + 16 + 4 * n_tokens as u64;
    if file_len < tokens_end + 8 {
        return Err(bad(format!("the file is too short for {n_tokens} tokens")));
    }
    let mut bytes: Vec<u8> = try_zeroed("tokens", 4 * n_tokens)?;
    input
        .read_exact(&mut bytes)
        .map_err(|e| bad(format!("the tokens end early ({e})")))?;
    let tokens: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let n_vocab = session.model.config().n_vocab;
    if let Some(&t) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
        return Err(bad(format!("token id {t} is outside the vocabulary")));
    }
    let n_logits = read_u64(input)?;
    if n_logits != 0 && (n_logits != n_vocab as u64 || n_cached == 0) {
        return Err(bad(format!(
            "{n_logits} logits for a vocabulary of {n_vocab}"
        )));
    }
    let cache_bytes = session.cache.cells_bytes(n_cached);
    let expected = u128::from(tokens_end + 8) + 4 * u128::from(n_logits) + cache_bytes + 8;
    if u128::from(file_len) != expected {
        return Err(bad(format!(
            "the file is {file_len} bytes but its header describes {expected}"
        )));
    }
    let mut logits: Vec<f32> = try_zeroed("logits", n_logits as usize)?;
    let mut buf = [0u8; 4];
    for l in &mut logits {
        input
            .read_exact(&mut buf)
            .map_err(|e| bad(format!("the logits end early ({e})")))?;
        *l = f32::from_le_bytes(buf);
    }
    let mut cache = KvCache::new(session.cache.shape().clone(), session.cache.ty());
    cache.read_cells(n_cached, input)?;
    let sum = input.hash.0;
    let stored = u64::from_le_bytes(read_exact(&mut input.inner)?);
    if sum != stored {
        return Err(bad("checksum mismatch: the file is damaged"));
    }
    Ok(Loaded {
        tokens,
        n_cached,
        logits,
        cache,
    })
}
