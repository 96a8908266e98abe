//! Token sampling with llama.cpp's semantics and order (its default chain): repetition /
//! frequency / presence penalties over the last N tokens, then top-k, top-p, min-p (all on the
//! untempered logits), then temperature, then a draw from a seeded PRNG of our own
//! (xoshiro256** seeded through splitmix64), so the same seed gives the same tokens on every run
//! and every thread count. Temperature 0 is greedy: the highest logit after the penalties, ties
//! to the lowest id.

use crate::{Error, Result};

/// Sampling parameters. `Sampling::default()` matches llama.cpp's defaults (temperature 0.8,
/// top-k 40, top-p 0.95, min-p 0.05, no penalties, window 64).
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    /// Softmax temperature; 0 means greedy.
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches p (1.0 = all).
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one (0.0 = off).
    pub min_p: f32,
    /// Divide positive (multiply negative) logits of recent tokens by this (1.0 = off).
    pub repeat_penalty: f32,
    /// Subtract `count * frequency_penalty` from a recent token's logit (0.0 = off).
    pub frequency_penalty: f32,
    /// Subtract `presence_penalty` from a recent token's logit once (0.0 = off).
    pub presence_penalty: f32,
    /// How many of the most recent tokens the penalties look at.
    pub penalty_last_n: usize,
    /// PRNG seed.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            penalty_last_n: 64,
            seed: 0,
        }
    }
}

impl Sampling {
    /// Checks every parameter: a finite temperature of 0 or more, `top_p` in (0, 1], `min_p` in
    /// [0, 1], a finite positive `repeat_penalty`, finite frequency and presence penalties.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the first field out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, value: f32, want: &str| {
            Err(Error::InvalidArgument {
                what: format!("sampling {field} = {value}: must be {want}"),
            })
        };
        let t = self.temperature;
        if !t.is_finite() || t < 0.0 {
            return bad("temperature", t, "a finite number >= 0 (0 is greedy)");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", self.top_p, "in (0, 1] (1 is off)");
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad("min_p", self.min_p, "in [0, 1] (0 is off)");
        }
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            return bad(
                "repeat_penalty",
                self.repeat_penalty,
                "a finite number > 0 (1 is off)",
            );
        }
        if !self.frequency_penalty.is_finite() {
            return bad(
                "frequency_penalty",
                self.frequency_penalty,
                "finite (0 is off)",
            );
        }
        if !self.presence_penalty.is_finite() {
            return bad(
                "presence_penalty",
                self.presence_penalty,
                "finite (0 is off)",
            );
        }
        Ok(())
    }

    /// Greedy decoding: temperature 0, everything else off.
    pub fn greedy() -> Sampling {
        Sampling {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            ..Sampling::default()
        }
    }
}

/// xoshiro256**, seeded by splitmix64 (Blackman & Vigna).
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole sequence is determined by `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// A sampler: parameters plus the PRNG state.
#[derive(Clone, Debug)]
pub struct Sampler {
    params: Sampling,
    rng: Rng,
    /// The candidate list, kept between calls (one entry per vocabulary token).
    cand: Vec<(u32, f32)>,
}

impl Sampler {
    /// A sampler seeded with `params.seed`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a parameter is out of range ([`Sampling::validate`]).
    pub fn new(params: &Sampling) -> Result<Sampler> {
        params.validate()?;
        Ok(Sampler {
            params: params.clone(),
            rng: Rng::new(params.seed),
            cand: Vec::new(),
        })
    }

    /// Picks the next token from `logits` given the tokens seen so far (`history`, oldest
    /// first; only the last `penalty_last_n` matter).
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let recent = penalized(logits, history, &self.params);
        if self.params.temperature <= 0.0 {
            // Greedy needs no candidate list: one pass over the logits.
            return argmax_with(logits, &recent);
        }
        let mut cand = std::mem::take(&mut self.cand);
        cand.clear();
        cand.extend(logits.iter().enumerate().map(|(i, &l)| (i as u32, l)));
        for &(id, l) in &recent {
            if let Some(c) = cand.get_mut(id as usize) {
                c.1 = l;
            }
        }
        let token = self.pick(&mut cand);
        self.cand = cand;
        token
    }

    /// Samples from the (penalised) candidates at a temperature above 0.
    fn pick(&mut self, cand: &mut Vec<(u32, f32)>) -> u32 {
        let p = &self.params;
        // Highest first, ties to the lowest id. With top-k, select the k first and sort only
        // those (the same list as sorting everything, without sorting the whole vocabulary).
        let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if p.top_k > 0 && p.top_k < cand.len() {
            cand.select_nth_unstable_by(p.top_k - 1, order);
            cand.truncate(p.top_k);
        }
        cand.sort_unstable_by(order);
        if p.top_p < 1.0 {
            let probs = softmax(cand, 1.0);
            let mut cum = 0.0f64;
            let mut keep = cand.len();
            for (i, pr) in probs.iter().enumerate() {
                cum += pr;
                if cum >= f64::from(p.top_p) {
                    keep = i + 1;
                    break;
                }
            }
            cand.truncate(keep.max(1));
        }
        if p.min_p > 0.0 {
            if let Some(&(_, max)) = cand.first() {
                let floor = max + p.min_p.ln();
                let keep = cand.iter().take_while(|c| c.1 >= floor).count();
                cand.truncate(keep.max(1));
            }
        }
        let probs = softmax(cand, p.temperature);
        let u = self.rng.next_f64();
        let mut cum = 0.0f64;
        for (c, pr) in cand.iter().zip(&probs) {
            cum += pr;
            if u < cum {
                return c.0;
            }
        }
        cand.last().map_or(0, |c| c.0)
    }
}

/// llama.cpp's `penalties` sampler: for each distinct token among the last `penalty_last_n`,
/// divide a positive logit by (multiply a negative one by) `repeat_penalty`, then subtract
/// `count * frequency_penalty + presence_penalty`. Returns those tokens' new logits, by id.
fn penalized(logits: &[f32], history: &[u32], p: &Sampling) -> Vec<(u32, f32)> {
    let off = p.repeat_penalty == 1.0 && p.frequency_penalty == 0.0 && p.presence_penalty == 0.0;
    if off || p.penalty_last_n == 0 {
        return Vec::new();
    }
    let mut window = history[history.len().saturating_sub(p.penalty_last_n)..].to_vec();
    window.sort_unstable();
    let mut out: Vec<(u32, f32)> = Vec::new();
    for run in window.chunk_by(|a, b| a == b) {
        let tok = run[0];
        let Some(&l) = logits.get(tok as usize) else {
            continue;
        };
        let l = if l <= 0.0 {
            l * p.repeat_penalty
        } else {
            l / p.repeat_penalty
        };
        // As llama.cpp: logit -= count * frequency + presence.
        out.push((
            tok,
            l - (run.len() as f32 * p.frequency_penalty + p.presence_penalty),
        ));
    }
    out
}

/// The id of the highest logit, `overrides` (ascending ids) replacing some, ties to the lowest
/// id.
fn argmax_with(logits: &[f32], overrides: &[(u32, f32)]) -> u32 {
    let mut next = overrides.iter().peekable();
    let mut best: Option<(u32, f32)> = None;
    for (i, &raw) in logits.iter().enumerate() {
        let l = match next.peek() {
            Some(&&(id, v)) if id as usize == i => {
                next.next();
                v
            }
            _ => raw,
        };
        match best {
            Some(b) if l <= b.1 => {}
            _ => best = Some((i as u32, l)),
        }
    }
    best.map_or(0, |b| b.0)
}

/// Probabilities of the candidates at a temperature (sum in f64 for stability).
fn softmax(cand: &[(u32, f32)], temperature: f32) -> Vec<f64> {
    let max = cand.iter().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max);
    let t = f64::from(temperature);
    let exps: Vec<f64> = cand
        .iter()
        .map(|c| ((f64::from(c.1) - f64::from(max)) / t).exp())
        .collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_max_and_breaks_ties_low() {
        let mut s = Sampler::new(&Sampling::greedy()).unwrap();
        assert_eq!(s.sample(&[0.0, 3.0, 1.0, 3.0], &[]), 1);
    }

    #[test]
    fn repeat_penalty_follows_llama_cpp_sign_rule() {
        // Token 1 (logit 3.0) seen: 3.0/2 = 1.5 < 2.0 so token 2 wins. Token 0 (-1.0) seen: -2.0.
        let p = Sampling {
            repeat_penalty: 2.0,
            ..Sampling::greedy()
        };
        let pen = penalized(&[-1.0, 3.0, 2.0], &[1, 0, 1], &p);
        assert_eq!(pen, vec![(0, -2.0), (1, 1.5)]);
        let mut s = Sampler::new(&p).unwrap();
        assert_eq!(s.sample(&[-1.0, 3.0, 2.0], &[1]), 2);
    }

    #[test]
    fn greedy_scan_equals_the_argmax_of_the_penalised_list() {
        let mut rng = Rng::new(9);
        for round in 0..200 {
            let n = 1 + (rng.next_u64() % 40) as usize;
            // Few distinct values, so ties happen.
            let logits: Vec<f32> = (0..n).map(|_| (rng.next_u64() % 7) as f32 - 3.0).collect();
            let history: Vec<u32> = (0..rng.next_u64() % 12)
                .map(|_| (rng.next_u64() % n as u64) as u32)
                .collect();
            let p = Sampling {
                repeat_penalty: 1.5,
                frequency_penalty: 0.25,
                presence_penalty: -0.5,
                ..Sampling::greedy()
            };
            let mut full: Vec<(u32, f32)> = logits
                .iter()
                .enumerate()
                .map(|(i, &l)| (i as u32, l))
                .collect();
            for (id, l) in penalized(&logits, &history, &p) {
                full[id as usize].1 = l;
            }
            let want = full
                .iter()
                .fold(None::<(u32, f32)>, |b, &(id, l)| match b {
                    Some(b) if l <= b.1 => Some(b),
                    _ => Some((id, l)),
                })
                .unwrap()
                .0;
            let got = Sampler::new(&p).unwrap().sample(&logits, &history);
            assert_eq!(got, want, "round {round}");
        }
    }

    #[test]
    fn frequency_and_presence_penalties_subtract() {
        let p = Sampling {
            frequency_penalty: 0.5,
            presence_penalty: 0.25,
            ..Sampling::greedy()
        };
        let pen = penalized(&[1.0, 1.0], &[0, 0, 0], &p);
        assert_eq!(pen, vec![(0, 1.0 - 1.5 - 0.25)]);
    }

    #[test]
    fn window_limits_penalties_to_recent_tokens() {
        let p = Sampling {
            presence_penalty: 1.0,
            penalty_last_n: 1,
            ..Sampling::greedy()
        };
        let pen = penalized(&[0.0, 0.0], &[0, 1], &p);
        assert_eq!(pen, vec![(1, -1.0)]);
    }

    #[test]
    fn top_k_one_is_greedy_whatever_the_seed() {
        let logits = [0.1, 2.0, 1.9, -3.0];
        for seed in 0..20 {
            let p = Sampling {
                temperature: 5.0,
                top_k: 1,
                seed,
                ..Sampling::default()
            };
            assert_eq!(Sampler::new(&p).unwrap().sample(&logits, &[]), 1);
        }
    }

    #[test]
    fn min_p_and_top_p_cut_the_tail() {
        // p(2) = e^-10 relative to the top: below min_p 0.05, never drawn.
        let logits = [0.0, 0.0, -10.0];
        let p = Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.05,
            ..Sampling::default()
        };
        let mut s = Sampler::new(&p).unwrap();
        assert!((0..200).all(|_| s.sample(&logits, &[]) != 2));
        // top_p 0.5 over two equal tokens keeps only the first (lowest id).
        let p = Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.5,
            min_p: 0.0,
            ..Sampling::default()
        };
        let mut s = Sampler::new(&p).unwrap();
        assert!((0..200).all(|_| s.sample(&[1.0, 1.0], &[]) == 0));
    }

    #[test]
    fn same_seed_same_draws_and_both_tokens_appear() {
        let logits = [1.0, 1.0, 1.0, 1.0];
        let p = Sampling {
            temperature: 1.0,
            seed: 7,
            ..Sampling::default()
        };
        let a: Vec<u32> = {
            let mut s = Sampler::new(&p).unwrap();
            (0..64).map(|_| s.sample(&logits, &[])).collect()
        };
        let b: Vec<u32> = {
            let mut s = Sampler::new(&p).unwrap();
            (0..64).map(|_| s.sample(&logits, &[])).collect()
        };
        assert_eq!(a, b);
        assert!((0..4).all(|t| a.contains(&t)), "{a:?}");
    }

    #[test]
    fn out_of_range_parameters_are_refused_by_name() {
        let cases: [(&str, Sampling); 9] = [
            (
                "temperature",
                Sampling {
                    temperature: f32::NAN,
                    ..Sampling::default()
                },
            ),
            (
                "temperature",
                Sampling {
                    temperature: f32::INFINITY,
                    ..Sampling::default()
                },
            ),
            (
                "temperature",
                Sampling {
                    temperature: -0.5,
                    ..Sampling::default()
                },
            ),
            (
                "top_p",
                Sampling {
                    top_p: 5.0,
                    ..Sampling::default()
                },
            ),
            (
                "top_p",
                Sampling {
                    top_p: -1.0,
                    ..Sampling::default()
                },
            ),
            (
                "top_p",
                Sampling {
                    top_p: 0.0,
                    ..Sampling::default()
                },
            ),
            (
                "min_p",
                Sampling {
                    min_p: 2.0,
                    ..Sampling::default()
                },
            ),
            (
                "repeat_penalty",
                Sampling {
                    repeat_penalty: 0.0,
                    ..Sampling::default()
                },
            ),
            (
                "frequency_penalty",
                Sampling {
                    frequency_penalty: f32::NAN,
                    ..Sampling::default()
                },
            ),
        ];
        for (field, params) in cases {
            match Sampler::new(&params) {
                Err(Error::InvalidArgument { what }) => assert!(what.contains(field), "{what}"),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert!(Sampler::new(&Sampling::default()).is_ok());
        assert!(Sampler::new(&Sampling::greedy()).is_ok());
    }

    #[test]
    fn xoshiro_reference_first_output() {
        // splitmix64(0) first output is 0xe220a8397b1dcdaf (Vigna's reference); xoshiro256**'s
        // first output is rotl(s1 * 5, 7) * 9 of the seeded state.
        let r = Rng::new(0);
        assert_eq!(r.s[0], 0xe220_a839_7b1d_cdaf);
        let mut r2 = r.clone();
        assert_eq!(
            r2.next_u64(),
            r.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9)
        );
    }
}
