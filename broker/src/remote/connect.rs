//! How a node reaches its Redis: a [`redis::Client`] for the configured URL, with TLS for `rediss://`
//! (and `rediss+sentinel://`, `rediss+cluster://`), and, for `redis+sentinel://`, the current primary
//! as Sentinel names it.
//!
//! Every connection the engine opens (the shared ones per database and protocol, the blocking pool, the
//! pub-sub bridge) comes from a client made here, so the URL's credentials and the TLS files apply to all
//! of them alike. The certificate files are read once, at start. Under Sentinel the address changes at a
//! failover: [`Endpoint::refresh`] asks the sentinels again, and the pool and the bridge rebuild their
//! connections when it reports a switch (`failover.rs`). Under Redis Cluster (`redis+cluster://`,
//! `cluster.rs`) the cluster client follows the slots itself; the endpoint keeps the nodes known so
//! far (the seeds, then every node `CLUSTER SLOTS` names) for the pub-sub bridge, which may subscribe
//! on any node and moves on to the next when one dies.

use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::{Client, ClientTlsConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, ProtocolVersion, TlsCertificates};

use super::cluster::Seeds;
use crate::config::EngineSettings;

/// The Sentinel schemes: plain TCP, and TLS to the sentinels and to the servers they name.
const SENTINEL_SCHEMES: [&str; 2] = ["redis+sentinel://", "rediss+sentinel://"];

/// What every client of this node is built from: the primary's connection settings and, for TLS, the
/// certificates.
pub struct Endpoint {
    current: RwLock<ConnectionInfo>,
    tls: Option<TlsCertificates>,
    sentinels: Option<Sentinels>,
    /// Under Redis Cluster: the seeds, and every node known so far (the bridge's candidates).
    cluster: Option<Seeds>,
    known: RwLock<Vec<ConnectionInfo>>,
    /// The node the bridge tries next (it moves on at each connection).
    next: AtomicUsize,
    connect_timeout: Duration,
}

/// `redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]`: the sentinels to ask,
/// the service (master) name, and the primary's credentials and database. `rediss+sentinel://` is the
/// same over TLS, to the sentinels and to the primary alike (one deployment, one set of `engine.tls_*`
/// files: a Sentinel set up with `tls-replication yes` reaches its servers over TLS too).
#[derive(Debug, Clone, PartialEq)]
pub struct Sentinels {
    pub addrs: Vec<(String, u16)>,
    pub service: String,
    /// `redis://[credentials@]HOST:PORT[/DB]` with `HOST:PORT` to fill in: the primary's URL.
    user_info: String,
    db: String,
    /// `rediss+sentinel://`: TLS to the sentinels and the primary.
    pub tls: bool,
    /// What the sentinels themselves ask for (`requirepass` / ACL users in sentinel.conf):
    /// `engine.sentinel_username` and `engine.sentinel_password`, apart from the URL's, which are the
    /// primary's. `None`: the sentinels are asked without credentials.
    auth: Option<(Option<String>, String)>,
}

impl Sentinels {
    /// Parses a `redis+sentinel://` URL; `None` if `url` is not one, `Err` if it is malformed.
    pub fn parse(url: &str) -> Option<Result<Sentinels, String>> {
        let (scheme, rest) = SENTINEL_SCHEMES.iter().find_map(|s| Some((s, url.strip_prefix(s)?)))?;
        let tls = scheme.starts_with("rediss");
        Some(
            Self::parse_rest(rest, tls)
                .ok_or_else(|| format!("engine.url: a Sentinel URL is {scheme}[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]")),
        )
    }

    fn parse_rest(rest: &str, tls: bool) -> Option<Sentinels> {
        let (user_info, rest) = match rest.rsplit_once('@') {
            Some((user, rest)) => (format!("{user}@"), rest),
            None => (String::new(), rest),
        };
        let (hosts, path) = rest.split_once('/')?;
        let mut path = path.split('/');
        let service = path.next().filter(|s| !s.is_empty())?.to_owned();
        let db = path.next().unwrap_or("0").to_owned();
        if path.next().is_some() || db.parse::<u16>().is_err() {
            return None;
        }
        let addrs = hosts
            .split(',')
            .map(|h| {
                let (host, port) = h.rsplit_once(':')?;
                Some((host.to_owned(), port.parse().ok()?))
            })
            .collect::<Option<Vec<_>>>()?;
        (!addrs.is_empty()).then_some(Sentinels { addrs, service, user_info, db, tls, auth: None })
    }

    /// The same sentinels, asked with `engine.sentinel_username` / `engine.sentinel_password` ("": none).
    fn authenticated(mut self, settings: &EngineSettings) -> Sentinels {
        if !settings.sentinel_password.is_empty() {
            let user = (!settings.sentinel_username.is_empty()).then(|| settings.sentinel_username.clone());
            self.auth = Some((user, settings.sentinel_password.clone()));
        }
        self
    }

    /// The primary's connection settings at `host:port`.
    fn primary(&self, host: &str, port: u16) -> redis::RedisResult<ConnectionInfo> {
        format!("{}://{}{host}:{port}/{}", self.scheme(), self.user_info, self.db).into_connection_info()
    }

    fn scheme(&self) -> &'static str {
        if self.tls { "rediss" } else { "redis" }
    }

    /// The primary as the first sentinel that answers names it (`SENTINEL get-master-addr-by-name`),
    /// over TLS with `certs` for `rediss+sentinel://`.
    async fn ask(&self, timeout: Duration, certs: Option<&TlsCertificates>) -> Result<(String, u16), String> {
        let mut last = String::from("no sentinel configured");
        for (host, port) in &self.addrs {
            let asked = async {
                let mut info = format!("{}://{host}:{port}", self.scheme()).into_connection_info()?;
                if let Some((user, password)) = &self.auth {
                    let mut redis = info.redis_settings().clone().set_password(password);
                    if let Some(user) = user {
                        redis = redis.set_username(user);
                    }
                    info = info.set_redis_settings(redis);
                }
                let client = match certs {
                    Some(certs) => Client::build_with_tls(info, certs.clone())?,
                    None => Client::open(info)?,
                };
                let config = redis::AsyncConnectionConfig::new().set_connection_timeout(Some(timeout)).set_response_timeout(Some(timeout));
                let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
                redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(&self.service)
                    .query_async::<Option<(String, u16)>>(&mut conn)
                    .await
            };
            match asked.await {
                Ok(Some(addr)) => return Ok(addr),
                Ok(None) => last = format!("sentinel {host}:{port} knows no master named {:?}", self.service),
                Err(e) => last = format!("sentinel {host}:{port}: {e}"),
            }
        }
        Err(last)
    }
}

impl Endpoint {
    /// The endpoint of `settings.url`. For Sentinel this asks the sentinels for the primary (on a
    /// runtime of its own: the node starts before its runtime serves anything).
    pub fn new(settings: &EngineSettings) -> Result<Endpoint, String> {
        let connect_timeout = Duration::from_millis(settings.connect_timeout_ms.max(1));
        let sentinels = Sentinels::parse(&settings.url).transpose()?.map(|s| s.authenticated(settings));
        let cluster = Seeds::parse(&settings.url).transpose()?;
        // Every TLS scheme starts so: `rediss://`, `rediss+sentinel://`, `rediss+cluster://`.
        let tls = settings.url.starts_with("rediss").then(|| certificates(settings)).transpose()?;
        if tls.is_none() && (!settings.tls_ca_file.is_empty() || !settings.tls_cert_file.is_empty()) {
            return Err("engine.tls_ca_file / engine.tls_cert_file are for a rediss:// engine.url".into());
        }
        let info = match (&sentinels, &cluster) {
            (_, Some(seeds)) => seeds.nodes[0].clone(),
            (Some(s), None) => {
                let ask = std::thread::scope(|scope| {
                    scope
                        .spawn(|| {
                            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
                            rt.block_on(s.ask(connect_timeout, tls.as_ref()))
                        })
                        .join()
                        .unwrap_or_else(|_| Err("the sentinel query panicked".into()))
                });
                let (host, port) = ask.map_err(|e| format!("engine.url: {e}"))?;
                s.primary(&host, port).map_err(|e| format!("engine.url: {e}"))?
            }
            (None, None) => settings.url.as_str().into_connection_info().map_err(|e| format!("engine.url: {e}"))?,
        };
        let known = RwLock::new(cluster.as_ref().map(|s| s.nodes.clone()).unwrap_or_default());
        Ok(Endpoint { current: RwLock::new(info), tls, sentinels, cluster, known, next: AtomicUsize::new(0), connect_timeout })
    }

    pub fn is_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// How long making a connection may take (`engine.connect_timeout_ms`).
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// A cluster client from the seeds for `protocol`; `response_timeout` `None` for the dedicated
    /// connections (a blocking command may wait as long as it asks).
    pub fn cluster_client(&self, protocol: ProtocolVersion, response_timeout: Option<Duration>) -> redis::RedisResult<ClusterClient> {
        let seeds = self.cluster.as_ref().map(|s| s.nodes.clone()).unwrap_or_default();
        let mut builder = ClusterClientBuilder::new(seeds).use_protocol(protocol).connection_timeout(self.connect_timeout);
        if let Some(timeout) = response_timeout {
            builder = builder.response_timeout(timeout);
        }
        if let Some(certs) = &self.tls {
            builder = builder.certs(certs.clone());
        }
        builder.build()
    }

    /// Under Redis Cluster: adds nodes `CLUSTER SLOTS` named (replicas and promoted ones) to the
    /// bridge's candidates.
    pub fn learn(&self, nodes: &[(String, u16)]) {
        let Some(seeds) = &self.cluster else { return };
        let template = &seeds.nodes[0];
        let mut known = self.known.write().expect("known nodes");
        for (host, port) in nodes {
            let addr = match template.addr() {
                ConnectionAddr::TcpTls { insecure, tls_params, .. } => {
                    ConnectionAddr::TcpTls { host: host.clone(), port: *port, insecure: *insecure, tls_params: tls_params.clone() }
                }
                _ => ConnectionAddr::Tcp(host.clone(), *port),
            };
            if !known.iter().any(|k| k.addr() == &addr) {
                known.push(template.clone().set_addr(addr));
            }
        }
    }

    /// The primary's connection settings now.
    pub fn info(&self) -> ConnectionInfo {
        self.current.read().expect("endpoint").clone()
    }

    /// A client for `info` (this endpoint's, maybe with another database or protocol).
    pub fn client(&self, info: ConnectionInfo) -> redis::RedisResult<Client> {
        match &self.tls {
            Some(certs) => Client::build_with_tls(info, certs.clone()),
            None => Client::open(info),
        }
    }

    /// A client for the primary now, on its configured database; under Redis Cluster, for the next
    /// known node in turn (a `PUBLISH` reaches every node of a cluster, so any one will do, and after
    /// one died the bridge's next attempt goes to another).
    pub fn current_client(&self) -> redis::RedisResult<Client> {
        if self.cluster.is_some() {
            let known = self.known.read().expect("known nodes");
            let info = known[self.next.fetch_add(1, Ordering::Relaxed) % known.len()].clone();
            return self.client(info);
        }
        self.client(self.info())
    }

    pub fn sentinels(&self) -> Option<&Sentinels> {
        self.sentinels.as_ref()
    }

    /// Under Sentinel: asks the sentinels for the primary and, if it moved, switches to it. `Ok(Some)`
    /// names the new primary after a switch; `Ok(None)`: no change (or not Sentinel).
    pub async fn refresh(&self) -> Result<Option<String>, String> {
        let Some(s) = &self.sentinels else { return Ok(None) };
        let (host, port) = s.ask(self.connect_timeout, self.tls.as_ref()).await?;
        let info = s.primary(&host, port).map_err(|e| e.to_string())?;
        let mut current = self.current.write().expect("endpoint");
        if current.addr() == info.addr() {
            return Ok(None);
        }
        *current = info;
        Ok(Some(format!("{host}:{port}")))
    }
}

fn certificates(settings: &EngineSettings) -> Result<TlsCertificates, String> {
    let read = |key: &str, path: &str| std::fs::read(path).map_err(|e| format!("engine.{key} {path}: {e}"));
    let root_cert = (!settings.tls_ca_file.is_empty()).then(|| read("tls_ca_file", &settings.tls_ca_file)).transpose()?;
    let client_tls = if settings.tls_cert_file.is_empty() {
        None
    } else {
        Some(ClientTlsConfig {
            client_cert: read("tls_cert_file", &settings.tls_cert_file)?,
            client_key: read("tls_key_file", &settings.tls_key_file)?,
        })
    };
    Ok(TlsCertificates { client_tls, root_cert })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls() {
        let s = Sentinels::parse("redis+sentinel://:pw@h1:26379,h2:26380/mymaster/2").unwrap().unwrap();
        assert_eq!(s.addrs, [("h1".to_owned(), 26379), ("h2".to_owned(), 26380)]);
        assert_eq!(s.service, "mymaster");
        let info = s.primary("10.0.0.5", 6379).unwrap();
        assert_eq!(info.addr(), &ConnectionAddr::Tcp("10.0.0.5".into(), 6379));
        assert_eq!(info.redis_settings().db(), 2);
        assert_eq!(info.redis_settings().password(), Some("pw"));
        assert!(!s.tls);
        assert!(Sentinels::parse("redis://h:1").is_none());
        let s = Sentinels::parse("rediss+sentinel://h1:26379/mymaster").unwrap().unwrap();
        assert!(s.tls);
        assert!(
            matches!(s.primary("10.0.0.5", 6379).unwrap().addr(), ConnectionAddr::TcpTls { host, port: 6379, .. } if host == "10.0.0.5")
        );
        assert!(Sentinels::parse("rediss+sentinel://h1:1").unwrap().unwrap_err().contains("rediss+sentinel://"));
        for bad in [
            "redis+sentinel://h1:1",
            "redis+sentinel://h1/m",
            "redis+sentinel://h1:x/m",
            "redis+sentinel://h:1/m/x",
            "redis+sentinel://h:1//",
        ] {
            assert!(Sentinels::parse(bad).unwrap().is_err(), "{bad}");
        }
    }
}
