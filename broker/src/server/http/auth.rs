//! Who a request says it is, turned into the request that authenticates its session through
//! dispatch, exactly as `AUTH` does on RESP and WebSocket (so users, passwords and permissions mean
//! the same on every wire).
//!
//! - `Authorization: Basic base64(user:password)`: `AUTH user password`.
//! - `Authorization: Bearer <jwt>`: `AUTH.TOKEN <jwt>` (a signed token, `acl/token.rs`).
//! - `?user=..&password=..` or `?token=<jwt>` on event streams and `/ws` only: a browser's
//!   `EventSource` and `WebSocket` cannot send headers.

use herald_protocol::{CommandError, Request, json::base64_decode};

use crate::server::conn::Credentials;

/// Credentials a request presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    Anonymous,
    Password { user: Option<String>, password: String },
    Bearer(String),
}

impl Presented {
    /// From the `Authorization` header, else (for event streams and `/ws`) the URL's `token`, or its
    /// `user` / `password`.
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
        Ok(match (find("token"), find("password")) {
            (Some(token), _) => Presented::Bearer(token),
            (None, Some(password)) => Presented::Password { user: find("user"), password },
            (None, None) => Presented::Anonymous,
        })
    }

    /// The credentials as the connection core takes them; `None` for anonymous.
    pub fn credentials(&self) -> Option<Credentials> {
        match self {
            Presented::Anonymous => None,
            Presented::Password { user, password } => Some(Credentials::Password { user: user.clone(), password: password.clone() }),
            Presented::Bearer(token) => Some(Credentials::Token(token.clone())),
        }
    }

    /// The command that authenticates a session with these credentials; `None` for anonymous.
    pub fn auth_request(&self) -> Option<Request> {
        self.credentials().map(Credentials::request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        // "alice:s3:cret"
        let basic = Presented::from_request(Some("Basic YWxpY2U6czM6Y3JldA=="), None).unwrap();
        assert_eq!(basic, Presented::Password { user: Some("alice".into()), password: "s3:cret".into() });
        let parts: Vec<Vec<u8>> = basic.auth_request().unwrap().into_parts().into_iter().map(|b| b.to_vec()).collect();
        assert_eq!(parts, vec![b"AUTH".to_vec(), b"alice".to_vec(), b"s3:cret".to_vec()]);
        assert_eq!(Presented::from_request(None, None).unwrap(), Presented::Anonymous);
        let query = vec![("password".to_owned(), "p".to_owned())];
        assert_eq!(Presented::from_request(None, Some(&query)).unwrap(), Presented::Password { user: None, password: "p".into() });
        assert_eq!(Presented::from_request(Some("Basic !!"), None).unwrap_err().code(), "NOAUTH");
        assert_eq!(Presented::from_request(Some("Digest x"), None).unwrap_err().code(), "NOAUTH");
        let bearer = Presented::from_request(Some("Bearer abc"), None).unwrap();
        let parts: Vec<Vec<u8>> = bearer.auth_request().unwrap().into_parts().into_iter().map(|b| b.to_vec()).collect();
        assert_eq!(parts, vec![b"AUTH.TOKEN".to_vec(), b"abc".to_vec()]);
        let query = vec![("token".to_owned(), "t".to_owned()), ("password".to_owned(), "p".to_owned())];
        assert_eq!(Presented::from_request(None, Some(&query)).unwrap(), Presented::Bearer("t".into()));
    }
}
