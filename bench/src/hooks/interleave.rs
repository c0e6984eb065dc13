//! Measuring several variants side by side. On a machine shared with other work the load changes during a
//! run; measuring one variant after another would let that change show up as a difference between them.
//! So every variant is warmed up, then measured in rounds, each round running a slice of every variant:
//! a change in load affects them all alike.

use crate::stats::{Samples, fmt_us};
use std::time::{Duration, Instant};

/// Rounds each variant's events are spread over.
const ROUNDS: usize = 10;
/// Warm-up events per variant (also how its per-event time is estimated).
const WARMUP: usize = 300;
/// Fewest events measured per variant, however slow.
const MIN_EVENTS: usize = 1_000;
/// Most events measured per variant, however fast.
const MAX_EVENTS: usize = 50_000;

/// Runs `n` events and returns their times.
type Runner<'a> = Box<dyn FnMut(usize) -> anyhow::Result<Samples> + 'a>;

/// One way of running the benchmark's events.
pub struct Variant<'a> {
    label: String,
    run: Runner<'a>,
}

impl<'a> Variant<'a> {
    /// A variant timed here, one event at a time; `event` gets a new event id (from 1) each time. A failed
    /// event (a call preempted past its time budget, say) is kept as a sample and counted.
    pub fn per_event(label: &str, event: impl FnMut(u64) -> anyhow::Result<()> + 'a) -> Self {
        Self::per_event_prepared(label, || {}, event)
    }

    /// [`Variant::per_event`] with `prepare` run before each event, outside its time (to leave the caches
    /// cold, say).
    pub fn per_event_prepared(
        label: &str,
        mut prepare: impl FnMut() + 'a,
        mut event: impl FnMut(u64) -> anyhow::Result<()> + 'a,
    ) -> Self {
        let mut id = 0;
        Variant {
            label: label.to_owned(),
            run: Box::new(move |n| {
                let mut samples = Samples::with_capacity(n);
                for _ in 0..n {
                    id += 1;
                    prepare();
                    let start = Instant::now();
                    let result = event(id);
                    samples.push(start.elapsed());
                    if let Err(e) = result {
                        samples.failed += 1;
                        samples
                            .first_failure
                            .get_or_insert_with(|| format!("{e:#}"));
                    }
                }
                Ok(samples)
            }),
        }
    }

    /// A variant that times its own events (the Extism process): `run(n)` runs `n` and returns their times.
    pub fn batched(label: &str, run: impl FnMut(usize) -> anyhow::Result<Samples> + 'a) -> Self {
        Variant {
            label: label.to_owned(),
            run: Box::new(run),
        }
    }
}

/// Warms every variant up, then measures each for about `budget` in all, interleaved in rounds. Returns
/// each variant's samples, or why it failed (an error, or more than 1% of its events failing).
pub fn interleave(
    mut variants: Vec<Variant<'_>>,
    budget: Duration,
) -> Vec<anyhow::Result<Samples>> {
    let mut results: Vec<anyhow::Result<Samples>> = Vec::new();
    let mut per_round = Vec::new();
    for v in &mut variants {
        let start = Instant::now();
        let warm = (v.run)(WARMUP).and_then(|s| {
            if s.failed > 10 {
                anyhow::bail!(
                    "{} of {WARMUP} warm-up events failed: {}",
                    s.failed,
                    s.first_failure.unwrap_or_default()
                )
            }
            Ok(s)
        });
        let per_event = start.elapsed().as_secs_f64() / WARMUP as f64;
        let n =
            ((budget.as_secs_f64() / per_event.max(1e-9)) as usize).clamp(MIN_EVENTS, MAX_EVENTS);
        per_round.push(n.div_ceil(ROUNDS));
        results.push(warm.map(|_| Samples::default()));
    }
    for _ in 0..ROUNDS {
        for (i, v) in variants.iter_mut().enumerate() {
            let Ok(total) = &mut results[i] else { continue };
            match (v.run)(per_round[i]) {
                Ok(samples) => total.extend(samples),
                Err(e) => results[i] = Err(e.context(v.label.clone())),
            }
        }
    }
    for (v, result) in variants.iter().zip(&mut results) {
        if let Ok(s) = result {
            if s.failed > s.len() / 100 {
                *result = Err(anyhow::anyhow!(
                    "{}: {} of {} events failed, first: {}",
                    v.label,
                    s.failed,
                    s.len(),
                    s.first_failure.clone().unwrap_or_default()
                ));
                continue;
            }
            eprintln!(
                "  {}: p50 {} µs, p99 {} µs ({} events{})",
                v.label,
                fmt_us(s.p50()),
                fmt_us(s.p99()),
                s.len(),
                super::failures(s)
            );
        }
    }
    results
}
