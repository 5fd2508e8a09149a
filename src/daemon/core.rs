//! What runs behind the front doors: the ledger over the recovered store, the pool, dispatch
//! (local or cluster), the outputs, the pool-event and retention tasks, and the job service.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::error::DaemonError;
use super::events::PoolEvents;
use super::setup::pool_settings;
use crate::config::{BackendKind, Config, LiveConfig};
use crate::disk::DiskWatch;
use crate::dispatch::{ClusterDispatch, Dispatch, LocalDispatch};
use crate::jobs::JobStore;
use crate::ledger::{blocking, Fence, JobLedger};
use crate::metrics::Metrics;
use crate::pool::{self, PoolHandle};
use crate::server::auth::Auth;
use crate::service::{BurpMonitor, JobService, Parts};

/// What runs behind the front doors, and the handles the composition root keeps.
pub(super) struct Core {
    pub service: Arc<JobService>,
    pub ledger: Arc<JobLedger>,
    pub pool: PoolHandle,
    pub dispatch: Arc<dyn Dispatch>,
    pub auth: Arc<Auth>,
    pub live: Arc<LiveConfig>,
    pub metrics: Arc<Metrics>,
    /// Stops the pool-event task (after the drain).
    pub stop_events: CancellationToken,
}

/// Recovers the store, starts the pool, the ledger, dispatch (local or cluster), the
/// outputs and the background tasks, and builds the job service on them.
pub(super) async fn start_core(
    config: &Config,
    store: Arc<JobStore>,
    password: String,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<Core, DaemonError> {
    let claims = config
        .cluster
        .as_ref()
        .map(|c| Arc::new(crate::cluster::Claims::new(c)));
    let fence = claims.clone().map(|c| c as Arc<dyn Fence>);
    let metrics = Arc::new(Metrics::new());
    let ledger = Arc::new(JobLedger::new(store, fence, metrics.clone()));
    // With [Cluster] the records are shared: other hosts' running jobs and uploads are not
    // this host's to recover. Its own unfinished jobs come back as its pending stream entries.
    let recovery = if claims.is_none() {
        ledger.recover().await?
    } else {
        crate::jobs::Recovery::default()
    };
    tracing::info!(
        requeued = recovery.requeue.len(),
        failed = recovery.failed.len(),
        cleaned = recovery.cleaned_temp,
        "job store recovered"
    );
    for (path, reason) in &recovery.unreadable {
        tracing::error!(path = %path.display(), reason, "unreadable job record left alone");
    }

    let burp_client_version = match config.global.backend {
        BackendKind::Burp => {
            Some(crate::backend::burp::client_version(&config.burp.burpbin).await?)
        }
        _ => None,
    };
    let output_settings =
        crate::output::OutputSettings::from_config(config).map_err(DaemonError::Output)?;
    let (pool, events) = pool::start(pool_settings(config)?).await?;
    let dispatch: Arc<dyn Dispatch> = match (&config.cluster, claims) {
        (Some(cluster_config), Some(claims)) => {
            let cluster =
                crate::cluster::Cluster::new(cluster_config, claims, ledger.clone(), pool.clone())
                    .map_err(DaemonError::Cluster)?;
            Arc::new(ClusterDispatch::new(Arc::new(cluster)))
        }
        _ => Arc::new(LocalDispatch::new(ledger.clone(), pool.clone())),
    };
    let outputs = Arc::new(crate::output::Outputs::start(
        output_settings,
        ledger.clone(),
        metrics.clone(),
        shutdown.clone(),
        tracker,
    ));
    let live = Arc::new(LiveConfig::new(config.clone()));
    let disk = Arc::new(DiskWatch::new(
        &config.global.jobs_dir,
        live.clone(),
        pool.clone(),
    ));
    // Before anything is dispatched: a start on a full disk starts paused.
    let first_look = disk.clone();
    blocking(move || first_look.check()).await;
    tracker.spawn(disk.clone().run(shutdown.clone()));
    let stop_events = CancellationToken::new();
    let pool_events = PoolEvents {
        ledger: ledger.clone(),
        dispatch: dispatch.clone(),
        outputs,
        pool: pool.clone(),
        disk: disk.clone(),
    };
    tracker.spawn(pool_events.run(events, stop_events.clone()));
    dispatch
        .clone()
        .start(recovery.requeue, shutdown.clone(), tracker)
        .await;
    tracker.spawn(super::memory::trim_loop(shutdown.clone()));
    tracker.spawn(retention_loop(
        ledger.clone(),
        live.clone(),
        shutdown.clone(),
    ));
    let auth = Arc::new(Auth::new(password, config.global.auth_delay));
    auth.set_exempt(config.global.auth_exempt.clone());
    let service = Arc::new(JobService::new(Parts {
        config: live.clone(),
        auth: auth.clone(),
        ledger: ledger.clone(),
        dispatch: dispatch.clone(),
        pool: pool.clone(),
        disk,
        monitor: BurpMonitor::new(burp_client_version),
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
    }));
    Ok(Core {
        service,
        ledger,
        pool,
        dispatch,
        auth,
        live,
        metrics,
        stop_events,
    })
}

/// Removes expired jobs now and then.
async fn retention_loop(
    ledger: Arc<JobLedger>,
    live: Arc<LiveConfig>,
    shutdown: CancellationToken,
) {
    const EVERY: Duration = Duration::from_secs(60);
    loop {
        let jobs_config = live.get().jobs.clone();
        if !jobs_config.keep.is_zero() || jobs_config.max_disk > 0 {
            match ledger.sweep(jobs_config.keep, jobs_config.max_disk).await {
                Ok(removed) if !removed.is_empty() => {
                    tracing::info!(removed = removed.len(), "retention removed jobs")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "retention sweep failed"),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}
