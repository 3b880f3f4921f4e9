//! Browser tokens: a JWT an application server signs, which a client presents instead of a password
//! (`AUTH.TOKEN <jwt>` on any wire, `Authorization: Bearer` or `?token=` on the HTTP port).
//!
//! A token names an existing ACL user (`"user": "alice"`: the session then runs as that user, and
//! later ACL changes apply to it as to a password login) or carries its permissions itself
//! (`"acl": "~tenant-a:* &tenant-a:* +@all"`: ACL SETUSER's rules, checked by the same code), and an
//! expiry (`exp`, required). The session ends when the token expires unless the client presents a
//! fresh one on the open connection. The signature is checked with the configured HS256 secret or
//! RS256 / ES256 public key; `alg: none` and any algorithm not configured are refused, so a token
//! signed with the public key as an HMAC secret cannot pass.
//!
//! Expiry is checked against the broker's clock (`clock.rs`, tokio time), not the system's, so tests
//! can move time.

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::{Acl, User};

/// `[tokens]` in the configuration: which signatures are accepted. All empty: tokens are off.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// HMAC secret for HS256 tokens.
    pub hs256_secret: String,
    /// PEM file with the RSA public key RS256 tokens are checked with.
    pub rs256_public_key_file: String,
    /// PEM file with the P-256 public key ES256 tokens are checked with.
    pub es256_public_key_file: String,
    /// When set, a token's `iss` must be this.
    pub issuer: String,
    /// When set, a token's `aud` must be (or contain) this.
    pub audience: String,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway_secs: u64,
}

/// The claims Herald reads; others are ignored.
#[derive(Debug, Deserialize)]
struct Claims {
    /// Seconds since the epoch (RFC 7519). Required: read here rather than by the library, which
    /// checks it against the system clock.
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    nbf: Option<u64>,
    /// The subject: the name CLIENT LIST and ACL LOG show for a token with its own permissions.
    #[serde(default)]
    sub: Option<String>,
    /// An existing ACL user the session runs as.
    #[serde(default)]
    user: Option<String>,
    /// The session's permissions as ACL rules: one string of rules, or an array of rules.
    #[serde(default)]
    acl: Option<Rules>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Rules {
    Line(String),
    List(Vec<String>),
}

impl Rules {
    fn iter(&self) -> Vec<&str> {
        match self {
            Rules::Line(line) => line.split_whitespace().collect(),
            Rules::List(rules) => rules.iter().map(String::as_str).collect(),
        }
    }
}

/// Who a valid token makes the session, and until when.
#[derive(Debug, Clone)]
pub struct Grant {
    pub user: Arc<User>,
    /// The user exists only in this token (its `acl` claim), not in the registry.
    pub detached: bool,
    /// When the token expires, unix ms.
    pub expires_ms: u64,
}

/// Why a token was refused: `WRONGPASS ...` (or `NOAUTH ...` when tokens are off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Disabled,
    Expired,
    Invalid(String),
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Refusal::Disabled => {
                "NOAUTH tokens are not enabled on this broker (tokens.hs256_secret, tokens.rs256_public_key_file or tokens.es256_public_key_file)"
                    .into()
            }
            Refusal::Expired => "WRONGPASS token expired".into(),
            Refusal::Invalid(why) => format!("WRONGPASS invalid token: {why}"),
        }
    }
}

/// The configured keys, one per accepted algorithm.
pub struct Tokens {
    keys: Vec<(Algorithm, DecodingKey)>,
    settings: TokenSettings,
}

impl Tokens {
    /// The keys from the configuration; an unreadable or malformed key file is a startup error.
    pub fn new(settings: &TokenSettings) -> Result<Tokens, String> {
        let mut keys = Vec::new();
        if !settings.hs256_secret.is_empty() {
            let key = DecodingKey::from_secret(settings.hs256_secret.as_bytes()).map_err(|e| format!("tokens.hs256_secret: {e}"))?;
            keys.push((Algorithm::HS256, key));
        }
        let pem = |what: &str, path: &str| std::fs::read(path).map_err(|e| format!("tokens.{what}: {path}: {e}"));
        if !settings.rs256_public_key_file.is_empty() {
            let text = pem("rs256_public_key_file", &settings.rs256_public_key_file)?;
            let key = DecodingKey::from_rsa_pem(&text).map_err(|e| format!("tokens.rs256_public_key_file: not an RSA public key: {e}"))?;
            keys.push((Algorithm::RS256, key));
        }
        if !settings.es256_public_key_file.is_empty() {
            let text = pem("es256_public_key_file", &settings.es256_public_key_file)?;
            let key = DecodingKey::from_ec_pem(&text).map_err(|e| format!("tokens.es256_public_key_file: not an EC public key: {e}"))?;
            keys.push((Algorithm::ES256, key));
        }
        Ok(Tokens { keys, settings: settings.clone() })
    }

    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        // Expiry is checked below against the broker's clock.
        v.validate_exp = false;
        v.leeway = self.settings.leeway_secs;
        v.set_required_spec_claims(&["exp"]);
        if !self.settings.issuer.is_empty() {
            v.set_issuer(&[&self.settings.issuer]);
            v.required_spec_claims.insert("iss".into());
        }
        if self.settings.audience.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&[&self.settings.audience]);
            v.required_spec_claims.insert("aud".into());
        }
        v
    }

    /// Checks `token` at `now_ms` and says whom it authenticates.
    pub fn verify(&self, token: &str, now_ms: u64, acl: &Acl) -> Result<Grant, Refusal> {
        if !self.enabled() {
            return Err(Refusal::Disabled);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| Refusal::Invalid(reason(e.kind())))?;
        let Some((alg, key)) = self.keys.iter().find(|(alg, _)| *alg == header.alg) else {
            return Err(Refusal::Invalid(format!("algorithm {:?} is not accepted here", header.alg)));
        };
        let claims =
            jsonwebtoken::decode::<Claims>(token, key, &self.validation(*alg)).map_err(|e| Refusal::Invalid(reason(e.kind())))?.claims;
        let leeway_ms = self.settings.leeway_secs * 1000;
        let exp = claims.exp.ok_or_else(|| Refusal::Invalid("missing claim 'exp'".into()))?;
        let expires_ms = exp.saturating_mul(1000);
        if expires_ms.saturating_add(leeway_ms) <= now_ms {
            return Err(Refusal::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf.saturating_mul(1000) > now_ms.saturating_add(leeway_ms)) {
            return Err(Refusal::Invalid("not valid yet (nbf)".into()));
        }
        let expires_ms = expires_ms.saturating_add(leeway_ms);
        match (&claims.user, &claims.acl) {
            (Some(name), None) => match acl.get(name) {
                Some(user) if user.enabled => Ok(Grant { user, detached: false, expires_ms }),
                _ => Err(Refusal::Invalid(format!("user '{name}' does not exist or is disabled"))),
            },
            (None, Some(rules)) => {
                let name = claims.sub.as_deref().unwrap_or("token");
                Ok(Grant { user: Arc::new(user_from_rules(name, rules)?), detached: true, expires_ms })
            }
            _ => Err(Refusal::Invalid("a token carries either a \"user\" or \"acl\" claim".into())),
        }
    }
}

/// The user a token's `acl` claim describes: on, no password, then the rules (ACL SETUSER's).
fn user_from_rules(name: &str, rules: &Rules) -> Result<User, Refusal> {
    if name.is_empty() || name.contains(' ') {
        return Err(Refusal::Invalid("sub must be a name without spaces".into()));
    }
    let mut user = User::new(name);
    user.apply(b"on").expect("valid rule");
    for rule in rules.iter() {
        let password = matches!(rule.as_bytes().first(), Some(b'>' | b'<' | b'#' | b'!'))
            || ["nopass", "resetpass", "off", "reset"].iter().any(|r| rule.eq_ignore_ascii_case(r));
        if password {
            return Err(Refusal::Invalid(format!("acl rule '{rule}' is not allowed in a token (passwords and on/off are the broker's)")));
        }
        user.apply(rule.as_bytes()).map_err(|e| Refusal::Invalid(format!("acl rule '{rule}': {e}")))?;
    }
    Ok(user)
}

/// A refusal's reason in a few words (the library's error kinds).
fn reason(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::InvalidAlgorithm => "algorithm not accepted".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("missing claim '{c}'"),
        ErrorKind::InvalidIssuer => "wrong issuer".into(),
        ErrorKind::InvalidAudience => "wrong audience".into(),
        ErrorKind::Json(e) => format!("claims: {e}"),
        ErrorKind::InvalidClaimFormat(c) => format!("claim '{c}' has the wrong type"),
        _ => "malformed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    fn settings() -> TokenSettings {
        TokenSettings { hs256_secret: "s3cret".into(), ..TokenSettings::default() }
    }

    fn acl() -> Acl {
        let settings = crate::config::Config::load(&crate::config::Overrides::default()).unwrap().acl;
        let acl = Acl::new(&settings, "").unwrap();
        acl.set_user(b"alice", &["on".into(), "~a:*".into(), "+@all".into()]).unwrap();
        acl
    }

    fn sign(claims: serde_json::Value, secret: &str) -> String {
        encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn verifies_user_and_rules_and_expiry() {
        let tokens = Tokens::new(&settings()).unwrap();
        let acl = acl();
        let now = 1_000_000_000;
        let g = tokens.verify(&sign(json!({"user": "alice", "exp": 1_000_100}), "s3cret"), now, &acl).unwrap();
        assert_eq!((g.user.name.as_str(), g.detached, g.expires_ms), ("alice", false, 1_000_100_000));
        let g = tokens.verify(&sign(json!({"sub": "web-7", "acl": "~t:* &t:* +@all", "exp": 1_000_100}), "s3cret"), now, &acl).unwrap();
        assert!(g.detached && g.user.name == "web-7" && g.user.may_access_key(b"t:x", super::super::user::READ));
        assert!(!g.user.may_access_key(b"u:x", super::super::user::READ));
        let list = tokens.verify(&sign(json!({"acl": ["~t:*", "+get"], "exp": 1_000_100}), "s3cret"), now, &acl).unwrap();
        assert_eq!(list.user.name, "token");
        assert_eq!(tokens.verify(&sign(json!({"user": "alice", "exp": 999_999}), "s3cret"), now, &acl).unwrap_err(), Refusal::Expired);
        let bad = |claims, secret| tokens.verify(&sign(claims, secret), now, &acl).unwrap_err().message();
        assert_eq!(bad(json!({"user": "alice", "exp": 1_000_100}), "other"), "WRONGPASS invalid token: bad signature");
        assert!(bad(json!({"user": "alice"}), "s3cret").contains("missing claim 'exp'"));
        assert!(bad(json!({"user": "carol", "exp": 1_000_100}), "s3cret").contains("does not exist"));
        assert!(bad(json!({"acl": ">pw +@all", "exp": 1_000_100}), "s3cret").contains("not allowed in a token"));
        assert!(bad(json!({"acl": "+nosuchcommand", "exp": 1_000_100}), "s3cret").contains("acl rule"));
        assert!(bad(json!({"user": "alice", "acl": "+@all", "exp": 1_000_100}), "s3cret").contains("either"));
        assert!(tokens.verify("not.a.token", now, &acl).is_err());
        let off = Tokens::new(&TokenSettings::default()).unwrap();
        assert_eq!(off.verify("x", now, &acl).unwrap_err(), Refusal::Disabled);
    }

    #[test]
    fn algorithm_must_be_configured() {
        let tokens = Tokens::new(&settings()).unwrap();
        let token = encode(
            &Header::new(Algorithm::HS384),
            &json!({"user": "alice", "exp": 2_000_000}),
            &EncodingKey::from_secret(b"s3cret").unwrap(),
        )
        .unwrap();
        assert!(tokens.verify(&token, 0, &acl()).unwrap_err().message().contains("HS384 is not accepted"));
        // `alg: none` (an unsigned token) is not an algorithm the library even parses.
        let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(r#"{"user":"alice","exp":2000000}"#));
        assert!(tokens.verify(&none, 0, &acl()).is_err());
    }

    fn b64(text: &str) -> String {
        herald_protocol::json::base64_encode(text.as_bytes()).trim_end_matches('=').replace('+', "-").replace('/', "_")
    }
}
