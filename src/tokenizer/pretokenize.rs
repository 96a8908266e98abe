//! Pre-tokenizers of GPT-2 style BPE vocabularies: split a text into words before merging.
//!
//! llama.cpp (src/llama-vocab.cpp `llm_tokenizer_bpe`) gives each `tokenizer.ggml.pre` name a
//! list of regexes applied one after the other, each splitting the pieces the previous one made.
//! Its unicode.cpp runs two of them through hand-written splitters (the GPT-2 and the Llama 3
//! regex) and every other one through `std::regex` on a "collapsed" text, where each non-ASCII
//! code point is replaced by one byte standing for its category. We have no regex engine at run
//! time, so each regex is a hand-written matcher here, written to give exactly what `std::regex`
//! (ECMAScript, leftmost match, ordered alternation) gives on the collapsed text, including
//! its quirks (`\s` is ASCII whitespace plus 0x0B, which stands for all other whitespace).

use super::unicode::{collapse, flags, to_lower, Flags};

/// The pre-tokenizer named by `tokenizer.ggml.pre`, by the regex list llama.cpp uses for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreTokenizer {
    /// `default` (and a missing name): punctuation runs, GPT-2, digit runs, digit triples.
    Default,
    /// `gpt-2` and friends: the GPT-2 regex alone.
    Gpt2,
    /// `llama3`, `llama-bpe`, ...: the Llama 3 regex (digits in groups of up to 3).
    Llama3,
    /// `smollm`, `starcoder`, ...: single digits, then the GPT-2 regex.
    Smollm,
    /// `qwen2`, `stablelm2`, ...: the Llama 3 regex with single digits, through `std::regex`.
    Qwen2,
    /// `tekken` (Mistral Nemo, Small 3, Ministral): words cut where lower case turns to upper
    /// case, single digits, through `std::regex` (see [`match_tekken`] for its quirks).
    Tekken,
    /// `gpt-4o` (o200k: gpt-oss), `llama4`, `minimax-m2`, ...: tekken's regex with English
    /// contractions kept on the word and digits in runs of up to 3 (see [`match_gpt4o`]).
    Gpt4o,
}

/// What a `tokenizer.ggml.pre` name sets besides its regexes (llama-vocab.cpp `load`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreSettings {
    pub pre: PreTokenizer,
    /// Post-process decoded text (" ." -> ".", " 's" -> "'s", ...).
    pub clean_spaces: bool,
    /// A word that is a whole token is emitted as that token, without merging.
    pub ignore_merges: bool,
    /// add_bos before metadata is read (llama3 family: true).
    pub add_bos: bool,
}

/// llama.cpp's settings for a `tokenizer.ggml.pre` value (None: missing, which llama.cpp treats
/// as `default`), for the names whose regex lists are implemented here; None is returned for any
/// other name.
pub fn settings_for(name: Option<&str>) -> Option<PreSettings> {
    let s = |pre, clean_spaces, ignore_merges, add_bos| PreSettings {
        pre,
        clean_spaces,
        ignore_merges,
        add_bos,
    };
    use PreTokenizer::*;
    Some(match name.unwrap_or("default") {
        "default" => s(Default, true, false, false),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => s(Llama3, true, true, true),
        "dbrx" | "smaug-bpe" => s(Llama3, true, false, false),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "a.x-4.0" | "mellum" | "modern-bert" | "jina-v1-en" | "jina-v2-code" | "roberta-bpe"
        | "mpt" | "olmo" | "jais" | "exaone4" => s(Gpt2, true, false, false),
        "trillion" | "granite-docling" => s(Gpt2, false, false, false),
        "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => {
            s(Smollm, true, false, false)
        }
        "smollm" | "command-r" => s(Smollm, false, false, false),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "hunyuan" | "solar-open" => {
            s(Qwen2, false, false, false)
        }
        "megrez" | "stablelm2" => s(Qwen2, true, false, false),
        "tekken" => s(Tekken, false, true, true),
        // LLAMA_VOCAB_PRE_TYPE_GPT4O, and MINIMAX_M2, which has the same regex.
        "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => s(Gpt4o, false, false, false),
        _ => return None,
    })
}

impl PreTokenizer {
    /// Splits `cpts` into words; returns the length of each word in code points, in order, summing
    /// to `cpts.len()`.
    pub fn split(self, cpts: &[u32]) -> Vec<usize> {
        let whole = if cpts.is_empty() {
            vec![]
        } else {
            vec![cpts.len()]
        };
        match self {
            PreTokenizer::Gpt2 => split_gpt2(cpts, &whole),
            PreTokenizer::Llama3 => split_llama3(cpts, &whole),
            PreTokenizer::Smollm => {
                let c = collapsed(cpts);
                let digits = split_regex(&c, &whole, match_one_number);
                split_gpt2(cpts, &digits)
            }
            PreTokenizer::Qwen2 => split_regex(&collapsed(cpts), &whole, match_qwen2),
            PreTokenizer::Tekken => split_regex(&collapsed(cpts), &whole, match_tekken),
            PreTokenizer::Gpt4o => split_regex(&collapsed(cpts), &whole, match_gpt4o),
            PreTokenizer::Default => {
                let c = collapsed(cpts);
                let a = split_regex(&c, &whole, match_punct_run);
                let b = split_gpt2(cpts, &a);
                let d = split_regex(&c, &b, match_number_run);
                split_regex(&c, &d, match_ascii_digit_triple)
            }
        }
    }
}

fn collapsed(cpts: &[u32]) -> Vec<u8> {
    cpts.iter().map(|&c| collapse(c)).collect()
}

/// Reads one chunk [ini, end) the way llama.cpp's custom splitters do: positions outside the
/// chunk read as "out of range" (code point u32::MAX, all-zero flags).
struct Chunk<'a> {
    cpts: &'a [u32],
    ini: usize,
    end: usize,
}

const OUT_OF_RANGE: u32 = u32::MAX;

impl Chunk<'_> {
    fn cpt(&self, pos: usize) -> u32 {
        if (self.ini..self.end).contains(&pos) {
            self.cpts.get(pos).copied().unwrap_or(OUT_OF_RANGE)
        } else {
            OUT_OF_RANGE
        }
    }
    fn flags(&self, pos: usize) -> Flags {
        match self.cpt(pos) {
            OUT_OF_RANGE => Flags::default(),
            c => flags(c),
        }
    }
}

/// Collects word lengths: `add(end)` closes the word that began at the previous end.
struct Words {
    out: Vec<usize>,
    prev_end: usize,
}

impl Words {
    fn add(&mut self, end: usize) -> usize {
        let len = end.saturating_sub(self.prev_end);
        if len > 0 {
            self.out.push(len);
        }
        self.prev_end = end;
        len
    }
}

/// Iterates the chunks given by `offsets` (lengths) over `0..total`.
fn chunks(offsets: &[usize]) -> impl Iterator<Item = (usize, usize)> + '_ {
    offsets.iter().scan(0usize, |start, &len| {
        let ini = *start;
        *start += len;
        Some((ini, ini + len))
    })
}

fn is_contraction_tail(next: u32, next_next: u32) -> Option<usize> {
    let ch = |c: char| u32::from(c);
    if [ch('s'), ch('t'), ch('m'), ch('d')].contains(&next) {
        return Some(2);
    }
    let pair = (next, next_next);
    if pair == (ch('r'), ch('e')) || pair == (ch('v'), ch('e')) || pair == (ch('l'), ch('l')) {
        return Some(3);
    }
    None
}

/// llama.cpp's `unicode_regex_split_custom_gpt2`, for
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
fn split_gpt2(cpts: &[u32], offsets: &[usize]) -> Vec<usize> {
    let mut words = Words {
        out: Vec::with_capacity(offsets.len()),
        prev_end: 0,
    };
    for (ini, end) in chunks(offsets) {
        let c = Chunk { cpts, ini, end };
        words.prev_end = ini;
        let mut pos = ini;
        while pos < end {
            let cpt = c.cpt(pos);
            let f = c.flags(pos);

            if cpt == u32::from(b'\'') && pos + 1 < end {
                // The two-letter forms only when a third code point is in the chunk.
                let next_next = if pos + 2 < end {
                    c.cpt(pos + 2)
                } else {
                    OUT_OF_RANGE
                };
                if let Some(n) = is_contraction_tail(c.cpt(pos + 1), next_next) {
                    pos += words.add(pos + n);
                    continue;
                }
            }

            let space = cpt == u32::from(b' ');
            let mut f2 = if space { c.flags(pos + 1) } else { f };
            if f2.is_letter() {
                pos += usize::from(space);
                while f2.is_letter() {
                    pos += 1;
                    f2 = c.flags(pos);
                }
                words.add(pos);
                continue;
            }
            if f2.is_number() {
                pos += usize::from(space);
                while f2.is_number() {
                    pos += 1;
                    f2 = c.flags(pos);
                }
                words.add(pos);
                continue;
            }
            let other =
                |g: Flags| !(g.is_whitespace() || g.is_letter() || g.is_number()) && g.is_defined();
            if other(f2) {
                pos += usize::from(space);
                while other(f2) {
                    pos += 1;
                    f2 = c.flags(pos);
                }
                words.add(pos);
                continue;
            }

            let mut n_ws = 0;
            while c.flags(pos + n_ws).is_whitespace() {
                n_ws += 1;
            }
            if n_ws > 1 && c.cpt(pos + n_ws) != OUT_OF_RANGE {
                pos += n_ws - 1;
                words.add(pos);
                continue;
            }
            if n_ws > 0 {
                pos += n_ws;
                words.add(pos);
                continue;
            }
            pos += 1;
            words.add(pos);
        }
    }
    words.out
}

/// llama.cpp's `unicode_regex_split_custom_llama3`, for
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
fn split_llama3(cpts: &[u32], offsets: &[usize]) -> Vec<usize> {
    let cr = u32::from(b'\r');
    let lf = u32::from(b'\n');
    let mut words = Words {
        out: Vec::with_capacity(offsets.len()),
        prev_end: 0,
    };
    for (ini, end) in chunks(offsets) {
        let c = Chunk { cpts, ini, end };
        words.prev_end = ini;
        let mut pos = ini;
        while pos < end {
            let cpt = c.cpt(pos);
            let f = c.flags(pos);

            if cpt == u32::from(b'\'') && pos + 1 < end {
                let next = to_lower(c.cpt(pos + 1));
                let next_next = if pos + 2 < end {
                    to_lower(c.cpt(pos + 2))
                } else {
                    OUT_OF_RANGE
                };
                if let Some(n) = is_contraction_tail(next, next_next) {
                    pos += words.add(pos + n);
                    continue;
                }
            }

            if !(cpt == cr || cpt == lf || f.is_number())
                && (f.is_letter() || c.flags(pos + 1).is_letter())
            {
                pos += 1;
                while c.flags(pos).is_letter() {
                    pos += 1;
                }
                words.add(pos);
                continue;
            }

            if f.is_number() {
                let mut group = pos;
                while c.flags(pos).is_number() {
                    pos += 1;
                    if pos - group >= 3 {
                        words.add(pos);
                        group = pos;
                    }
                }
                words.add(pos);
                continue;
            }

            let space = cpt == u32::from(b' ');
            let mut f2 = if space { c.flags(pos + 1) } else { f };
            let other = |g: Flags| !(g.is_whitespace() || g.is_letter() || g.is_number());
            // llama.cpp tests `flags` (not `flags2`) for being defined here: a trailing lone space
            // enters this branch and becomes its own word.
            if other(f2) && f.is_defined() {
                pos += usize::from(space);
                while other(f2) && f2.is_defined() {
                    pos += 1;
                    f2 = c.flags(pos);
                }
                while c.cpt(pos) == cr || c.cpt(pos) == lf {
                    pos += 1;
                }
                words.add(pos);
                continue;
            }

            let mut n_ws = 0;
            let mut last_end_r_or_n = 0;
            while c.flags(pos + n_ws).is_whitespace() {
                let c2 = c.cpt(pos + n_ws);
                if c2 == cr || c2 == lf {
                    last_end_r_or_n = pos + n_ws + 1;
                }
                n_ws += 1;
            }
            if last_end_r_or_n > 0 {
                pos = last_end_r_or_n;
                words.add(pos);
                continue;
            }
            if n_ws > 1 && c.cpt(pos + n_ws) != OUT_OF_RANGE {
                pos += n_ws - 1;
                words.add(pos);
                continue;
            }
            if n_ws > 0 {
                pos += n_ws;
                words.add(pos);
                continue;
            }
            pos += 1;
            words.add(pos);
        }
    }
    words.out
}

/// A regex over collapsed text: the end of the match that starts at `pos` (the chunk ends at
/// `end`), or None. Matches are never empty.
type Matcher = fn(&[u8], usize, usize) -> Option<usize>;

/// What `std::regex_iterator` does in unicode.cpp's `unicode_regex_split_stl`: in each chunk,
/// repeatedly find the leftmost match; the text between matches becomes a word of its own.
fn split_regex(text: &[u8], offsets: &[usize], m: Matcher) -> Vec<usize> {
    let mut out = Vec::with_capacity(offsets.len());
    for (ini, end) in chunks(offsets) {
        let mut unmatched_from = ini;
        let mut pos = ini;
        while pos < end {
            match m(text, pos, end) {
                Some(e) if e > pos && e <= end => {
                    if pos > unmatched_from {
                        out.push(pos - unmatched_from);
                    }
                    out.push(e - pos);
                    pos = e;
                    unmatched_from = e;
                }
                _ => pos += 1,
            }
        }
        if end > unmatched_from {
            out.push(end - unmatched_from);
        }
    }
    out
}

// Character classes of collapsed text, as std::regex<char> in the "C" locale sees them.

/// `\s`: isspace() in the C locale (0x0B also stands for every non-ASCII whitespace).
fn is_s(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}
/// `\p{L}` collapsed: `[\xD2A-Za-z]`.
fn is_l(b: u8) -> bool {
    b == 0xD2 || b.is_ascii_alphabetic()
}
/// `\p{N}` collapsed: `[\xD10-9]`.
fn is_n(b: u8) -> bool {
    b == 0xD1 || b.is_ascii_digit()
}
/// `\p{P}` collapsed: 0xD3 and ASCII punctuation `!-#%-*,-/:;?@[-]_{}`.
fn is_p(b: u8) -> bool {
    b == 0xD3
        || matches!(b, 0x21..=0x23 | 0x25..=0x2A | 0x2C..=0x2F | 0x3A..=0x3B | 0x3F..=0x40 | 0x5B..=0x5D | 0x5F | 0x7B | 0x7D)
}

fn at(text: &[u8], pos: usize, end: usize) -> Option<u8> {
    if pos < end {
        text.get(pos).copied()
    } else {
        None
    }
}

/// End of the run of bytes satisfying `pred` starting at `pos`.
fn run(text: &[u8], mut pos: usize, end: usize, pred: impl Fn(u8) -> bool) -> usize {
    while at(text, pos, end).is_some_and(&pred) {
        pos += 1;
    }
    pos
}

/// `\p{N}`
fn match_one_number(text: &[u8], pos: usize, end: usize) -> Option<usize> {
    at(text, pos, end).filter(|&b| is_n(b)).map(|_| pos + 1)
}

/// `\p{N}+`
fn match_number_run(text: &[u8], pos: usize, end: usize) -> Option<usize> {
    let e = run(text, pos, end, is_n);
    (e > pos).then_some(e)
}

/// `[\p{P}\$\+<=>\^~\|]+`
fn match_punct_run(text: &[u8], pos: usize, end: usize) -> Option<usize> {
    let e = run(text, pos, end, |b| is_p(b) || b"$+<=>^~|".contains(&b));
    (e > pos).then_some(e)
}

/// `[0-9][0-9][0-9]` (run by llama.cpp through std::wregex on the code points, where only ASCII
/// digits match: the same on collapsed text).
fn match_ascii_digit_triple(text: &[u8], pos: usize, end: usize) -> Option<usize> {
    let digits = run(text, pos, (pos + 3).min(end), |b| b.is_ascii_digit());
    (digits == pos + 3).then_some(digits)
}

/// `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|
///  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+` (qwen2), alternatives tried in order.
fn match_qwen2(text: &[u8], pos: usize, end: usize) -> Option<usize> {
    let c0 = at(text, pos, end)?;
    let c1 = at(text, pos + 1, end);
    if let Some(e) = match_contraction(text, pos, end) {
        return Some(e);
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+ : the optional class is tried first, then skipped.
    if !matches!(c0, b'\r' | b'\n') && !is_l(c0) && !is_n(c0) && c1.is_some_and(is_l) {
        return Some(run(text, pos + 1, end, is_l));
    }
    if is_l(c0) {
        return Some(run(text, pos, end, is_l));
    }
    if is_n(c0) {
        return Some(pos + 1);
    }
    match_other_run(text, pos, end, |b| b == b'\r' || b == b'\n')
        .or_else(|| match_whitespace(text, pos, end))
}

/// `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])`: the English contractions, in
/// either case (ASCII letters only, as written), for qwen2 and gpt-4o.
fn match_contraction(text: &[u8], pos: usize, end: usize) -> Option<usize> {
    if at(text, pos, end)? != b'\'' {
        return None;
    }
    let lower = |i| at(text, i, end).map(|b| b.to_ascii_lowercase());
    match (lower(pos + 1), lower(pos + 2)) {
        (Some(b's' | b't' | b'm' | b'd'), _) => Some(pos + 2),
        (Some(b'r' | b'v'), Some(b'e')) | (Some(b'l'), Some(b'l')) => Some(pos + 3),
        _ => None,
    }
}

/// ` ?[^\s\p{L}\p{N}]+` followed by a run of `tail` (`[\r\n]*` or, for tekken, `[\r\n/]*`).
fn match_other_run(text: &[u8], pos: usize, end: usize, tail: fn(u8) -> bool) -> Option<usize> {
    let c0 = at(text, pos, end)?;
    let other = |b: u8| !is_s(b) && !is_l(b) && !is_n(b);
    let start = if c0 == b' ' && at(text, pos + 1, end).is_some_and(other) {
        pos + 1
    } else if other(c0) {
        pos
    } else {
        return None;
    };
    let e = run(text, start, end, other);
    Some(run(text, e, end, tail))
}

/// `\s*[\r\n]+|\s+(?!\S)|\s+`, the whitespace alternatives that end qwen2's and tekken's regexes.
fn match_whitespace(text: &[u8], pos: usize, end: usize) -> Option<usize> {
    // \s*[\r\n]+ : ends after the last \r or \n of the whitespace run.
    let ws_end = run(text, pos, end, is_s);
    if let Some(last) = (pos..ws_end)
        .rev()
        .find(|&i| matches!(text.get(i), Some(b'\r' | b'\n')))
    {
        return Some(last + 1);
    }
    // \s+(?!\S) then \s+
    if ws_end > pos {
        if ws_end == end || ws_end - pos == 1 {
            return Some(ws_end);
        }
        return Some(ws_end - 1);
    }
    None
}

// Tekken. Its tokenizer.json regex has `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+`
// for a word; `std::regex` has no such classes, so llama.cpp writes an upper-case letter as
// `((?=[\p{L}])([^a-z]))` and a lower-case one as `((?=[\p{L}])([^A-Z]))`. On collapsed text
// every non-ASCII letter is the one byte 0xD2, which passes both: llama.cpp (and so this
// matcher) takes any non-ASCII letter for upper and lower case at once. Marks (0xD4) are no
// letters there, so unlike tokenizer.json they never join a word: they are "other" characters,
// like punctuation.

/// `(?=[\p{L}])([^a-z])` collapsed: 0xD2 or A-Z.
fn is_upper(b: u8) -> bool {
    is_l(b) && !b.is_ascii_lowercase()
}
/// `(?=[\p{L}])([^A-Z])` collapsed: 0xD2 or a-z.
fn is_lower(b: u8) -> bool {
    is_l(b) && !b.is_ascii_uppercase()
}

/// `[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|
///  [^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}|
///  ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+` (tekken), alternatives tried in order.
fn match_tekken(text: &[u8], pos: usize, end: usize) -> Option<usize> {
    let c0 = at(text, pos, end)?;
    let c1 = at(text, pos + 1, end);
    // Both word alternatives start with the optional class, tried first: it is taken when a
    // letter follows. Skipping it never helps (the word would then start on a non-letter), and
    // with a letter after it, one of the two alternatives always matches.
    let optional = !matches!(c0, b'\r' | b'\n') && !is_l(c0) && !is_n(c0);
    if optional && c1.is_some_and(is_l) {
        return Some(cased_word_end(text, pos + 1, end));
    }
    if is_l(c0) {
        return Some(cased_word_end(text, pos, end));
    }
    if is_n(c0) {
        return Some(pos + 1);
    }
    match_other_run(text, pos, end, |b| matches!(b, b'\r' | b'\n' | b'/'))
        .or_else(|| match_whitespace(text, pos, end))
}

/// Where tekken's word ends, for a word whose letters start at `s` (a letter).
fn cased_word_end(text: &[u8], s: usize, end: usize) -> usize {
    // First alternative, `upper* lower+`: the greedy `upper*` takes the whole upper-case run;
    // when a lower-case letter follows it, `lower+` runs from there.
    let upper_end = run(text, s, end, is_upper);
    if at(text, upper_end, end).is_some_and(is_lower) {
        return run(text, upper_end, end, is_lower);
    }
    // Otherwise `upper*` gives letters back, last first, until `lower+` can start on one: the
    // last 0xD2 of the run. `lower+` stops right after it (at an A-Z or at the run's end), so
    // "ÉCOLE" gives "É" and then "COLE".
    if let Some(last) = (s..upper_end).rev().find(|&i| text.get(i) == Some(&0xD2)) {
        return last + 1;
    }
    // Second alternative, `upper+ lower*`: an all-ASCII capital run, nothing lower case after.
    upper_end
}

// gpt-4o (o200k). llama.cpp writes its cased letters as for tekken (same quirks: a non-ASCII
// letter is upper and lower case at once, marks are no letters) and its `(?i:'s|...)` suffix as
// the character classes `'[sS]|...`. Besides that suffix, it differs from tekken only in taking
// digits in runs of up to three. No custom splitter in unicode.cpp: std::regex on collapsed text.

/// `[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|
///  [^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|
///  \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+` (gpt-4o), alternatives in order.
fn match_gpt4o(text: &[u8], pos: usize, end: usize) -> Option<usize> {
    let c0 = at(text, pos, end)?;
    let c1 = at(text, pos + 1, end);
    // The word alternatives are tekken's with an optional contraction after the letters. It
    // never changes where the letters end: the greedy letter runs succeed first (the suffix is
    // optional), so the engine never backtracks into them to reach a contraction. The suffix
    // is taken when it follows the letters: "don't" and "DON'T" are one word, "l'été" is not.
    let word = |s| {
        let e = cased_word_end(text, s, end);
        Some(match_contraction(text, e, end).unwrap_or(e))
    };
    let optional = !matches!(c0, b'\r' | b'\n') && !is_l(c0) && !is_n(c0);
    if optional && c1.is_some_and(is_l) {
        return word(pos + 1);
    }
    if is_l(c0) {
        return word(pos);
    }
    // \p{N}{1,3}, greedy: "1234567" is "123", "456", "7".
    if is_n(c0) {
        return Some(run(text, pos, (pos + 3).min(end), is_n));
    }
    match_other_run(text, pos, end, |b| matches!(b, b'\r' | b'\n' | b'/'))
        .or_else(|| match_whitespace(text, pos, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(pre: PreTokenizer, s: &str) -> Vec<String> {
        let cpts: Vec<u32> = s.chars().map(u32::from).collect();
        let mut out = Vec::new();
        let mut i = 0;
        for len in pre.split(&cpts) {
            out.push(s.chars().skip(i).take(len).collect());
            i += len;
        }
        assert_eq!(i, cpts.len());
        out
    }

    // Expected splits follow from the regexes (see each splitter's doc comment).

    #[test]
    fn gpt2_regex() {
        let w = words(PreTokenizer::Gpt2, "Hello world's  3.14 ok!!\n\n x");
        assert_eq!(
            w,
            ["Hello", " world", "'s", " ", " 3", ".", "14", " ok", "!!", "\n\n", " x"]
        );
        // \s+(?!\S) keeps the last space for the next word; trailing whitespace stays whole.
        assert_eq!(
            words(PreTokenizer::Gpt2, "a   b  "),
            ["a", "  ", " b", "  "]
        );
    }

    #[test]
    fn smollm_splits_digits_first() {
        assert_eq!(
            words(PreTokenizer::Smollm, "x 2024y"),
            ["x", " ", "2", "0", "2", "4", "y"]
        );
    }

    #[test]
    fn llama3_regex() {
        let w = words(PreTokenizer::Llama3, "I'LL pay 1234567 $5!\r\n\n  ok");
        assert_eq!(
            w,
            ["I", "'LL", " pay", " ", "123", "456", "7", " $", "5", "!\r\n\n", " ", " ok"]
        );
    }

    #[test]
    fn qwen2_regex() {
        let w = words(PreTokenizer::Qwen2, "I'LL pay 1234 ¿qué?\n\n  ok  ");
        assert_eq!(
            w,
            ["I", "'LL", " pay", " ", "1", "2", "3", "4", " ¿", "qué", "?\n\n", " ", " ok", "  "]
        );
    }

    #[test]
    fn tekken_regex() {
        // Every expected split below is also what llama.cpp's unicode.cpp gives.
        let t = |s| words(PreTokenizer::Tekken, s);
        // Words are cut where lower case turns to upper case; a capital run keeps the lower-case
        // tail that follows it.
        assert_eq!(
            t("HTTPServer iPhone McDonald's ABC"),
            ["HTTPServer", " i", "Phone", " Mc", "Donald", "'s", " ABC"]
        );
        // Single digits; punctuation takes following newlines and slashes.
        assert_eq!(
            t("x 2024, a.//\n\nb"),
            ["x", " ", "2", "0", "2", "4", ",", " a", ".//\n\n", "b"]
        );
        // A non-ASCII letter is upper and lower case at once.
        assert_eq!(t("ÉCOLE École aÄb"), ["É", "COLE", " École", " aÄb"]);
        // A mark is no letter: it is taken as the optional non-letter that may start a word.
        assert_eq!(
            t("e\u{301}te \u{301}\u{301}!"),
            ["e", "\u{301}te", " \u{301}\u{301}!"]
        );
        assert_eq!(t(" \r\n  ok  "), [" \r\n", " ", " ok", "  "]);
    }

    #[test]
    fn gpt4o_regex() {
        // Every expected split below is also what llama.cpp's unicode.cpp gives.
        let g = |s| words(PreTokenizer::Gpt4o, s);
        // Contractions in either case stay on the word before them, after tekken's case cuts.
        assert_eq!(
            g("don't DON'T You'Re McDonald's l'été"),
            ["don't", " DON'T", " You'Re", " Mc", "Donald's", " l", "'été"]
        );
        // Only one contraction, and only right after the letters.
        assert_eq!(g("it's's 1's"), ["it's", "'s", " ", "1", "'s"]);
        // Digits in runs of up to three, from the left.
        assert_eq!(g("1234567 x12345"), ["123", "456", "7", " x", "123", "45"]);
        // Tekken's quirks stay: a non-ASCII letter is upper and lower case at once.
        assert_eq!(g("ÉCOLE's aÄb"), ["É", "COLE's", " aÄb"]);
    }

    /// The strings of `pre`'s split fixture `{name}-splits.json` whose words differ from what
    /// llama.cpp's own unicode.cpp makes of them (the tokenizer corpus and the extra strings of
    /// `smollm2-{name}.json`; made by scripts/make-pre-splits.py). Token ids alone hardly see
    /// the cuts: SmolLM2's merges often rebuild the same tokens from differently cut words.
    fn words_unlike_llama_cpp(pre: PreTokenizer, name: &str) -> (Vec<String>, usize) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tokenizer/");
        let json = |name: &str| -> serde_json::Value {
            let text = std::fs::read_to_string(format!("{dir}{name}")).expect(name);
            serde_json::from_str(&text).expect(name)
        };
        let mut texts: Vec<String> = Vec::new();
        let corpus = json("corpus.json");
        let extra = json(&format!("smollm2-{name}.json"));
        let strings = corpus["strings"].as_array().expect("strings");
        let extras = extra["cases"].as_array().expect("cases");
        for v in strings.iter().chain(extras).filter_map(|c| c.get("text")) {
            texts.push(v.as_str().expect("text").to_string());
        }
        let refs = json(&format!("{name}-splits.json"));
        let cases = refs["cases"].as_array().expect("cases");
        assert_eq!(cases.len(), texts.len());
        let mut bad = Vec::new();
        for (case, text) in cases.iter().zip(&texts) {
            let want: Vec<usize> = case["words"]
                .as_array()
                .expect("words")
                .iter()
                .map(|n| n.as_u64().expect("length") as usize)
                .collect();
            let cpts: Vec<u32> = text.chars().map(u32::from).collect();
            if pre.split(&cpts) != want {
                bad.push(format!("{}: {text:?}", case["id"]));
            }
        }
        (bad, texts.len())
    }

    #[test]
    fn tekken_words_equal_llama_cpp_unicode_cpp() {
        let (bad, n) = words_unlike_llama_cpp(PreTokenizer::Tekken, "tekken");
        assert!(bad.is_empty(), "{} of {n}: {bad:#?}", bad.len());
    }

    #[test]
    fn gpt4o_words_equal_llama_cpp_unicode_cpp() {
        let (bad, n) = words_unlike_llama_cpp(PreTokenizer::Gpt4o, "gpt4o");
        assert!(bad.is_empty(), "{} of {n}: {bad:#?}", bad.len());
    }

    #[test]
    fn default_regex_chain() {
        // Punctuation runs first, then GPT-2, then number runs, then ASCII digit triples.
        let w = words(PreTokenizer::Default, "a+=b 12345,x");
        assert_eq!(w, ["a", "+=", "b", " ", "123", "45", ",", "x"]);
    }
}
