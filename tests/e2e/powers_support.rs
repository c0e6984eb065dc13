//! Helpers for the `powers_*` tests: a plugins folder with manifests, a server on a folder that outlives
//! it (for restarts), and a local HTTP or HTTPS server that records what it receives (a webhook consumer,
//! a push gateway), with a certificate authority made in the test for the HTTPS one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use chathooks::config::Config;
use serde_json::Value;

use crate::server_support::{PATIENCE, TestServer, must};

/// A plugin to put in the folder: a built `.wasm`, the name to give it, and its manifest's text.
pub struct PluginFile<'a> {
    /// The built component.
    pub wasm: PathBuf,
    /// The plugin's name in the folder (`<name>.wasm`, `<name>.toml`).
    pub name: &'a str,
    /// The manifest, if any.
    pub manifest: Option<String>,
}

/// Writes `plugins` into `<dir>/plugins`.
pub fn plugins_folder(dir: &Path, plugins: &[PluginFile<'_>]) {
    let folder = dir.join("plugins");
    must(std::fs::create_dir_all(&folder), "create plugins folder");
    for p in plugins {
        must(
            std::fs::copy(&p.wasm, folder.join(format!("{}.wasm", p.name))),
            "copy plugin",
        );
        if let Some(text) = &p.manifest {
            must(
                std::fs::write(folder.join(format!("{}.toml", p.name)), text),
                "write manifest",
            );
        }
    }
}

/// A server whose data and plugins live in `dir` (which the caller keeps, so a second server can start
/// on the same files), with further settings from `adjust`.
pub async fn server_on(dir: &Path, adjust: impl FnOnce(&mut Config)) -> TestServer {
    let (data, plugins) = (dir.join("data"), dir.join("plugins"));
    TestServer::with_config(&[], move |config| {
        config.data_dir = data;
        config.plugins_dir = plugins;
        config.watch = false;
        adjust(config);
    })
    .await
}

/// One request a [`Recorder`] received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path and query.
    pub uri: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        must(serde_json::from_slice(&self.body), "request body as JSON")
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

/// A local HTTP or HTTPS server on `127.0.0.1:0` that records every request and answers with a set status.
pub struct Recorder {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http` or `https`.
    scheme: &'static str,
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Starts one answering 200 over plain HTTP.
    pub async fn start() -> Recorder {
        let listener = must(
            tokio::net::TcpListener::bind("127.0.0.1:0").await,
            "bind recorder",
        );
        Recorder::serve(listener, "http").await
    }

    /// Starts one answering 200 over HTTPS with `tls` (see [`TestCa::server`]). A client whose handshake
    /// fails is dropped, and the recorder goes on serving.
    pub async fn start_tls(tls: Arc<rustls::ServerConfig>) -> Recorder {
        let listener = must(
            tokio::net::TcpListener::bind("127.0.0.1:0").await,
            "bind recorder",
        );
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        Recorder::serve(TlsListener { listener, acceptor }, "https").await
    }

    async fn serve<L>(listener: L, scheme: &'static str) -> Recorder
    where
        L: axum::serve::Listener<Addr = SocketAddr>,
    {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (log, answer, delay) = (received.clone(), status.clone(), delay_ms.clone());
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let (log, answer, delay) = (log.clone(), answer.clone(), delay.clone());
            async move {
                let wait = delay.load(Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(wait)).await;
                log.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(Received {
                        uri: uri.to_string(),
                        headers,
                        body,
                    });
                StatusCode::from_u16(answer.load(Ordering::Relaxed)).unwrap_or(StatusCode::OK)
            }
        });
        let addr = must(listener.local_addr(), "recorder address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Recorder {
            addr,
            scheme,
            received,
            status,
            delay_ms,
            task,
        }
    }

    /// `http://127.0.0.1:<port><path>` (`https://` for one started with [`Recorder::start_tls`]).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// Answers `status` from now on.
    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }

    /// Waits `ms` before answering each request from now on.
    pub fn delay(&self, ms: u64) {
        self.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits until at least `n` requests arrived; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the recorder got {} request(s), expected {n}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Longest a [`TlsListener`] waits for one client's handshake, so a client that stalls cannot stop the
/// recorder from accepting others.
const HANDSHAKE_PATIENCE: Duration = Duration::from_secs(5);

/// A TCP listener that hands axum TLS streams; connections whose handshake fails are dropped.
struct TlsListener {
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.listener.accept().await else {
                continue;
            };
            let handshake = self.acceptor.accept(tcp);
            if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_PATIENCE, handshake).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// A certificate authority made for one test: it signs server certificates for [`Recorder::start_tls`],
/// and its own certificate is what a server is told to trust (`--http-ca`).
pub struct TestCa {
    certificate: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl TestCa {
    /// A new authority with a fresh key, named `name` (authorities in one test need different names: a
    /// verifier looks the issuer up by name).
    pub fn new(name: &str) -> TestCa {
        let key = must(rcgen::KeyPair::generate(), "CA key");
        let mut params = must(rcgen::CertificateParams::new(Vec::<String>::new()), "CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let certificate = must(params.self_signed(&key), "self-sign the CA");
        TestCa { certificate, key }
    }

    /// Writes the authority's certificate as PEM to `<dir>/<name>`; returns the path.
    pub fn write_pem(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        must(
            std::fs::write(&path, self.certificate.pem()),
            "write CA file",
        );
        path
    }

    /// A TLS server configuration with a certificate this authority issued for `names` (DNS names or IP
    /// addresses).
    pub fn server(&self, names: &[&str]) -> Arc<rustls::ServerConfig> {
        let key = must(rcgen::KeyPair::generate(), "server key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let params = must(rcgen::CertificateParams::new(names), "server certificate");
        let certificate = must(
            params.signed_by(&key, &self.certificate, &self.key),
            "sign the server certificate",
        );
        let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let config = must(
            rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(vec![certificate.der().clone()], private),
            "TLS server configuration",
        );
        Arc::new(config)
    }
}
