//! A real relay process and a small WebSocket test client.
#![allow(dead_code, missing_docs)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub mod pg;

use anyhow::{Context, Result, anyhow, bail};
use ed25519_dalek::{Signer, SigningKey};
use futures_util::{SinkExt, StreamExt};
use sotto_relay_wire::{
    Address, ErrorResponse, Frame, Prekey, Push, Request, Response, auth_message,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct Relay {
    child: Child,
    pub addr: String,
    pub data_dir: PathBuf,
    extra: Vec<String>,
}

impl Relay {
    pub fn start(data_dir: &Path, extra: &[&str]) -> Result<Self> {
        Self::start_owned(data_dir, extra.iter().map(|s| (*s).to_string()).collect())
    }

    fn start_owned(data_dir: &Path, extra: Vec<String>) -> Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sotto-relay"))
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .args(&extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning sotto-relay")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let url = line
            .trim()
            .strip_prefix("sotto-relay listening on ")
            .and_then(|u| u.strip_prefix("ws://").or_else(|| u.strip_prefix("wss://")))
            .ok_or_else(|| anyhow!("unexpected first line {line:?}"))?;
        let addr = url.trim_end_matches("/v1/websocket").to_string();
        Ok(Self {
            child,
            addr,
            data_dir: data_dir.to_path_buf(),
            extra,
        })
    }

    /// SIGKILL, then start again on the same data directory (new port).
    pub fn kill_and_restart(&mut self) -> Result<()> {
        self.kill();
        let fresh = Self::start_owned(&self.data_dir, self.extra.clone())?;
        *self = fresh;
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub async fn connect(&self) -> Result<Client> {
        Client::connect(&self.addr).await
    }

    pub async fn http_get(&self, path: &str) -> Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = TcpStream::connect(&self.addr).await?;
        s.write_all(
            format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.addr
            )
            .as_bytes(),
        )
        .await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok(out)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    pub challenge: [u8; 32],
    pushes: VecDeque<Push>,
    pub host: String,
}

pub const WAIT: Duration = Duration::from_secs(10);

impl Client {
    pub async fn connect(addr: &str) -> Result<Self> {
        // No Nagle delay: small frames (acks) go out at once, as the relay's do.
        let (ws, _) = tokio_tungstenite::connect_async_with_config(
            format!("ws://{addr}/v1/websocket"),
            None,
            true,
        )
        .await?;
        let mut c = Self {
            ws,
            next_id: 1,
            challenge: [0; 32],
            pushes: VecDeque::new(),
            host: addr.to_string(),
        };
        match c.read_frame(WAIT).await? {
            Frame::Push(Push::Challenge { challenge }) => c.challenge = challenge,
            other => bail!("expected challenge, got {other:?}"),
        }
        Ok(c)
    }

    /// The underlying WebSocket (the load benchmark drives it directly after setup).
    pub fn into_ws(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        self.ws
    }

    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<()> {
        self.ws.send(Message::Binary(bytes.into())).await?;
        Ok(())
    }

    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.ws.send(Message::Text(text.into())).await?;
        Ok(())
    }

    pub async fn read_frame(&mut self, wait: Duration) -> Result<Frame> {
        loop {
            let msg = tokio::time::timeout(wait, self.ws.next())
                .await
                .map_err(|_| anyhow!("timed out waiting for a frame"))?
                .ok_or_else(|| anyhow!("connection closed"))??;
            match msg {
                Message::Binary(b) => return Ok(Frame::decode(&b)?),
                Message::Close(_) => bail!("connection closed"),
                _ => {}
            }
        }
    }

    /// Reads until the response with `id`, queueing pushes.
    pub async fn response_to(&mut self, id: u64) -> Result<(u16, Result<Response, ErrorResponse>)> {
        loop {
            match self.read_frame(WAIT).await? {
                Frame::Response {
                    id: rid,
                    op,
                    result,
                } if rid == id => return Ok((op, result)),
                Frame::Push(p) => self.pushes.push_back(p),
                other => bail!("unexpected frame {other:?}"),
            }
        }
    }

    pub async fn request(&mut self, request: Request) -> Result<Result<Response, ErrorResponse>> {
        let id = self.next_id;
        self.next_id += 1;
        self.send_raw(Frame::Request { id, request }.encode().unwrap())
            .await?;
        Ok(self.response_to(id).await?.1)
    }

    pub fn auth_request(&self, key: &SigningKey, device: u32) -> Request {
        let sig = key.sign(&auth_message(&self.challenge, &self.host));
        Request::Authenticate {
            identity_key: key.verifying_key().to_bytes(),
            device_id: device,
            relay_host: self.host.clone(),
            signature: sig.to_bytes(),
        }
    }

    pub async fn authenticate(&mut self, key: &SigningKey, device: u32) -> Result<()> {
        let req = self.auth_request(key, device);
        self.request(req)
            .await?
            .map_err(|e| anyhow!("auth failed: {e}"))?;
        Ok(())
    }

    /// Next push, from the queue or the socket.
    pub async fn next_push(&mut self, wait: Duration) -> Result<Push> {
        if let Some(p) = self.pushes.pop_front() {
            return Ok(p);
        }
        match self.read_frame(wait).await? {
            Frame::Push(p) => Ok(p),
            other => bail!("expected a push, got {other:?}"),
        }
    }

    /// Next envelope push, skipping other pushes.
    pub async fn next_envelope(&mut self, wait: Duration) -> Result<sotto_relay_wire::Delivery> {
        loop {
            if let Push::Envelope(d) = self.next_push(wait).await? {
                return Ok(d);
            }
        }
    }

    /// Collects envelopes until QueueDrained.
    pub async fn drain_backlog(&mut self) -> Result<Vec<sotto_relay_wire::Delivery>> {
        let mut out = Vec::new();
        loop {
            match self.next_push(WAIT).await? {
                Push::Envelope(d) => out.push(d),
                Push::QueueDrained => return Ok(out),
                _ => {}
            }
        }
    }

    pub async fn ack(&mut self, message_id: u64) -> Result<()> {
        self.send_raw(Frame::PushAck { message_id }.encode().unwrap())
            .await
    }

    /// A Ping round trip: every earlier frame of this connection has been handled.
    pub async fn barrier(&mut self) -> Result<()> {
        self.request(Request::Ping)
            .await?
            .map_err(|e| anyhow!("{e}"))?;
        Ok(())
    }

    pub async fn send(
        &mut self,
        to: Address,
        envelope: &[u8],
    ) -> Result<Result<Response, ErrorResponse>> {
        self.request(Request::SendEnvelope {
            recipient: to,
            envelope: envelope.to_vec(),
        })
        .await
    }

    pub fn take_queued_pushes(&mut self) -> Vec<Push> {
        self.pushes.drain(..).collect()
    }

    pub fn has_queued_envelope(&self) -> bool {
        self.pushes.iter().any(|p| matches!(p, Push::Envelope(_)))
    }

    /// Waits briefly and returns true if no envelope arrives.
    pub async fn no_envelope_within(&mut self, wait: Duration) -> bool {
        if self.has_queued_envelope() {
            return false;
        }
        loop {
            match self.read_frame(wait).await {
                Ok(Frame::Push(Push::Envelope(_))) => return false,
                Ok(_) => {}
                Err(_) => return true,
            }
        }
    }
}

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn random_key() -> SigningKey {
    SigningKey::generate(&mut rand_core::OsRng)
}

pub fn address(key: &SigningKey, device: u32) -> Address {
    Address {
        account: key.verifying_key().to_bytes(),
        device,
    }
}

pub fn prekey(id: u32, len: usize) -> Prekey {
    Prekey {
        id,
        bytes: vec![(id % 251) as u8; len],
    }
}

/// Registers a device with a full bundle.
pub async fn register_with_prekeys(
    c: &mut Client,
    k: &SigningKey,
    device: u32,
    one_time: u32,
) -> Result<()> {
    c.authenticate(k, device).await?;
    c.request(Request::UploadSignedPrekey(prekey(1, 96)))
        .await?
        .map_err(|e| anyhow!("{e}"))?;
    c.request(Request::UploadLastResortKemPrekey(prekey(2, 1600)))
        .await?
        .map_err(|e| anyhow!("{e}"))?;
    if one_time > 0 {
        c.request(Request::UploadOneTimePrekeys(
            (100..100 + one_time).map(|i| prekey(i, 32)).collect(),
        ))
        .await?
        .map_err(|e| anyhow!("{e}"))?;
        c.request(Request::UploadOneTimeKemPrekeys(
            (500..500 + one_time.min(20))
                .map(|i| prekey(i, 1568))
                .collect(),
        ))
        .await?
        .map_err(|e| anyhow!("{e}"))?;
    }
    Ok(())
}
