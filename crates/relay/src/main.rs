//! `sotto-relay`: starts the relay. With no arguments it listens on 127.0.0.1:7447 with its
//! SQLite database in the platform data folder.
#![forbid(unsafe_code)]

use std::io::Write;

use anyhow::{Context, bail};
use clap::Parser;
use sotto_relay::config::Cli;
use sotto_relay::storage::postgres::{DbTls, PgStorage, RustlsConnect};
use sotto_relay::storage::sqlite::SqliteStorage;
use sotto_relay::storage::{Policy, Storage};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = Cli::parse().resolve()?;
    if config.tls.is_none()
        && !config.listen.ip().is_loopback()
        && !config.insecure_allow_plain_ws_non_loopback
    {
        bail!(
            "refusing plain ws on non-loopback address {}: pass --tls-cert/--tls-key, or \
             --insecure-allow-plain-ws-non-loopback behind a TLS-terminating proxy",
            config.listen
        );
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let policy = Policy::from_config(&config);
    match config.database_url.clone() {
        Some(url) => {
            let tls = match &config.database_ca {
                Some(ca) => DbTls::Verified(RustlsConnect::from_ca_file(ca)?),
                None => DbTls::Off,
            };
            let encrypted = matches!(tls, DbTls::Verified(_));
            let storage = PgStorage::connect_with_tls(&url, policy, tls)
                .await
                .context("connecting to PostgreSQL")?
                .with_pool_size(config.database_pool_size);
            tracing::info!(tls = encrypted, "storage: PostgreSQL");
            run(config, storage, listener).await
        }
        None => {
            let storage = SqliteStorage::open(&config.data_dir, policy).with_context(|| {
                format!("opening the database in {}", config.data_dir.display())
            })?;
            tracing::info!(data_dir = %config.data_dir.display(), "storage: SQLite");
            run(config, storage, listener).await
        }
    }
}

/// Announces the bound address on stdout (tests and scripts read it), then serves.
async fn run<S: Storage>(
    config: sotto_relay::config::Config,
    storage: S,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    let bound = listener.local_addr()?;
    let scheme = if config.tls.is_some() { "wss" } else { "ws" };
    tracing::info!(%bound, "sotto-relay started");
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "sotto-relay listening on {scheme}://{bound}{}",
            sotto_relay::server::WS_PATH
        )?;
        out.flush()?;
    }
    sotto_relay::server::serve(config, storage, listener, shutdown_signal()).await?;
    tracing::info!("sotto-relay stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
