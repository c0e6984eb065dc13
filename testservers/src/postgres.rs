//! A throwaway PostgreSQL cluster on a Unix socket in a temp folder.
//!
//! ## How it starts
//! 1. The binaries: `$CHATHOOKS_PG_BINDIR`, else `pg_config --bindir`, else the newest
//!    `/usr/lib/postgresql/<version>/bin` (Debian keeps `initdb` and `pg_ctl` off `PATH`), else `initdb` on
//!    `PATH`. A folder counts only if it holds both `initdb` and `pg_ctl`.
//! 2. A temp folder that holds the cluster (`data/`), its log (`postgres.log`) and its socket. `initdb`
//!    refuses to run as root, so when the tests run as root (CI does) the folder is given to the
//!    `postgres` user and `initdb` and `pg_ctl` run as it through `runuser -u postgres --`.
//! 3. `initdb -N` (no fsync of the new files: a test cluster need not survive a power cut), trust
//!    authentication, UTF-8, the C locale.
//! 4. `pg_ctl -w start` with `listen_addresses=''`: no TCP at all, only the socket in the temp folder,
//!    whose port number merely names the socket file, so any number of clusters run side by side.
//!    `fsync`, `synchronous_commit` and `full_page_writes` are off (a test that is about durability needs
//!    a cluster of its own anyway), and `max_connections=200` leaves room for several pools of 16.
//!
//! ## How it ends
//! Before `initdb`, a guardian `sh` is started with a pipe as its standard input, whose other end only
//! this process holds (Rust opens pipes close-on-exec, so no other child inherits it). It blocks reading
//! that pipe; when the pipe closes — [`Postgres::stop`], drop, or the test process ending in any way,
//! SIGKILL included — it runs `pg_ctl stop -m immediate` and deletes the folder. So the shared instance
//! (in a `static`, never dropped) and clusters of killed test runs do not outlive their tests. The guardian
//! sits in a process group of its own so that a Ctrl-C in the terminal, which stops the tests, does not
//! stop it before it has cleaned up (`pg_ctl` itself puts the server in a session of its own).

use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

use crate::process::{find_program, random_suffix, run, tail};
use crate::{Error, REQUIRE_POSTGRES_ENV, Result, or_skip, skip_reason};

const SERVER: &str = "PostgreSQL";

/// Names the folder of `initdb`, `pg_ctl` and `psql` when they are somewhere unusual.
pub const BIN_DIR_ENV: &str = "CHATHOOKS_PG_BINDIR";

/// The superuser `initdb` creates; tests connect as it (trust authentication, socket only).
pub const SUPERUSER: &str = "postgres";

/// How long `pg_ctl` waits for the server to start or stop. Starting takes 0.1–0.4 s here; the margin is
/// for a machine busy compiling.
const PG_CTL_WAIT_SECS: &str = "60";

/// Longest temp folder path used for the socket: a Unix socket path must fit in 108 bytes, and the socket
/// file's own name (`.s.PGSQL.5432`) takes 13 of them. A longer `$TMPDIR` falls back to `/tmp`.
const MAX_SOCKET_DIR_LEN: usize = 90;

/// Log bytes quoted in an error about the server.
const LOG_TAIL_BYTES: usize = 4000;

/// A running throwaway PostgreSQL cluster; stopped and deleted on drop.
#[derive(Debug)]
pub struct Postgres {
    /// The folder of `initdb`, `pg_ctl`, `psql`.
    bin: PathBuf,
    /// The temp folder: `data/`, `postgres.log` and the socket file.
    root: PathBuf,
    /// Whether the server programs run as the `postgres` user (we are root).
    as_postgres: bool,
    /// Stops the cluster and deletes `root` once `guardian_pipe` closes; see the module docs.
    guardian: Child,
    /// Our end of the guardian's standard input; `None` once closed.
    guardian_pipe: Option<ChildStdin>,
}

impl Postgres {
    /// Creates and starts a cluster of its own: 0.6–1 s on this 2-core machine when idle, several seconds
    /// while builds share it (`initdb` is most of it). [`Error::NotInstalled`] when PostgreSQL's server
    /// programs are not on this machine.
    pub fn start() -> Result<Postgres> {
        let bin = find_bin_dir()?;
        let root = make_root()?;
        let guarded = give_to_postgres_if_root(&root)
            .and_then(|as_postgres| Ok((as_postgres, spawn_guardian(&bin, &root, as_postgres)?)));
        let (as_postgres, guardian) = guarded.inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&root);
        })?;
        let pg = Postgres {
            bin,
            root,
            as_postgres,
            guardian: guardian.0,
            guardian_pipe: Some(guardian.1),
        };
        // From here on, dropping `pg` on an error stops whatever started and deletes the folder.
        run(
            SERVER,
            "initdb",
            pg.server_command("initdb")
                .args([
                    "-N",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "-U",
                    SUPERUSER,
                    "-D",
                ])
                .arg(pg.data_dir()),
        )?;
        pg.pg_ctl("start", &[])?;
        Ok(pg)
    }

    /// [`Postgres::start`], or `None` after printing why PostgreSQL is missing; see the crate docs for
    /// `CHATHOOKS_REQUIRE_POSTGRES`. Panics when PostgreSQL is installed but does not start.
    pub fn start_or_skip() -> Option<Postgres> {
        or_skip(Postgres::start(), REQUIRE_POSTGRES_ENV)
    }

    /// One cluster for the whole test binary, started by the first test that asks; each test then takes a
    /// database of its own ([`Postgres::url_for_new_database`]). `None` (with a printed reason) when
    /// PostgreSQL is missing, as [`Postgres::start_or_skip`]. It is stopped when the test process ends.
    pub fn shared() -> Option<&'static Postgres> {
        static SHARED: OnceLock<Result<Postgres, String>> = OnceLock::new();
        let shared = SHARED.get_or_init(|| {
            Postgres::start().map_err(|err| skip_reason(err, REQUIRE_POSTGRES_ENV))
        });
        match shared {
            Ok(pg) => Some(pg),
            Err(why) => {
                eprintln!("{why}");
                None
            }
        }
    }

    /// The folder the server's socket is in: what `host` names in a connection string.
    pub fn socket_dir(&self) -> &Path {
        &self.root
    }

    /// The folder of the server programs in use (`initdb`, `pg_ctl`, `psql`).
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// Creates an empty database with a name no other test uses (`t_<16 hex digits>`); its name.
    pub fn create_database(&self) -> Result<String> {
        let name = format!("t_{}", random_suffix());
        self.psql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(name)
    }

    /// A fresh database ([`Postgres::create_database`]) as a URL ([`Postgres::url`]).
    pub fn url_for_new_database(&self) -> Result<String> {
        Ok(self.url(&self.create_database()?))
    }

    /// `postgres://postgres@<socket folder, percent-encoded>/<database>`: the URL form of a connection
    /// setting, which names a Unix socket folder by its percent-encoded path.
    pub fn url(&self, database: &str) -> String {
        let host = percent_encode(&self.root.to_string_lossy());
        format!("postgres://{SUPERUSER}@{host}/{database}")
    }

    /// `host='<socket folder>' user=postgres dbname=<database>`: the key-value form of the same setting.
    pub fn conninfo(&self, database: &str) -> String {
        let host = self
            .root
            .to_string_lossy()
            .replace('\\', "\\\\")
            .replace('\'', "\\'");
        format!("host='{host}' user={SUPERUSER} dbname={database}")
    }

    /// Runs `sql` in `database` with `psql` as the superuser; what it printed (unaligned, tuples only, so
    /// `SELECT count(*) ...` gives `"3\n"`). For setting up and inspecting databases in tests.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let psql = Some(self.bin.join("psql"))
            .filter(|p| p.is_file())
            .or_else(|| find_program("psql", &[]))
            .ok_or_else(|| Error::NotInstalled {
                server: SERVER,
                detail: format!("no psql in {} or on PATH", self.bin.display()),
            })?;
        run(
            SERVER,
            &format!("psql -c {sql:?}"),
            Command::new(psql)
                .args([
                    "-X",
                    "-q",
                    "-A",
                    "-t",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-U",
                    SUPERUSER,
                    "-h",
                ])
                .arg(&self.root)
                .args(["-d", database, "-c", sql])
                .env_remove("PGPASSWORD")
                .env_remove("PGSERVICE")
                .stdin(Stdio::null()),
        )
    }

    /// Restarts the server (`pg_ctl restart -m fast`: connections are cut, committed data stays), for
    /// tests of what clients do when the database goes away and comes back. The socket and every database
    /// stay where they were.
    pub fn restart(&mut self) -> Result<()> {
        self.pg_ctl("restart", &["-m", "fast"])
    }

    /// Stops the server and keeps its data (`pg_ctl stop -m fast`), for tests of what clients do while the
    /// database is down; [`Postgres::resume`] starts it again with every database as it was.
    pub fn pause(&mut self) -> Result<()> {
        self.pg_ctl("stop", &["-m", "fast"])
    }

    /// Starts a server [`Postgres::pause`]d before, on the same socket.
    pub fn resume(&mut self) -> Result<()> {
        self.pg_ctl("start", &[])
    }

    /// The process id of the running server (the postmaster, first line of `data/postmaster.pid`), e.g.
    /// to measure the CPU time it and its backends use.
    pub fn server_pid(&self) -> Result<u32> {
        let path = self.data_dir().join("postmaster.pid");
        let text = std::fs::read_to_string(&path)
            .map_err(|source| io_error("reading postmaster.pid", source))?;
        text.lines()
            .next()
            .and_then(|line| line.trim().parse().ok())
            .ok_or_else(|| Error::Failed {
                server: SERVER,
                step: "reading postmaster.pid".to_owned(),
                detail: format!("{} starts with no process id", path.display()),
            })
    }

    /// The end of the server's log, for a failing test's message.
    pub fn log(&self) -> String {
        tail(&self.root.join("postgres.log"), LOG_TAIL_BYTES)
    }

    /// Stops the server (`pg_ctl stop -m immediate`) and deletes its folder; what dropping does, with the
    /// outcome reported.
    pub fn stop(mut self) -> Result<()> {
        let status = self.finish().map_err(|source| Error::Io {
            server: SERVER,
            step: "waiting for pg_ctl stop".to_owned(),
            source,
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::Failed {
                server: SERVER,
                step: "pg_ctl stop".to_owned(),
                detail: format!("the guardian exited with {status}"),
            })
        }
    }

    /// Closes the guardian's pipe and waits for it to stop the server and delete the folder.
    fn finish(&mut self) -> std::io::Result<std::process::ExitStatus> {
        drop(self.guardian_pipe.take());
        self.guardian.wait()
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// `pg_ctl <action>` with the options every start uses; the log's end in the error when it fails.
    fn pg_ctl(&self, action: &str, extra: &[&str]) -> Result<()> {
        let options = format!(
            "-c listen_addresses='' -k '{}' -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            self.root.display()
        );
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.root.join("postgres.log"))
            .args(["-w", "-t", PG_CTL_WAIT_SECS, "-o", &options])
            .args(extra)
            .arg(action)
            .stdin(Stdio::null());
        run(SERVER, &format!("pg_ctl {action}"), &mut cmd).map_err(|err| match err {
            Error::Failed {
                server,
                step,
                detail,
            } => Error::Failed {
                server,
                step,
                detail: format!("{detail}\nserver log:\n{}", self.log()),
            },
            other => other,
        })?;
        Ok(())
    }

    /// A command running `program` from the bin folder, as the `postgres` user when we are root.
    fn server_command(&self, program: &str) -> Command {
        server_command(&self.bin, program, self.as_postgres)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

fn server_command(bin: &Path, program: &str, as_postgres: bool) -> Command {
    if as_postgres {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", SUPERUSER, "--"]).arg(bin.join(program));
        cmd
    } else {
        Command::new(bin.join(program))
    }
}

/// Where `initdb` and `pg_ctl` are; see the module docs for the order.
fn find_bin_dir() -> Result<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        let dir = PathBuf::from(dir);
        return if has_both(&dir) {
            Ok(dir)
        } else {
            Err(Error::NotInstalled {
                server: SERVER,
                detail: format!("{BIN_DIR_ENV}={} holds no initdb and pg_ctl", dir.display()),
            })
        };
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let newest_debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_both(dir))
        .max_by_key(|(version, _)| *version)
        .map(|(_, dir)| dir);
    let on_path = find_program("initdb", &[]).and_then(|p| p.parent().map(Path::to_path_buf));
    [from_pg_config, newest_debian, on_path]
        .into_iter()
        .flatten()
        .find(|dir| has_both(dir))
        .ok_or_else(|| Error::NotInstalled {
            server: SERVER,
            detail: format!(
                "no folder with initdb and pg_ctl (looked at ${BIN_DIR_ENV}, `pg_config --bindir`, \
                 /usr/lib/postgresql/*/bin and PATH); install the server, e.g. `apt-get install \
                 postgresql`"
            ),
        })
}

/// A new temp folder for the cluster, short enough for the socket path.
fn make_root() -> Result<PathBuf> {
    let mut base = std::env::temp_dir();
    if base.as_os_str().len() > MAX_SOCKET_DIR_LEN - 30 {
        base = PathBuf::from("/tmp");
    }
    let dir = tempfile::Builder::new()
        .prefix("chathooks-pg-")
        .tempdir_in(&base)
        .map_err(|source| io_error("creating a temp folder", source))?;
    Ok(dir.keep())
}

/// When this process is root, hands `root` to the `postgres` user (readable by all, so that we can still
/// reach the socket) and answers true: the server programs must then run as that user.
fn give_to_postgres_if_root(root: &Path) -> Result<bool> {
    // The folder was just created by this process, so its owner is our effective user id.
    let owner = std::fs::metadata(root)
        .map_err(|source| io_error("reading the temp folder", source))?
        .uid();
    if owner != 0 {
        return Ok(false);
    }
    let id = |flag: &str| -> Result<u32> {
        let out = run(
            SERVER,
            "looking up the postgres user (initdb refuses to run as root)",
            Command::new("id").args([flag, SUPERUSER]),
        )?;
        out.trim().parse().map_err(|_| Error::Failed {
            server: SERVER,
            step: format!("id {flag} {SUPERUSER}"),
            detail: format!("printed {out:?}"),
        })
    };
    let (uid, gid) = (id("-u")?, id("-g")?);
    if find_program("runuser", &["/usr/sbin", "/sbin"]).is_none() {
        return Err(Error::Failed {
            server: SERVER,
            step: "finding runuser".to_owned(),
            detail:
                "the tests run as root, initdb refuses root, and runuser (util-linux) is missing"
                    .to_owned(),
        });
    }
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))
        .and_then(|()| std::os::unix::fs::chown(root, Some(uid), Some(gid)))
        .map_err(|source| io_error("giving the temp folder to the postgres user", source))?;
    Ok(true)
}

/// Starts the guardian (see the module docs): returns it and our end of its pipe.
fn spawn_guardian(bin: &Path, root: &Path, as_postgres: bool) -> Result<(Child, ChildStdin)> {
    let stop = server_command(bin, "pg_ctl", as_postgres);
    // `$0` is the folder to delete; `"$@"` the stop command. `read` returns when the pipe closes.
    let script = r#"read _ignored; "$@" >/dev/null 2>&1; rm -rf -- "$0""#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(root)
        .arg(stop.get_program())
        .args(stop.get_args())
        .arg("-D")
        .arg(root.join("data"))
        .args(["-m", "immediate", "-w", "-t", PG_CTL_WAIT_SECS, "stop"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|source| io_error("starting the guardian shell", source))?;
    match child.stdin.take() {
        Some(pipe) => Ok((child, pipe)),
        None => {
            let _ = child.kill();
            Err(io_error(
                "starting the guardian shell",
                std::io::Error::new(ErrorKind::BrokenPipe, "no stdin pipe"),
            ))
        }
    }
}

fn io_error(step: &str, source: std::io::Error) -> Error {
    Error::Io {
        server: SERVER,
        step: step.to_owned(),
        source,
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (a socket path's `/` included).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encodes_socket_paths() {
        assert_eq!(
            percent_encode("/tmp/chathooks-pg-a.B_~"),
            "%2Ftmp%2Fchathooks-pg-a.B_~"
        );
        assert_eq!(percent_encode("a b@c"), "a%20b%40c");
    }
}
