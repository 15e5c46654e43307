//! Connections: the per-connection outbound queue shared with producers ([`outbound`]), the
//! client connection that reads, parses and applies ops ([`client`]), and the busy poll that
//! keeps a worker awake after interactive traffic ([`busy_poll`]).

pub mod busy_poll;
pub mod client;
pub(crate) mod deliver;
pub mod entry;
pub mod outbound;

use crate::error::ClosedReason;

/// A request to close a connection: the reason recorded for monitoring, and the `-ERR` text
/// (if any) written before the socket closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    pub reason: ClosedReason,
    pub err: Option<&'static str>,
}

impl Close {
    pub const fn silent(reason: ClosedReason) -> Close {
        Close { reason, err: None }
    }
    pub const fn with_err(reason: ClosedReason, err: &'static str) -> Close {
        Close {
            reason,
            err: Some(err),
        }
    }
}
