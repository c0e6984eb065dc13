//! The test servers themselves, against the real binaries: each test skips when its server is missing
//! (unless `CHATHOOKS_REQUIRE_POSTGRES` / `CHATHOOKS_REQUIRE_NATS` is set).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use chathooks_testservers::{Nats, Postgres};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Connects with tokio-postgres, driving the connection on a task.
async fn connect(setting: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(setting, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

#[tokio::test]
async fn postgres_starts_keeps_databases_apart_restarts_and_cleans_up() -> TestResult {
    let started = Instant::now();
    let Some(mut pg) = Postgres::start_or_skip() else {
        return Ok(());
    };
    eprintln!("throwaway PostgreSQL started in {:?}", started.elapsed());
    let root = pg.socket_dir().to_path_buf();
    let pid = pg.server_pid()?;
    let alive = std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .status()?;
    assert!(alive.success(), "the server runs as process {pid}");
    let (a, b) = (pg.create_database()?, pg.create_database()?);
    assert_ne!(a, b);

    // Both forms of a connection setting reach the socket: the URL and the key-value string.
    let in_a = connect(&pg.url(&a)).await?;
    in_a.batch_execute("CREATE TABLE kept (n BIGINT); INSERT INTO kept VALUES (7)")
        .await?;
    let in_b = connect(&pg.conninfo(&b)).await?;
    let tables: i64 = in_b
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'kept'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(tables, 0, "databases are separate");
    assert_eq!(pg.psql(&a, "SELECT n FROM kept")?, "7\n");

    // A restart cuts connections and keeps committed data.
    pg.restart()?;
    assert!(in_a.simple_query("SELECT 1").await.is_err());
    let again = connect(&pg.url(&a)).await?;
    let n: i64 = again.query_one("SELECT n FROM kept", &[]).await?.get(0);
    assert_eq!(n, 7);

    pg.stop()?;
    assert!(!root.exists(), "stop deletes {}", root.display());
    Ok(())
}

#[tokio::test]
async fn the_shared_cluster_is_started_once_and_gives_each_caller_a_database() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let again = Postgres::shared().ok_or("the shared cluster went away")?;
    assert_eq!(pg.socket_dir(), again.socket_dir());
    let (one, two) = (pg.url_for_new_database()?, pg.url_for_new_database()?);
    assert_ne!(one, two);
    let client = connect(&two).await?;
    let name: String = client
        .query_one("SELECT current_database()", &[])
        .await?
        .get(0);
    assert!(two.ends_with(&format!("/{name}")), "{two} names {name}");
    Ok(())
}

#[test]
fn dropping_a_cluster_stops_it_and_deletes_its_folder() {
    let Some(pg) = Postgres::start_or_skip() else {
        return;
    };
    let root = pg.socket_dir().to_path_buf();
    assert!(root.join("data").join("postmaster.pid").exists());
    drop(pg);
    assert!(!root.exists(), "drop deletes {}", root.display());
}

/// The first line a NATS server sends a new connection.
fn greeting(port: u16) -> std::io::Result<String> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(line)
}

#[test]
fn nats_starts_and_restarts_on_the_same_port() -> TestResult {
    let Some(mut nats) = Nats::start_or_skip() else {
        return Ok(());
    };
    let port = nats.port();
    assert_eq!(nats.url(), format!("nats://127.0.0.1:{port}"));
    let first = greeting(port)?;
    assert!(first.starts_with("INFO "), "{first}");

    let held = TcpStream::connect(("127.0.0.1", port))?;
    nats.restart()?;
    assert_eq!(nats.port(), port);
    let second = greeting(port)?;
    assert!(second.starts_with("INFO "), "{second}");
    assert_ne!(
        first, second,
        "a new server (new server_id) on the same port"
    );
    drop(held);

    nats.stop();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    Ok(())
}
