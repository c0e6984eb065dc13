//! Starting a round's runs: the ready head of each queue, with the due events right behind it (up to
//! [`MAX_RUN`] for a fast plugin), in the round's transaction.
//!
//! The starts that need a statement (a delivery with a row) are planned first, then made in one call
//! ([`Deliveries::start_runs`]): on PostgreSQL every run of the round goes out in one pipelined round trip
//! instead of one statement per delivery, which under load made a round tens of milliseconds long and held
//! every queue back as long. A first attempt straight from the outbox needs no statement. What the store
//! refused (memory was stale) ends the run there, exactly as starting event by event did.

use crate::model::Millis;
use crate::plugins::registry::LoadedPlugin;
use crate::store::{self, Deliveries, RunStart, StartedRow};

use super::direct::Direct;
use super::queues::{Head, Queues};
use super::round::{MAX_RUN, Room};

/// A delivery the round's transaction started.
#[derive(Debug)]
pub(super) struct Start {
    /// Its queue and event.
    pub head: Head,
    /// Its attempt, as started.
    pub row: StartedRow,
    /// The plugin version it runs on.
    pub plugin: LoadedPlugin,
    /// Whether it follows the one before in a run.
    pub follows: bool,
    /// A first attempt straight from the outbox, with no row.
    pub from_outbox: bool,
}

/// A run planned from memory, before the store is asked.
struct Planned {
    plugin: LoadedPlugin,
    head: Head,
    /// The head is a first attempt straight from the outbox.
    straight: bool,
    /// The due events right behind the head, in order.
    behind: Vec<i64>,
    /// How many of `behind`, from the front, have rows (started by the store with the head).
    with_rows: usize,
}

/// Starts the ready heads of the `running` plugins, as far as `room` allows, each with the due events
/// behind it as one run; memory (`queues`, `direct`) follows. The starts, runs in order; and the heads
/// the store would not start (memory disagrees with it: the caller re-reads those queues).
pub(super) fn start_ready(
    tx: &dyn Deliveries,
    queues: &mut Queues,
    direct: &mut Direct,
    running: &[LoadedPlugin],
    room: &Room,
    now: Millis,
) -> store::Result<(Vec<Start>, Vec<Head>)> {
    let mut planned = Vec::new();
    for plugin in running {
        let name = plugin.name();
        if !queues.has_ready(name) {
            continue;
        }
        let run = if room.fast.contains(name) { MAX_RUN } else { 1 };
        let room = room.per_plugin.get(name).copied().unwrap_or(room.default);
        for head in queues.ready(name, plugin.dispatch_capacity(room)) {
            let from_outbox =
                |event_id: i64| queues.is_from_outbox(name, &head.conversation, event_id);
            let straight = from_outbox(head.event_id);
            let behind = queues.behind(&head, run - 1, now);
            let with_rows = if straight {
                0
            } else {
                behind.iter().take_while(|e| !from_outbox(**e)).count()
            };
            planned.push(Planned {
                plugin: plugin.clone(),
                head,
                straight,
                behind,
                with_rows,
            });
        }
    }
    // One call for every run with a row at its head; the answers come back in the same order.
    let answers = {
        let requests: Vec<RunStart<'_>> = planned
            .iter()
            .filter(|p| !p.straight)
            .map(|p| RunStart {
                plugin: p.plugin.name(),
                head: p.head.event_id,
                behind: &p.behind[..p.with_rows],
            })
            .collect();
        tx.start_runs(&requests, now)?
    };
    let mut answers = answers.into_iter();

    // A first attempt straight from the outbox starts without a statement.
    let first = StartedRow {
        attempt: 1,
        next_attempt_at: now,
        last_error: None,
        leased_until: None,
    };
    let mut starts = Vec::new();
    let mut stale = Vec::new();
    for p in planned {
        let Planned {
            plugin,
            head,
            straight,
            behind,
            with_rows,
        } = p;
        let name = plugin.name();
        // The rows the store started for this run: the head's first, then those behind it.
        let mut rows = if straight {
            Vec::new()
        } else {
            answers.next().unwrap_or_default()
        }
        .into_iter();
        let row = if straight {
            Some(first.clone())
        } else {
            rows.next()
        };
        let Some(row) = row else {
            stale.push(head);
            continue;
        };
        // Behind the rows started with the head, the run goes on event by event, unless one of those
        // did not start (then it ends there: `rows` runs out first).
        let one_by_one = if rows.len() == with_rows {
            with_rows
        } else {
            behind.len()
        };
        queues.start(&head, now);
        if straight {
            direct.started(head.event_id, name);
        }
        let mut previous = head.event_id;
        starts.push(Start {
            head: head.clone(),
            row,
            plugin: plugin.clone(),
            follows: false,
            from_outbox: straight,
        });
        for (index, event_id) in behind.into_iter().enumerate() {
            let straight = queues.is_from_outbox(name, &head.conversation, event_id);
            let row = if index < one_by_one {
                rows.next()
            } else if straight {
                Some(first.clone())
            } else {
                tx.start_next(event_id, name, previous, now)?
            };
            let Some(row) = row else {
                break;
            };
            let next = Head {
                event_id,
                ..head.clone()
            };
            queues.start(&next, now);
            if straight {
                direct.started(event_id, name);
            }
            starts.push(Start {
                head: next,
                row,
                plugin: plugin.clone(),
                follows: true,
                from_outbox: straight,
            });
            previous = event_id;
        }
    }
    Ok((starts, stale))
}
