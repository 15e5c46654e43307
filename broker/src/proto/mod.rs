//! The client protocol: a byte-level parser for what clients send and the encoders for what
//! the server sends back.
//!
//! Everything here is pure (no tokio, no sockets) so it can be tested exhaustively, split at
//! every offset, and fuzzed. The parser borrows the read buffer and hands the connection
//! typed arguments through the [`Handler`] trait; it never decides policy (auth, permissions,
//! routing) — it only knows the wire format and the limits that protect memory.

pub mod parser;
pub mod route;
pub mod wire;

pub use parser::{Handler, Msg, ParseStop, Parser, ProtoError};
