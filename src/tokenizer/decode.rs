//! Token ids back to bytes (llama.cpp's `llama_vocab::impl::detokenize` and `token_to_piece`).

use super::vocab::{attr, Vocab};
use crate::{Error, Result};

/// Appends the piece of `id`: special (control / unknown) tokens render as their text only
/// when `render_special`; user-defined tokens always do. None (and nothing appended) for an id
/// out of range.
pub fn write_piece(vocab: &Vocab, id: u32, render_special: bool, out: &mut Vec<u8>) -> Option<()> {
    if id as usize >= vocab.n_tokens() {
        return None;
    }
    if render_special || vocab.attr(id) & (attr::UNKNOWN | attr::CONTROL) == 0 {
        vocab.push_piece(id, out);
    }
    Some(())
}

/// The error for an id outside the vocabulary.
pub fn bad_id(vocab: &Vocab, id: u32) -> Error {
    Error::Tokenizer {
        what: format!(
            "token id {id} is out of range (vocabulary has {} tokens)",
            vocab.n_tokens()
        ),
    }
}

/// Which ids take part and whether the first piece loses one leading space: llama.cpp drops a
/// leading BOS (and then keeps the space) / trailing EOS with `remove_special` when the vocab
/// adds them, and strips one space from the first piece when it adds a space prefix.
pub fn plan<'a>(vocab: &Vocab, ids: &'a [u32], remove_special: bool) -> (&'a [u32], bool) {
    let mut ids = ids;
    let mut remove_space = vocab.add_space_prefix;
    if remove_special && vocab.add_bos {
        if let (Some(&first), Some(bos)) = (ids.first(), vocab.special.bos) {
            if first == bos {
                remove_space = false;
                ids = ids.get(1..).unwrap_or(&[]);
            }
        }
    }
    if remove_special && vocab.add_eos {
        if let (Some(&last), Some(eos)) = (ids.last(), vocab.special.eos) {
            if last == eos {
                ids = ids.get(..ids.len() - 1).unwrap_or(&[]);
            }
        }
    }
    (ids, remove_space)
}

/// Appends the piece of `id`, without one leading space when `strip_space`.
pub fn push_piece(
    vocab: &Vocab,
    id: u32,
    render_special: bool,
    strip_space: bool,
    out: &mut Vec<u8>,
) -> Result<()> {
    let start = out.len();
    write_piece(vocab, id, render_special, out).ok_or_else(|| bad_id(vocab, id))?;
    if strip_space && out.get(start) == Some(&b' ') {
        out.remove(start);
    }
    Ok(())
}

/// The full detokenization.
pub fn detokenize(
    vocab: &Vocab,
    ids: &[u32],
    remove_special: bool,
    render_special: bool,
) -> Result<Vec<u8>> {
    let (ids, mut remove_space) = plan(vocab, ids, remove_special);
    let mut out = Vec::new();
    for &id in ids {
        push_piece(vocab, id, render_special, remove_space, &mut out)?;
        remove_space = false;
    }
    if vocab.clean_spaces {
        clean_spaces(&mut out);
    }
    Ok(out)
}

/// llama.cpp's `clean_spaces` post-processing, three in-place passes with its exact quirks:
/// " ?", " !", " .", " ," lose the space; " ' " loses both spaces (the second one is overwritten
/// with NUL and then skipped); " 's", " 'm", " 're", " 've" lose the space.
pub fn clean_spaces(text: &mut Vec<u8>) {
    let get = |t: &[u8], i: usize| t.get(i).copied().unwrap_or(0);

    // Pass 1: space before ?!.,
    let total1 = text.len();
    let mut total = usize::from(total1 > 0);
    for i in 1..total1 {
        let x = get(text, i);
        if get(text, i - 1) == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            total -= 1;
        }
        set(text, total, x);
        total += 1;
    }

    // Pass 2: a single apostrophe between spaces.
    let total2 = total;
    total = usize::from(total2 > 0);
    let mut i = 1;
    while i < total2 {
        let x = get(text, i);
        if x == b'\'' && i + 1 < total2 && get(text, i - 1) == b' ' && get(text, i + 1) == b' ' {
            total -= 1;
            i += 1;
            set(text, i, 0);
        }
        set(text, total, x);
        total += 1;
        i += 1;
    }

    // Pass 3: contractions.
    let total3 = total;
    total = usize::from(total3 > 0);
    for i in 1..total3 {
        let x = get(text, i);
        if get(text, i - 1) == b' ' && x == b'\'' && i + 1 < total3 {
            let x1 = get(text, i + 1);
            if x1 == b's' || x1 == b'm' {
                total -= 1;
            } else if x1 != b't' && x1 != b'd' && i + 2 < total3 {
                let x2 = get(text, i + 2);
                if (x1 == b'r' || x1 == b'v') && x2 == b'e' {
                    total -= 1;
                }
            }
        }
        set(text, total, x);
        total += 1;
    }
    text.truncate(total);
}

fn set(t: &mut [u8], i: usize, x: u8) {
    if let Some(slot) = t.get_mut(i) {
        *slot = x;
    }
}

#[cfg(test)]
mod tests {
    use super::clean_spaces;

    fn clean(s: &str) -> String {
        let mut v = s.as_bytes().to_vec();
        clean_spaces(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    }

    // Expected values follow the three passes of llama.cpp's detokenize, by hand.
    #[test]
    fn clean_spaces_passes() {
        assert_eq!(clean("Hello , world !"), "Hello, world!");
        assert_eq!(
            clean("it 's , we 're , I 'm , don 't"),
            "it's, we're, I'm, don 't"
        );
        assert_eq!(clean("a ' b"), "a'b");
        // The first match overwrites the space after it with NUL and skips it, so the second
        // apostrophe sees NUL on its left and keeps its right space.
        assert_eq!(clean("a ' ' b"), "a'' b");
        assert_eq!(clean(""), "");
        assert_eq!(clean(" ."), ".");
    }
}
