//! The Sotto relay server.
#![forbid(unsafe_code)]
