//! Leader election on a coordination.k8s.io Lease, so two operator replicas can run and only
//! one reconciles.
//!
//! kube-rs has no leader election of its own (kube-rs/kube#485); kube-lease-manager 0.13 is
//! the election crate built on kube 5. It keeps the Lease `LEASE_NAME` in the operator's
//! namespace: the holder renews it `grace` seconds before it expires, a standby takes it once
//! it has expired or was released. [`Election::step_down`] releases it on shutdown, so a
//! clean exit hands over at once (the standby notices at its next check, at most one lease
//! duration later) instead of waiting out a crash's full lease duration.
//!
//! Losing the Lease while running (say the API was unreachable past the lease duration)
//! stops the controller; the process then waits to win it again.

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Which Lease, held as whom, for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// This process's identity in `spec.holderIdentity` (the pod name).
    pub identity: String,
    /// `spec.leaseDurationSeconds`: how long a holder that stopped renewing keeps the Lease.
    pub duration_seconds: u64,
    /// How long before expiry the holder renews.
    pub grace_seconds: u64,
}

/// A running election.
pub struct Election {
    /// `true` while this process holds the Lease.
    pub leader: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

impl Election {
    /// Creates the Lease if it does not exist yet and starts competing for it.
    pub async fn start(client: Client, cfg: &LeaseConfig) -> Result<Election, LeaseManagerError> {
        let manager = LeaseManagerBuilder::new(client, &cfg.name)
            .with_namespace(&cfg.namespace)
            .with_identity(&cfg.identity)
            .with_duration(cfg.duration_seconds)
            .with_grace(cfg.grace_seconds)
            .with_field_manager(format!("{}-lease", crate::render::MANAGER))
            .build()
            .await?;
        let (leader, task) = manager.watch().await;
        Ok(Election { leader, task })
    }

    /// Stops competing and releases the Lease if this process holds it.
    pub async fn step_down(self) -> Result<(), LeaseManagerError> {
        // Dropping the last receiver tells the manager's task to release and exit.
        drop(self.leader);
        match self.task.await {
            Ok(result) => result.map(|_| ()),
            Err(e) => Err(LeaseManagerError::InconsistentState(format!(
                "lease task failed: {e}"
            ))),
        }
    }
}
