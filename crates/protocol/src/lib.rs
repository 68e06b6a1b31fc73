//! Sotto's cryptographic protocol: identities, prekeys, PQXDH, the Double Ratchet, sealed sender,
//! safety numbers and QR payloads, plus their wire formats. Pure: no I/O.
#![forbid(unsafe_code)]
