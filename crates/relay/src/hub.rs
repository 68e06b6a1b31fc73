//! Connected, authenticated devices on this node, so a new envelope wakes its recipient.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sotto_relay_wire::{Address, Push};
use tokio::sync::mpsc;

/// Something for a connection to do.
#[derive(Debug, Clone)]
pub(crate) enum HubEvent {
    /// New envelopes may be waiting: query the mailbox.
    Wake,
    /// Send this push as is.
    Push(Push),
    /// The account was deleted: close the connection.
    Close,
}

type Senders = Vec<(u64, mpsc::Sender<HubEvent>)>;

/// Registry of connections per device.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    conns: Mutex<HashMap<Address, Senders>>,
    next_id: AtomicU64,
}

impl Hub {
    /// Registers a connection for `addr`; returns its id and event receiver.
    pub(crate) fn register(&self, addr: Address) -> (u64, mpsc::Receiver<HubEvent>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(16);
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        conns.entry(addr).or_default().push((id, tx));
        (id, rx)
    }

    /// Removes a connection; true if it was the device's last one on this node.
    pub(crate) fn unregister(&self, addr: Address, id: u64) -> bool {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = conns.get_mut(&addr) {
            list.retain(|(i, _)| *i != id);
            if list.is_empty() {
                conns.remove(&addr);
                return true;
            }
            return false;
        }
        true
    }

    /// Closes every connection of `account` on this node (after its deletion). Unlike
    /// wake-ups this must not be dropped, so a full queue is waited on in a task.
    pub(crate) fn close_account(&self, account: [u8; 32]) {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        for (addr, list) in conns.iter() {
            if addr.account != account {
                continue;
            }
            for (_, tx) in list {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(HubEvent::Close).await;
                });
            }
        }
    }

    /// Best-effort notification: a full queue already holds a wake-up, so dropping is fine.
    pub(crate) fn notify(&self, addr: Address, event: HubEvent) {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = conns.get(&addr) {
            for (_, tx) in list {
                let _ = tx.try_send(event.clone());
            }
        }
    }
}
