//! Why connections close, named as nats-server names them.
//!
//! The `Display` text is the Title Case reason nats-server reports in `/connz?state=closed`.
//! The `-ERR` text sent before a close (if any) is not a function of the reason — nats-server
//! closes several different errors as "Protocol Violation", some loudly and some silently — so
//! it travels separately, see [`crate::conn::Close`].

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClosedReason {
    ClientClosed,
    ProtocolViolation,
    ParseError,
    MaxControlLineExceeded,
    MaxPayloadExceeded,
    AuthenticationViolation,
    AuthenticationTimeout,
    MaxConnectionsExceeded,
    BadClientProtocolVersion,
    NoRespondersRequiresHeaders,
    StaleConnection,
    SlowConsumerPendingBytes,
    SlowConsumerWriteDeadline,
    WriteError,
    ReadError,
    ServerShutdown,
    /// A second route to a server we already have one with (or to ourselves).
    DuplicateRoute,
    /// A peer announcing our own server name.
    DuplicateServerName,
    /// A peer from another cluster.
    ClusterNameConflict,
    /// A client that connected to the route port.
    WrongPort,
}

impl ClosedReason {
    /// Whether pending output is still written before the socket closes. Slow consumers are
    /// cut off at once (their socket is the problem); everything else flushes what it owes.
    pub fn flushes(self) -> bool {
        !matches!(
            self,
            ClosedReason::SlowConsumerPendingBytes
                | ClosedReason::SlowConsumerWriteDeadline
                | ClosedReason::WriteError
        )
    }
}

impl fmt::Display for ClosedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClosedReason::ClientClosed => "Client Closed",
            ClosedReason::ProtocolViolation => "Protocol Violation",
            ClosedReason::ParseError => "Parse Error",
            ClosedReason::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            ClosedReason::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
            ClosedReason::AuthenticationViolation => "Authentication Failure",
            ClosedReason::AuthenticationTimeout => "Authentication Timeout",
            ClosedReason::MaxConnectionsExceeded => "Maximum Connections Exceeded",
            ClosedReason::BadClientProtocolVersion => "Bad Client Protocol Version",
            ClosedReason::NoRespondersRequiresHeaders => "No Responders Requires Headers",
            ClosedReason::StaleConnection => "Stale Connection",
            ClosedReason::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            ClosedReason::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            ClosedReason::WriteError => "Write Error",
            ClosedReason::ReadError => "Read Error",
            ClosedReason::ServerShutdown => "Server Shutdown",
            ClosedReason::DuplicateRoute => "Duplicate Route",
            ClosedReason::DuplicateServerName => "Duplicate Server Name",
            ClosedReason::ClusterNameConflict => "Cluster Name Conflict",
            ClosedReason::WrongPort => "Incorrect Port",
        })
    }
}
