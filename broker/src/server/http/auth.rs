//! Who a request says it is, turned into the request that authenticates its session through
//! dispatch, exactly as `AUTH` does on RESP and WebSocket (so users, passwords and permissions mean
//! the same on every wire).
//!
//! - `Authorization: Basic base64(user:password)`: `AUTH user password`.
//! - `Authorization: Bearer <token>`: the token hook, [`bearer`]. Herald has no token issuer yet, so
//!   it refuses with 401 and says so; token support (JWT) plugs in there and nowhere else.
//! - `?user=..&password=..` on event streams only: a browser's `EventSource` cannot send headers
//!   (the same rule as `/ws`).

use bytes::Bytes;
use herald_protocol::{CommandError, Request, json::base64_decode};

/// Credentials a request presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    Anonymous,
    Password { user: Option<String>, password: String },
    Bearer(String),
}

impl Presented {
    /// From the `Authorization` header, else (for event streams) the URL's `user` / `password`.
    pub fn from_request(header: Option<&str>, query: Option<&[(String, String)]>) -> Result<Presented, CommandError> {
        if let Some(value) = header {
            let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
            let rest = rest.trim();
            return if scheme.eq_ignore_ascii_case("basic") {
                let decoded = base64_decode(rest)
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| CommandError::fixed("NOAUTH Authorization: Basic needs base64 of user:password"))?;
                let (user, password) = decoded
                    .split_once(':')
                    .ok_or_else(|| CommandError::fixed("NOAUTH Authorization: Basic needs base64 of user:password"))?;
                Ok(Presented::Password { user: Some(user.to_owned()), password: password.to_owned() })
            } else if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
                Ok(Presented::Bearer(rest.to_owned()))
            } else {
                Err(CommandError::fixed("NOAUTH unsupported Authorization scheme: use Basic (user:password) or Bearer (a token)"))
            };
        }
        let find = |name: &str| query.and_then(|q| q.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
        Ok(match find("password") {
            Some(password) => Presented::Password { user: find("user"), password },
            None => Presented::Anonymous,
        })
    }

    /// The command that authenticates a session with these credentials; `None` for anonymous.
    pub fn auth_request(&self) -> Result<Option<Request>, CommandError> {
        match self {
            Presented::Anonymous => Ok(None),
            Presented::Password { user, password } => {
                let mut parts = vec![Bytes::from_static(b"AUTH")];
                parts.extend(user.clone().map(Bytes::from));
                parts.push(Bytes::from(password.clone()));
                Ok(Some(Request::new(parts)))
            }
            Presented::Bearer(token) => bearer(token).map(Some),
        }
    }
}

/// The token hook: the request that authenticates a session holding `token`. Herald issues no tokens
/// yet, so every token is refused (401) with a message saying how to authenticate instead.
fn bearer(_token: &str) -> Result<Request, CommandError> {
    Err(CommandError::fixed("NOAUTH bearer tokens are not enabled on this broker: use Authorization: Basic with user:password"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        // "alice:s3:cret"
        let basic = Presented::from_request(Some("Basic YWxpY2U6czM6Y3JldA=="), None).unwrap();
        assert_eq!(basic, Presented::Password { user: Some("alice".into()), password: "s3:cret".into() });
        let parts: Vec<Bytes> = basic.auth_request().unwrap().unwrap().into_parts();
        assert_eq!(parts, vec![Bytes::from("AUTH"), Bytes::from("alice"), Bytes::from("s3:cret")]);
        assert_eq!(Presented::from_request(None, None).unwrap(), Presented::Anonymous);
        let query = vec![("password".to_owned(), "p".to_owned())];
        assert_eq!(Presented::from_request(None, Some(&query)).unwrap(), Presented::Password { user: None, password: "p".into() });
        assert_eq!(Presented::from_request(Some("Basic !!"), None).unwrap_err().code(), "NOAUTH");
        assert_eq!(Presented::from_request(Some("Digest x"), None).unwrap_err().code(), "NOAUTH");
        let bearer = Presented::from_request(Some("Bearer abc"), None).unwrap();
        assert!(bearer.auth_request().unwrap_err().message().contains("bearer tokens are not enabled"));
    }
}
