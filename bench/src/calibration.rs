//! What this machine charges for the operations the server's figures are made of, measured at the start
//! and at the end of every run and printed under the report's header: a system call, a hand-off between
//! two threads (one wakes the other, which answers), a round trip over loopback TCP, and a memory read
//! that misses the core's own caches (a chase through 4 MiB in random order, each read's address the
//! last read's value). The end-to-end and fan-out sections are made mostly of such hand-offs, socket
//! writes and reads of scattered memory (SQLite's pages, five plugins' code and memories), so their
//! absolute figures compare between two machines, or two runs on one shared VM, only beside these
//! (BENCHMARKS.md, problem 41).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::stats::{Samples, fmt_us};

/// Rounds of each measurement; the report gives the median round.
const ROUNDS: usize = 7;
/// System calls per round.
const SYSCALLS: u32 = 20_000;
/// Hand-offs (there and back) per round.
const HAND_OFFS: u32 = 1_000;
/// Loopback round trips per round.
const ROUND_TRIPS: u32 = 1_000;
/// The memory the chase runs through: more than a core's own caches hold, less than a server's L3.
const CHASE_BYTES: usize = 4 << 20;
/// Dependent reads per round.
const CHASE_READS: u32 = 200_000;

/// The median cost of each operation, in µs except the memory read.
#[derive(Debug, Clone, Copy)]
pub struct Calibration {
    /// One system call (`getpid`).
    pub syscall_us: f64,
    /// A thread wakes a parked thread through a channel and parks until that one answers the same way.
    pub hand_off_us: f64,
    /// One byte written over a loopback TCP connection, echoed by another thread, read back.
    pub loopback_us: f64,
    /// One read of the chase through [`CHASE_BYTES`], in nanoseconds.
    pub memory_read_ns: f64,
}

impl Calibration {
    /// Measures the four, interleaved round by round so that a burst of other work hits each alike.
    pub fn measure() -> anyhow::Result<Calibration> {
        let mut echo = Echo::start()?;
        let partner = Partner::start();
        let mut chase = Chase::new(CHASE_BYTES);
        let (mut syscalls, mut hand_offs, mut loopback, mut reads) = (
            Samples::with_capacity(ROUNDS),
            Samples::with_capacity(ROUNDS),
            Samples::with_capacity(ROUNDS),
            Samples::with_capacity(ROUNDS),
        );
        for _ in 0..ROUNDS {
            syscalls.push(per_op(SYSCALLS, || {
                std::hint::black_box(std::process::id());
            }));
            let mut answered = true;
            hand_offs.push(per_op(HAND_OFFS, || answered &= partner.round_trip()));
            anyhow::ensure!(answered, "the hand-off's partner thread stopped answering");
            let mut failure = None;
            loopback.push(per_op(ROUND_TRIPS, || {
                if let Err(e) = echo.round_trip() {
                    failure.get_or_insert(e);
                }
            }));
            if let Some(e) = failure {
                return Err(anyhow::Error::new(e).context("the loopback echo failed"));
            }
            reads.push(per_op(CHASE_READS, || chase.step()));
        }
        Ok(Calibration {
            syscall_us: syscalls.p50(),
            hand_off_us: hand_offs.p50(),
            loopback_us: loopback.p50(),
            // `Samples` keeps µs; a read is tens to hundreds of nanoseconds.
            memory_read_ns: reads.p50() * 1000.0,
        })
    }

    /// The report's line: the machine's speed at the start of the run and at its end, which tells a run
    /// that the machine slowed down in (a busy neighbour on the host, say) from one that did not.
    pub fn markdown(
        start: &anyhow::Result<Calibration>,
        end: &anyhow::Result<Calibration>,
    ) -> String {
        match (start, end) {
            (Ok(start), Ok(end)) => format!(
                "Machine speed at the start of this run and at its end (median of {ROUNDS} rounds each): a \
                 system call {} and {} µs, a hand-off between two threads and back {} and {} µs, a 1-byte \
                 round trip over loopback TCP between two threads {} and {} µs, a read of memory outside \
                 the core's caches (a random chase through 4 MiB) {} and {} ns. Compare absolute figures \
                 between machines, or runs, beside these.",
                fmt_us(start.syscall_us),
                fmt_us(end.syscall_us),
                fmt_us(start.hand_off_us),
                fmt_us(end.hand_off_us),
                fmt_us(start.loopback_us),
                fmt_us(end.loopback_us),
                fmt_us(start.memory_read_ns),
                fmt_us(end.memory_read_ns),
            ),
            (Err(e), _) | (_, Err(e)) => format!("Machine speed: not measured ({e:#})."),
        }
    }
}

/// The time of one `op`, run `n` times.
fn per_op(n: u32, mut op: impl FnMut()) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        op();
    }
    started.elapsed() / n
}

/// A thread that answers each message on one channel with a message on another.
struct Partner {
    to: mpsc::SyncSender<()>,
    from: mpsc::Receiver<()>,
}

impl Partner {
    fn start() -> Partner {
        let (to, inbox) = mpsc::sync_channel::<()>(1);
        let (outbox, from) = mpsc::sync_channel::<()>(1);
        // Ends when `to` is dropped with the partner.
        std::thread::spawn(move || {
            while inbox.recv().is_ok() {
                if outbox.send(()).is_err() {
                    break;
                }
            }
        });
        Partner { to, from }
    }

    /// There and back; `false` if the partner went away.
    fn round_trip(&self) -> bool {
        self.to.send(()).is_ok() && self.from.recv().is_ok()
    }
}

/// A loopback TCP connection whose other end, on a thread of its own, echoes every byte.
struct Echo {
    stream: TcpStream,
}

impl Echo {
    fn start() -> std::io::Result<Echo> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let stream = TcpStream::connect(listener.local_addr()?)?;
        stream.set_nodelay(true)?;
        let (mut peer, _) = listener.accept()?;
        peer.set_nodelay(true)?;
        // Ends when the connection closes with `Echo`.
        std::thread::spawn(move || {
            let mut byte = [0u8; 1];
            while peer.read_exact(&mut byte).is_ok() {
                if peer.write_all(&byte).is_err() {
                    break;
                }
            }
        });
        Ok(Echo { stream })
    }

    fn round_trip(&mut self) -> std::io::Result<()> {
        self.stream.write_all(b"x")?;
        let mut byte = [0u8; 1];
        self.stream.read_exact(&mut byte)
    }
}

/// A walk through memory in one random cycle: each slot holds the index of the next, so every read waits
/// for the one before it and the prefetcher cannot guess the address.
struct Chase {
    next: Vec<u32>,
    at: u32,
}

impl Chase {
    fn new(bytes: usize) -> Chase {
        let len = bytes / std::mem::size_of::<u32>();
        let mut next: Vec<u32> = (0..len as u32).collect();
        // Sattolo's shuffle: one cycle through every slot. xorshift is random enough for addresses.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in (1..len).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            next.swap(i, (x % i as u64) as usize);
        }
        Chase { next, at: 0 }
    }

    fn step(&mut self) {
        self.at = std::hint::black_box(self.next[self.at as usize]);
    }
}
