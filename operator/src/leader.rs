//! Leader election on a `coordination.k8s.io/v1` Lease, so two operator replicas never
//! reconcile at once. A replica that loses the lease stops (and is restarted by Kubernetes),
//! as client-go's leader election does: continuing would risk two writers.

use std::future::Future;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio_util::sync::CancellationToken;

/// Where and as whom to hold the lease.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// Lease object name.
    pub name: String,
    /// Namespace of the Lease (the operator's own).
    pub namespace: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// Seconds a lease is valid without renewal.
    pub duration_seconds: u64,
    /// Extra seconds before another replica may take an expired lease.
    pub grace_seconds: u64,
}

/// Why leading ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The lease could not be created, read or renewed.
    #[error("lease: {0}")]
    Lease(#[from] LeaseManagerError),
    /// Another replica took the lease while this one was leading.
    #[error("lost the leader lease")]
    Lost,
    /// The lease task ended unexpectedly.
    #[error("lease task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Waits for leadership, then runs `work` until it finishes or leadership is lost.
/// Returns without running `work` when `shutdown` is cancelled first.
pub async fn run_as_leader<F>(
    client: Client,
    settings: LeaseSettings,
    shutdown: CancellationToken,
    work: F,
) -> Result<(), LeaderError>
where
    F: Future<Output = ()>,
{
    let manager = LeaseManagerBuilder::new(client, &settings.name)
        .with_namespace(&settings.namespace)
        .with_identity(&settings.identity)
        .with_duration(settings.duration_seconds)
        .with_grace(settings.grace_seconds)
        .build()
        .await?;
    let (mut leading, task) = manager.watch().await;
    tracing::info!(lease = %settings.name, identity = %settings.identity, "waiting for leadership");
    loop {
        if *leading.borrow_and_update() {
            break;
        }
        tokio::select! {
            changed = leading.changed() => if changed.is_err() {
                return Err(task.await??.release().await.err().map_or(LeaderError::Lost, LeaderError::from));
            },
            () = shutdown.cancelled() => {
                drop(leading);
                task.await??;
                return Ok(());
            }
        }
    }
    tracing::info!(identity = %settings.identity, "became leader");
    let lost = async {
        loop {
            if leading.changed().await.is_err() || !*leading.borrow_and_update() {
                return;
            }
        }
    };
    tokio::select! {
        () = work => {}
        () = lost => {
            tracing::error!("lost leadership; stopping so that only one replica reconciles");
            return Err(LeaderError::Lost);
        }
    }
    drop(leading);
    // Release so the standby takes over at once instead of waiting for expiry.
    task.await??.release().await?;
    tracing::info!("released leadership");
    Ok(())
}
