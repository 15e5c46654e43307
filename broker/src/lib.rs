//! nats-mini: a high-performance, memory-only Core NATS server.
//!
//! # Layout
//! Dependencies point one way, from the protocol's pure core out to the async shell:
//! - [`subject`]: subject syntax and wildcard matching (pure).
//! - [`sublist`]: the subscription index with its match cache (sync, no I/O).
//! - [`proto`]: the client-protocol parser and wire encoders (pure).
//! - [`auth`], [`permissions`]: client authentication and publish/subscribe permissions (pure).
//! - [`config`]: the nats-server configuration file format (pure).
//! - [`options`], [`cli`]: defaults, value syntaxes, flags and `NATS_*` variables.
//! - [`conn`]: a connection's outbound queue and its read loop (tokio).
//! - [`cluster`]: routes to peer servers (nats-server's route protocol), interest propagation,
//!   gossip and reconnects.
//! - [`server`]: listeners, registry, limits, self-check, shutdown; [`Server`] is the handle.
//! - [`monitor`]: HTTP monitoring (`/varz`, `/connz`, `/subsz`, `/routez`, `/healthz`, `/metrics`).
//! - [`stats`], [`logging`], [`netif`], [`limits`], [`timefmt`]: counters, nats-server-style logs,
//!   interface addresses, the open-file limit, time formats.
//!
//! # Embedding
//! ```no_run
//! # async fn demo() -> Result<(), nats_mini::StartError> {
//! let server = nats_mini::Server::builder().start().await?;
//! println!("clients connect to {}", server.client_url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod bench;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod error;
pub mod limits;
pub mod logging;
pub mod monitor;
pub mod netif;
pub mod options;
pub mod permissions;
pub mod proto;
pub mod server;
pub mod signal;
pub mod stats;
pub mod subject;
pub mod sublist;
pub mod subscription;
pub mod timefmt;
pub mod tls;
pub mod tune;

pub use error::ClosedReason;
pub use options::Options;
pub use server::{Server, ServerBuilder, StartError};
