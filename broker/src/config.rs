//! Configuration: compiled-in defaults, then a TOML file, then `HERALD_*` environment variables, then
//! command-line flags. Errors name the key and the cause.

use std::path::PathBuf;

use config::{Environment, File, FileFormat};
use serde::Deserialize;

use crate::engine::bulletin::BulletinSettings;
use crate::engine::jobs::JobSettings;
use crate::engine::keyspace::{BlackboardSettings, notify};
use crate::engine::mailbox::MailboxSettings;
use crate::engine::schema::SchemaSettings;
use crate::engine::semaphore::SemaphoreSettings;
use crate::engine::stream::StreamSettings;
use crate::persist::{Fsync, PersistenceSettings};
use crate::pubsub::{OutboxLimits, OverflowPolicy};

/// The defaults, documented line by line; `docs/config.md` mirrors this file.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub bind: String,
    pub port: u16,
    pub http_port: u16,
    pub requirepass: String,
    pub databases: usize,
    pub io_threads: usize,
    pub shutdown_timeout_ms: u64,
    pub log: LogSettings,
    pub notify_keyspace_events: String,
    pub insecure: bool,
    pub maxmemory: u64,
    pub maxmemory_policy: String,
    pub limits: Limits,
    pub pubsub: PubSub,
    pub streams: StreamSettings,
    pub mailboxes: MailboxSettings,
    pub blackboard: BlackboardSettings,
    pub jobs: JobSettings,
    pub bulletin: BulletinSettings,
    pub semaphores: SemaphoreSettings,
    pub schemas: SchemaSettings,
    pub websocket: WebSocket,
    pub http: Http,
    pub metrics: MetricsSettings,
    pub persistence: PersistenceSettings,
    pub scripting: ScriptingSettings,
    pub diagnostics: Diagnostics,
    pub engine: EngineSettings,
    pub acl: crate::acl::AclSettings,
    pub tokens: crate::acl::token::TokenSettings,
    pub tls: crate::tls::TlsSettings,
    /// Per-tenant quotas (`[[quotas]]`, docs/security.md); none by default.
    pub quotas: Vec<QuotaSettings>,
}

/// One tenant's bounds: `pattern` is a glob over the names ACL key patterns match (keys, scopes, boards,
/// queues, streams); each bound 0 means none.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuotaSettings {
    pub pattern: String,
    #[serde(default)]
    pub keys: u64,
    #[serde(default)]
    pub items: u64,
    #[serde(default)]
    pub jobs: u64,
    #[serde(default)]
    pub streams: u64,
}

/// Which engine holds the data (`docs/scale-out.md`): the embedded one, or a shared Redis/Valkey.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EngineSettings {
    /// `""`: embedded. `redis://...`: the Redis engine.
    pub url: String,
    pub blocking_connections: usize,
    /// Plain commands one connection may have sent to Redis and not yet answered (a client's pipeline).
    pub max_in_flight: usize,
    pub response_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub wait_poll_ms: u64,
    pub notice_backlog: usize,
    /// With `[[quotas]]`: how often each node counts what the tenants hold in Redis (`remote/quota.rs`).
    pub quota_refresh_ms: u64,
    /// For `rediss://` (and `rediss+sentinel://`, `rediss+cluster://`): the PEM file of the CA that signed
    /// Redis's certificate ("": the system's roots).
    pub tls_ca_file: String,
    /// For `rediss://` to a Redis that asks for client certificates (`tls-auth-clients yes`): this
    /// node's certificate and key, PEM ("": none).
    pub tls_cert_file: String,
    pub tls_key_file: String,
    /// For `redis+sentinel://`: how often the sentinels are asked whether the primary moved.
    pub sentinel_poll_ms: u64,
    /// For `redis+sentinel://` to sentinels that ask for a password (`requirepass` in sentinel.conf):
    /// the sentinels' credentials ("": none). The URL's credentials are the primary's.
    pub sentinel_username: String,
    pub sentinel_password: String,
    /// For `redis+cluster://`: how often the node asks the cluster for its nodes (the pub-sub
    /// bridge's candidates).
    pub cluster_poll_ms: u64,
}

impl EngineSettings {
    pub fn is_redis(&self) -> bool {
        !self.url.is_empty()
    }
}

/// Lua scripting (EVAL, FUNCTION).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScriptingSettings {
    /// `busy-reply-threshold` (`lua-time-limit`): how long a script runs before other clients get -BUSY.
    pub busy_reply_threshold_ms: u64,
    /// Bytes each Lua state may allocate; a script that needs more fails with an error. 0: no limit.
    pub memory_limit: usize,
}

/// SLOWLOG and the latency monitor (Redis's names in CONFIG GET / SET).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Diagnostics {
    /// `slowlog-log-slower-than`: microseconds a command must run to be logged; negative: off.
    pub slowlog_log_slower_than: i64,
    /// `slowlog-max-len`: entries the slow log keeps.
    pub slowlog_max_len: usize,
    /// `latency-monitor-threshold`: milliseconds a command must run to be a latency sample; 0: off.
    pub latency_monitor_threshold: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebSocket {
    pub max_message_bytes: usize,
    pub max_frame_bytes: usize,
    pub read_buffer_bytes: usize,
    pub write_buffer_bytes: usize,
    pub heartbeat_ms: u64,
    pub idle_timeout_ms: u64,
    pub auth_timeout_ms: u64,
    pub handshake_timeout_ms: u64,
    pub allowed_origins: Vec<String>,
}

/// Logging (`docs/operations.md`, "Logs").
#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    /// tracing's `EnvFilter` directives: a level, then per-module ones (`info,herald::auth=warn`).
    pub level: String,
    /// `text` (human-readable lines) or `json` (one JSON object per line).
    pub format: String,
}

/// `[log]` as a table, or the filter alone as a string (`log = "debug"`, `HERALD_LOG=debug`): the form
/// `log` had before it gained `format`, still accepted so existing configurations keep working.
impl<'de> Deserialize<'de> for LogSettings {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            level: Option<String>,
            format: Option<String>,
        }
        struct Form;
        impl<'de> serde::de::Visitor<'de> for Form {
            type Value = LogSettings;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a table with `level` and `format`, or a filter string such as \"info\"")
            }
            fn visit_str<E: serde::de::Error>(self, level: &str) -> Result<LogSettings, E> {
                Ok(LogSettings { level: level.to_owned(), format: "text".to_owned() })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<LogSettings, A::Error> {
                let t = Table::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(LogSettings {
                    level: t.level.unwrap_or_else(|| "info".to_owned()),
                    format: t.format.unwrap_or_else(|| "text".to_owned()),
                })
            }
        }
        d.deserialize_any(Form)
    }
}

/// `GET /metrics` (`docs/operations.md`, "Metrics").
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Most queues, boards, mailboxes and streams exported by name, each (the largest); the others
    /// are summed under `_other`. Bounds the label cardinality a scrape can produce.
    pub max_objects: usize,
}

/// The HTTP surface on `http_port` besides `/ws` (`docs/http.md`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Http {
    pub max_head_bytes: usize,
    pub max_body_bytes: usize,
    pub max_pipeline: usize,
    pub request_timeout_ms: u64,
    pub keepalive_timeout_ms: u64,
    pub heartbeat_ms: u64,
    pub follow_count: usize,
    pub write_buffer_bytes: usize,
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub maxclients: usize,
    pub proto_max_bulk_len: usize,
    pub max_multibulk_len: usize,
    pub max_inline_len: usize,
    pub client_query_buffer_limit: usize,
    pub timeout: u64,
    pub auth_timeout_ms: u64,
    pub reply_flush_bytes: usize,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PubSub {
    pub hard_limit: usize,
    pub soft_limit: usize,
    pub soft_seconds: u64,
    pub overflow: String,
    pub fanout_backlog: usize,
}

/// Values given on the command line; they win over every other source.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub port: Option<u16>,
    pub http_port: Option<u16>,
    pub bind: Option<String>,
    pub requirepass: Option<String>,
    pub data_dir: Option<String>,
    pub appendfsync: Option<String>,
    pub repair: bool,
    pub insecure: bool,
    /// `--engine` / `HERALD_ENGINE`: `engine.url`.
    pub engine: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Source(#[from] config::ConfigError),
    #[error("configuration key `{key}`: {cause}")]
    Invalid { key: &'static str, cause: String },
}

impl Config {
    /// The compiled-in defaults alone (what tests start from).
    pub fn defaults() -> Self {
        Self::build(&Overrides::default(), false).expect("the embedded defaults are valid")
    }

    /// Defaults + file + environment + flags.
    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        Self::build(overrides, true)
    }

    fn build(overrides: &Overrides, with_env: bool) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(path) = &overrides.config_file {
            builder = builder.add_source(File::from(path.as_path()).format(FileFormat::Toml).required(true));
        }
        if with_env {
            builder = builder.add_source(
                Environment::with_prefix("HERALD")
                    .source(Some(herald_variables()?))
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    // HERALD_WEBSOCKET__ALLOWED_ORIGINS="https://a.example,https://b.example"
                    .list_separator(",")
                    .with_list_parse_key("websocket.allowed_origins")
                    .with_list_parse_key("http.allowed_origins")
                    // HERALD_ACL__USERS="alice on >pw ~tenant-a:* +@all,bob on >pw2 +@read ~*"
                    .with_list_parse_key("acl.users"),
            );
        }
        if let Some(port) = overrides.port {
            builder = builder.set_override("port", i64::from(port))?;
        }
        if let Some(port) = overrides.http_port {
            builder = builder.set_override("http_port", i64::from(port))?;
        }
        if let Some(bind) = &overrides.bind {
            builder = builder.set_override("bind", bind.as_str())?;
        }
        if let Some(pass) = &overrides.requirepass {
            builder = builder.set_override("requirepass", pass.as_str())?;
        }
        if let Some(dir) = &overrides.data_dir {
            builder = builder.set_override("persistence.data_dir", dir.as_str())?;
        }
        if let Some(policy) = &overrides.appendfsync {
            builder = builder.set_override("persistence.appendfsync", policy.as_str())?;
        }
        if overrides.insecure {
            builder = builder.set_override("insecure", true)?;
        }
        if let Some(url) = &overrides.engine {
            builder = builder.set_override("engine.url", url.as_str())?;
        }
        if overrides.repair {
            builder = builder.set_override("persistence.repair", true)?;
        }
        let config: Config = builder.build()?.try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, cause: &str| Err(ConfigError::Invalid { key, cause: cause.to_owned() });
        if self.databases == 0 || self.databases > 1024 {
            return invalid("databases", "must be between 1 and 1024");
        }
        if self.bind.parse::<std::net::IpAddr>().is_err() {
            return invalid("bind", "must be an IP address such as 127.0.0.1 or 0.0.0.0");
        }
        if notify::parse_flags(self.notify_keyspace_events.as_bytes()).is_none() {
            return invalid("notify_keyspace_events", "unknown flag letter (see Redis's notify-keyspace-events)");
        }
        if Fsync::parse(&self.persistence.appendfsync).is_none() {
            return invalid("persistence.appendfsync", "must be \"always\", \"everysec\" or \"no\"");
        }
        if parse_overflow(&self.pubsub.overflow).is_none() {
            return invalid("pubsub.overflow", "must be \"disconnect\" or \"drop-oldest\"");
        }
        if self.maxmemory_policy != "noeviction" {
            return invalid("maxmemory_policy", "must be \"noeviction\" (Herald refuses writes past maxmemory and never deletes data)");
        }
        if self.limits.maxclients == 0 {
            return invalid("limits.maxclients", "must be at least 1");
        }
        if self.websocket.read_buffer_bytes < 256 {
            return invalid("websocket.read_buffer_bytes", "must be at least 256");
        }
        if self.websocket.max_frame_bytes == 0 || self.websocket.max_message_bytes == 0 {
            return invalid("websocket.max_message_bytes", "message and frame limits must be above 0");
        }
        if self.http.max_head_bytes < 256 {
            return invalid("http.max_head_bytes", "must be at least 256");
        }
        if self.http.max_pipeline == 0 || self.http.follow_count == 0 {
            return invalid("http.max_pipeline", "http.max_pipeline and http.follow_count must be at least 1");
        }
        if self.engine.is_redis() {
            if let Some(sentinel) = crate::remote::Sentinels::parse(&self.engine.url) {
                if let Err(e) = sentinel {
                    return invalid("engine.url", &e);
                }
            } else if let Some(cluster) = crate::remote::Seeds::parse(&self.engine.url) {
                if let Err(e) = cluster {
                    return invalid("engine.url", &e);
                }
            } else {
                let scheme_ok = ["redis://", "rediss://", "redis+unix://", "unix://"].iter().any(|s| self.engine.url.starts_with(s));
                if !scheme_ok || redis::Client::open(self.engine.url.as_str()).is_err() {
                    return invalid(
                        "engine.url",
                        "must be \"\" (embedded), redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], rediss://... (TLS), \
                         redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB], \
                         redis+cluster://HOST:PORT[,HOST:PORT...] (rediss+sentinel://, rediss+cluster:// with TLS) \
                         or redis+unix:///PATH",
                    );
                }
            }
            let sentinel_auth = !self.engine.sentinel_password.is_empty() || !self.engine.sentinel_username.is_empty();
            if sentinel_auth && crate::remote::Sentinels::parse(&self.engine.url).is_none() {
                return invalid(
                    "engine.sentinel_password",
                    "engine.sentinel_username and engine.sentinel_password are for a redis+sentinel:// engine.url",
                );
            }
            if self.engine.sentinel_password.is_empty() && !self.engine.sentinel_username.is_empty() {
                return invalid("engine.sentinel_username", "needs engine.sentinel_password");
            }
            if self.engine.tls_cert_file.is_empty() != self.engine.tls_key_file.is_empty() {
                return invalid("engine.tls_cert_file", "engine.tls_cert_file and engine.tls_key_file go together");
            }
            if !self.persistence.data_dir.is_empty() {
                return invalid("persistence.data_dir", "is for the embedded engine: with engine.url set, Redis keeps the data");
            }
            if !self.quotas.is_empty() && self.engine.quota_refresh_ms == 0 {
                return invalid("engine.quota_refresh_ms", "must be at least 1 with [[quotas]]");
            }
            if self.engine.blocking_connections == 0 {
                return invalid("engine.blocking_connections", "must be at least 1");
            }
            if self.engine.max_in_flight == 0 {
                return invalid("engine.max_in_flight", "must be at least 1");
            }
            if self.engine.wait_poll_ms == 0 {
                return invalid("engine.wait_poll_ms", "must be at least 1");
            }
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(ConfigError::Invalid {
                key: "log.level",
                cause: format!("not a tracing filter ({e}), e.g. \"info\" or \"info,herald::auth=warn\""),
            });
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return invalid("log.format", "must be \"text\" or \"json\"");
        }
        if self.limits.max_inline_len < 16 {
            return invalid("limits.max_inline_len", "must be at least 16");
        }
        Ok(())
    }

    pub fn outbox_limits(&self) -> OutboxLimits {
        OutboxLimits {
            hard_bytes: self.pubsub.hard_limit,
            soft_bytes: self.pubsub.soft_limit,
            soft_seconds: self.pubsub.soft_seconds,
            policy: parse_overflow(&self.pubsub.overflow).unwrap_or(OverflowPolicy::Disconnect),
        }
    }

    /// Why listening where configured would expose Herald to a network without authentication
    /// (`None` when it would not, or `insecure` says to go ahead).
    pub fn exposure(&self, requires_auth: bool) -> Option<String> {
        let ip: std::net::IpAddr = self.bind.parse().ok()?;
        if ip.is_loopback() || requires_auth || self.insecure {
            return None;
        }
        Some(format!(
            "refusing to listen on {ip} without authentication: anyone who can reach it could do anything. \
             Set a password (--requirepass, HERALD_REQUIREPASS, or requirepass in the config file), or define users \
             (acl.users / acl.aclfile) and turn the default user off or give it a password; or bind 127.0.0.1; \
             or, on a network you trust, start with --insecure (insecure = true). See docs/security.md."
        ))
    }

    /// Settings for tests: free ports, connections on the caller's runtime.
    pub fn for_tests() -> Self {
        Config { port: 0, http_port: 0, io_threads: 0, ..Self::defaults() }
    }
}

/// The environment variable naming the configuration file (as `--config` does), so a container image
/// and its health check read the same mounted file. It names a file, not a key.
pub const CONFIG_FILE_VARIABLE: &str = "HERALD_CONFIG";

/// The environment variable for `--engine` (the key `engine.url`).
pub const ENGINE_VARIABLE: &str = "HERALD_ENGINE";

/// The `HERALD_*` environment variables that name configuration keys. Others (`HERALD_BIN` in a test
/// script, say) are somebody else's and are left alone, with a note on stderr in case one is a typo.
fn herald_variables() -> Result<config::Map<String, String>, ConfigError> {
    let known: Vec<String> = config::Source::collect(&File::from_str(DEFAULT_TOML, FileFormat::Toml))?.into_keys().collect();
    let mut vars = config::Map::new();
    for (name, value) in std::env::vars() {
        // HERALD_ENGINE is `--engine`'s variable (engine.url), not the `[engine]` table.
        if name == CONFIG_FILE_VARIABLE || name == ENGINE_VARIABLE {
            continue;
        }
        let Some(key) = name.strip_prefix("HERALD_") else { continue };
        let top = key.split("__").next().unwrap_or_default().to_ascii_lowercase();
        if known.contains(&top) {
            vars.insert(name, value);
        } else {
            eprintln!("herald: ignoring {name}: `{top}` is not a configuration key (docs/config.md)");
        }
    }
    Ok(vars)
}

pub fn parse_overflow(text: &str) -> Option<OverflowPolicy> {
    match text {
        "disconnect" => Some(OverflowPolicy::Disconnect),
        "drop-oldest" => Some(OverflowPolicy::DropOldest),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn defaults_are_what_docs_say() {
        let c = Config::defaults();
        assert_eq!(c.port, 6379);
        assert_eq!(c.bind, "127.0.0.1");
        assert_eq!(c.limits.proto_max_bulk_len, 512 * 1024 * 1024);
        assert_eq!(c.outbox_limits(), OutboxLimits::default());
    }

    #[test]
    fn file_then_flags() {
        let mut file = tempfile("port = 7000\n[limits]\nmaxclients = 5\n");
        file.flush().unwrap();
        let over = Overrides { config_file: Some(file.path.clone()), port: Some(7001), ..Default::default() };
        let c = Config::build(&over, false).unwrap();
        assert_eq!((c.port, c.limits.maxclients), (7001, 5));
    }

    #[test]
    fn errors_name_the_key() {
        let file = tempfile("port = \"abc\"\n");
        let over = Overrides { config_file: Some(file.path.clone()), ..Default::default() };
        let err = Config::build(&over, false).unwrap_err().to_string();
        assert!(err.contains("port"), "{err}");
        let file = tempfile("[pubsub]\noverflow = \"sometimes\"\n");
        let over = Overrides { config_file: Some(file.path.clone()), ..Default::default() };
        let err = Config::build(&over, false).unwrap_err().to_string();
        assert!(err.contains("pubsub.overflow"), "{err}");
        let file = tempfile("colour = 1\n");
        let over = Overrides { config_file: Some(file.path.clone()), ..Default::default() };
        let err = Config::build(&over, false).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn the_engine_flag_names_a_redis_server_and_excludes_a_data_directory() {
        let with = |engine: &str, data_dir: Option<&str>| {
            let over = Overrides { engine: Some(engine.into()), data_dir: data_dir.map(Into::into), ..Default::default() };
            Config::build(&over, false)
        };
        let c = with("redis://127.0.0.1:6380", None).unwrap();
        assert!(c.engine.is_redis());
        assert!(!Config::defaults().engine.is_redis(), "the embedded engine is the default");
        assert!(with("redis+unix:///tmp/r.sock", None).unwrap().engine.is_redis());
        assert!(with("redis+cluster://h1:7000,h2:7001", None).unwrap().engine.is_redis());
        let err = with("redis+cluster://h1:7000/3", None).unwrap_err().to_string();
        assert!(err.contains("Redis Cluster URL"), "{err}");
        let err = with("http://x", None).unwrap_err().to_string();
        assert!(err.contains("engine.url"), "{err}");
        let err = with("redis://127.0.0.1:6380", Some("/tmp/d")).unwrap_err().to_string();
        assert!(err.contains("persistence.data_dir"), "{err}");
        // Quotas go with either engine; on Redis they are counted every engine.quota_refresh_ms, which must not be 0.
        let file = tempfile("[[quotas]]\npattern = \"a:*\"\nkeys = 10\n");
        let over = Overrides { config_file: Some(file.path.clone()), engine: Some("redis://127.0.0.1:6380".into()), ..Default::default() };
        let c = Config::build(&over, false).unwrap();
        assert_eq!((c.quotas.len(), c.engine.quota_refresh_ms), (1, 5000));
        let over = Overrides { config_file: Some(file.path.clone()), ..Default::default() };
        assert_eq!(Config::build(&over, false).unwrap().quotas.len(), 1);
        let file = tempfile("[[quotas]]\npattern = \"a:*\"\nkeys = 10\n[engine]\nquota_refresh_ms = 0\n");
        let over = Overrides { config_file: Some(file.path.clone()), engine: Some("redis://127.0.0.1:6380".into()), ..Default::default() };
        let err = Config::build(&over, false).unwrap_err().to_string();
        assert!(err.contains("engine.quota_refresh_ms"), "{err}");
        // The sentinels' credentials go with a Sentinel URL, and a username with a password.
        let file = tempfile("[engine]\nsentinel_password = \"pw\"\n");
        let over = Overrides { config_file: Some(file.path.clone()), engine: Some("redis://127.0.0.1:6380".into()), ..Default::default() };
        let err = Config::build(&over, false).unwrap_err().to_string();
        assert!(err.contains("engine.sentinel_password"), "{err}");
        let over =
            Overrides { config_file: Some(file.path.clone()), engine: Some("redis+sentinel://h:26379/m".into()), ..Default::default() };
        assert_eq!(Config::build(&over, false).unwrap().engine.sentinel_password, "pw");
        let file = tempfile("[engine]\nsentinel_username = \"u\"\n");
        let over =
            Overrides { config_file: Some(file.path.clone()), engine: Some("redis+sentinel://h:26379/m".into()), ..Default::default() };
        let err = Config::build(&over, false).unwrap_err().to_string();
        assert!(err.contains("engine.sentinel_username"), "{err}");
    }

    #[test]
    fn log_is_a_table_or_the_old_filter_string() {
        let build = |text: &str| {
            let file = tempfile(text);
            Config::build(&Overrides { config_file: Some(file.path.clone()), ..Default::default() }, false)
        };
        let c = build("[log]\nformat = \"json\"\n").unwrap();
        assert_eq!((c.log.level.as_str(), c.log.format.as_str()), ("info", "json"));
        let c = build("log = \"debug,herald::auth=warn\"\n").unwrap();
        assert_eq!((c.log.level.as_str(), c.log.format.as_str()), ("debug,herald::auth=warn", "text"));
        let err = build("[log]\nformat = \"xml\"\n").unwrap_err().to_string();
        assert!(err.contains("log.format"), "{err}");
        let err = build("[log]\ncolour = \"red\"\n").unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
        let err = build("[log]\nlevel = \"info,[\"\n").unwrap_err().to_string();
        assert!(err.contains("log.level"), "{err}");
    }

    struct TempFile {
        path: PathBuf,
        file: std::fs::File,
    }

    impl Write for TempFile {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.file.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.file.flush()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    fn tempfile(text: &str) -> TempFile {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("herald-config-{}-{n}.toml", std::process::id()));
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(text.as_bytes()).unwrap();
        TempFile { path, file }
    }
}
