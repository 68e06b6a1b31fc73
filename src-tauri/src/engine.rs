//! The engine actor: one tokio task owns the open `Client`. Commands reach it as jobs over a
//! channel and run one at a time between incoming pushes, so the UI, the receive pipeline and
//! the outbox never race on the store or the ratchets.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sotto_client::{Client, Event, ReceiveError};
use tokio::sync::{mpsc, oneshot};

use crate::error::{UiError, UiResult};
use crate::events::{ConnectionState, SottoEvent, translate};
use crate::notify::{Notice, notice_for};

/// How long one wait for a push may last before expiry timers and jobs are looked at again.
const PUMP_WAIT: Duration = Duration::from_secs(1);

type BoxFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
type Job = Box<dyn for<'a> FnOnce(&'a mut Client) -> BoxFuture<'a> + Send>;

/// Where events for the UI go, and where notifications are raised.
#[derive(Clone)]
pub struct Sink {
    /// Sends an event to the UI.
    pub event: Arc<dyn Fn(SottoEvent) + Send + Sync>,
    /// Shows a desktop notification.
    pub notify: Arc<dyn Fn(Notice) + Send + Sync>,
    /// Keeps the window out of screenshots and recordings (where the OS can).
    pub protect_screen: Arc<dyn Fn(bool) + Send + Sync>,
}

/// A handle to the running engine; dropping every handle stops it and closes the store.
#[derive(Clone)]
pub struct Engine {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts the actor on the current tokio runtime.
    pub fn start(client: Client, sink: Sink) -> Self {
        let (jobs, rx) = mpsc::channel(64);
        tokio::spawn(pump(client, rx, sink));
        Self { jobs }
    }

    /// Runs `f` on the client inside the actor and returns its result.
    pub async fn run<T, F>(&self, f: F) -> UiResult<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut Client) -> Pin<Box<dyn Future<Output = UiResult<T>> + Send + 'a>>
            + Send
            + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |client| {
            Box::pin(async move {
                let result = f(client).await;
                // The caller may have gone away (window closed); nothing to tell then.
                let _ = tx.send(result);
            })
        });
        self.jobs.send(job).await.map_err(|_| UiError::locked())?;
        rx.await.map_err(|_| UiError::locked())?
    }

    /// Runs a synchronous `f` on the client inside the actor.
    pub async fn with<T, F>(&self, f: F) -> UiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Client) -> UiResult<T> + Send + 'static,
    {
        self.run(move |client| {
            let result = f(client);
            Box::pin(async move { result })
        })
        .await
    }
}

async fn pump(mut client: Client, mut jobs: mpsc::Receiver<Job>, sink: Sink) {
    let mut online = client.is_connected();
    (sink.event)(SottoEvent::connection(online));
    loop {
        // Jobs first so a burst of pushes cannot starve the user's own actions. Waiting for a
        // push is cancel-safe: a job arriving meanwhile loses nothing.
        let incoming = tokio::select! {
            biased;
            job = jobs.recv() => match job {
                Some(job) => {
                    job(&mut client).await;
                    None
                }
                None => break,
            },
            incoming = client.next_incoming(PUMP_WAIT) => Some(incoming),
        };
        let event = match incoming {
            None | Some(Ok(None)) => Ok(None),
            Some(Ok(Some(incoming))) => client.process(incoming).await,
            Some(Err(e)) => Err(e),
        };
        match event {
            Ok(Some(event)) => deliver(&client, &sink, event),
            Ok(None) => {}
            Err(ReceiveError::Reconnect(e)) => {
                // Permanent (e.g. an untrusted certificate): retrying will not help.
                tracing::warn!(error = %e, "relay connection given up");
                (sink.event)(SottoEvent::Connection {
                    state: ConnectionState::Offline,
                });
                online = false;
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Err(ReceiveError::NotConnected) => {
                client.connect_in_background();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "receive pipeline paused");
                // Avoid spinning while the connection is down.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let now_online = client.is_connected();
        if now_online != online {
            online = now_online;
            (sink.event)(SottoEvent::connection(online));
        }
    }
    // Every handle is gone: the profile was locked or the app is quitting. Receipts still
    // owed (the pump sends them on the turn after each message) are not worth keeping the
    // database open for after a lock.
    drop(client);
}

fn deliver(client: &Client, sink: &Sink, event: Event) {
    match translate(client, event) {
        Ok(Some(event)) => {
            if let SottoEvent::Message {
                message,
                key_changed: true,
                ..
            } = &event
            {
                (sink.event)(SottoEvent::KeyChanged {
                    contact_id: message.contact_id.clone(),
                });
            }
            match notice_for(client, &event) {
                Ok(Some(notice)) => (sink.notify)(notice),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "notification skipped"),
            }
            (sink.event)(event);
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "event could not be shown"),
    }
}
