//! TLS (docs/security.md): RESP on the TLS port, HTTPS and WSS on the TLS HTTP port, certificates
//! replaced by CONFIG SET (a bad pair refused, the old one kept), and client certificates required or
//! optional. The CA and certificates are made here with rcgen; the clients are rustls's.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::pki::Pki;
use common::{TestServer, start_with};
use futures_util::{SinkExt, StreamExt};
use herald_broker::Config;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};
use tokio_tungstenite::tungstenite::Message;

fn text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn config(pki: &Pki) -> Config {
    let (cert, key) = pki.issue("server", &["localhost", "127.0.0.1"]);
    let mut c = Config::for_tests();
    c.tls.enabled = true;
    c.tls.port = 0;
    c.tls.http_port = 0;
    c.tls.cert_file = text(&cert);
    c.tls.key_file = text(&key);
    c
}

/// A TLS connection that trusts `ca` (and presents `client`'s certificate, if given).
async fn connect(addr: std::net::SocketAddr, ca: &Path, client: Option<(&Path, &Path)>) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&std::fs::read(ca).unwrap()) {
        roots.add(cert.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(crypto::ring::default_provider());
    let builder =
        ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().unwrap().with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_slice_iter(&std::fs::read(cert).unwrap()).map(Result::unwrap).collect();
            builder.with_client_auth_cert(certs, PrivateKeyDer::from_pem_slice(&std::fs::read(key).unwrap()).unwrap()).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(addr).await?;
    // TLS 1.3 reports a refused client certificate only with the server's first record: the callers'
    // first command shows it.
    TlsConnector::from(Arc::new(config)).connect(ServerName::try_from("localhost").unwrap(), tcp).await
}

/// Sends RESP commands and reads until `expected` has arrived.
async fn resp(stream: &mut TlsStream<TcpStream>, commands: &[&[&str]], expected: &str) -> std::io::Result<()> {
    let mut out = String::new();
    for cmd in commands {
        out.push_str(&format!("*{}\r\n", cmd.len()));
        for arg in *cmd {
            out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
    }
    stream.write_all(out.as_bytes()).await?;
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other(format!("closed after {:?}", String::from_utf8_lossy(&got))));
        }
        got.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(String::from_utf8_lossy(&got), expected);
    Ok(())
}

fn ports(server: &TestServer) -> (std::net::SocketAddr, std::net::SocketAddr) {
    server.tls.expect("TLS is enabled")
}

#[tokio::test]
async fn resp_https_and_wss_over_tls() {
    let pki = Pki::new("tls-wires");
    let server = start_with(config(&pki)).await;
    let (resp_port, https) = ports(&server);
    let mut tls = connect(resp_port, &pki.ca_file(), None).await.unwrap();
    resp(&mut tls, &[&["PING"], &["SET", "k", "over tls"], &["GET", "k"]], "+PONG\r\n+OK\r\n$8\r\nover tls\r\n").await.unwrap();
    // The plain port serves the same data.
    let mut plain = server.conn().await;
    let v: String = common::cmd(&mut plain, &["GET", "k"]).await.unwrap();
    assert_eq!(v, "over tls");

    // HTTPS: the HTTP API on the TLS HTTP port.
    let mut https_conn = connect(https, &pki.ca_file(), None).await.unwrap();
    let body = json!({"cmd": ["GET", "k"]}).to_string();
    let request = format!("POST /v1/cmd HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    https_conn.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    let _ = https_conn.read_to_string(&mut answer).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"result":"over tls"}"#), "{answer}");

    // WSS: the WebSocket channel over TLS.
    let tls_ws = connect(https, &pki.ca_file(), None).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("wss://localhost:{}/ws", https.port()), tls_ws).await.unwrap();
    ws.send(Message::Text(json!({"id": 1, "cmd": ["GET", "k"]}).to_string().into())).await.unwrap();
    let reply = loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(t) => break serde_json::from_str::<Value>(&t).unwrap(),
            _ => continue,
        }
    };
    assert_eq!(reply, json!({"id": 1, "result": "over tls"}));

    // A client that does not trust the CA fails its handshake; the broker carries on.
    let stranger = Pki::new("tls-stranger");
    assert!(connect(resp_port, &stranger.ca_file(), None).await.is_err());
    let mut again = connect(resp_port, &pki.ca_file(), None).await.unwrap();
    resp(&mut again, &[&["PING"]], "+PONG\r\n").await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn config_set_replaces_the_certificate_and_refuses_a_bad_pair() {
    let pki = Pki::new("tls-reload");
    let server = start_with(config(&pki)).await;
    let (resp_port, _) = ports(&server);
    let mut admin = server.conn().await;
    let before: Vec<String> = common::cmd(&mut admin, &["CONFIG", "GET", "tls-cert-file"]).await.unwrap();
    // A certificate from another CA (a renewed one, say).
    let renewed = Pki::new("tls-renewed");
    let (cert, key) = renewed.issue("server2", &["localhost"]);
    let mut open = connect(resp_port, &pki.ca_file(), None).await.unwrap();
    // A certificate with the wrong key: refused, nothing changes.
    let err = common::cmd::<()>(&mut admin, &["CONFIG", "SET", "tls-cert-file", &text(&cert)]).await.unwrap_err();
    assert!(err.to_string().contains("Unable to update TLS configuration"), "{err}");
    let unchanged: Vec<String> = common::cmd(&mut admin, &["CONFIG", "GET", "tls-cert-file"]).await.unwrap();
    assert_eq!(unchanged, before);
    assert!(connect(resp_port, &pki.ca_file(), None).await.is_ok());
    // Both together: new connections get the new certificate.
    let _: () = common::cmd(&mut admin, &["CONFIG", "SET", "tls-cert-file", &text(&cert), "tls-key-file", &text(&key)]).await.unwrap();
    assert!(connect(resp_port, &pki.ca_file(), None).await.is_err(), "the old CA no longer verifies");
    let mut fresh = connect(resp_port, &renewed.ca_file(), None).await.unwrap();
    resp(&mut fresh, &[&["PING"]], "+PONG\r\n").await.unwrap();
    // A connection opened before keeps working.
    resp(&mut open, &[&["PING"]], "+PONG\r\n").await.unwrap();
    let after: Vec<String> = common::cmd(&mut admin, &["CONFIG", "GET", "tls-cert-file"]).await.unwrap();
    assert_eq!(after, vec!["tls-cert-file".to_owned(), text(&cert)]);
    server.stop().await;
}

#[tokio::test]
async fn client_certificates_required_or_optional() {
    let pki = Pki::new("tls-clients");
    let mut c = config(&pki);
    c.tls.ca_cert_file = text(&pki.ca_file());
    c.tls.auth_clients = "yes".into();
    let server = start_with(c).await;
    let (resp_port, _) = ports(&server);
    let (cert, key) = pki.issue("client", &["client"]);
    let mut with_cert = connect(resp_port, &pki.ca_file(), Some((&cert, &key))).await.unwrap();
    resp(&mut with_cert, &[&["PING"]], "+PONG\r\n").await.unwrap();
    // Without a certificate: the broker ends the handshake (TLS 1.3 shows it at the first read).
    let refused = match connect(resp_port, &pki.ca_file(), None).await {
        Err(_) => true,
        Ok(mut s) => resp(&mut s, &[&["PING"]], "+PONG\r\n").await.is_err(),
    };
    assert!(refused, "a client without a certificate was served");
    // optional: served without one, still checked when one is given.
    let mut admin = server.conn().await;
    let _: () = common::cmd(&mut admin, &["CONFIG", "SET", "tls-auth-clients", "optional"]).await.unwrap();
    let mut anonymous = connect(resp_port, &pki.ca_file(), None).await.unwrap();
    resp(&mut anonymous, &[&["PING"]], "+PONG\r\n").await.unwrap();
    let other = Pki::new("tls-other-clients");
    let (bad_cert, bad_key) = other.issue("client", &["client"]);
    let forged = match connect(resp_port, &pki.ca_file(), Some((&bad_cert, &bad_key))).await {
        Err(_) => true,
        Ok(mut s) => resp(&mut s, &[&["PING"]], "+PONG\r\n").await.is_err(),
    };
    assert!(forged, "a certificate from another CA was accepted");
    let auth: Vec<String> = common::cmd(&mut admin, &["CONFIG", "GET", "tls-auth-clients"]).await.unwrap();
    assert_eq!(auth, vec!["tls-auth-clients", "optional"]);
    server.stop().await;
}

#[tokio::test]
async fn tls_is_off_by_default_and_bad_files_refuse_to_start() {
    let server = common::start().await;
    assert!(server.tls.is_none());
    let mut admin = server.conn().await;
    let err = common::cmd::<()>(&mut admin, &["CONFIG", "SET", "tls-cert-file", "/nope"]).await.unwrap_err();
    assert!(err.to_string().contains("TLS is not enabled"), "{err}");
    server.stop().await;
    let mut c = Config::for_tests();
    c.tls.enabled = true;
    c.tls.port = 0;
    c.tls.http_port = 0;
    c.tls.cert_file = "/nonexistent/cert.pem".into();
    c.tls.key_file = "/nonexistent/key.pem".into();
    let err = herald_broker::Server::bind(c).await.err().expect("refused");
    assert!(err.to_string().contains("tls.cert_file: /nonexistent/cert.pem"), "{err}");
}
