//! The encrypted inner content format (docs/CLIENT.md): what the Double Ratchet encrypts.
//! Every kind of traffic — text, receipts, typing, timer changes — uses it, so the relay sees
//! only uniform sealed envelopes.
//!
//! `0x01 (version) || type u8 || body`, integers big-endian.

use thiserror::Error;

/// Format version.
pub const CONTENT_VERSION: u8 = 0x01;
/// Longest text, in bytes of UTF-8.
pub const MAX_TEXT_LEN: usize = 64 * 1024;
/// Most message ids in one receipt.
pub const MAX_RECEIPT_IDS: usize = 256;
/// Longest username a text may name as its sender, in bytes.
pub const MAX_USERNAME_LEN: usize = 64;

/// A client-chosen random message id, unique per sender.
pub type ClientMessageId = [u8; 16];

/// Decoded inner content.
#[derive(Clone, PartialEq, Eq)]
pub enum Content {
    /// `0x01`: `id [16] || sent_at_ms u64 || expire_secs u32 || ulen u8 || username ||
    /// len u32 || text (UTF-8)`.
    Text {
        /// Client message id (dedupe and receipts).
        id: ClientMessageId,
        /// Sender's clock, milliseconds since the Unix epoch.
        sent_at_ms: u64,
        /// The disappearing timer this message was sent with (0 = keep).
        expire_secs: u32,
        /// The username the sender claims (empty = none); the recipient checks it against
        /// the relay's directory before showing it.
        sender_username: String,
        /// The message text.
        text: String,
    },
    /// `0x02`: `count u16 || count × id [16]`.
    DeliveryReceipt(Vec<ClientMessageId>),
    /// `0x03`: `count u16 || count × id [16]`.
    ReadReceipt(Vec<ClientMessageId>),
    /// `0x04`: `typing u8 (0 stopped | 1 started)`.
    Typing(bool),
    /// `0x05`: `id [16] || sent_at_ms u64 || seconds u32` (0 = messages no longer disappear).
    DisappearingTimer {
        /// Client message id.
        id: ClientMessageId,
        /// Sender's clock, milliseconds since the Unix epoch.
        sent_at_ms: u64,
        /// New timer in seconds.
        seconds: u32,
    },
}

impl std::fmt::Debug for Content {
    // Never prints message text.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text { .. } => f.write_str("Content::Text"),
            Self::DeliveryReceipt(ids) => write!(f, "Content::DeliveryReceipt({})", ids.len()),
            Self::ReadReceipt(ids) => write!(f, "Content::ReadReceipt({})", ids.len()),
            Self::Typing(t) => write!(f, "Content::Typing({t})"),
            Self::DisappearingTimer { seconds, .. } => {
                write!(f, "Content::DisappearingTimer({seconds})")
            }
        }
    }
}

/// Why content could not be decoded.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum ContentError {
    /// Unknown version byte.
    #[error("unknown content version")]
    UnknownVersion,
    /// Unknown content type.
    #[error("unknown content type")]
    UnknownType,
    /// Truncated, oversized, trailing bytes or invalid UTF-8.
    #[error("malformed content")]
    Malformed,
}

impl Content {
    /// Encodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = vec![CONTENT_VERSION];
        match self {
            Self::Text {
                id,
                sent_at_ms,
                expire_secs,
                sender_username,
                text,
            } => {
                w.push(0x01);
                w.extend_from_slice(id);
                w.extend_from_slice(&sent_at_ms.to_be_bytes());
                w.extend_from_slice(&expire_secs.to_be_bytes());
                let name = sender_username.as_bytes();
                let name = if name.len() > MAX_USERNAME_LEN {
                    &[][..]
                } else {
                    name
                };
                w.push(name.len() as u8);
                w.extend_from_slice(name);
                let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
                w.extend_from_slice(&len.to_be_bytes());
                w.extend_from_slice(text.as_bytes());
            }
            Self::DeliveryReceipt(ids) | Self::ReadReceipt(ids) => {
                w.push(if matches!(self, Self::DeliveryReceipt(_)) {
                    0x02
                } else {
                    0x03
                });
                let n = ids.len().min(MAX_RECEIPT_IDS);
                w.extend_from_slice(&(n as u16).to_be_bytes());
                for id in &ids[..n] {
                    w.extend_from_slice(id);
                }
            }
            Self::Typing(t) => {
                w.push(0x04);
                w.push(u8::from(*t));
            }
            Self::DisappearingTimer {
                id,
                sent_at_ms,
                seconds,
            } => {
                w.push(0x05);
                w.extend_from_slice(id);
                w.extend_from_slice(&sent_at_ms.to_be_bytes());
                w.extend_from_slice(&seconds.to_be_bytes());
            }
        }
        w
    }

    /// Decodes, rejecting trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, ContentError> {
        let mut r = Reader(bytes);
        if r.take(1)?[0] != CONTENT_VERSION {
            return Err(ContentError::UnknownVersion);
        }
        let content = match r.take(1)?[0] {
            0x01 => {
                let id = r.id()?;
                let sent_at_ms = r.u64()?;
                let expire_secs = r.u32()?;
                let ulen = usize::from(r.take(1)?[0]);
                if ulen > MAX_USERNAME_LEN {
                    return Err(ContentError::Malformed);
                }
                let sender_username = std::str::from_utf8(r.take(ulen)?)
                    .map_err(|_| ContentError::Malformed)?
                    .to_owned();
                let len = r.u32()? as usize;
                if len > MAX_TEXT_LEN {
                    return Err(ContentError::Malformed);
                }
                let text = std::str::from_utf8(r.take(len)?)
                    .map_err(|_| ContentError::Malformed)?
                    .to_owned();
                Self::Text {
                    id,
                    sent_at_ms,
                    expire_secs,
                    sender_username,
                    text,
                }
            }
            t @ (0x02 | 0x03) => {
                let n = usize::from(u16::from_be_bytes(r.array()?));
                if n > MAX_RECEIPT_IDS {
                    return Err(ContentError::Malformed);
                }
                let ids = (0..n).map(|_| r.id()).collect::<Result<Vec<_>, _>>()?;
                if t == 0x02 {
                    Self::DeliveryReceipt(ids)
                } else {
                    Self::ReadReceipt(ids)
                }
            }
            0x04 => match r.take(1)?[0] {
                0 => Self::Typing(false),
                1 => Self::Typing(true),
                _ => return Err(ContentError::Malformed),
            },
            0x05 => Self::DisappearingTimer {
                id: r.id()?,
                sent_at_ms: r.u64()?,
                seconds: r.u32()?,
            },
            _ => return Err(ContentError::UnknownType),
        };
        if !r.0.is_empty() {
            return Err(ContentError::Malformed);
        }
        Ok(content)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ContentError> {
        if self.0.len() < n {
            return Err(ContentError::Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ContentError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn id(&mut self) -> Result<ClientMessageId, ContentError> {
        self.array()
    }
    fn u64(&mut self) -> Result<u64, ContentError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, ContentError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_known_bytes() {
        let all = [
            Content::Text {
                id: [7; 16],
                sent_at_ms: 5,
                expire_secs: 30,
                sender_username: "al".into(),
                text: "hé".into(),
            },
            Content::DeliveryReceipt(vec![[1; 16], [2; 16]]),
            Content::ReadReceipt(vec![]),
            Content::Typing(true),
            Content::DisappearingTimer {
                id: [3; 16],
                sent_at_ms: 9,
                seconds: 3600,
            },
        ];
        for c in &all {
            assert_eq!(Content::decode(&c.encode()).as_ref(), Ok(c));
        }
        assert_eq!(Content::Typing(false).encode(), vec![1, 4, 0]);
        let text = all[0].encode();
        assert_eq!(&text[..2], &[1, 1]);
        assert_eq!(&text[18..26], &5u64.to_be_bytes());
        assert_eq!(&text[26..30], &30u32.to_be_bytes());
        assert_eq!(&text[30..33], &[2, b'a', b'l']);
        assert_eq!(&text[33..37], &3u32.to_be_bytes());
        let mut trailing = text.clone();
        trailing.push(0);
        assert_eq!(Content::decode(&trailing), Err(ContentError::Malformed));
        assert_eq!(Content::decode(&[2, 1]), Err(ContentError::UnknownVersion));
        assert_eq!(Content::decode(&[1, 9]), Err(ContentError::UnknownType));
        assert_eq!(Content::decode(&[1, 4, 2]), Err(ContentError::Malformed));
        assert!(!format!("{:?}", all[0]).contains('h'));
    }
}
