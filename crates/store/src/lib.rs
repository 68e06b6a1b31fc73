//! Sotto's encrypted local store: the SQLCipher database whose key is held in the OS keyring or
//! wrapped by a passphrase, its migrations and typed queries.
//!
//! Depends only on `sotto-protocol`; knows nothing of networking or of any front end.
#![forbid(unsafe_code)]
