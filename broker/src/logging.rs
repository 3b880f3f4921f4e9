//! The process's log: `tracing` events to stderr, as text lines or one JSON object per line
//! (`log.format`), filtered by `log.level`'s directives (a level, then per-module ones) or `RUST_LOG`.
//!
//! Targets worth filtering on: `herald::auth` (authentication failures), `herald::clients`
//! (connections refused, killed, closed for a reason worth knowing), `herald::script` (`redis.log`),
//! and the modules of `herald_broker` for everything else.

use tracing_subscriber::EnvFilter;

use crate::config::LogSettings;

/// Installs the global subscriber (once per process: the binary calls it before serving).
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if settings.format == "json" {
        // Fields at the top level beside `message`, so collectors index `id`, `addr`, `user` directly.
        builder.json().flatten_event(true).with_current_span(false).with_span_list(false).with_target(true).init();
    } else {
        builder.with_target(false).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
}
