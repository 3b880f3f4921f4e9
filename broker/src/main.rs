//! The `herald` binary: parse flags, load configuration, log, serve until SIGINT or SIGTERM.

use std::path::PathBuf;

use clap::Parser;
use herald_broker::alloc::CountingAllocator;
use herald_broker::config::{Config, Overrides};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Herald: a message broker for programs and agents. Speaks the Redis protocol (RESP2/RESP3) and JSON
/// over WebSocket. Every configuration key can also be set in a TOML file or as HERALD_<KEY>
/// (nested keys joined with "__"); see docs/config.md.
#[derive(Parser, Debug)]
#[command(name = "herald", version, about, long_about = None)]
struct Cli {
    /// RESP (Redis protocol) port [default: 6379]
    #[arg(long)]
    port: Option<u16>,
    /// HTTP/WebSocket port [default: 7379]
    #[arg(long = "http-port")]
    http_port: Option<u16>,
    /// Address to bind [default: 127.0.0.1]
    #[arg(long)]
    bind: Option<String>,
    /// TOML configuration file
    #[arg(long, env = herald_broker::config::CONFIG_FILE_VARIABLE)]
    config: Option<PathBuf>,
    /// Require this password (AUTH / HELLO AUTH)
    #[arg(long)]
    requirepass: Option<String>,
    /// Keep everything in this directory (append-only log + snapshots) so it survives restarts
    /// [default: none, everything in memory]
    #[arg(long = "data-dir")]
    data_dir: Option<String>,
    /// When the log reaches the disk: always | everysec | no [default: everysec]
    #[arg(long)]
    appendfsync: Option<String>,
    /// Start even if a record in the middle of the log is corrupt, dropping it and the rest of its file
    #[arg(long)]
    repair: bool,
    /// Keep the data in this Redis/Valkey server, shared with other Herald nodes: redis://HOST:PORT
    /// (docs/scale-out.md) [default: the embedded engine]
    #[arg(long, env = herald_broker::config::ENGINE_VARIABLE)]
    engine: Option<String>,
    /// Allow listening on a non-loopback address without any password (docs/security.md)
    #[arg(long)]
    insecure: bool,
    /// Do not serve: ask the broker this configuration describes for PATH on its HTTP port and exit 0 if
    /// it answers 200 (container health checks; /readyz for readiness)
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = "/healthz")]
    healthcheck: Option<String>,
    /// Do not serve: copy what --data-dir holds into the Redis/Valkey server at URL in the Redis engine's
    /// layout, for nodes started with --engine URL (docs/scale-out.md), then exit
    #[arg(long = "migrate-to", value_name = "URL")]
    migrate_to: Option<String>,
}

fn main() {
    let cli = Cli::parse();
    let overrides = Overrides {
        config_file: cli.config,
        port: cli.port,
        http_port: cli.http_port,
        bind: cli.bind,
        requirepass: cli.requirepass,
        data_dir: cli.data_dir,
        appendfsync: cli.appendfsync,
        repair: cli.repair,
        insecure: cli.insecure,
        engine: cli.engine,
    };
    let config = match Config::load(&overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("herald: {e}");
            std::process::exit(2);
        }
    };
    if let Some(path) = cli.healthcheck {
        match herald_broker::probe::check(&config, &path) {
            Ok(status) => println!("herald: {status}"),
            Err(e) => {
                eprintln!("herald: unhealthy: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    if let Some(url) = cli.migrate_to {
        match herald_broker::remote::import::migrate(&config, &url) {
            Ok(moved) => println!("herald: moved {moved} into {url}"),
            Err(e) => {
                eprintln!("herald: --migrate-to: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    herald_broker::logging::init(&config.log);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    if let Err(e) = runtime.block_on(herald_broker::run(config, shutdown_signal())) {
        tracing::error!("herald: {e}");
        std::process::exit(1);
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
