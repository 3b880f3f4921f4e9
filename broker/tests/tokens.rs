//! Browser tokens (docs/security.md): signed JWTs instead of passwords over RESP (`AUTH.TOKEN`), the
//! WebSocket (`?token=`, `Authorization: Bearer`, or `AUTH.TOKEN` as the first message) and HTTP
//! (`Authorization: Bearer`); HS256, RS256 and ES256; expiry that ends the connection unless the
//! token is refreshed; and a token's tenant confined with the same NOPERM as an ACL user's.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{TestServer, cmd, start_with};
use herald_broker::Config;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "an-application-secret";
const TENANT_A_RULES: &str = "~tenant-a:* &tenant-a:* +@all -@dangerous";

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn config() -> Config {
    let mut c = Config::for_tests();
    c.requirepass = "admin-pw".into();
    c.acl.users = vec!["alice on >pw ~alice:* +@all".into()];
    c.tokens.hs256_secret = SECRET.into();
    c
}

fn hs256(claims: Value) -> String {
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET.as_bytes()).unwrap()).unwrap()
}

/// A token for tenant-a's own permissions, valid for `secs`.
fn tenant_a(secs: u64) -> String {
    hs256(json!({"sub": "web-a", "acl": TENANT_A_RULES, "exp": now_secs() + secs}))
}

async fn admin(server: &TestServer) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(format!("redis://:admin-pw@{}/", server.addr)).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// One HTTP/1.1 request on a fresh connection (closed after it): status and body.
async fn http(server: &TestServer, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(server.http).await.unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    stream.write_all(format!("{head}\r\n{body}").as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn resp_tokens_name_a_user_or_carry_permissions() {
    let server = start_with(config()).await;
    let mut raw = server.raw().await;
    raw.cmd(&["GET", "x"]).await;
    raw.expect("-NOAUTH Authentication required.\r\n").await;
    // A token naming an ACL user: the session is alice, with alice's permissions.
    raw.cmd(&["AUTH.TOKEN", &hs256(json!({"user": "alice", "exp": now_secs() + 60}))]).await;
    raw.expect("+OK\r\n").await;
    raw.cmd(&["ACL", "WHOAMI"]).await;
    raw.expect("$5\r\nalice\r\n").await;
    raw.cmd(&["SET", "alice:k", "v"]).await;
    raw.expect("+OK\r\n").await;
    raw.cmd(&["GET", "bob:k"]).await;
    raw.expect("-NOPERM this user has no permissions to access one of the keys used as arguments\r\n").await;

    // Refusals: expired, bad signature, wrong algorithm, no exp, an unknown user; each a WRONGPASS.
    let exp = now_secs() + 60;
    let hs384 = encode(
        &Header::new(Algorithm::HS384),
        &json!({"user": "alice", "exp": exp}),
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    let forged =
        encode(&Header::new(Algorithm::HS256), &json!({"user": "alice", "exp": exp}), &EncodingKey::from_secret(b"guess").unwrap())
            .unwrap();
    let cases = [
        (hs256(json!({"user": "alice", "exp": now_secs() - 5})), "-WRONGPASS token expired\r\n"),
        (forged, "-WRONGPASS invalid token: bad signature\r\n"),
        (hs384, "-WRONGPASS invalid token: algorithm HS384 is not accepted here\r\n"),
        (hs256(json!({"user": "alice"})), "-WRONGPASS invalid token: missing claim 'exp'\r\n"),
        (hs256(json!({"user": "mallory", "exp": exp})), "-WRONGPASS invalid token: user 'mallory' does not exist or is disabled\r\n"),
        ("garbage".to_owned(), "-WRONGPASS invalid token: malformed\r\n"),
    ];
    let mut fresh = server.raw().await;
    for (token, expected) in &cases {
        fresh.cmd(&["AUTH.TOKEN", token]).await;
        fresh.expect(expected).await;
    }
    fresh.cmd(&["GET", "x"]).await;
    fresh.expect("-NOAUTH Authentication required.\r\n").await;
    // Each failure is in ACL LOG, as a failed AUTH is.
    let mut admin = admin(&server).await;
    let log: Vec<redis::Value> = cmd(&mut admin, &["ACL", "LOG"]).await.unwrap();
    let entry = common::fields(log[0].clone());
    assert_eq!(common::text(&entry["object"]), "AUTH.TOKEN");
    assert_eq!((common::text(&entry["reason"]), common::int(&entry["count"])), ("auth".to_owned(), cases.len() as i64));
    server.stop().await;
}

#[tokio::test]
async fn a_token_tenant_gets_the_same_noperm_as_an_acl_user_on_every_wire() {
    let mut c = config();
    c.acl.users.push(format!("tenant-a on >pw-a {TENANT_A_RULES}"));
    let server = start_with(c).await;
    let mut admin = admin(&server).await;
    let job_b: String = cmd(&mut admin, &["JOB.SUBMIT", "tenant-b:q", "work"]).await.unwrap();
    let token = tenant_a(60);
    // The same tenant three ways: an ACL user over RESP, a token over RESP, a token over WebSocket.
    let mut user =
        redis::Client::open(format!("redis://tenant-a:pw-a@{}/", server.addr)).unwrap().get_multiplexed_async_connection().await.unwrap();
    let mut by_token = server.conn().await;
    let _: () = cmd(&mut by_token, &["AUTH.TOKEN", &token]).await.unwrap();
    let mut ws = server.ws_with(&format!("?token={token}")).await;
    let refused = [
        vec!["GET", "tenant-b:k"],
        vec!["SET", "tenant-b:k", "v"],
        vec!["SUBSCRIBE", "tenant-b:news"],
        vec!["JOB.CLAIM", "tenant-b:q"],
        vec!["BB.SET", "tenant-b", "k", "v"],
        vec!["STREAM.READ", "tenant-b:s"],
        vec!["JOB.STATUS", &job_b],
        vec!["FLUSHALL"],
    ];
    for args in refused {
        let expected = cmd::<redis::Value>(&mut user, &args).await.unwrap_err();
        let got = cmd::<redis::Value>(&mut by_token, &args).await.unwrap_err();
        assert_eq!((got.code(), got.detail()), (expected.code(), expected.detail()), "{args:?}");
        assert_eq!(expected.code(), Some("NOPERM"), "{args:?}");
        let reply = ws.call(json!(args)).await;
        assert_eq!(reply["error"]["code"], "NOPERM", "{args:?}: {reply}");
        assert_eq!(Some(reply["error"]["message"].as_str().unwrap()), expected.detail(), "{args:?}");
    }
    // Its own tenant works.
    let _: () = cmd(&mut by_token, &["SET", "tenant-a:k", "v"]).await.unwrap();
    assert_eq!(ws.result(json!(["GET", "tenant-a:k"])).await, json!("v"));
    assert_eq!(ws.result(json!(["ACL", "WHOAMI"])).await, json!("web-a"));
    // An ACL change elsewhere leaves a token's own permissions (and its connection) alone.
    let _: () = cmd(&mut admin, &["ACL", "SETUSER", "someone", "on"]).await.unwrap();
    assert_eq!(ws.result(json!(["GET", "tenant-a:k"])).await, json!("v"));
    server.stop().await;
}

#[tokio::test]
async fn websocket_tokens_header_query_and_first_message() {
    let server = start_with(config()).await;
    let token = tenant_a(60);
    // In the handshake's Authorization header.
    let tcp = TcpStream::connect(server.http).await.unwrap();
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{}/ws", server.http)).unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (stream, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    let mut ws = common::ws::Ws::from_stream(stream);
    assert_eq!(ws.result(json!(["ACL", "WHOAMI"])).await, json!("web-a"));
    // As the first message.
    let mut first = server.ws().await;
    assert_eq!(first.call(json!(["GET", "tenant-a:k"])).await["error"]["code"], "NOAUTH");
    assert_eq!(first.result(json!(["AUTH.TOKEN", token])).await, json!("OK"));
    assert_eq!(first.result(json!(["GET", "tenant-a:k"])).await, Value::Null);
    // A bad token in the URL: the connection closes with 4001, AUTH's error as the reason.
    let mut bad = server.ws_with("?token=not-a-token").await;
    assert_eq!(bad.closed().await, (4001, "invalid token: malformed".to_owned()));
    server.stop().await;
}

#[tokio::test]
async fn expiry_closes_unless_refreshed() {
    let server = start_with(config()).await;
    // Refreshed before expiry: the connection lives on past the first token's expiry.
    let mut ws = server.ws_with(&format!("?token={}", tenant_a(2))).await;
    assert_eq!(ws.result(json!(["AUTH.TOKEN", tenant_a(60)])).await, json!("OK"));
    // Not refreshed: closed with 4005 when the token expires.
    let mut stale = server.ws_with(&format!("?token={}", tenant_a(2))).await;
    assert_eq!(stale.result(json!(["PING"])).await, json!("PONG"));
    let (code, reason) = tokio::time::timeout(Duration::from_secs(5), stale.closed()).await.unwrap();
    assert_eq!((code, reason.as_str()), (4005, "token expired"));
    assert_eq!(ws.result(json!(["PING"])).await, json!("PONG"), "the refreshed connection is still open");
    // Over RESP: the last words, then the close.
    let mut raw = server.raw().await;
    raw.cmd(&["AUTH.TOKEN", &tenant_a(2)]).await;
    raw.expect("+OK\r\n").await;
    raw.read_until("-ERR token expired: closing the connection").await;
    assert!(raw.closed().await);
    // A blocked command does not outlive the token.
    let mut blocked = server.raw().await;
    blocked.cmd(&["AUTH.TOKEN", &tenant_a(2)]).await;
    blocked.expect("+OK\r\n").await;
    blocked.cmd(&["BLPOP", "tenant-a:never", "0"]).await;
    blocked.read_until("-ERR token expired: closing the connection").await;
    assert!(blocked.closed().await);
    // AUTH with a password drops the token's expiry.
    let mut switched = server.raw().await;
    switched.cmd(&["AUTH.TOKEN", &tenant_a(2)]).await;
    switched.expect("+OK\r\n").await;
    switched.cmd(&["AUTH", "alice", "pw"]).await;
    switched.expect("+OK\r\n").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    switched.cmd(&["ACL", "WHOAMI"]).await;
    switched.expect("$5\r\nalice\r\n").await;
    server.stop().await;
}

#[tokio::test]
async fn http_bearer_tokens() {
    let server = start_with(config()).await;
    let body = json!({"cmd": ["SET", "tenant-a:h", "1"]}).to_string();
    let bearer = format!("Bearer {}", tenant_a(60));
    let (status, reply) = http(&server, "POST", "/v1/cmd", &[("Authorization", &bearer)], &body).await;
    assert_eq!((status, reply.as_str()), (200, r#"{"result":"OK"}"#));
    let other = json!({"cmd": ["GET", "tenant-b:h"]}).to_string();
    let (status, reply) = http(&server, "POST", "/v1/cmd", &[("Authorization", &bearer)], &other).await;
    assert_eq!(status, 403, "{reply}");
    assert!(reply.contains("NOPERM"), "{reply}");
    let expired = format!("Bearer {}", hs256(json!({"acl": TENANT_A_RULES, "exp": now_secs() - 1})));
    let (status, reply) = http(&server, "POST", "/v1/cmd", &[("Authorization", &expired)], &body).await;
    assert_eq!(status, 401, "{reply}");
    assert!(reply.contains("token expired"), "{reply}");
    // An event stream takes the token in its URL (EventSource cannot send headers).
    let mut sse = TcpStream::connect(server.http).await.unwrap();
    let path = format!("/v1/subscribe?channel=tenant-a:news&token={}", tenant_a(60));
    sse.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut admin = admin(&server).await;
    loop {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), sse.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "stream closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&chunk[..n]);
        if String::from_utf8_lossy(&seen).contains("hello-a") {
            break;
        }
        let _: i64 = cmd(&mut admin, &["PUBLISH", "tenant-a:news", "hello-a"]).await.unwrap();
    }
    server.stop().await;
}

/// RS256 and ES256: tokens signed with a private key, checked with the configured public key. The
/// keys are made here (openssl for RSA, rcgen for P-256).
#[tokio::test]
async fn rs256_and_es256_public_keys() {
    let dir = common::data_dir("tokens-keys");
    std::fs::create_dir_all(&dir).unwrap();
    let rsa_key = dir.join("rsa.pem");
    let rsa_pub = dir.join("rsa.pub.pem");
    let ok = std::process::Command::new("openssl").args(["genrsa", "-out"]).arg(&rsa_key).arg("2048").output().unwrap();
    assert!(ok.status.success(), "{ok:?}");
    let ok =
        std::process::Command::new("openssl").args(["rsa", "-pubout", "-in"]).arg(&rsa_key).arg("-out").arg(&rsa_pub).output().unwrap();
    assert!(ok.status.success(), "{ok:?}");
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ec_pub = dir.join("ec.pub.pem");
    std::fs::write(&ec_pub, ec.public_key_pem()).unwrap();

    let mut c = config();
    c.tokens.rs256_public_key_file = rsa_pub.to_string_lossy().into_owned();
    c.tokens.es256_public_key_file = ec_pub.to_string_lossy().into_owned();
    let server = start_with(c).await;
    let claims = json!({"user": "alice", "exp": now_secs() + 60});
    let rs =
        encode(&Header::new(Algorithm::RS256), &claims, &EncodingKey::from_rsa_pem(&std::fs::read(&rsa_key).unwrap()).unwrap()).unwrap();
    let es = encode(&Header::new(Algorithm::ES256), &claims, &EncodingKey::from_ec_pem(ec.serialize_pem().as_bytes()).unwrap()).unwrap();
    let mut raw = server.raw().await;
    for token in [&rs, &es] {
        raw.cmd(&["AUTH.TOKEN", token]).await;
        raw.expect("+OK\r\n").await;
    }
    // An ES256 header over an RS256 signature, and an HS256 token signed with the public key as its
    // secret (the classic confusion attack), are refused.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let wrong_key =
        encode(&Header::new(Algorithm::ES256), &claims, &EncodingKey::from_ec_pem(other.serialize_pem().as_bytes()).unwrap()).unwrap();
    raw.cmd(&["AUTH.TOKEN", &wrong_key]).await;
    raw.expect("-WRONGPASS invalid token: bad signature\r\n").await;
    let confused =
        encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(&std::fs::read(&rsa_pub).unwrap()).unwrap()).unwrap();
    raw.cmd(&["AUTH.TOKEN", &confused]).await;
    raw.expect("-WRONGPASS invalid token: bad signature\r\n").await;
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
