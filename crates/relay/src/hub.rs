//! Connected, authenticated devices on this node, so a new envelope wakes its recipient.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sotto_relay_wire::{Address, Delivery, Push};
use tokio::sync::mpsc;

/// Something for a connection to do.
#[derive(Debug, Clone)]
pub(crate) enum HubEvent {
    /// New envelopes may be waiting: query the mailbox.
    Wake,
    /// This envelope was committed to the device's mailbox: push it without reading the
    /// mailbox (see `Connection::deliver_one` in the server).
    Deliver(Delivery),
    /// Send this push as is.
    Push(Push),
    /// The account was deleted: close the connection.
    Close,
}

/// Queued events per connection; when the queue is full, the connection's `missed` flag is
/// set instead and it reads its mailbox.
const QUEUE: usize = 64;

/// One connection: its id, its event queue and whether an event was dropped on a full queue.
type Senders = Vec<(u64, mpsc::Sender<HubEvent>, Arc<AtomicBool>)>;

/// Registry of connections per device.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    conns: Mutex<HashMap<Address, Senders>>,
    next_id: AtomicU64,
}

impl Hub {
    /// Registers a connection for `addr`; returns its id, its event receiver and the flag set
    /// when an event could not be queued (the connection must then read its mailbox).
    pub(crate) fn register(
        &self,
        addr: Address,
    ) -> (u64, mpsc::Receiver<HubEvent>, Arc<AtomicBool>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE);
        let missed = Arc::new(AtomicBool::new(false));
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        conns
            .entry(addr)
            .or_default()
            .push((id, tx, missed.clone()));
        (id, rx, missed)
    }

    /// Whether `addr` has a connection on this node.
    pub(crate) fn is_local(&self, addr: Address) -> bool {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        conns.contains_key(&addr)
    }

    /// Removes a connection; true if it was the device's last one on this node.
    pub(crate) fn unregister(&self, addr: Address, id: u64) -> bool {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = conns.get_mut(&addr) {
            list.retain(|(i, ..)| *i != id);
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
            for (_, tx, _) in list {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(HubEvent::Close).await;
                });
            }
        }
    }

    /// Never waits: on a full queue the event is dropped and the connection's `missed` flag
    /// set, so it reads its mailbox (which holds every committed envelope) instead.
    pub(crate) fn notify(&self, addr: Address, event: HubEvent) {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = conns.get(&addr) {
            for (_, tx, missed) in list {
                if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(event.clone()) {
                    missed.store(true, Ordering::Release);
                }
            }
        }
    }
}
