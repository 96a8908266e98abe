//! Alternating A/B timing: every round runs each variant once, in an order that rotates from
//! round to round, so a neighbour's load on the shared cores falls on all variants alike; the
//! figure kept per variant is the median over rounds.

use std::time::{Duration, Instant};

use crate::setup::BoxResult;

/// One thing to time: `run` is one call (one matmul, or 512 matvecs).
pub struct Variant<'a> {
    pub run: Box<dyn FnMut() -> BoxResult<()> + 'a>,
}

/// Calls per sample are repeated until this much time has passed, so that a sample of a
/// millisecond-long call is not one scheduler tick.
const SAMPLE_WINDOW: Duration = Duration::from_millis(40);

/// Median ns per call of each variant over `rounds` rounds (after one warm-up call each).
pub fn medians(variants: &mut [Variant<'_>], rounds: usize) -> BoxResult<Vec<f64>> {
    for v in variants.iter_mut() {
        (v.run)()?;
    }
    let n = variants.len();
    let mut samples = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let start = Instant::now();
            let mut calls = 0u32;
            while calls == 0 || start.elapsed() < SAMPLE_WINDOW {
                (variants[i].run)()?;
                calls += 1;
            }
            samples[i].push(start.elapsed().as_nanos() as f64 / f64::from(calls));
        }
    }
    Ok(samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect())
}
