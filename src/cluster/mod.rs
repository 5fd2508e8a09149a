//! `[Cluster]`: several pcapd hosts take jobs from one queue on Redis Streams, each bounded
//! by its own pool, with the job records on a file system every host mounts.
//!
//! - **Submit** (any host): captures and record durable first (`cluster.published = false`),
//!   then the entry is published (`queue.rs`); the answer comes after both. While Redis is
//!   unreachable the host keeps accepting: the job waits in this host's publish list, and at
//!   start the host publishes whatever it accepted and did not publish (publishing is
//!   idempotent).
//! - **Dispatch** is pulled: a host reads only as many entries as it has idle slots. Before
//!   running one it reads the record: a terminal job is acknowledged and skipped; otherwise the
//!   host claims it in the record (owner, a new epoch) and queues it on its own pool.
//! - **Ownership**: every `heartbeat` the host resets the idle time of the entries it runs;
//!   entries idle past `claim_after` belong to a dead host and are claimed by a live one
//!   (`interrupted` in the history), up to `max_deliveries`, then the job fails
//!   (dead-lettered) with the reason. A worker crash also gives the delivery up.
//! - **Fencing**: a result is written only if the record still names this host and epoch; a
//!   host that was stopped, not dead, discards its late result and forwards nothing.
//! - **Acknowledge** only after the terminal record is durable; a failed ack is retried.

pub mod queue;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::ClusterConfig;
use crate::daemon::state::{blocking, Daemon};
use crate::jobs::{ClusterState, JobId, JobRecord, StoreError, Timestamp};
use crate::pool::{Admission, SlotState};
use queue::{Entry, Queue, QueueError, QueueStatus};

/// A host that cannot reach Redis tries again after this long, doubling up to the cap.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How long one `XREADGROUP` waits for new entries.
const READ_BLOCK: Duration = Duration::from_secs(1);
/// How often a host with no idle slot looks again.
const FULL_POLL: Duration = Duration::from_millis(25);

/// A job this host claimed: its stream entry and the epoch of its claim.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Claim {
    entry: String,
    epoch: u64,
}

/// This host's side of the cluster.
pub struct Cluster {
    pub node: String,
    config: ClusterConfig,
    url: String,
    queue: tokio::sync::Mutex<Option<Arc<Queue>>>,
    running: Mutex<HashMap<JobId, Claim>>,
    unpublished: Mutex<VecDeque<JobId>>,
    unacked: Mutex<Vec<String>>,
    /// A slot finished its job: the dispatcher reads again at once.
    slot_freed: tokio::sync::Notify,
}

/// Why the cluster cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("[Cluster] password_file {path}: {source}")]
    Password {
        path: String,
        source: std::io::Error,
    },
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cluster {
    pub fn new(config: &ClusterConfig) -> Result<Cluster, ClusterError> {
        let mut url = config.redis.clone();
        if let Some(path) = &config.password_file {
            let text = std::fs::read_to_string(path).map_err(|source| ClusterError::Password {
                path: path.display().to_string(),
                source,
            })?;
            let password = text.lines().next().unwrap_or("").trim().to_owned();
            if let Some((scheme, rest)) = url.split_once("://") {
                url = format!("{scheme}://:{password}@{rest}");
            }
        }
        let node = config.node.clone().unwrap_or_else(crate::output::host_name);
        Ok(Cluster {
            node,
            config: config.clone(),
            url,
            queue: tokio::sync::Mutex::new(None),
            running: Mutex::new(HashMap::new()),
            unpublished: Mutex::new(VecDeque::new()),
            unacked: Mutex::new(Vec::new()),
            slot_freed: tokio::sync::Notify::new(),
        })
    }

    /// The queue, connecting first if need be.
    async fn queue(&self) -> Result<Arc<Queue>, QueueError> {
        let mut queue = self.queue.lock().await;
        if let Some(q) = &*queue {
            return Ok(q.clone());
        }
        let connected = Arc::new(Queue::connect(&self.config, &self.url, &self.node).await?);
        *queue = Some(connected.clone());
        Ok(connected)
    }

    /// The cluster fields of a job this host accepts: `published` already, because once its
    /// entry is in the stream another host may claim it at once, and this host must not
    /// write the record after that.
    pub fn new_state(&self) -> ClusterState {
        ClusterState {
            submitted_by: self.node.clone(),
            published: true,
            owner: None,
            epoch: 0,
            deliveries: 0,
            last_failure: None,
        }
    }

    /// Publishes a durable job. While Redis is unreachable the record says `published =
    /// false` and the job waits in this host's publish list (the client is answered either
    /// way: the job is durable). Records are written only while the entry is not in the
    /// stream, so no other host can be writing them.
    pub async fn publish(&self, daemon: &Daemon, id: &JobId) {
        self.publish_attempt(daemon, id, true).await;
    }

    async fn publish_attempt(&self, daemon: &Daemon, id: &JobId, first: bool) {
        if !first {
            set_published(daemon, id, true).await;
        }
        let result = match self.queue().await {
            Ok(q) => q.publish(id).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            if first {
                tracing::warn!(job = %id, error = %e, "cannot publish the job; it is kept and published when Redis is back");
            }
            set_published(daemon, id, false).await;
            lock(&self.unpublished).push_back(id.clone());
        }
    }

    /// Whether this host may write the result of `id`'s current run, and the entry to ack.
    fn claim_of(&self, id: &JobId) -> Option<Claim> {
        lock(&self.running).get(id).cloned()
    }

    /// Fences a record change: `true` when the record still names this host in the epoch of
    /// its claim.
    pub fn owns(&self, id: &JobId, record: &JobRecord) -> bool {
        let Some(claim) = self.claim_of(id) else {
            return false;
        };
        record.cluster.as_ref().is_some_and(|c| {
            c.owner.as_deref() == Some(self.node.as_str()) && c.epoch == claim.epoch
        })
    }

    /// A job ended on this host's pool: a slot is (about to be) free.
    pub fn slot_freed(&self) {
        self.slot_freed.notify_one();
    }

    /// The job's terminal record is durable: acknowledge its entry.
    pub async fn finished(&self, id: &JobId) {
        let Some(claim) = lock(&self.running).remove(id) else {
            return;
        };
        self.ack(claim.entry).await;
    }

    /// The job's run ended without a result here (its worker crashed, or shutdown stopped
    /// it): stop heartbeating its entry. The entry stays pending, so this host's next start,
    /// or a live host after `claim_after`, delivers it again.
    pub fn release(&self, id: &JobId) {
        lock(&self.running).remove(id);
    }

    async fn ack(&self, entry: String) {
        let result = match self.queue().await {
            Ok(q) => q.ack(&entry).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(entry, error = %e, "cannot acknowledge the entry; retrying");
            lock(&self.unacked).push(entry);
        }
    }

    /// Runs an entry: skip what is settled, dead-letter what was delivered too often, else
    /// claim the job and queue it on this host's pool.
    async fn take(&self, daemon: &Arc<Daemon>, entry: Entry) {
        let Some(id) = entry.job_id.clone() else {
            tracing::warn!(entry = entry.id, "a stream entry without a job id; dropped");
            self.ack(entry.id).await;
            return;
        };
        if lock(&self.running)
            .get(&id)
            .is_some_and(|c| c.entry == entry.id)
        {
            return; // Ours and running here: a claim of our own entry after a lapse.
        }
        let record = match daemon.load(&id).await {
            Ok(record) => record,
            Err(StoreError::NotFound(_)) => {
                self.ack(entry.id).await;
                return;
            }
            Err(e) => {
                tracing::error!(job = %id, error = %e, "cannot read the record of a claimed job; left for later");
                return;
            }
        };
        if record.state.is_terminal() {
            self.ack(entry.id).await;
            return;
        }
        let max = self.config.max_deliveries;
        let node = self.node.clone();
        if entry.deliveries > max {
            let reason = format!(
                "dead-lettered after {} deliveries (max_deliveries = {max}): {}",
                entry.deliveries - 1,
                record
                    .cluster
                    .as_ref()
                    .and_then(|c| c.last_failure.clone())
                    .unwrap_or_else(|| "the hosts running it stopped heartbeating".into())
            );
            let (store, id2, why) = (daemon.store.clone(), id.clone(), reason.clone());
            let written =
                blocking(move || store.update(&id2, |r| r.dead_letter(Timestamp::now(), why)))
                    .await;
            match written {
                Ok(_) => {
                    tracing::error!(job = %id, reason, "job dead-lettered");
                    if let Ok(q) = self.queue().await {
                        let _ = q.dead_letter(&id, &reason).await;
                    }
                    daemon.notify_change(&id);
                    self.ack(entry.id).await;
                }
                Err(e) => {
                    tracing::error!(job = %id, error = %e, "cannot dead-letter the job; left for later")
                }
            }
            return;
        }
        let (store, id2) = (daemon.store.clone(), id.clone());
        let fresh = self.new_state();
        let claimed = blocking(move || {
            store.update(&id2, |r| {
                if r.cluster.is_none() {
                    r.cluster = Some(fresh);
                }
                r.claim(Timestamp::now(), &node)
            })
        })
        .await;
        let record = match claimed {
            Ok(record) => record,
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "cannot claim the job");
                return;
            }
        };
        let epoch = record.cluster.as_ref().map_or(0, |c| c.epoch);
        if entry.deliveries > 1 {
            tracing::warn!(job = %id, deliveries = entry.deliveries, "took over a job whose host stopped");
        }
        lock(&self.running).insert(
            id.clone(),
            Claim {
                entry: entry.id.clone(),
                epoch,
            },
        );
        daemon.notify_change(&id);
        if let Err(e) = daemon.enqueue(daemon.job_spec(&record), Admission::Recovered) {
            tracing::warn!(job = %id, error = %e, "claimed job not queued; its entry stays pending");
            lock(&self.running).remove(&id);
        }
    }

    /// Status for `pcapd cluster`.
    pub async fn status(&self) -> Result<serde_json::Value, QueueError> {
        let queue: QueueStatus = self.queue().await?.status().await?;
        let running: Vec<String> = lock(&self.running)
            .keys()
            .map(|id| id.to_string())
            .collect();
        Ok(serde_json::json!({
            "node": self.node,
            "stream": self.config.stream,
            "group": self.config.group,
            "queue": queue,
            "running_here": running,
            "unpublished_here": lock(&self.unpublished).len(),
        }))
    }
}

async fn set_published(daemon: &Daemon, id: &JobId, published: bool) {
    let (store, id2) = (daemon.store.clone(), id.clone());
    let written = blocking(move || {
        store.update_if(&id2, |r| {
            Ok::<bool, std::convert::Infallible>(match &mut r.cluster {
                Some(c) if c.published != published => {
                    c.published = published;
                    true
                }
                _ => false,
            })
        })
    })
    .await;
    if let Err(e) = written {
        tracing::warn!(job = %id, error = %e, "cannot record whether the job is published");
    }
}

/// Idle slots not already promised to queued work.
async fn free_slots(daemon: &Daemon) -> usize {
    let status = daemon.pool.status().await;
    let idle = status
        .slots
        .iter()
        .filter(|s| s.state == SlotState::Idle)
        .count();
    idle.saturating_sub(status.queue_len)
}

/// Runs the host's cluster tasks until `shutdown`: dispatch (abandoned entries first, then
/// new ones, as slots free up), and every `heartbeat` the heartbeat and the retries.
pub async fn run(daemon: Arc<Daemon>, cluster: Arc<Cluster>, shutdown: CancellationToken) {
    publish_leftovers(&daemon, &cluster).await;
    let maintenance = tokio::spawn(maintain(daemon.clone(), cluster.clone(), shutdown.clone()));
    dispatch(&daemon, &cluster, &shutdown).await;
    let _ = maintenance.await;
}

/// At start: every queued job this host accepted. Publishing is idempotent, so those already
/// in the stream stay there once, and one accepted just before a crash, durable but not yet
/// published, is added now.
async fn publish_leftovers(daemon: &Daemon, cluster: &Cluster) {
    let store = daemon.store.clone();
    let filter = crate::jobs::ListFilter {
        state: Some(crate::jobs::JobState::Queued),
        ..Default::default()
    };
    let Ok(records) = blocking(move || store.list(&filter)).await else {
        return;
    };
    let mut list = lock(&cluster.unpublished);
    for record in records {
        if record
            .cluster
            .as_ref()
            .is_some_and(|c| c.submitted_by == cluster.node && c.owner.is_none())
        {
            list.push_back(record.job_id);
        }
    }
}

async fn dispatch(daemon: &Arc<Daemon>, cluster: &Cluster, shutdown: &CancellationToken) {
    let mut delay = RETRY_FIRST;
    // After a restart: the entries this host was running (or had read) when it stopped.
    loop {
        let pending = match cluster.queue().await {
            Ok(q) => q.read_own_pending().await,
            Err(e) => Err(e),
        };
        match pending {
            Ok(entries) => {
                for entry in entries {
                    cluster.take(daemon, entry).await;
                }
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach Redis; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(RETRY_MAX);
            }
        }
    }
    delay = RETRY_FIRST;
    while !shutdown.is_cancelled() {
        let free = free_slots(daemon).await;
        if free == 0 {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = cluster.slot_freed.notified() => continue,
                _ = tokio::time::sleep(FULL_POLL) => continue,
            }
        }
        // Work a dead host left behind goes first: it has waited claim_after already.
        let read = match cluster.queue().await {
            Ok(q) => match q.claim_abandoned(cluster.config.claim_after, free).await {
                Ok(claimed) if !claimed.is_empty() => Ok(claimed),
                Ok(_) => q.read_new(free, READ_BLOCK).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match read {
            Ok(entries) => {
                delay = RETRY_FIRST;
                for entry in entries {
                    cluster.take(daemon, entry).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the job stream; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(RETRY_MAX);
            }
        }
    }
}

async fn maintain(daemon: Arc<Daemon>, cluster: Arc<Cluster>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(cluster.config.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let queue = match cluster.queue().await {
            Ok(q) => q,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach Redis");
                continue;
            }
        };
        let ids: Vec<String> = lock(&cluster.running)
            .values()
            .map(|c| c.entry.clone())
            .collect();
        match queue.heartbeat(&ids).await {
            Ok(lost) if !lost.is_empty() => {
                let mut running = lock(&cluster.running);
                running.retain(|id, claim| {
                    let gone = lost.contains(&claim.entry);
                    if gone {
                        tracing::warn!(job = %id, "another host took this job over; this host's result will be discarded");
                    }
                    !gone
                });
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
        }
        let pool = daemon.config().global.pool;
        let running = lock(&cluster.running).len();
        if let Err(e) = queue.beat(pool, running).await {
            tracing::warn!(error = %e, "node heartbeat failed");
        }
        let unacked: Vec<String> = std::mem::take(&mut *lock(&cluster.unacked));
        for entry in unacked {
            cluster.ack(entry).await;
        }
        let unpublished: Vec<JobId> = lock(&cluster.unpublished).drain(..).collect();
        for id in unpublished {
            cluster.publish_attempt(&daemon, &id, false).await;
        }
    }
}
