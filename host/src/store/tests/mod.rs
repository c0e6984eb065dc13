//! The store's behaviour, checked once on every backend.
//!
//! ## Overview
//! Each test here is a plain function, `fn name(t: TestDb) -> TestResult` (or `t: TestKv` for the plugins'
//! key-value store), that speaks only the seam: [`Db::write`] and [`Db::read`] with the [`Tx`](super::Tx)
//! and [`Read`](super::Read) traits, and [`KvStore`]. [`backend_tests!`] turns each into one `#[test]` per
//! backend, `<area>::sqlite::name` and `<area>::postgres::name`, each given a fresh database of its own, so
//! a failure names the backend and a backend passes exactly when it behaves as the others do:
//!
//! ```ignore
//! backend_tests!(TestDb: sends_are_idempotent);
//!
//! fn sends_are_idempotent(t: TestDb) -> TestResult {
//!     t.users(&["a", "b"])?;
//!     let conv = t.conversation(&["a", "b"])?;
//!     let m = t.send(&conv.id, "a", "hi")?;
//!     assert_eq!(t.db.read(|r| r.get_message(&m.id))?.seq, 1);
//!     Ok(())
//! }
//! ```
//!
//! What only one backend has (SQLite's PRAGMAs and WAL, its migrations from older files, functions and
//! rows the seam does not expose) is tested beside that backend, in `store/sqlite/`.
//!
//! ## PostgreSQL
//! The `postgres::` tests are marked `#[ignore]` until [`Db`] and [`KvStore`] have a PostgreSQL variant;
//! the section "PostgreSQL" at the end of this file is the one place that changes when they do. They then
//! take a fresh database each on one throwaway cluster per test binary
//! (`chathooks_testservers::Postgres::shared`), and skip with a printed reason when PostgreSQL is not
//! installed, unless `CHATHOOKS_REQUIRE_POSTGRES=1` (CI), which makes that a failure.
//!
//! ## Layout
//! One file per area, as in `store/sqlite/`: [`users`] and [`tokens`]; [`conversations`] and
//! [`participants`]; [`roles`], [`bans`] and [`blocks`]; [`messages`], [`receipts`], [`unread`] and
//! [`reactions`]; [`events`], [`outbox`] and [`dead_letters`]; [`timers`]; [`kv`] (values, expiry and
//! quotas).

use std::path::Path;

use tempfile::TempDir;

use super::kv::KvStore;
use super::{Db, NewConversation, NewMessage, NewUser, Result};
use crate::model::{Conversation, Message, Millis};

/// What every test function here returns: any store or KV error fails the test with its message.
type TestResult = anyhow::Result<()>;

/// Defines one `#[test]` per backend for each listed test function: `backend_tests!(TestDb: a, b)` in
/// `store/tests/foo.rs` gives `foo::sqlite::a`, `foo::postgres::a`, `foo::sqlite::b` and
/// `foo::postgres::b`, each calling the function with a fresh fixture of that backend. The fixture is
/// [`TestDb`] (the chat database) or [`TestKv`] (the plugins' KV store), imported where the macro is used.
///
/// The functions stay ordinary Rust outside the macro, so rustfmt and clippy see them, and one that is not
/// listed is dead code, which `clippy -D warnings` refuses.
macro_rules! backend_tests {
    ($fixture:ident: $($name:ident),+ $(,)?) => {
        /// The tests on the embedded SQLite backend.
        mod sqlite {
            $(
                #[test]
                fn $name() -> super::TestResult {
                    super::$name(super::$fixture::sqlite()?)
                }
            )+
        }

        /// The same tests on PostgreSQL; each skips (printing why) when PostgreSQL is not installed, unless
        /// `CHATHOOKS_REQUIRE_POSTGRES=1`.
        mod postgres {
            $(
                #[test]
                fn $name() -> super::TestResult {
                    match super::$fixture::postgres()? {
                        Some(fixture) => super::$name(fixture),
                        None => Ok(()),
                    }
                }
            )+
        }
    };
}

mod bans;
mod blocks;
mod conversations;
mod dead_letters;
mod events;
mod held;
mod kv;
mod messages;
mod outbox;
mod participants;
mod plugin_overrides;
mod presence;
mod reactions;
mod receipts;
mod roles;
mod threads;
mod timers;
mod tokens;
mod unread;
mod users;

/// `&["a", "b"]` as owned ids.
fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Where one test's data lives: what opening it again, as a restarted server would, needs.
enum Place {
    /// A temp folder holding the SQLite files (deleted when the test ends).
    Sqlite(TempDir),
    /// A database of its own on the shared PostgreSQL test cluster.
    Postgres {
        /// Its connection URL.
        url: String,
    },
}

impl Place {
    /// A fresh temp folder for SQLite files.
    fn sqlite() -> anyhow::Result<Self> {
        Ok(Self::Sqlite(tempfile::tempdir()?))
    }

    /// A fresh PostgreSQL database, or `None` to skip the test.
    fn postgres() -> anyhow::Result<Option<Self>> {
        Ok(new_postgres_database()?.map(|url| Self::Postgres { url }))
    }

    /// Opens (the first time: creates and migrates) the chat database here.
    fn open_db(&self) -> anyhow::Result<Db> {
        match self {
            Self::Sqlite(dir) => Ok(Db::open(dir.path().join("chat.db"))?),
            Self::Postgres { url } => connect_postgres(url),
        }
    }

    /// Opens (the first time: creates) the plugins' KV store here.
    fn open_kv(&self) -> anyhow::Result<KvStore> {
        match self {
            Self::Sqlite(dir) => Ok(KvStore::open(&dir.path().join("kv.db"))?),
            Self::Postgres { url } => connect_postgres_kv(url),
        }
    }
}

/// A fresh chat database on one backend, with helpers that build the usual scene through the seam.
struct TestDb {
    /// The database under test.
    db: Db,
    /// Where it lives, to open it again ([`TestDb::reopen`]); also keeps a SQLite temp folder alive.
    place: Place,
}

impl TestDb {
    /// An empty SQLite database in a temp folder.
    fn sqlite() -> anyhow::Result<Self> {
        Self::at(Place::sqlite()?)
    }

    /// An empty PostgreSQL database, or `None` to skip the test.
    fn postgres() -> anyhow::Result<Option<Self>> {
        Place::postgres()?.map(Self::at).transpose()
    }

    fn at(place: Place) -> anyhow::Result<Self> {
        Ok(Self {
            db: place.open_db()?,
            place,
        })
    }

    /// Closes the database and opens it again, as a restarted server would.
    fn reopen(self) -> anyhow::Result<Self> {
        let Self { db, place } = self;
        drop(db);
        Self::at(place)
    }

    /// Creates the users `ids`, each named as its id in capitals, at time 0.
    fn users(&self, ids: &[&str]) -> Result<()> {
        self.db.write(|tx| {
            for id in ids {
                let user = NewUser {
                    id: (*id).to_owned(),
                    name: id.to_uppercase(),
                    metadata: serde_json::json!({}),
                };
                tx.create_user(&user, 0)?;
            }
            Ok(())
        })
    }

    /// A new (not distinct) conversation of `members`, the first one admin, at time 1.
    fn conversation(&self, members: &[&str]) -> Result<Conversation> {
        let new = NewConversation {
            participant_ids: ids(members),
            admin_ids: ids(&members[..1.min(members.len())]),
            ..Default::default()
        };
        Ok(self.db.write(|tx| tx.create_conversation(&new, 1))?.value)
    }

    /// Sends `body` from `sender` to `conversation_id` at time 2.
    fn send(&self, conversation_id: &str, sender: &str, body: &str) -> Result<Message> {
        let new = NewMessage {
            conversation_id: conversation_id.to_owned(),
            sender_id: sender.to_owned(),
            body: body.to_owned(),
            ..Default::default()
        };
        Ok(self.db.write(|tx| tx.send_message(&new, 2))?.value)
    }

    /// Appends a `message.new` event for user `a` in `conversation` at time 1; its id.
    fn event(&self, conversation: Option<&str>) -> Result<i64> {
        let payload = serde_json::json!({});
        self.db
            .write(|tx| tx.append_event("message.new", conversation, &ids(&["a"]), &payload, 1))
    }

    /// Fans every outbox event out to `plugins`, as the dispatcher would.
    fn fan_out_all(&self, plugins: &[String]) -> Result<()> {
        for event in self.db.read(|r| r.pending_events(100))? {
            self.db.write(|tx| tx.fan_out(event.id, plugins, 0))?;
        }
        Ok(())
    }

    /// The (event, plugin) pairs `next_deliveries` offers `plugins` at `now`.
    fn due(&self, now: Millis, plugins: &[String]) -> Result<Vec<(i64, String)>> {
        let due = self.db.read(|r| r.next_deliveries(now, plugins, 100))?;
        Ok(due.into_iter().map(|d| (d.event.id, d.plugin)).collect())
    }
}

/// A fresh KV store of the plugins on one backend.
struct TestKv {
    /// The store under test.
    kv: KvStore,
    /// Where it lives, to open it again ([`TestKv::reopen`]); also keeps a SQLite temp folder alive.
    place: Place,
}

impl TestKv {
    /// An empty KV store in a SQLite file in a temp folder.
    fn sqlite() -> anyhow::Result<Self> {
        Self::at(Place::sqlite()?)
    }

    /// An empty KV store in a PostgreSQL database, or `None` to skip the test.
    fn postgres() -> anyhow::Result<Option<Self>> {
        Place::postgres()?.map(Self::at).transpose()
    }

    fn at(place: Place) -> anyhow::Result<Self> {
        Ok(Self {
            kv: place.open_kv()?,
            place,
        })
    }

    /// Closes the store and opens it again, as a restarted server would.
    fn reopen(self) -> anyhow::Result<Self> {
        let Self { kv, place } = self;
        drop(kv);
        Self::at(place)
    }
}

// ---------------------------------------------------------------------------------------------------------
// PostgreSQL: each test takes a fresh database on the test binary's shared throwaway cluster.
// ---------------------------------------------------------------------------------------------------------

/// A fresh database on the test binary's throwaway PostgreSQL cluster, as a URL. `None`, after printing
/// why, when PostgreSQL is not installed; `Postgres::shared` panics instead when
/// `CHATHOOKS_REQUIRE_POSTGRES=1`, or when PostgreSQL is installed but does not start.
fn new_postgres_database() -> anyhow::Result<Option<String>> {
    let Some(pg) = chathooks_testservers::Postgres::shared() else {
        return Ok(None);
    };
    Ok(Some(pg.url_for_new_database()?))
}

/// Opens the chat database at the PostgreSQL `url` as a starting server does (connects and migrates).
fn connect_postgres(url: &str) -> anyhow::Result<Db> {
    let pool = crate::store::postgres::PoolOptions {
        size: 4,
        ..Default::default()
    };
    Ok(Db::connect(url, crate::store::Durability::default(), pool)?)
}

/// Opens the plugins' KV store in the PostgreSQL database at `url`.
fn connect_postgres_kv(url: &str) -> anyhow::Result<KvStore> {
    let db = connect_postgres(url)?;
    Ok(KvStore::beside(
        &db,
        Path::new("unused: the database is PostgreSQL"),
    )?)
}
