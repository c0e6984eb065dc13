//! TLS for the server's outbound HTTP client (the `http` power and the push gateway): which certificate
//! authorities it trusts, and how a failed handshake is told to the plugin or the operator.
//!
//! ## Trust
//! The client is rustls (with the `ring` provider; no OpenSSL, no aws-lc). It trusts the Mozilla root
//! program as shipped in the `webpki-roots` crate, built into the binary, rather than the machine's store:
//! the same binary trusts the same authorities on every machine, including minimal containers that have no
//! `/etc/ssl` at all, and a test cannot pass on one machine and fail on another because of what is
//! installed. The cost is that a root added to or removed from the system store is not seen; an operator
//! who needs a private authority names its certificates in a PEM file with `--http-ca` (see
//! [`load_ca_file`]), added to the built-in roots, never replacing them. Trust is the operator's call, so
//! it is a server setting, not a manifest key: a plugin cannot widen what the server trusts.
//!
//! ## Failures
//! A refused certificate reaches the plugin as `failed` with a sentence saying it was the certificate and
//! why (name mismatch, unknown issuer, expired), found by walking the error's sources to the
//! [`rustls::Error`] rather than by reading message text; see [`failure_text`].

use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{CertificateError, RootCertStore};

/// Why the extra CA file (`--http-ca`) cannot be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    /// The file cannot be read.
    #[error("http_ca: cannot read the CA file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A `-----BEGIN CERTIFICATE-----` block is malformed.
    #[error(
        "http_ca: the CA file {path} is not valid PEM ({message}); it should hold one or more `-----BEGIN CERTIFICATE-----` blocks"
    )]
    NotPem {
        /// The file.
        path: PathBuf,
        /// What the PEM reader found wrong.
        message: String,
    },
    /// The file holds no certificate (an empty file, a key, DER instead of PEM).
    #[error(
        "http_ca: the CA file {path} holds no certificate; it should hold one or more `-----BEGIN CERTIFICATE-----` blocks (PEM, not DER)"
    )]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate in the file cannot be a trust anchor (bad encoding, say).
    #[error("http_ca: certificate {index} in the CA file {path} cannot be trusted: {source}")]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// Which certificate, counting from 1.
        index: usize,
        /// Why rustls refused it.
        source: rustls::Error,
    },
}

/// The certificates in the PEM file at `path`, each checked to be usable as a trust anchor.
pub fn load_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, CaFileError> {
    let bytes = std::fs::read(path).map_err(|source| CaFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let ders = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CaFileError::NotPem {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if ders.is_empty() {
        return Err(CaFileError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    let mut store = RootCertStore::empty();
    let mut certificates = Vec::with_capacity(ders.len());
    for (i, der) in ders.into_iter().enumerate() {
        let bad = |source| CaFileError::BadCertificate {
            path: path.to_path_buf(),
            index: i + 1,
            source,
        };
        store.add(der.clone()).map_err(bad)?;
        certificates.push(
            reqwest::Certificate::from_der(&der)
                .map_err(|e| bad(rustls::Error::General(e.to_string())))?,
        );
    }
    Ok(certificates)
}

/// What went wrong with a request, for a plugin's `failed` or a log line: for a refused certificate or a
/// failed handshake, a sentence saying so; otherwise the error with its causes (reqwest's own text stops
/// at "error sending request", which says nothing about why).
pub fn failure_text(error: &reqwest::Error) -> String {
    let host = error
        .url()
        .and_then(|u| {
            u.host_str()
                .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0)))
        })
        .unwrap_or_else(|| "the server".to_owned());
    if let Some(tls) = rustls_error(error) {
        return describe_tls(tls, &host);
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The [`rustls::Error`] among `error`'s causes, if any. An `io::Error` hides the error it wraps from
/// `source()`, so each one is looked into as well.
fn rustls_error(error: &reqwest::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(cause) = next {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(tls);
            }
            next = Some(inner);
            continue;
        }
        next = cause.source();
    }
    None
}

/// A sentence for a TLS failure talking to `host`.
fn describe_tls(error: &rustls::Error, host: &str) -> String {
    let certificate = match error {
        rustls::Error::InvalidCertificate(certificate) => certificate,
        rustls::Error::InvalidMessage(_) => {
            return format!(
                "the TLS handshake with {host} failed: its answer is not TLS ({error}); a server that \
                 speaks plain HTTP has an http:// URL"
            );
        }
        other => return format!("the TLS handshake with {host} failed: {other}"),
    };
    let why = match certificate {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("it is not valid for that name (name mismatch: {certificate})")
        }
        CertificateError::UnknownIssuer => "it was issued by an unknown certificate authority \
             (unknown issuer; the server operator can trust a private authority with --http-ca)"
            .to_owned(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("it has expired ({certificate})")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            format!("it is not valid yet ({certificate})")
        }
        CertificateError::BadSignature => {
            "its signature does not verify under the authority it names (bad signature)".to_owned()
        }
        other => format!("{other}"),
    };
    format!("the certificate of {host} was refused: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_ca_file_is_named_with_what_is_wrong() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let missing = dir.path().join("missing.pem");
        let err = load_ca_file(&missing)
            .err()
            .ok_or("loaded a missing file")?;
        assert!(matches!(err, CaFileError::Read { .. }));
        assert!(err.to_string().contains(&missing.display().to_string()));

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n")?;
        let err = load_ca_file(&empty).err().ok_or("loaded an empty file")?;
        assert!(matches!(err, CaFileError::NoCertificate { .. }), "{err}");
        assert!(err.to_string().contains("empty.pem"), "{err}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )?;
        let err = load_ca_file(&garbage).err().ok_or("loaded garbage")?;
        assert!(
            matches!(err, CaFileError::BadCertificate { index: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("garbage.pem"), "{err}");
        Ok(())
    }

    #[test]
    fn a_ca_file_with_a_real_certificate_loads() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key)?;
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, format!("{}{}", ca.pem(), ca.pem()))?;
        assert_eq!(load_ca_file(&file)?.len(), 2);
        Ok(())
    }
}
