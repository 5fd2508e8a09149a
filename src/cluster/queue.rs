//! The shared queue on Redis: a stream whose entries name a job id (`job` field), read by
//! every host through one consumer group, each host a consumer named by its node.
//!
//! Redis carries only the queue; the job record in the shared `jobs_dir` stays the source of
//! truth. The commands used: `XADD` (through a script that first sets a per-job key with
//! `NX`, so publishing a job twice adds one entry), `XREADGROUP` (new entries, and this
//! host's own pending ones after a restart), `XPENDING` + `XCLAIM … JUSTID` (heartbeat: resets
//! the idle time of entries this host still owns, without counting a delivery), `XAUTOCLAIM`
//! (entries idle past `claim_after`: their owner is dead), `XACK` then `XDEL` (only after the
//! terminal record is durable; the stream is never trimmed by length), a hash of node
//! heartbeats and a list of dead-lettered jobs for `pcapd cluster`.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamAutoClaimReply, StreamPendingCountReply, StreamReadReply};
use redis::{RedisError, Value};
use serde_json::json;

use crate::config::ClusterConfig;
use crate::jobs::JobId;

/// Each Redis command may take this long; past it the call fails and is retried later.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a published-marker key lives (a job is republished at most within it).
const PUBLISHED_TTL_SECS: u64 = 30 * 24 * 3600;

/// A Redis failure, with what pcapd was doing.
#[derive(Debug, thiserror::Error)]
#[error("redis {what}: {source}")]
pub struct QueueError {
    what: &'static str,
    source: RedisError,
}

/// One stream entry as a host sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub job_id: Option<JobId>,
    /// How often the entry was delivered (claims count; heartbeats do not).
    pub deliveries: u32,
}

/// What `pcapd cluster` shows of the queue.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct QueueStatus {
    /// Entries in the stream (undelivered plus pending).
    pub length: u64,
    /// Entries no host has read yet.
    pub waiting: u64,
    /// Entries delivered and not acknowledged, by host.
    pub pending: HashMap<String, u64>,
    /// Heartbeats by host: `{"at": unix seconds, "pool": n, "running": n}`.
    pub nodes: HashMap<String, serde_json::Value>,
    /// The most recent dead-lettered jobs, newest last.
    pub dead_lettered: Vec<serde_json::Value>,
}

pub struct Queue {
    conn: ConnectionManager,
    /// `XREADGROUP … BLOCK` holds its connection: it gets one of its own.
    blocking: ConnectionManager,
    stream: String,
    group: String,
    node: String,
    nodes_key: String,
    dead_key: String,
    publish: redis::Script,
}

fn failed(what: &'static str) -> impl FnOnce(RedisError) -> QueueError {
    move |source| QueueError { what, source }
}

impl Queue {
    /// Connects (lazily reconnecting after failures) and creates the group if needed.
    pub async fn connect(
        config: &ClusterConfig,
        url: &str,
        node: &str,
    ) -> Result<Queue, QueueError> {
        if url.starts_with("rediss://") {
            // redis uses rustls' process-wide provider; pcapd's is ring.
            let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        }
        let client = redis::Client::open(url).map_err(failed("url"))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_with_config(client.clone(), manager.clone())
            .await
            .map_err(failed("connect"))?;
        let blocking = ConnectionManager::new_with_config(client, manager)
            .await
            .map_err(failed("connect"))?;
        let queue = Queue {
            conn,
            blocking,
            stream: config.stream.clone(),
            group: config.group.clone(),
            node: node.to_owned(),
            nodes_key: format!("{}:nodes", config.stream),
            dead_key: format!("{}:dead", config.stream),
            publish: redis::Script::new(
                r"if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
                    return redis.call('XADD', KEYS[1], '*', 'job', ARGV[1])
                  end
                  return false",
            ),
        };
        queue.ensure_group().await?;
        Ok(queue)
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// `XGROUP CREATE … 0 MKSTREAM`: entries added before any host started are delivered too.
    pub async fn ensure_group(&self) -> Result<(), QueueError> {
        let result: Result<Value, RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.stream)
            .arg(&self.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn())
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(failed("XGROUP CREATE")(e)),
        }
    }

    /// Adds the job's entry, once per job.
    pub async fn publish(&self, job_id: &JobId) -> Result<(), QueueError> {
        let marker = format!("{}:published:{}", self.stream, job_id.as_str());
        let _: Value = self
            .publish
            .key(&self.stream)
            .key(marker)
            .arg(job_id.as_str())
            .arg(PUBLISHED_TTL_SECS)
            .invoke_async(&mut self.conn())
            .await
            .map_err(failed("publish (XADD)"))?;
        Ok(())
    }

    /// Up to `count` entries no host has read, waiting up to `block` for one.
    pub async fn read_new(&self, count: usize, block: Duration) -> Result<Vec<Entry>, QueueError> {
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&self.group)
            .arg(&self.node)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(">")
            .query_async(&mut self.blocking.clone())
            .await
            .map_err(failed("XREADGROUP"))?;
        Ok(entries(reply, 1))
    }

    /// The entries this host was delivered and has not acknowledged (after a restart).
    pub async fn read_own_pending(&self) -> Result<Vec<Entry>, QueueError> {
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&self.group)
            .arg(&self.node)
            .arg("COUNT")
            .arg(10_000)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg("0")
            .query_async(&mut self.conn())
            .await
            .map_err(failed("XREADGROUP 0"))?;
        let mut found = entries(reply, 0);
        self.count_deliveries(&mut found).await?;
        Ok(found)
    }

    /// Resets the idle time of `ids` that this host still owns (`XCLAIM … JUSTID` does not
    /// count a delivery); returns the ids it no longer owns.
    pub async fn heartbeat(&self, ids: &[String]) -> Result<Vec<String>, QueueError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let pending = self.own_pending().await?;
        let owned: std::collections::HashSet<&str> =
            pending.ids.iter().map(|p| p.id.as_str()).collect();
        let (mine, lost): (Vec<String>, Vec<String>) = ids
            .iter()
            .cloned()
            .partition(|id| owned.contains(id.as_str()));
        if !mine.is_empty() {
            let _: Value = redis::cmd("XCLAIM")
                .arg(&self.stream)
                .arg(&self.group)
                .arg(&self.node)
                .arg(0)
                .arg(&mine)
                .arg("JUSTID")
                .query_async(&mut self.conn())
                .await
                .map_err(failed("XCLAIM"))?;
        }
        Ok(lost)
    }

    /// Takes up to `count` entries idle for `min_idle` (their host stopped heartbeating).
    pub async fn claim_abandoned(
        &self,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Entry>, QueueError> {
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(&self.node)
            .arg(min_idle.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn())
            .await
            .map_err(failed("XAUTOCLAIM"))?;
        let mut claimed: Vec<Entry> = reply
            .claimed
            .into_iter()
            .map(|id| Entry {
                job_id: job_of(&id.map),
                id: id.id,
                deliveries: 0,
            })
            .collect();
        self.count_deliveries(&mut claimed).await?;
        // Entries whose data was deleted (XDEL raced): nothing to run; drop them.
        for id in reply.deleted_ids {
            self.ack(&id).await?;
        }
        Ok(claimed)
    }

    /// The entries delivered to this host and not acknowledged, with their delivery counts.
    async fn own_pending(&self) -> Result<StreamPendingCountReply, QueueError> {
        redis::cmd("XPENDING")
            .arg(&self.stream)
            .arg(&self.group)
            .arg("-")
            .arg("+")
            .arg(100_000)
            .arg(&self.node)
            .query_async(&mut self.conn())
            .await
            .map_err(failed("XPENDING"))
    }

    /// Fills in how often each entry was delivered: one `XPENDING` of this host's entries
    /// (claimed or re-read ones are all its own now).
    async fn count_deliveries(&self, entries: &mut [Entry]) -> Result<(), QueueError> {
        if entries.is_empty() {
            return Ok(());
        }
        let pending = self.own_pending().await?;
        let counts: HashMap<&str, usize> = pending
            .ids
            .iter()
            .map(|p| (p.id.as_str(), p.times_delivered))
            .collect();
        for entry in entries {
            let count = counts.get(entry.id.as_str()).copied().unwrap_or(1);
            entry.deliveries = u32::try_from(count).unwrap_or(u32::MAX).max(1);
        }
        Ok(())
    }

    /// Acknowledges and deletes an entry whose job's terminal record is durable.
    pub async fn ack(&self, id: &str) -> Result<(), QueueError> {
        let mut pipe = redis::pipe();
        pipe.cmd("XACK")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(id)
            .ignore()
            .cmd("XDEL")
            .arg(&self.stream)
            .arg(id)
            .ignore();
        let _: () = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(failed("XACK"))?;
        Ok(())
    }

    /// Records a dead-lettered job for `pcapd cluster` (the last 1000 are kept).
    pub async fn dead_letter(&self, job_id: &JobId, reason: &str) -> Result<(), QueueError> {
        let item = json!({"job_id": job_id.as_str(), "reason": reason, "by": self.node,
                          "at": crate::output::syslog::now_secs()});
        let mut pipe = redis::pipe();
        pipe.cmd("RPUSH")
            .arg(&self.dead_key)
            .arg(item.to_string())
            .ignore()
            .cmd("LTRIM")
            .arg(&self.dead_key)
            .arg(-1000)
            .arg(-1)
            .ignore();
        let _: () = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(failed("RPUSH"))?;
        Ok(())
    }

    /// This host's heartbeat for `pcapd cluster`.
    pub async fn beat(&self, pool: usize, running: usize) -> Result<(), QueueError> {
        let info =
            json!({"at": crate::output::syslog::now_secs(), "pool": pool, "running": running});
        let _: () = redis::cmd("HSET")
            .arg(&self.nodes_key)
            .arg(&self.node)
            .arg(info.to_string())
            .query_async(&mut self.conn())
            .await
            .map_err(failed("HSET"))?;
        Ok(())
    }

    pub async fn status(&self) -> Result<QueueStatus, QueueError> {
        let mut conn = self.conn();
        let length: u64 = redis::cmd("XLEN")
            .arg(&self.stream)
            .query_async(&mut conn)
            .await
            .map_err(failed("XLEN"))?;
        let groups: Vec<HashMap<String, Value>> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&self.stream)
            .query_async(&mut conn)
            .await
            .map_err(failed("XINFO GROUPS"))?;
        let waiting = groups
            .iter()
            .find(|g| matches!(g.get("name"), Some(v) if redis::from_redis_value_ref::<String>(v).ok().as_deref() == Some(self.group.as_str())))
            .and_then(|g| g.get("lag"))
            .and_then(|v| redis::from_redis_value_ref::<u64>(v).ok())
            .unwrap_or(0);
        let summary: Value = redis::cmd("XPENDING")
            .arg(&self.stream)
            .arg(&self.group)
            .query_async(&mut conn)
            .await
            .map_err(failed("XPENDING"))?;
        let mut pending = HashMap::new();
        if let Value::Array(parts) = summary {
            if let Some(Value::Array(consumers)) = parts.get(3) {
                for consumer in consumers {
                    if let Value::Array(pair) = consumer {
                        let name = pair
                            .first()
                            .and_then(|v| redis::from_redis_value_ref::<String>(v).ok());
                        let count = pair
                            .get(1)
                            .and_then(|v| redis::from_redis_value_ref::<u64>(v).ok());
                        if let (Some(name), Some(count)) = (name, count) {
                            pending.insert(name, count);
                        }
                    }
                }
            }
        }
        let raw_nodes: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&self.nodes_key)
            .query_async(&mut conn)
            .await
            .map_err(failed("HGETALL"))?;
        let nodes = raw_nodes
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    serde_json::from_str(&v).unwrap_or(serde_json::Value::Null),
                )
            })
            .collect();
        let dead: Vec<String> = redis::cmd("LRANGE")
            .arg(&self.dead_key)
            .arg(-100)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .map_err(failed("LRANGE"))?;
        Ok(QueueStatus {
            length,
            waiting,
            pending,
            nodes,
            dead_lettered: dead
                .iter()
                .filter_map(|d| serde_json::from_str(d).ok())
                .collect(),
        })
    }
}

fn job_of(map: &HashMap<String, Value>) -> Option<JobId> {
    let raw: String = redis::from_redis_value_ref(map.get("job")?).ok()?;
    JobId::parse(&raw).ok()
}

fn entries(reply: Option<StreamReadReply>, deliveries: u32) -> Vec<Entry> {
    reply
        .map(|r| r.keys)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|key| key.ids)
        .map(|id| Entry {
            job_id: job_of(&id.map),
            id: id.id,
            deliveries,
        })
        .collect()
}
