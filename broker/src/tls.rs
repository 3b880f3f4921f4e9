//! TLS (rustls, ring as the crypto provider): the certificate, key and optional client-certificate CA
//! from files, made into the acceptor the TLS listeners hand every new connection to. Reloading
//! (SIGHUP, `CONFIG SET tls-cert-file ...`) builds a whole new configuration first and swaps it in
//! only when it is valid, so a bad file never takes TLS down; connections already open keep theirs.
//!
//! The wires know nothing of TLS: a `TlsStream` is one more `conn::Stream` (`server/tls.rs` serves
//! the TLS listeners).

use std::sync::{Arc, Mutex, RwLock};

use serde::Deserialize;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto};

/// `[tls]` in the configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// Serve TLS at all: the two ports below, with the files below.
    pub enabled: bool,
    /// RESP over TLS (Redis's `tls-port`); 0 picks a free port.
    pub port: u16,
    /// HTTPS and WSS (`wss://host:http_port/ws`); 0 picks a free port.
    pub http_port: u16,
    /// PEM certificate chain (the server's certificate first).
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
    /// PEM CA certificates client certificates are checked against.
    pub ca_cert_file: String,
    /// Client certificates: `no`, `optional` (checked when given) or `yes` (required).
    pub auth_clients: String,
    /// A connection that has not finished its TLS handshake after this long is dropped.
    pub handshake_timeout_ms: u64,
}

/// The files and the client-certificate rule one configuration is built from (what CONFIG SET changes).
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    pub cert_file: String,
    pub key_file: String,
    pub ca_cert_file: String,
    pub auth_clients: ClientAuth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    No,
    Optional,
    Required,
}

impl ClientAuth {
    pub fn parse(text: &str) -> Option<ClientAuth> {
        match text.to_ascii_lowercase().as_str() {
            "no" => Some(ClientAuth::No),
            "optional" => Some(ClientAuth::Optional),
            "yes" => Some(ClientAuth::Required),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ClientAuth::No => "no",
            ClientAuth::Optional => "optional",
            ClientAuth::Required => "yes",
        }
    }
}

/// The TLS listeners' configuration, swapped whole on reload.
pub struct Tls {
    files: Mutex<TlsFiles>,
    acceptor: RwLock<TlsAcceptor>,
}

impl Tls {
    /// `None` when TLS is off; an error names the file that could not be used.
    pub fn new(settings: &TlsSettings) -> Result<Option<Tls>, String> {
        if !settings.enabled {
            return Ok(None);
        }
        let auth_clients = ClientAuth::parse(&settings.auth_clients)
            .ok_or_else(|| format!("tls.auth_clients: '{}' is not no, optional or yes", settings.auth_clients))?;
        let files = TlsFiles {
            cert_file: settings.cert_file.clone(),
            key_file: settings.key_file.clone(),
            ca_cert_file: settings.ca_cert_file.clone(),
            auth_clients,
        };
        let acceptor = build(&files)?;
        Ok(Some(Tls { files: Mutex::new(files), acceptor: RwLock::new(acceptor) }))
    }

    /// The acceptor for a new connection (a clone of an `Arc`).
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.read().expect("tls").clone()
    }

    pub fn files(&self) -> TlsFiles {
        self.files.lock().expect("tls").clone()
    }

    /// Reads the files again (SIGHUP: a renewed certificate); the old configuration stays on error.
    pub fn reload(&self) -> Result<(), String> {
        let files = self.files();
        self.replace(files)
    }

    /// Builds from `files` and, when that works, makes them current.
    pub fn replace(&self, files: TlsFiles) -> Result<(), String> {
        let acceptor = build(&files)?;
        *self.acceptor.write().expect("tls") = acceptor;
        *self.files.lock().expect("tls") = files;
        Ok(())
    }
}

fn read(what: &str, path: &str) -> Result<Vec<u8>, String> {
    if path.is_empty() {
        return Err(format!("tls.{what} is not set"));
    }
    std::fs::read(path).map_err(|e| format!("tls.{what}: {path}: {e}"))
}

fn certificates(what: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().map_err(|e| format!("tls.{what}: {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("tls.{what}: {path}: no certificate in the file"));
    }
    Ok(certs)
}

/// A server configuration from the files: TLS 1.2 and 1.3 with rustls's safe defaults.
///
/// ring rather than aws-lc-rs as the provider: aws-lc-rs needs a long C/CMake build on every machine
/// that builds Herald. rustls marks ring's provider deprecated because it lacks the post-quantum
/// hybrid key exchange; the classical suites (X25519, P-256; AES-GCM, ChaCha20) are what it offers.
#[allow(deprecated)]
fn build(files: &TlsFiles) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(crypto::ring::default_provider());
    let certs = certificates("cert_file", &files.cert_file)?;
    let key =
        PrivateKeyDer::from_pem_slice(&read("key_file", &files.key_file)?).map_err(|e| format!("tls.key_file: {}: {e}", files.key_file))?;
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().map_err(|e| e.to_string())?;
    let builder = match files.auth_clients {
        ClientAuth::No => builder.with_no_client_auth(),
        auth => {
            let mut roots = RootCertStore::empty();
            for ca in certificates("ca_cert_file", &files.ca_cert_file)? {
                roots.add(ca).map_err(|e| format!("tls.ca_cert_file: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::Optional { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| format!("tls.ca_cert_file: {e}"))?)
        }
    };
    let config = builder.with_single_cert(certs, key).map_err(|e| format!("tls: the certificate and key do not go together: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
