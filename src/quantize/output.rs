//! The output file of a quantization, written so that no run can destroy data.
//!
//! Before any work: the output must not be the input (same device and inode, links followed),
//! must be a regular file if it exists (never a directory, device, FIFO or socket), and its
//! directory must take a new file: the temporary file is created there at once, so a missing
//! or read-only directory fails in milliseconds, not after the whole quantization. The data
//! goes to that temporary file (a name unique to this process), which is fsynced, renamed over
//! the target, and the directory fsynced: a crash leaves the old file or the new one, never a
//! mix. A symbolic link given as the output is written through (the link stays, its target is
//! replaced). Every error names the path the user gave, never the temporary name.
//!
//! Temporary names are `OUT.partial-PID-N-HOST`. A run killed with `kill -9` cannot clean up
//! after itself, so each run looks for its output's temporaries: one of this machine whose
//! process has ended is removed, any other (a live process, another machine, a name from an
//! older version) is left alone and reported.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::gguf::{special_kind, FileId, GgufFile};
use crate::{Error, Result};

/// Symbolic links followed before giving up (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Temporary files of earlier runs found beside the output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaleTemporaries {
    /// Left by a process of this machine that has ended (a killed run): removed.
    pub removed: Vec<PathBuf>,
    /// Possibly in use (a live process, another machine) or of unknown origin: left alone.
    pub kept: Vec<PathBuf>,
}

/// An output being written: the temporary file, removed on drop unless committed.
pub(crate) struct Output {
    /// The path the user gave, named in every error.
    user: PathBuf,
    /// `user` with its symbolic links followed: the path that is replaced.
    target: PathBuf,
    /// The directory of `target` ("." for a bare name).
    dir: PathBuf,
    /// The temporary file beside `target`.
    tmp: PathBuf,
    file: File,
    /// Renamed into place: nothing for drop to remove.
    committed: bool,
}

impl Output {
    /// Checks `user` as an output for a quantization of `input` and creates its temporary file.
    pub(crate) fn create(user: &Path, input: &GgufFile) -> Result<(Output, StaleTemporaries)> {
        let target = follow_links(user)?;
        let name = target
            .file_name()
            .ok_or_else(|| Error::InvalidArgument {
                what: format!("the output path '{}' names no file", user.display()),
            })?
            .to_os_string();
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // Absent, or out of reach (a missing directory or a file on the way, no search
        // permission): creating the temporary file beside it then fails with the reason.
        let existing = fs::symlink_metadata(&target).ok();
        if let Some(meta) = &existing {
            if let Some(kind) = special_kind(meta.file_type()) {
                return Err(Error::NotAFile {
                    path: user.to_path_buf(),
                    kind,
                });
            }
            if is_input(input, meta, &target) {
                return Err(Error::OutputIsInput {
                    output: user.to_path_buf(),
                    input: input.path().unwrap_or(user).to_path_buf(),
                });
            }
        }

        let stale = clean_stale(&dir, &target, &name.to_string_lossy());
        let tmp = target.with_file_name(temporary_name(&name.to_string_lossy()));
        // create_new: never opens (or follows a link planted at) an existing name.
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io("create", user, e))?;
        if let Some(meta) = &existing {
            // The replacement keeps the permissions of the file it replaces, as writing over it
            // in place would. Best effort: the data matters more than its mode bits.
            let _ = fs::set_permissions(&tmp, meta.permissions());
        }
        let output = Output {
            user: user.to_path_buf(),
            target,
            dir,
            tmp,
            file,
            committed: false,
        };
        Ok((output, stale))
    }

    /// The temporary file, to write the model into.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// The path the user gave.
    pub(crate) fn user_path(&self) -> &Path {
        &self.user
    }

    /// Makes the written file durable and moves it into place: fsync, rename over the target,
    /// fsync of the directory (which makes the rename itself durable).
    pub(crate) fn commit(mut self) -> Result<()> {
        let user = self.user.clone();
        self.file
            .sync_all()
            .map_err(|e| Error::io("sync", &user, e))?;
        // Checked again: something else may have been put at the target during the run, and a
        // rename would replace even a device node.
        if let Ok(meta) = fs::symlink_metadata(&self.target) {
            if let Some(kind) = special_kind(meta.file_type()) {
                return Err(Error::NotAFile { path: user, kind });
            }
        }
        fs::rename(&self.tmp, &self.target).map_err(|e| Error::io("rename onto", &user, e))?;
        self.committed = true;
        match File::open(&self.dir).and_then(|d| d.sync_all()) {
            Ok(()) => Ok(()),
            // Some file systems cannot sync a directory; the file itself is synced.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(Error::io("sync the directory of", &user, e)),
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: a failed run's error matters more than its clean-up, and a file left
            // here is found as stale by the next run.
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// `path` with its symbolic links followed (a dangling link gives the path it points to; a
/// path out of reach is returned as it is, for the creation beside it to say what is wrong).
fn follow_links(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = fs::read_link(&p).map_err(|e| Error::io("read the link", path, e))?;
                // A relative link is relative to the directory holding it.
                p = match p.parent() {
                    Some(dir) => dir.join(link),
                    None => link,
                };
            }
            Ok(_) | Err(_) => return Ok(p),
        }
    }
    Err(Error::io(
        "follow the links of",
        path,
        io::Error::other(format!("more than {MAX_LINKS} levels of symbolic links")),
    ))
}

/// Whether the existing file `meta` at `target` is `input`'s file.
fn is_input(input: &GgufFile, meta: &fs::Metadata, target: &Path) -> bool {
    match (input.file_id(), FileId::of(meta)) {
        (Some(a), Some(b)) => a == b,
        // Without inode numbers: the same canonical path.
        _ => match (input.path().map(fs::canonicalize), fs::canonicalize(target)) {
            (Some(Ok(a)), Ok(b)) => a == b,
            _ => false,
        },
    }
}

/// Distinguishes temporaries of one process (tests quantize on many threads at once).
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// `NAME.partial-PID-N-HOST`: unique to this process and call, and telling later runs whose
/// it is.
fn temporary_name(name: &str) -> String {
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!("{name}.partial-{}-{n}-{}", std::process::id(), host())
}

/// This machine's name as file names can hold it ("unknown" where it cannot be read): it
/// keeps runs on two machines sharing a directory from taking each other's files for stale.
fn host() -> String {
    let name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "unknown".into()
    } else {
        name
    }
}

/// Whether process `pid` of this machine has ended; None where that cannot be told (no
/// `/proc`). A pid taken again by an unrelated process reads as alive: its file is kept.
fn process_ended(pid: u32) -> Option<bool> {
    if !Path::new("/proc/self").exists() {
        return None;
    }
    Some(!Path::new(&format!("/proc/{pid}")).exists())
}

/// Removes the temporaries of `target` (named `name`, in `dir`) that killed runs of this
/// machine left, and lists the others, named as `target` is. A directory that cannot be listed
/// has nothing to report: creating the new temporary file there says what is wrong with it.
fn clean_stale(dir: &Path, target: &Path, name: &str) -> StaleTemporaries {
    let mut stale = StaleTemporaries::default();
    let Ok(entries) = fs::read_dir(dir) else {
        return stale;
    };
    let legacy = format!("{name}.partial");
    let prefix = format!("{name}.partial-");
    let (me, here) = (std::process::id(), host());
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if file_name != legacy && !file_name.starts_with(&prefix) {
            continue;
        }
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = target.with_file_name(file_name);
        // PID-N-HOST; anything else (the `NAME.partial` of older versions) is of unknown origin.
        let owner = file_name.strip_prefix(&prefix).and_then(|rest| {
            let mut parts = rest.splitn(3, '-');
            let pid = parts.next()?.parse::<u32>().ok()?;
            let _seq = parts.next()?.parse::<u64>().ok()?;
            Some((pid, parts.next()? == here))
        });
        match owner {
            // This process's own file: a run on another thread, in progress.
            Some((pid, true)) if pid == me => {}
            Some((pid, true)) if process_ended(pid) == Some(true) => match fs::remove_file(&path) {
                Ok(()) => stale.removed.push(path),
                Err(_) => stale.kept.push(path),
            },
            _ => stale.kept.push(path),
        }
    }
    stale.removed.sort();
    stale.kept.sort();
    stale
}
