//! Sessions of finished requests, kept for the KV of their tokens: a new request takes the one
//! sharing the longest token prefix with its prompt. Bounded in bytes of KV cache; the least
//! recently used go first.

use super::evaluated_prefix;
use crate::session::OwnedSession;

/// The kept sessions.
#[derive(Debug)]
pub(super) struct PrefixCache {
    /// Oldest use first.
    entries: Vec<OwnedSession>,
    max_bytes: usize,
}

impl PrefixCache {
    pub(super) fn new(max_bytes: usize) -> Self {
        PrefixCache {
            entries: Vec::new(),
            max_bytes,
        }
    }

    /// Sessions kept.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Their KV bytes.
    pub(super) fn bytes(&self) -> usize {
        self.entries.iter().map(|s| s.kv_bytes()).sum()
    }

    /// Keeps `session` (as the most recently used), dropping the least recently used ones
    /// beyond the bound. A session that alone exceeds the bound is not kept.
    pub(super) fn put(&mut self, session: OwnedSession) {
        if session.kv_bytes() > self.max_bytes || session.n_cached() == 0 {
            return;
        }
        self.entries.push(session);
        while self.bytes() > self.max_bytes && !self.entries.is_empty() {
            self.entries.remove(0);
        }
    }

    /// The longest prefix of `prompt` that a kept session has evaluated (0 when none shares a
    /// token): what [`take_best`](Self::take_best) would give, without taking it.
    pub(super) fn best_len(&self, prompt: &[u32]) -> usize {
        self.best(prompt).map_or(0, |(_, n)| n)
    }

    /// Takes out the session whose cached tokens share the longest prefix with `prompt`, and
    /// that length; None when no session shares a token.
    pub(super) fn take_best(&mut self, prompt: &[u32]) -> Option<(OwnedSession, usize)> {
        let (i, n) = self.best(prompt)?;
        Some((self.entries.remove(i), n))
    }

    /// The index of the session whose cached tokens share the longest prefix with `prompt`,
    /// and that length; None when no session shares a token.
    fn best(&self, prompt: &[u32]) -> Option<(usize, usize)> {
        // The latest of equals: it is the most likely to be continued.
        let (i, n) = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, s)| (i, evaluated_prefix(s, prompt)))
            .max_by_key(|&(i, n)| (n, i))?;
        (n > 0).then_some((i, n))
    }
}
