//! Routing: one table from method and path to what serves it, for every endpoint of the HTTP port.
//!
//! A new endpoint (say `/metrics`) is one line in [`ROUTES`] and one arm where its [`Route`] is served
//! (static answers in `response.rs`, the API in `wire.rs`). `{}` in a pattern matches one path
//! segment, percent-decoded (it may be empty: `/v1/bb//changes` is the global scope).

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Alive: `200 ok` while the process serves HTTP.
    Healthz,
    /// `GET /metrics`: Prometheus text format (metrics.rs).
    Metrics,
    /// Ready: `200` once the broker accepts work, `503` before and while shutting down.
    Readyz,
    /// The JavaScript client, `clients/js/herald.js`.
    Client,
    /// The browser example page.
    Example,
    /// `GET /`: the live console (`clients/js/console/index.html`).
    Console,
    /// The WebSocket channel (served by `server/ws.rs` once upgraded).
    WebSocket,
    /// `POST /v1/cmd`: one command.
    Cmd,
    /// `POST /v1/pipeline`: several commands, answered in order.
    Pipeline,
    /// `GET /v1/subscribe`: pub-sub pushes as server-sent events.
    Subscribe,
    /// `GET /v1/streams/{key}`: a Herald stream's entries as events.
    Stream(String),
    /// `GET /v1/jobs/{id}/events`: a job's progress, chunks and result.
    Job(String),
    /// `GET /v1/bb/{scope}/changes`: a blackboard scope's change journal.
    Changes(String),
}

impl Route {
    /// The routes a browser page may call from another origin (with CORS), and whose connection
    /// the connection core serves.
    pub fn is_api(&self) -> bool {
        !matches!(
            self,
            Route::Healthz | Route::Readyz | Route::Metrics | Route::Client | Route::Example | Route::Console | Route::WebSocket
        )
    }
}

type Build = fn(&mut Vec<String>) -> Route;

/// Every endpoint: method, path pattern, and the route it is.
const ROUTES: &[(&str, &str, Build)] = &[
    ("GET", "/healthz", |_| Route::Healthz),
    ("GET", "/", |_| Route::Console),
    ("GET", "/metrics", |_| Route::Metrics),
    ("GET", "/readyz", |_| Route::Readyz),
    ("GET", "/herald.js", |_| Route::Client),
    ("GET", "/example", |_| Route::Example),
    ("GET", "/example/", |_| Route::Example),
    ("GET", "/ws", |_| Route::WebSocket),
    ("POST", "/v1/cmd", |_| Route::Cmd),
    ("POST", "/v1/pipeline", |_| Route::Pipeline),
    ("GET", "/v1/subscribe", |_| Route::Subscribe),
    ("GET", "/v1/streams/{}", |p| Route::Stream(p.remove(0))),
    ("GET", "/v1/jobs/{}/events", |p| Route::Job(p.remove(0))),
    ("GET", "/v1/bb/{}/changes", |p| Route::Changes(p.remove(0))),
];

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Routed {
    Found(Route),
    /// The path exists under other methods (listed for `Allow`); OPTIONS is a CORS preflight.
    OtherMethods {
        allow: String,
        route: Route,
    },
    NotFound,
}

pub fn route(method: &str, path: &str) -> Routed {
    let mut allow: Vec<&str> = Vec::new();
    let mut found = None;
    for (m, pattern, build) in ROUTES {
        if let Some(mut params) = matches(pattern, path) {
            if *m == method {
                return Routed::Found(build(&mut params));
            }
            allow.push(m);
            found.get_or_insert_with(|| build(&mut params));
        }
    }
    match found {
        Some(route) => {
            allow.push("OPTIONS");
            Routed::OtherMethods { allow: allow.join(", "), route }
        }
        None => Routed::NotFound,
    }
}

/// The decoded `{}` segments when `path` fits `pattern`.
fn matches(pattern: &str, path: &str) -> Option<Vec<String>> {
    let (mut want, mut have) = (pattern.split('/'), path.split('/'));
    let mut params = Vec::new();
    loop {
        match (want.next(), have.next()) {
            (None, None) => return Some(params),
            (Some("{}"), Some(segment)) => params.push(super::request::percent_decode(segment)),
            (Some(w), Some(h)) if w == h => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(route("GET", "/healthz"), Routed::Found(Route::Healthz));
        assert_eq!(route("GET", "/"), Routed::Found(Route::Console));
        assert_eq!(route("GET", "/metrics"), Routed::Found(Route::Metrics));
        assert_eq!(route("GET", "/readyz"), Routed::Found(Route::Readyz));
        assert_eq!(route("POST", "/v1/cmd"), Routed::Found(Route::Cmd));
        assert_eq!(route("GET", "/v1/streams/a%2Fb"), Routed::Found(Route::Stream("a/b".into())));
        assert_eq!(route("GET", "/v1/jobs/j1/events"), Routed::Found(Route::Job("j1".into())));
        assert_eq!(route("GET", "/v1/bb//changes"), Routed::Found(Route::Changes(String::new())));
        assert_eq!(route("GET", "/v1/cmd"), Routed::OtherMethods { allow: "POST, OPTIONS".into(), route: Route::Cmd });
        assert_eq!(route("GET", "/v1/streams/a/b"), Routed::NotFound);
        assert_eq!(route("GET", "/nope"), Routed::NotFound);
        assert!(Route::Cmd.is_api() && !Route::Healthz.is_api() && !Route::Readyz.is_api());
    }
}
