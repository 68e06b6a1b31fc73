//! The relay protocol's wire format, shared by the relay and the client.
#![forbid(unsafe_code)]
