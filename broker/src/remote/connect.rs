//! How a node reaches its Redis: a [`redis::Client`] for the configured URL, with TLS for `rediss://`.
//!
//! Every connection the engine opens (the shared ones per database and protocol, the blocking pool, the
//! pub-sub bridge) comes from a client made here, so the URL's credentials and the TLS files apply to all
//! of them alike. The certificate files are read once, at start.

use redis::{Client, ClientTlsConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, TlsCertificates};

use crate::config::EngineSettings;

/// What every client of this node is built from: the URL's connection settings and, for TLS, the
/// certificates.
#[derive(Clone)]
pub struct Endpoint {
    pub info: ConnectionInfo,
    tls: Option<TlsCertificates>,
}

impl Endpoint {
    pub fn new(settings: &EngineSettings) -> Result<Endpoint, String> {
        let info = settings.url.as_str().into_connection_info().map_err(|e| format!("engine.url: {e}"))?;
        let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. }).then(|| certificates(settings)).transpose()?;
        if tls.is_none() && (!settings.tls_ca_file.is_empty() || !settings.tls_cert_file.is_empty()) {
            return Err("engine.tls_ca_file / engine.tls_cert_file are for a rediss:// engine.url".into());
        }
        Ok(Endpoint { info, tls })
    }

    /// A client for `info` (this endpoint's, maybe with another database or protocol).
    pub fn client(&self, info: ConnectionInfo) -> redis::RedisResult<Client> {
        match &self.tls {
            Some(certs) => Client::build_with_tls(info, certs.clone()),
            None => Client::open(info),
        }
    }
}

fn certificates(settings: &EngineSettings) -> Result<TlsCertificates, String> {
    let read = |key: &str, path: &str| std::fs::read(path).map_err(|e| format!("engine.{key} {path}: {e}"));
    let root_cert = (!settings.tls_ca_file.is_empty()).then(|| read("tls_ca_file", &settings.tls_ca_file)).transpose()?;
    let client_tls = if settings.tls_cert_file.is_empty() {
        None
    } else {
        Some(ClientTlsConfig {
            client_cert: read("tls_cert_file", &settings.tls_cert_file)?,
            client_key: read("tls_key_file", &settings.tls_key_file)?,
        })
    };
    Ok(TlsCertificates { client_tls, root_cert })
}
