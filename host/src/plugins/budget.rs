//! The time budget of one plugin call, counted in the CPU time of the thread that runs it, under a larger
//! wall-clock safety cap.
//!
//! ## Why CPU time
//! A budget counted in wall-clock time measures the machine's load as much as the plugin: a filter that
//! needs 40 ms of its 50 ms ran out of time on one send in forty when four clients loaded two cores, and
//! the message was stored unfiltered. The thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) counts only the
//! time the call actually ran, however long it waited for a core.
//!
//! ## How
//! wasmtime's epoch interruption drives it: the ticker thread advances the engine's epoch every
//! [`EPOCH_TICK`]; a call has a deadline some ticks ahead, and when the deadline passes the store's
//! callback runs, on the calling thread. It reads the thread's CPU time: while the call has used
//! less than its budget (and is under its wall-clock cap), the deadline moves on by what is left; once it
//! has used it all, the call stops with `BudgetExhausted`.
//!
//! The clock is read lazily: a call's first deadline is one tick away, and the first callback charges the
//! call with its wall-clock time so far outside host waits, but at most `FIRST_DEADLINE_CHARGE`: code
//! that runs reaches an epoch check at every loop and call, so a call that had been running would have
//! met its first deadline within a tick; a later first callback means the thread was waiting for a core
//! (or inside one host call) meanwhile. A call shorter than a tick (a warm hook takes microseconds) never
//! reads the clock at all; reading it at every call's start cost 0.75 µs per call on this project's
//! machines (a system call: the thread CPU clock has no vDSO fast path). A budget under
//! `EXACT_BELOW` reads it at the start all the same, since two ticks would be over a tenth of it.
//!
//! ## The wall-clock cap
//! A call may also take at most [`WALL_CLOCK_CAP_FACTOR`] times its budget in wall-clock time (and at
//! least [`MIN_WALL_CLOCK_CAP`]): past that it is not being slowed by the machine but is stuck (descheduled
//! for long, or in a host call that waits), and it still holds a user's request or a conversation's
//! queue.
//!
//! ## Host waits
//! After-hooks and timers are credited the time they spend in host calls that wait on something else (an
//! HTTP answer, a bot post running its own chat operation and hooks on this thread; see
//! `HostWait`): the CPU those calls used on this thread is not the plugin's, and
//! their wall-clock time does not count toward the cap. Before-hooks get no credit: they hold up a user.
//!
//! ## Why not fuel
//! Fuel counts instructions, so it is independent of load too, but it instruments every basic block of the
//! plugin's code, so every call pays in proportion to its work, and a budget in fuel cannot be stated in
//! milliseconds a manifest author understands. Measured with `chathooks-bench --only 1 --quick` on this
//! project's two-core machine (p50 per event of a before-hook plus an after-hook, warm instances): wall-clock
//! epochs 10.4-11.0 µs, this CPU budget 10.2-10.3 µs (the lazy clock costs nothing measurable; reading it
//! at every call's start cost 11.9 µs), fuel on top of that 12.9 µs; on interpreted plugins fuel cost
//! 20-25% (Python 132 against 107-111 µs, JavaScript 149 against 118-122 µs).
//!

use std::time::{Duration, Instant};

use super::limits::{
    EPOCH_TICK, MIN_WALL_CLOCK_CAP, PluginLimits, WALL_CLOCK_CAP_FACTOR, wall_clock_cap,
};

/// The CPU time the calling thread has used so far, or `None` where the platform has no per-thread CPU
/// clock (then budgets fall back to wall-clock time).
pub fn thread_cpu_time() -> Option<Duration> {
    #[cfg(unix)]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        let secs = u64::try_from(t.tv_sec).ok()?;
        let nanos = u32::try_from(t.tv_nsec).ok()?;
        Some(Duration::new(secs, nanos))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Which limit of its budget a call reached: its CPU time or the wall-clock cap above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Its budget of CPU time.
    Cpu,
    /// The wall-clock cap ([`WALL_CLOCK_CAP_FACTOR`] times its budget, at least [`MIN_WALL_CLOCK_CAP`]).
    Wall,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Cpu => f.write_str("of CPU time"),
            Limit::Wall => write!(
                f,
                "of CPU time, reaching its wall-clock cap of {WALL_CLOCK_CAP_FACTOR} times that \
                 (at least {MIN_WALL_CLOCK_CAP:?}: stuck, or the machine is overloaded)"
            ),
        }
    }
}

/// The error the epoch callback stops a call with; found again by downcasting, so the call error can
/// say which limit was reached.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the call ran out of its time budget ({limit})")]
pub(crate) struct BudgetExhausted {
    pub(crate) limit: Limit,
}

/// Time a call spent in credited host calls (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Credit {
    /// Wall-clock time.
    pub(crate) wall: Duration,
    /// CPU time of the calling thread.
    pub(crate) cpu: Duration,
}

/// What the epoch callback does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Let the call run this many more ticks.
    Extend(u64),
    /// Stop it.
    Exhausted(Limit),
}

/// The budget of the call under way on one instance.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallBudget {
    /// CPU time the call may use.
    cpu: Duration,
    /// Wall-clock time it may take, credited waits aside.
    wall_cap: Duration,
    /// What the thread's CPU clock read when the call started, as estimated at the first deadline
    /// (`None` before it, and where there is no CPU clock: then wall-clock time is counted).
    started_cpu: Option<Duration>,
    started_wall: Instant,
}

/// The most CPU time a call's first deadline charges (see the module docs): the tick it waited for, and
/// one more for the tick's own jitter.
const FIRST_DEADLINE_CHARGE: Duration = EPOCH_TICK.saturating_mul(2);

/// Budgets under this read the CPU clock when the call starts instead of estimating it at the first
/// deadline: the estimate may charge [`FIRST_DEADLINE_CHARGE`], a tenth of 20 ms.
const EXACT_BELOW: Duration = Duration::from_millis(20);

/// What the thread's CPU clock read when a call started, seen from its first deadline (the clock reads
/// `now`, `wall` after the start, with `credit` in host waits): the time outside the waits, up to
/// [`FIRST_DEADLINE_CHARGE`], is taken to have been the call's CPU time.
fn estimated_start(now: Duration, wall: Duration, credit: Credit) -> Duration {
    let charged = wall.saturating_sub(credit.wall).min(FIRST_DEADLINE_CHARGE);
    now.saturating_sub(charged + credit.cpu)
}

impl CallBudget {
    /// A call starting now with `cpu` of CPU time and the default wall-clock cap.
    pub(crate) fn start(cpu: Duration) -> Self {
        CallBudget {
            cpu,
            wall_cap: wall_clock_cap(cpu),
            started_cpu: if cpu < EXACT_BELOW {
                thread_cpu_time()
            } else {
                None
            },
            started_wall: Instant::now(),
        }
    }

    /// The first deadline of a call, in epoch ticks: the next tick, or the whole budget when the clock
    /// was read at the start (see the module docs).
    pub(crate) fn first_deadline(&self) -> u64 {
        match self.started_cpu {
            Some(_) => PluginLimits::ticks(self.cpu),
            None => 1,
        }
    }

    /// At a deadline: given the credited host waits so far, stop the call or let it run on.
    pub(crate) fn check(&mut self, credit: Credit) -> Verdict {
        let wall = self.started_wall.elapsed();
        let cpu_now = thread_cpu_time();
        if self.started_cpu.is_none() {
            self.started_cpu = cpu_now.map(|now| estimated_start(now, wall, credit));
        }
        self.judge(wall, cpu_now, credit)
    }

    /// [`CallBudget::check`] with the clocks read: `wall` since the start, the thread's CPU time now.
    fn judge(&self, wall: Duration, cpu_now: Option<Duration>, credit: Credit) -> Verdict {
        let wall = wall.saturating_sub(credit.wall);
        if wall >= self.wall_cap {
            return Verdict::Exhausted(Limit::Wall);
        }
        let used = match (self.started_cpu, cpu_now) {
            (Some(start), Some(now)) => now.saturating_sub(start).saturating_sub(credit.cpu),
            _ => wall,
        };
        if used >= self.cpu {
            return Verdict::Exhausted(Limit::Cpu);
        }
        let left = (self.cpu - used).min(self.wall_cap - wall);
        Verdict::Extend(PluginLimits::ticks(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn budget(cpu_ms: u32, started_cpu: Option<Duration>) -> CallBudget {
        CallBudget {
            cpu: cpu_ms * MS,
            wall_cap: cpu_ms * MS * WALL_CLOCK_CAP_FACTOR,
            started_cpu,
            started_wall: Instant::now(),
        }
    }

    #[test]
    fn a_call_descheduled_past_its_budget_runs_on_until_it_has_used_it() {
        let b = budget(50, Some(1000 * MS));
        // 50 ms of wall time, but only 20 ms on a core: 30 ms left.
        let verdict = b.judge(50 * MS, Some(1020 * MS), Credit::default());
        assert_eq!(verdict, Verdict::Extend(30));
        // 120 ms of wall time, 50 ms of CPU: out of CPU.
        let verdict = b.judge(120 * MS, Some(1050 * MS), Credit::default());
        assert_eq!(verdict, Verdict::Exhausted(Limit::Cpu));
    }

    #[test]
    fn the_wall_clock_cap_stops_a_call_that_uses_no_cpu() {
        let b = budget(50, Some(Duration::ZERO));
        let cap = 50 * WALL_CLOCK_CAP_FACTOR;
        assert_eq!(
            b.judge((cap - 10) * MS, Some(MS), Credit::default()),
            Verdict::Extend(10),
            "what is left of the cap bounds the extension"
        );
        assert_eq!(
            b.judge(cap * MS, Some(MS), Credit::default()),
            Verdict::Exhausted(Limit::Wall)
        );
    }

    #[test]
    fn a_small_budget_gets_the_least_wall_clock_cap() {
        let mut b = CallBudget::start(MS);
        assert_eq!(b.wall_cap, MIN_WALL_CLOCK_CAP);
        assert_eq!(
            b.started_cpu.is_some(),
            thread_cpu_time().is_some(),
            "read at the start"
        );
        b.started_cpu = Some(Duration::ZERO);
        // Descheduled for 50 ms in a 1 ms call that has used a tenth of it: it runs on.
        assert!(matches!(
            b.judge(50 * MS, Some(MS / 10), Credit::default()),
            Verdict::Extend(_)
        ));
    }

    #[test]
    fn credited_host_waits_count_on_neither_clock() {
        let b = budget(1000, Some(Duration::ZERO));
        let credit = Credit {
            wall: 20_000 * MS,
            cpu: 900 * MS,
        };
        // 25 s of wall time, 20 s of it waiting; 1.5 s of CPU, 0.9 s of it in the waits.
        let verdict = b.judge(25_000 * MS, Some(1500 * MS), credit);
        assert_eq!(verdict, Verdict::Extend(400));
    }

    #[test]
    fn the_first_deadline_charges_at_most_two_ticks_outside_host_waits() {
        let credit = Credit {
            wall: 2000 * MS,
            cpu: 5 * MS,
        };
        // 2.0015 s after the start, 2 s of it waiting for HTTP (using 5 ms of CPU): 1.5 ms are charged.
        let start = estimated_start(10_000 * MS, 2001 * MS + MS / 2, credit);
        assert_eq!(start, 10_000 * MS - 6 * MS - MS / 2);
        // 30 ms after the start with no waits: the thread was off its core; two ticks are charged.
        let start = estimated_start(10_000 * MS, 30 * MS, Credit::default());
        assert_eq!(start, 10_000 * MS - 2 * MS);
        let b = budget(50, Some(start));
        assert_eq!(
            b.judge(30 * MS, Some(10_000 * MS), Credit::default()),
            Verdict::Extend(48)
        );
    }

    #[test]
    fn without_a_cpu_clock_the_budget_is_wall_clock_time() {
        let b = budget(50, None);
        assert_eq!(
            b.judge(30 * MS, None, Credit::default()),
            Verdict::Extend(20)
        );
        assert_eq!(
            b.judge(50 * MS, None, Credit::default()),
            Verdict::Exhausted(Limit::Cpu)
        );
    }

    #[test]
    fn the_thread_cpu_clock_counts_this_threads_work() {
        let Some(start) = thread_cpu_time() else {
            return;
        };
        let mut x = 0u64;
        while thread_cpu_time().is_some_and(|t| t - start < 5 * MS) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(x > 0);
    }
}
