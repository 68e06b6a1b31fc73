//! Delivery receipts for received messages, sent after the message has been reported.
//!
//! The receive pipeline commits a message, acknowledges it to the relay and reports it at
//! once; the receipt is only owed at that point. Sending it before reporting would put a
//! seal, an outbox write and a relay round trip between the envelope's arrival and the
//! message reaching the screen. Owed receipts go out on the pump's next turn, grouped per
//! contact, so a burst of messages costs one receipt envelope per contact rather than one
//! per message. A receipt is best effort: one lost to a crash before that turn only means
//! the sender never sees that tick.

use crate::content::{ClientMessageId, Content, MAX_RECEIPT_IDS};
use crate::engine::Client;

impl Client {
    /// Sends the delivery receipts owed for messages already reported (the event pump does
    /// this on its own; a front end that stops pumping calls it before disconnecting).
    /// Best effort: a receipt that cannot go out now stays queued in the outbox.
    pub async fn send_owed_receipts(&mut self) {
        let owed = std::mem::take(&mut self.owed_receipts);
        let mut groups: Vec<(sotto_store::AccountId, Vec<ClientMessageId>)> = Vec::new();
        for (contact, id) in owed {
            match groups.iter_mut().find(|(c, _)| *c == contact) {
                Some((_, ids)) => ids.push(id),
                None => groups.push((contact, vec![id])),
            }
        }
        for (contact, ids) in groups {
            for chunk in ids.chunks(MAX_RECEIPT_IDS) {
                let receipt = Content::DeliveryReceipt(chunk.to_vec());
                if let Err(e) = self.send_control(&contact, &receipt).await {
                    tracing::debug!(error = %e, "delivery receipt not sent now");
                }
            }
        }
    }
}
