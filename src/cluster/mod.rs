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

use crate::backoff::Backoff;
use crate::config::ClusterConfig;
use crate::jobs::{ClusterState, JobId, JobRecord, StoreError};
use crate::ledger::{Fence, JobLedger, Recorded, Transition};
use crate::pool::{Admission, PoolHandle, SlotState};
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

/// The runs this host claimed: what fences its results.
pub struct Claims {
    pub node: String,
    running: Mutex<HashMap<JobId, Claim>>,
}

impl Claims {
    /// This host's claims, under its node name (`[Cluster] node`, else the host name).
    pub fn new(config: &ClusterConfig) -> Claims {
        Claims {
            node: config.node.clone().unwrap_or_else(crate::output::host_name),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// The entry to ack and the epoch of this host's claim of `id`.
    fn get(&self, id: &JobId) -> Option<Claim> {
        lock(&self.running).get(id).cloned()
    }
}

impl Fence for Claims {
    /// `true` when the record still names this host in the epoch of its claim.
    fn owns(&self, id: &JobId, record: &JobRecord) -> bool {
        let Some(claim) = self.get(id) else {
            return false;
        };
        record.cluster.as_ref().is_some_and(|c| {
            c.owner.as_deref() == Some(self.node.as_str()) && c.epoch == claim.epoch
        })
    }
}

/// This host's side of the cluster: its claims, the stream, and the handles it works with
/// (the ledger for records, the pool for its own slots; never the whole daemon).
pub struct Cluster {
    pub node: String,
    config: ClusterConfig,
    url: String,
    queue: tokio::sync::Mutex<Option<Arc<Queue>>>,
    claims: Arc<Claims>,
    ledger: Arc<JobLedger>,
    pool: PoolHandle,
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
    /// This host's side; `claims` must be the fence `ledger` was built with.
    pub fn new(
        config: &ClusterConfig,
        claims: Arc<Claims>,
        ledger: Arc<JobLedger>,
        pool: PoolHandle,
    ) -> Result<Cluster, ClusterError> {
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
        Ok(Cluster {
            node: claims.node.clone(),
            config: config.clone(),
            url,
            queue: tokio::sync::Mutex::new(None),
            claims,
            ledger,
            pool,
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
    pub async fn publish(&self, id: &JobId) {
        self.publish_attempt(id, true).await;
    }

    async fn publish_attempt(&self, id: &JobId, first: bool) {
        if !first {
            self.set_published(id, true).await;
        }
        let result = match self.queue().await {
            Ok(q) => q.publish(id).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            if first {
                tracing::warn!(job = %id, error = %e, "cannot publish the job; it is kept and published when Redis is back");
            }
            self.set_published(id, false).await;
            lock(&self.unpublished).push_back(id.clone());
        }
    }

    async fn set_published(&self, id: &JobId, published: bool) {
        if let Err(e) = self
            .ledger
            .apply(id, Transition::SetPublished(published))
            .await
        {
            tracing::warn!(job = %id, error = %e, "cannot record whether the job is published");
        }
    }

    /// A job ended on this host's pool: a slot is (about to be) free.
    pub fn slot_freed(&self) {
        self.slot_freed.notify_one();
    }

    /// The job's terminal record is durable: acknowledge its entry.
    pub async fn finished(&self, id: &JobId) {
        let Some(claim) = lock(&self.claims.running).remove(id) else {
            return;
        };
        self.ack(claim.entry).await;
    }

    /// The job's run ended without a result here (its worker crashed, or shutdown stopped
    /// it): stop heartbeating its entry. The entry stays pending, so this host's next start,
    /// or a live host after `claim_after`, delivers it again.
    pub fn release(&self, id: &JobId) {
        lock(&self.claims.running).remove(id);
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
    async fn take(&self, entry: Entry) {
        let Some(id) = entry.job_id.clone() else {
            tracing::warn!(entry = entry.id, "a stream entry without a job id; dropped");
            self.ack(entry.id).await;
            return;
        };
        if lock(&self.claims.running)
            .get(&id)
            .is_some_and(|c| c.entry == entry.id)
        {
            return; // Ours and running here: a claim of our own entry after a lapse.
        }
        let record = match self.ledger.load(&id).await {
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
            let dead = Transition::DeadLetter {
                reason: reason.clone(),
            };
            match self.ledger.apply(&id, dead).await {
                Ok(_) => {
                    tracing::error!(job = %id, reason, "job dead-lettered");
                    if let Ok(q) = self.queue().await {
                        let _ = q.dead_letter(&id, &reason).await;
                    }
                    self.ack(entry.id).await;
                }
                Err(e) => {
                    tracing::error!(job = %id, error = %e, "cannot dead-letter the job; left for later")
                }
            }
            return;
        }
        let claim = Transition::Claim {
            node,
            fresh: self.new_state(),
        };
        let record = match self.ledger.apply(&id, claim).await {
            Ok(Recorded::Written(record)) => record,
            Ok(_) => {
                tracing::warn!(job = %id, "the job settled before this host could claim it");
                self.ack(entry.id).await;
                return;
            }
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "cannot claim the job");
                return;
            }
        };
        let epoch = record.cluster.as_ref().map_or(0, |c| c.epoch);
        if entry.deliveries > 1 {
            tracing::warn!(job = %id, deliveries = entry.deliveries, "took over a job whose host stopped");
        }
        lock(&self.claims.running).insert(
            id.clone(),
            Claim {
                entry: entry.id.clone(),
                epoch,
            },
        );
        let spec = self.ledger.job_spec(&record);
        if let Err(e) = self.pool.submit(spec, Admission::Recovered) {
            tracing::warn!(job = %id, error = %e, "claimed job not queued; its entry stays pending");
            lock(&self.claims.running).remove(&id);
        }
    }

    /// Status for `pcapd cluster`.
    pub async fn status(&self) -> Result<ClusterStatus, QueueError> {
        let queue = self.queue().await?.status().await?;
        let running_here = lock(&self.claims.running).keys().cloned().collect();
        Ok(ClusterStatus {
            node: self.node.clone(),
            stream: self.config.stream.clone(),
            group: self.config.group.clone(),
            queue,
            running_here,
            unpublished_here: lock(&self.unpublished).len(),
        })
    }
}

/// The answer to `cluster`: this host, the stream, and what runs here.
#[derive(Debug, serde::Serialize)]
pub struct ClusterStatus {
    pub node: String,
    pub stream: String,
    pub group: String,
    pub queue: QueueStatus,
    pub running_here: Vec<JobId>,
    pub unpublished_here: usize,
}

/// Idle slots not already promised to queued work.
async fn free_slots(pool: &PoolHandle) -> usize {
    let status = pool.status().await;
    let idle = status
        .slots
        .iter()
        .filter(|s| s.state == SlotState::Idle)
        .count();
    idle.saturating_sub(status.queue_len)
}

/// Runs the host's cluster tasks until `shutdown`: dispatch (abandoned entries first, then
/// new ones, as slots free up), and every `heartbeat` the heartbeat and the retries.
pub async fn run(cluster: Arc<Cluster>, shutdown: CancellationToken) {
    publish_leftovers(&cluster).await;
    let maintenance = tokio::spawn(maintain(cluster.clone(), shutdown.clone()));
    dispatch(&cluster, &shutdown).await;
    let _ = maintenance.await;
}

/// At start: every queued job this host accepted. Publishing is idempotent, so those already
/// in the stream stay there once, and one accepted just before a crash, durable but not yet
/// published, is added now.
async fn publish_leftovers(cluster: &Cluster) {
    let filter = crate::jobs::ListFilter {
        state: Some(crate::jobs::JobState::Queued),
        ..Default::default()
    };
    let Ok(records) = cluster.ledger.list(filter).await else {
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

async fn dispatch(cluster: &Cluster, shutdown: &CancellationToken) {
    let mut backoff = Backoff::new(RETRY_FIRST, RETRY_MAX);
    // After a restart: the entries this host was running (or had read) when it stopped.
    loop {
        let pending = match cluster.queue().await {
            Ok(q) => q.read_own_pending().await,
            Err(e) => Err(e),
        };
        match pending {
            Ok(entries) => {
                for entry in entries {
                    cluster.take(entry).await;
                }
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach Redis; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        }
    }
    backoff.reset();
    while !shutdown.is_cancelled() {
        let free = free_slots(&cluster.pool).await;
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
                backoff.reset();
                for entry in entries {
                    cluster.take(entry).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the job stream; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        }
    }
}

async fn maintain(cluster: Arc<Cluster>, shutdown: CancellationToken) {
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
        let ids: Vec<String> = lock(&cluster.claims.running)
            .values()
            .map(|c| c.entry.clone())
            .collect();
        match queue.heartbeat(&ids).await {
            Ok(lost) if !lost.is_empty() => {
                let mut running = lock(&cluster.claims.running);
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
        let pool = cluster.pool.status().await.slots.len();
        let running = lock(&cluster.claims.running).len();
        if let Err(e) = queue.beat(pool, running).await {
            tracing::warn!(error = %e, "node heartbeat failed");
        }
        let unacked: Vec<String> = std::mem::take(&mut *lock(&cluster.unacked));
        for entry in unacked {
            cluster.ack(entry).await;
        }
        let unpublished: Vec<JobId> = lock(&cluster.unpublished).drain(..).collect();
        for id in unpublished {
            cluster.publish_attempt(&id, false).await;
        }
    }
}
