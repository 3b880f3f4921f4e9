//! CORS: which browser origins may call the API, the headers that say so, and preflights.
//!
//! `http.allowed_origins` lists the origins allowed besides the broker's own (`["*"]`: any). A
//! request whose `Origin` is neither is refused with 403 before anything runs: browsers send a
//! cross-origin POST with a "simple" content type without asking first, so refusing only in a
//! preflight would let any page run commands on a broker it can reach (a local one, say).
//! Requests without `Origin` (curl, servers) are not browsers' and are always let through.

/// How a request's origin stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// No `Origin`, or the broker's own: no CORS headers needed.
    Same,
    /// Another origin, allowed: answered with CORS headers for it.
    Allowed(String),
    /// Another origin, not allowed.
    Refused(String),
}

impl Origin {
    pub fn check(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> Origin {
        let Some(origin) = origin else { return Origin::Same };
        let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        if host.is_some_and(|h| h.eq_ignore_ascii_case(authority)) {
            return Origin::Same;
        }
        if allowed.iter().any(|a| a == "*" || a == origin) {
            Origin::Allowed(origin.to_owned())
        } else {
            Origin::Refused(origin.to_owned())
        }
    }

    /// Header lines for responses to this origin.
    pub fn headers(&self) -> String {
        match self {
            Origin::Allowed(origin) => format!("Access-Control-Allow-Origin: {origin}\r\nVary: Origin\r\n"),
            _ => String::new(),
        }
    }

    /// Header lines answering a preflight for `allow` (the path's methods).
    pub fn preflight_headers(&self, allow: &str, max_age_secs: u64) -> String {
        format!(
            "{}Access-Control-Allow-Methods: {allow}\r\nAccess-Control-Allow-Headers: Authorization, Content-Type, Last-Event-ID\r\nAccess-Control-Max-Age: {max_age_secs}\r\nAllow: {allow}\r\n",
            self.headers()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let allowed = vec!["https://app.example".to_owned()];
        assert_eq!(Origin::check(None, Some("h:1"), &allowed), Origin::Same);
        assert_eq!(Origin::check(Some("http://h:1"), Some("h:1"), &allowed), Origin::Same);
        assert_eq!(Origin::check(Some("https://app.example"), Some("h:1"), &allowed), Origin::Allowed("https://app.example".into()));
        assert_eq!(Origin::check(Some("https://evil.example"), Some("h:1"), &allowed), Origin::Refused("https://evil.example".into()));
        assert!(matches!(Origin::check(Some("https://x"), None, &["*".to_owned()]), Origin::Allowed(_)));
        assert!(Origin::Allowed("o".into()).headers().contains("Access-Control-Allow-Origin: o"));
        assert!(Origin::Same.headers().is_empty());
    }
}
