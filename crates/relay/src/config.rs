//! Command line, environment and TOML configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use serde::Deserialize;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7447";

/// `sotto-relay`: the Sotto relay server. Precedence: command line, then environment
/// (`SOTTO_RELAY_*`), then the TOML file given by `--config`, then built-in defaults.
#[derive(Debug, Clone, Parser)]
#[command(name = "sotto-relay", version, about, long_about = None)]
pub struct Cli {
    /// TOML file with any of the options below (same names, with underscores: e.g.
    /// `listen = "0.0.0.0:443"`, `mailbox_cap = 5000`).
    #[arg(long, env = "SOTTO_RELAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address and port to listen on. Port 0 picks a free port; the bound address is printed
    /// on stdout as `sotto-relay listening on ws://ADDR/v1/websocket`. [default: 127.0.0.1:7447]
    #[arg(long, env = "SOTTO_RELAY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory holding the SQLite database `relay.sqlite3`. [default: the platform data
    /// folder, e.g. ~/.local/share/sotto-relay on Linux]
    #[arg(long, env = "SOTTO_RELAY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use PostgreSQL (postgres://user@host:port/db) instead of SQLite. Several relay
    /// processes may share one database. Without --database-ca the connection is not
    /// encrypted (keep the database on a private network or a local socket) and
    /// `sslmode=require` in the URL is refused.
    #[arg(long, env = "SOTTO_RELAY_DATABASE_URL")]
    pub database_url: Option<String>,
    /// PEM file of the CA (or the server's self-signed certificate) that signs the PostgreSQL
    /// server certificate. Makes TLS to the database mandatory, verifying the certificate chain
    /// and that it names the URL's host (libpq's `sslmode=verify-full`); `sslmode=disable` in
    /// the URL is then refused.
    #[arg(long, env = "SOTTO_RELAY_DATABASE_CA")]
    pub database_ca: Option<PathBuf>,
    /// Pooled PostgreSQL connections per relay process (default 16). Each storage operation
    /// other than sending and acknowledging envelopes holds one for its transaction, so this
    /// bounds those operations in flight; envelopes and acks go through four batching writers
    /// with a connection each, in addition to the pool.
    #[arg(long, env = "SOTTO_RELAY_DATABASE_POOL_SIZE")]
    pub database_pool_size: Option<usize>,
    /// PEM certificate chain for TLS (wss). Requires --tls-key.
    #[arg(long, env = "SOTTO_RELAY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS (wss). Requires --tls-cert.
    #[arg(long, env = "SOTTO_RELAY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Allow plain (unencrypted) ws on a non-loopback address. Only for deployments behind a
    /// TLS-terminating proxy on the same host or private network.
    #[arg(long, env = "SOTTO_RELAY_INSECURE_ALLOW_PLAIN_WS_NON_LOOPBACK")]
    pub insecure_allow_plain_ws_non_loopback: bool,
    /// Host string clients sign when authenticating (host:port as the client dialled it, e.g.
    /// `relay.example:443`). Repeatable. [default: the bound address and localhost:PORT]
    #[arg(
        long = "public-host",
        env = "SOTTO_RELAY_PUBLIC_HOSTS",
        value_delimiter = ','
    )]
    pub public_hosts: Vec<String>,
    /// Days an undelivered envelope is kept. [default: 30]
    #[arg(long, env = "SOTTO_RELAY_MESSAGE_TTL_DAYS")]
    pub message_ttl_days: Option<u64>,
    /// Most envelopes queued per device mailbox. [default: 10000]
    #[arg(long, env = "SOTTO_RELAY_MAILBOX_CAP")]
    pub mailbox_cap: Option<u64>,
    /// Largest envelope accepted, in bytes (at most 131072). [default: 131072]
    #[arg(long, env = "SOTTO_RELAY_MAX_ENVELOPE_BYTES")]
    pub max_envelope_bytes: Option<usize>,
    /// Most one-time prekeys (of each kind) stored per device. [default: 500]
    #[arg(long, env = "SOTTO_RELAY_MAX_PREKEYS")]
    pub max_prekeys: Option<u32>,
    /// Push "prekeys low" to the owner when fewer one-time prekeys than this remain.
    /// [default: 10]
    #[arg(long, env = "SOTTO_RELAY_PREKEY_LOW_WATERMARK")]
    pub prekey_low_watermark: Option<u32>,
    /// Days without any of the owner's devices connecting after which an unlocked username may
    /// be claimed by anyone. [default: 30]
    #[arg(long, env = "SOTTO_RELAY_USERNAME_RELEASE_DAYS")]
    pub username_release_days: Option<u64>,
    /// Days without any of the owner's devices connecting after which a registration lock
    /// lapses (the username is then free). [default: 90]
    #[arg(long, env = "SOTTO_RELAY_REGLOCK_LAPSE_DAYS")]
    pub reglock_lapse_days: Option<u64>,
    /// Wrong PIN attempts allowed per registration lock per 24 hours. [default: 10]
    #[arg(long, env = "SOTTO_RELAY_PIN_ATTEMPTS_PER_DAY")]
    pub pin_attempts_per_day: Option<u32>,
    /// Seconds a connection's authentication challenge stays valid. [default: 60]
    #[arg(long, env = "SOTTO_RELAY_CHALLENGE_TTL_SECS")]
    pub challenge_ttl_secs: Option<u64>,
    /// Seconds without any frame from the client before the connection is closed. Clients
    /// send Ping to stay connected. [default: 120]
    #[arg(long, env = "SOTTO_RELAY_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Seconds allowed for TLS and the HTTP/WebSocket upgrade. [default: 10]
    #[arg(long, env = "SOTTO_RELAY_HANDSHAKE_TIMEOUT_SECS")]
    pub handshake_timeout_secs: Option<u64>,
    /// Most simultaneous connections. [default: 10000]
    #[arg(long, env = "SOTTO_RELAY_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most simultaneous connections per client IP. [default: 64]
    #[arg(long, env = "SOTTO_RELAY_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Envelopes per minute per IP (anonymous senders) and per identity. [default: 600]
    #[arg(long, env = "SOTTO_RELAY_SEND_PER_MINUTE")]
    pub send_per_minute: Option<u32>,
    /// Bundle fetches per minute per IP and per identity. [default: 120]
    #[arg(long, env = "SOTTO_RELAY_BUNDLE_PER_MINUTE")]
    pub bundle_per_minute: Option<u32>,
    /// Username lookups per minute per IP and per identity. [default: 60]
    #[arg(long, env = "SOTTO_RELAY_LOOKUP_PER_MINUTE")]
    pub lookup_per_minute: Option<u32>,
    /// Authentication attempts per minute per IP (each new device is a database row).
    /// [default: 60]
    #[arg(long, env = "SOTTO_RELAY_AUTH_PER_MINUTE")]
    pub auth_per_minute: Option<u32>,
    /// PIN attempts (claims with a PIN) per hour per IP and per identity. [default: 20]
    #[arg(long, env = "SOTTO_RELAY_PIN_PER_HOUR")]
    pub pin_per_hour: Option<u32>,
    /// Frames per second per connection. [default: 200]
    #[arg(long, env = "SOTTO_RELAY_FRAMES_PER_SECOND")]
    pub frames_per_second: Option<u32>,
    /// Write client IP addresses into the logs (off by default).
    #[arg(long, env = "SOTTO_RELAY_LOG_CLIENT_IPS")]
    pub log_client_ips: bool,
}

/// The TOML file: same options as the command line.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    database_ca: Option<PathBuf>,
    database_pool_size: Option<usize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    insecure_allow_plain_ws_non_loopback: Option<bool>,
    public_hosts: Option<Vec<String>>,
    message_ttl_days: Option<u64>,
    mailbox_cap: Option<u64>,
    max_envelope_bytes: Option<usize>,
    max_prekeys: Option<u32>,
    prekey_low_watermark: Option<u32>,
    username_release_days: Option<u64>,
    reglock_lapse_days: Option<u64>,
    pin_attempts_per_day: Option<u32>,
    challenge_ttl_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    handshake_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    send_per_minute: Option<u32>,
    bundle_per_minute: Option<u32>,
    lookup_per_minute: Option<u32>,
    auth_per_minute: Option<u32>,
    pin_per_hour: Option<u32>,
    frames_per_second: Option<u32>,
    log_client_ips: Option<bool>,
}

/// Resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// SQLite directory.
    pub data_dir: PathBuf,
    /// PostgreSQL URL, if any.
    pub database_url: Option<String>,
    /// CA file for verified TLS to PostgreSQL, if any.
    pub database_ca: Option<PathBuf>,
    /// PostgreSQL connections per process.
    pub database_pool_size: usize,
    /// TLS certificate and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Allow plain ws on non-loopback addresses.
    pub insecure_allow_plain_ws_non_loopback: bool,
    /// Accepted host strings in authentication (empty: derived from the bound address).
    pub public_hosts: Vec<String>,
    /// Undelivered envelope lifetime in milliseconds.
    pub message_ttl_ms: u64,
    /// Per-mailbox cap.
    pub mailbox_cap: u64,
    /// Largest envelope.
    pub max_envelope_bytes: usize,
    /// Most one-time prekeys of each kind per device.
    pub max_prekeys: u32,
    /// Low-stock push threshold.
    pub prekey_low_watermark: u32,
    /// Inactivity before an unlocked username is free, in ms.
    pub username_release_ms: u64,
    /// Inactivity before a registration lock lapses, in ms.
    pub reglock_lapse_ms: u64,
    /// Wrong PINs per lock per day.
    pub pin_attempts_per_day: u32,
    /// Challenge lifetime in seconds.
    pub challenge_ttl_secs: u64,
    /// Idle timeout in seconds.
    pub idle_timeout_secs: u64,
    /// Handshake timeout in seconds.
    pub handshake_timeout_secs: u64,
    /// Connection cap.
    pub max_connections: usize,
    /// Per-IP connection cap.
    pub max_connections_per_ip: usize,
    /// Send quota per minute.
    pub send_per_minute: u32,
    /// Bundle quota per minute.
    pub bundle_per_minute: u32,
    /// Lookup quota per minute.
    pub lookup_per_minute: u32,
    /// Authentication quota per minute.
    pub auth_per_minute: u32,
    /// PIN attempt quota per hour.
    pub pin_per_hour: u32,
    /// Frames per second per connection.
    pub frames_per_second: u32,
    /// Log client IPs.
    pub log_client_ips: bool,
}

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The TOML file is invalid.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: Box<toml::de::Error>,
    },
    /// No platform data folder and no --data-dir.
    #[error("no platform data folder found; pass --data-dir")]
    NoDataDir,
    /// A value is out of range.
    #[error("invalid value for {0}")]
    Invalid(&'static str),
}

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

impl Cli {
    /// Merges the command line with the file and defaults.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|source| ConfigError::Parse {
                    path: path.clone(),
                    source: Box::new(source),
                })?
            }
            None => FileConfig::default(),
        };
        let listen = match self.listen.or(file.listen) {
            Some(l) => l,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|_| ConfigError::Invalid("listen"))?,
        };
        let data_dir = match self.data_dir.or(file.data_dir) {
            Some(d) => d,
            None => directories::ProjectDirs::from("", "", "sotto-relay")
                .map(|p| p.data_dir().to_path_buf())
                .ok_or(ConfigError::NoDataDir)?,
        };
        let tls = match (
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "tls_cert and tls_key must be given together",
                ));
            }
        };
        let public_hosts = if self.public_hosts.is_empty() {
            file.public_hosts.unwrap_or_default()
        } else {
            self.public_hosts
        };
        let max_envelope_bytes = self
            .max_envelope_bytes
            .or(file.max_envelope_bytes)
            .unwrap_or(sotto_relay_wire::MAX_ENVELOPE_LEN);
        if max_envelope_bytes == 0 || max_envelope_bytes > sotto_relay_wire::MAX_ENVELOPE_LEN {
            return Err(ConfigError::Invalid("max_envelope_bytes"));
        }
        let database_url = self.database_url.or(file.database_url);
        let database_ca = self.database_ca.or(file.database_ca);
        if database_ca.is_some() && database_url.is_none() {
            return Err(ConfigError::Invalid("database_ca (needs database_url)"));
        }
        let config = Config {
            listen,
            data_dir,
            database_url,
            database_ca,
            database_pool_size: self
                .database_pool_size
                .or(file.database_pool_size)
                .unwrap_or(crate::storage::postgres::DEFAULT_POOL_SIZE)
                .clamp(1, 1024),
            tls,
            insecure_allow_plain_ws_non_loopback: self.insecure_allow_plain_ws_non_loopback
                || file.insecure_allow_plain_ws_non_loopback.unwrap_or(false),
            public_hosts,
            message_ttl_ms: self
                .message_ttl_days
                .or(file.message_ttl_days)
                .unwrap_or(30)
                * DAY_MS,
            mailbox_cap: self.mailbox_cap.or(file.mailbox_cap).unwrap_or(10_000),
            max_envelope_bytes,
            max_prekeys: self.max_prekeys.or(file.max_prekeys).unwrap_or(500),
            prekey_low_watermark: self
                .prekey_low_watermark
                .or(file.prekey_low_watermark)
                .unwrap_or(10),
            username_release_ms: self
                .username_release_days
                .or(file.username_release_days)
                .unwrap_or(30)
                * DAY_MS,
            reglock_lapse_ms: self
                .reglock_lapse_days
                .or(file.reglock_lapse_days)
                .unwrap_or(90)
                * DAY_MS,
            pin_attempts_per_day: self
                .pin_attempts_per_day
                .or(file.pin_attempts_per_day)
                .unwrap_or(10),
            challenge_ttl_secs: self
                .challenge_ttl_secs
                .or(file.challenge_ttl_secs)
                .unwrap_or(60),
            idle_timeout_secs: self
                .idle_timeout_secs
                .or(file.idle_timeout_secs)
                .unwrap_or(120),
            handshake_timeout_secs: self
                .handshake_timeout_secs
                .or(file.handshake_timeout_secs)
                .unwrap_or(10),
            max_connections: self
                .max_connections
                .or(file.max_connections)
                .unwrap_or(10_000),
            max_connections_per_ip: self
                .max_connections_per_ip
                .or(file.max_connections_per_ip)
                .unwrap_or(64),
            send_per_minute: self.send_per_minute.or(file.send_per_minute).unwrap_or(600),
            bundle_per_minute: self
                .bundle_per_minute
                .or(file.bundle_per_minute)
                .unwrap_or(120),
            lookup_per_minute: self
                .lookup_per_minute
                .or(file.lookup_per_minute)
                .unwrap_or(60),
            auth_per_minute: self.auth_per_minute.or(file.auth_per_minute).unwrap_or(60),
            pin_per_hour: self.pin_per_hour.or(file.pin_per_hour).unwrap_or(20),
            frames_per_second: self
                .frames_per_second
                .or(file.frames_per_second)
                .unwrap_or(200),
            log_client_ips: self.log_client_ips || file.log_client_ips.unwrap_or(false),
        };
        if config.mailbox_cap == 0 {
            return Err(ConfigError::Invalid("mailbox_cap"));
        }
        if config.send_per_minute == 0
            || config.bundle_per_minute == 0
            || config.lookup_per_minute == 0
            || config.pin_per_hour == 0
            || config.auth_per_minute == 0
            || config.frames_per_second == 0
        {
            return Err(ConfigError::Invalid("rate limits must be at least 1"));
        }
        if config.max_connections == 0 || config.max_connections_per_ip == 0 {
            return Err(ConfigError::Invalid("connection limits must be at least 1"));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_file_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, "mailbox_cap = 7\nlisten = \"127.0.0.1:9000\"\n").unwrap();
        let cli = Cli::parse_from([
            "sotto-relay",
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:9001",
        ]);
        let c = cli.resolve().unwrap();
        assert_eq!(c.mailbox_cap, 7);
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.message_ttl_ms, 30 * DAY_MS);
    }

    #[test]
    fn database_ca_needs_a_database_url() {
        let cli = Cli::parse_from(["sotto-relay", "--database-ca", "/ca.pem"]);
        assert!(matches!(cli.resolve(), Err(ConfigError::Invalid(_))));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(
            &path,
            "database_url = \"postgres://db.internal/sotto\"\ndatabase_ca = \"/etc/ca.pem\"\n",
        )
        .unwrap();
        let cli = Cli::parse_from(["sotto-relay", "--config", path.to_str().unwrap()]);
        let c = cli.resolve().unwrap();
        assert_eq!(c.database_ca, Some(PathBuf::from("/etc/ca.pem")));
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, "mailbox_kap = 7\n").unwrap();
        let cli = Cli::parse_from(["sotto-relay", "--config", path.to_str().unwrap()]);
        assert!(matches!(cli.resolve(), Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn zero_limits_are_rejected() {
        let cli = Cli::parse_from(["sotto-relay", "--mailbox-cap", "0", "--data-dir", "/tmp"]);
        assert!(matches!(cli.resolve(), Err(ConfigError::Invalid(_))));
    }
}
