//! A private PostgreSQL cluster for tests: initdb + pg_ctl as the `postgres` user in a temp
//! dir, on a free loopback port; stopped (immediate) on drop.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, ensure};

pub struct Cluster {
    dir: tempfile::TempDir,
    pub port: u16,
}

fn pg_bin(name: &str) -> PathBuf {
    let dir = std::env::var("SOTTO_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    PathBuf::from(dir).join(name)
}

fn as_postgres(args: &[&str]) -> Result<()> {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()?;
    ensure!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

impl Cluster {
    pub fn start() -> Result<Self> {
        Self::start_with("")
    }

    /// Starts a cluster with extra server options (`-c name=value ...`).
    pub fn start_with(extra: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        ensure!(
            Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()?
                .success()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let data = dir.path().join("data");
        let data_s = data.to_string_lossy().to_string();
        let dir_s = dir.path().to_string_lossy().to_string();
        let initdb = pg_bin("initdb").to_string_lossy().to_string();
        as_postgres(&[
            &initdb,
            "-D",
            &data_s,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ])?;
        let opts =
            format!("-p {port} -k {dir_s} -c listen_addresses=127.0.0.1 -c fsync=off {extra}");
        let pg_ctl = pg_bin("pg_ctl").to_string_lossy().to_string();
        let log = format!("{dir_s}/log");
        as_postgres(&[
            &pg_ctl, "-D", &data_s, "-o", &opts, "-l", &log, "-w", "start",
        ])?;
        Ok(Self { dir, port })
    }

    pub async fn database(&self, name: &str) -> Result<String> {
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        Ok(format!(
            "postgres://postgres@127.0.0.1:{}/{name}",
            self.port
        ))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}
