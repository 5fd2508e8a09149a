//! The pool's shared state: the bounded FIFO queue, the slot table and the counters, behind
//! one mutex that is never held across an await.
//!
//! Invariant: a job is in exactly one place: the queue, one slot's `job`, or settled (its
//! `Finished` event sent) or in `unfinished` at shutdown. A burp query is in the queue or
//! with one slot until its reply is sent (or its asker stopped waiting).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use super::messages::{QueuedJob, QueuedQuery, SlotCommand, Work};
use super::{
    Admission, CancelOutcome, ChildDialect, JobOutcome, PauseReason, PoolEvent, PoolSettings,
    PoolStatus, QueryCounters, QueryOutcome, Rejected, SlotState, SlotStatus,
};
use crate::config::WorkerConfig;
use crate::jobs::JobId;
use crate::protocol::burp::BurpVersion;

pub(super) struct SlotEntry {
    tx: mpsc::UnboundedSender<SlotCommand>,
    status: SlotStatus,
    /// Shrunk away: leave once the current job (if any) is settled.
    retiring: bool,
    /// The actor decided to leave; the entry goes when its child is stopped.
    leaving: bool,
    /// Sent a `Wake` for queued work it has not looked at yet.
    woken: bool,
    /// Since when it has been idle: work goes to the slot idle longest, so children take
    /// turns (a burp child asked again at once answers slower than a rested one).
    idle_since: Option<std::time::Instant>,
}

#[derive(Default)]
struct Counters {
    accepted: u64,
    rejected: u64,
    timed_out: u64,
    crashed: u64,
    max_queue_seen: usize,
    queries: QueryCounters,
}

pub(super) struct PoolState {
    worker: Arc<WorkerConfig>,
    max_queue: usize,
    queue: VecDeque<Work>,
    slots: BTreeMap<usize, SlotEntry>,
    shutting_down: bool,
    /// Dispatch held back while the job store cannot record results.
    /// Bits of the [`PauseReason`]s in force; work is handed out only at zero.
    paused: u8,
    counters: Counters,
    unfinished: Vec<JobId>,
}

impl PoolState {
    /// The one place a full queue is decided: new work is refused once `max_queue` items
    /// wait; recovered jobs always enter.
    fn room_for(&self, admission: Admission) -> Result<(), Rejected> {
        match admission {
            Admission::New if self.queue.len() >= self.max_queue => Err(Rejected::QueueFull {
                max: self.max_queue,
            }),
            _ => Ok(()),
        }
    }
}

pub(super) struct Shared {
    pub program: std::path::PathBuf,
    pub args: Vec<String>,
    pub dialect: ChildDialect,
    /// The server version the last burp child to become ready reported.
    burp_server_version: Mutex<Option<BurpVersion>>,
    pub tasks: TaskTracker,
    events: mpsc::UnboundedSender<PoolEvent>,
    state: Mutex<PoolState>,
}

fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Shared {
    pub fn new(settings: PoolSettings, events: mpsc::UnboundedSender<PoolEvent>) -> Shared {
        Shared {
            program: settings.program,
            args: settings.args,
            dialect: settings.dialect,
            burp_server_version: Mutex::new(None),
            tasks: TaskTracker::new(),
            events,
            state: Mutex::new(PoolState {
                worker: Arc::new(settings.worker),
                max_queue: settings.max_queue,
                queue: VecDeque::new(),
                slots: BTreeMap::new(),
                shutting_down: false,
                paused: 0,
                counters: Counters::default(),
                unfinished: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn worker(&self) -> Arc<WorkerConfig> {
        self.lock().worker.clone()
    }

    pub fn emit(&self, event: PoolEvent) {
        // The daemon dropping its receiver only means nobody listens any more.
        let _ = self.events.send(event);
    }

    /// Adds a slot entry; its actor takes commands from the receiver.
    pub fn add_slot(&self, index: usize) -> mpsc::UnboundedReceiver<SlotCommand> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().slots.insert(index, new_entry(index, tx));
        rx
    }

    /// Queues work (FIFO), or refuses it at once: a full queue (for new work) or a stopping
    /// pool.
    pub fn submit(&self, work: Work, admission: Admission) -> Result<(), Rejected> {
        let wanted = match (&work, &self.dialect) {
            (Work::Job(_), ChildDialect::Worker) | (Work::Query(_), ChildDialect::Burp(_)) => None,
            (Work::Job(_), ChildDialect::Burp(_)) => Some("jobs"),
            (Work::Query(_), ChildDialect::Worker) => Some("burp queries"),
        };
        if let Some(what) = wanted {
            return Err(Rejected::WrongDialect { what });
        }
        let mut state = self.lock();
        if state.shutting_down {
            state.counters.rejected += 1;
            return Err(Rejected::ShuttingDown);
        }
        if let Err(full) = state.room_for(admission) {
            state.counters.rejected += 1;
            return Err(full);
        }
        match &work {
            Work::Job(_) => state.counters.accepted += 1,
            Work::Query(_) => state.counters.queries.received += 1,
        }
        state.queue.push_back(work);
        state.counters.max_queue_seen = state.counters.max_queue_seen.max(state.queue.len());
        wake_idle(&mut state);
        Ok(())
    }

    /// `submit`'s refusal for new work, without queuing anything.
    pub fn check_room(&self) -> Result<(), Rejected> {
        let state = self.lock();
        if state.shutting_down {
            return Err(Rejected::ShuttingDown);
        }
        state.room_for(Admission::New)
    }

    /// A crashed job gets another attempt before anything queued after it.
    pub fn requeue_front(&self, job: QueuedJob) {
        let mut state = self.lock();
        if state.shutting_down {
            state.unfinished.push(job.spec.job_id);
            return;
        }
        state.queue.push_front(Work::Job(job));
        wake_idle(&mut state);
    }

    /// The oldest work for slot `index`, marking it busy; or marks it idle. Queries whose
    /// asker stopped waiting are dropped on the way.
    pub fn take_work(&self, index: usize) -> Option<Work> {
        let mut state = self.lock();
        let mut work = None;
        while !state.shutting_down && state.paused == 0 {
            match state.queue.pop_front() {
                Some(Work::Query(query)) if query.reply.is_closed() => {
                    state.counters.queries.abandoned += 1;
                }
                next => {
                    work = next;
                    break;
                }
            }
        }
        if let Some(entry) = state.slots.get_mut(&index) {
            entry.woken = false;
            match &work {
                Some(work) => {
                    entry.status.state = SlotState::Busy;
                    entry.status.job = work.job_id().cloned();
                    entry.idle_since = None;
                }
                None => {
                    if entry.status.state != SlotState::Idle {
                        entry.idle_since = Some(std::time::Instant::now());
                    }
                    entry.status.state = SlotState::Idle;
                    entry.status.job = None;
                }
            }
        }
        work
    }

    pub fn set_paused(&self, reason: u8, paused: bool) {
        let mut state = self.lock();
        if paused {
            state.paused |= reason;
        } else {
            state.paused &= !reason;
            if state.paused == 0 {
                wake_idle(&mut state);
            }
        }
    }

    /// A burp child became ready: remember the server version it reported.
    pub fn burp_child_ready(&self, server_version: Option<BurpVersion>) {
        if server_version.is_some() {
            *self
                .burp_server_version
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = server_version;
        }
    }

    pub fn burp_server_version(&self) -> Option<BurpVersion> {
        *self
            .burp_server_version
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Answers a query and counts how it went; slot `index` is free again.
    pub fn answer_query(&self, index: usize, query: QueuedQuery, outcome: QueryOutcome) {
        {
            let mut state = self.lock();
            let counters = &mut state.counters.queries;
            match &outcome {
                QueryOutcome::Answered(crate::protocol::burp::QueryAnswer::Document(_)) => {
                    counters.answered += 1
                }
                QueryOutcome::Answered(crate::protocol::burp::QueryAnswer::Warning(_)) => {
                    counters.warnings += 1
                }
                QueryOutcome::NoAnswer { .. } => counters.failed += 1,
            }
            if let Some(entry) = state.slots.get_mut(&index) {
                entry.status.jobs_done += 1;
            }
        }
        // The asker may have given up; nobody is left to tell.
        let _ = query.reply.send(outcome);
    }

    /// Whether slot `index` must stop (shutdown or shrink); if so it is marked leaving, so
    /// a later grow starts a new slot instead of counting on this one.
    pub fn should_leave(&self, index: usize) -> bool {
        let mut state = self.lock();
        let shutting_down = state.shutting_down;
        match state.slots.get_mut(&index) {
            Some(entry) if shutting_down || entry.retiring => {
                entry.leaving = true;
                entry.status.state = SlotState::Stopping;
                if std::mem::take(&mut entry.woken) {
                    wake_idle(&mut state);
                }
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    pub fn remove_slot(&self, index: usize) {
        self.lock().slots.remove(&index);
    }

    pub fn set_state(&self, index: usize, new_state: SlotState) {
        let mut state = self.lock();
        if let Some(entry) = state.slots.get_mut(&index) {
            entry.status.state = new_state;
            // A slot that restarts or backs off hands its wake-up to another idle slot.
            if std::mem::take(&mut entry.woken) {
                wake_idle(&mut state);
            }
        }
    }

    /// A new child runs in slot `index`.
    pub fn child_started(&self, index: usize, pid: u32, started: SystemTime, restart: bool) {
        if let Some(entry) = self.lock().slots.get_mut(&index) {
            entry.status.pid = Some(pid);
            entry.status.started = Some(unix_secs(started));
            if restart {
                entry.status.restarts += 1;
            }
        }
    }

    pub fn child_gone(&self, index: usize) {
        if let Some(entry) = self.lock().slots.get_mut(&index) {
            entry.status.pid = None;
            entry.status.started = None;
        }
    }

    /// Settles the job slot `index` holds and sends its `Finished` event.
    pub fn settle(&self, index: usize, job_id: &JobId, outcome: JobOutcome) {
        {
            let mut state = self.lock();
            let crashed = matches!(outcome, JobOutcome::Crashed { .. });
            match outcome {
                JobOutcome::TimedOut { .. } => state.counters.timed_out += 1,
                JobOutcome::Crashed { .. } => state.counters.crashed += 1,
                _ => {}
            }
            if let Some(entry) = state.slots.get_mut(&index) {
                entry.status.crashes += u64::from(crashed);
                entry.status.jobs_done += 1;
                entry.status.job = None;
            }
        }
        self.emit(PoolEvent::Finished {
            job_id: job_id.clone(),
            outcome,
        });
    }

    /// A crash that will be retried still counts as a crash.
    pub fn count_retried_crash(&self, index: usize) {
        let mut state = self.lock();
        state.counters.crashed += 1;
        if let Some(entry) = state.slots.get_mut(&index) {
            entry.status.crashes += 1;
            entry.status.job = None;
        }
    }

    /// A job stopped by shutdown: handed back to the caller, no event.
    pub fn give_back(&self, index: usize, job_id: &JobId) {
        let mut state = self.lock();
        state.unfinished.push(job_id.clone());
        if let Some(entry) = state.slots.get_mut(&index) {
            entry.status.job = None;
        }
    }

    /// `Ok` when settled here (dequeued), `Err(Some(slot))` when a slot runs it.
    pub fn cancel_queued_or_find(
        &self,
        job_id: &JobId,
    ) -> Result<CancelOutcome, Option<mpsc::UnboundedSender<SlotCommand>>> {
        let mut state = self.lock();
        if let Some(position) = state.queue.iter().position(|w| w.job_id() == Some(job_id)) {
            state.queue.remove(position);
            drop(state);
            self.emit(PoolEvent::Finished {
                job_id: job_id.clone(),
                outcome: JobOutcome::Cancelled,
            });
            return Ok(CancelOutcome::Dequeued);
        }
        let slot = state
            .slots
            .values()
            .find(|entry| entry.status.job.as_ref() == Some(job_id))
            .map(|entry| entry.tx.clone());
        Err(slot)
    }

    pub fn status(&self) -> PoolStatus {
        let state = self.lock();
        let slots: Vec<SlotStatus> = state.slots.values().map(|e| e.status.clone()).collect();
        let degraded = slots.iter().any(|s| s.state == SlotState::Backoff);
        PoolStatus {
            slots,
            queue_len: state.queue.len(),
            max_queue_seen: state.counters.max_queue_seen,
            accepted: state.counters.accepted,
            rejected: state.counters.rejected,
            timed_out: state.counters.timed_out,
            crashed: state.counters.crashed,
            queries: state.counters.queries,
            degraded,
            dispatch_paused: PauseReason::ALL
                .into_iter()
                .filter(|reason| state.paused & reason.bit() != 0)
                .collect(),
        }
    }

    /// New size and worker settings; returns the indexes of the slots to start.
    pub fn reconfigure(&self, size: usize, worker: WorkerConfig) -> Vec<usize> {
        let mut to_spawn = Vec::new();
        {
            let mut state = self.lock();
            if state.shutting_down {
                return to_spawn;
            }
            state.worker = Arc::new(worker);
            let mut active = state.slots.values().filter(|e| !e.retiring).count();
            // Grow: take back slots being retired but not yet leaving, then add new ones.
            for entry in state.slots.values_mut() {
                if active < size && entry.retiring && !entry.leaving {
                    entry.retiring = false;
                    active += 1;
                }
            }
            let mut index = 0;
            while active < size {
                if !state.slots.contains_key(&index) && !to_spawn.contains(&index) {
                    to_spawn.push(index);
                    active += 1;
                }
                index += 1;
            }
            // Shrink: idle (or not yet working) slots first, busy ones after their job;
            // highest numbers first within each group.
            if active > size {
                let mut candidates: Vec<(bool, usize)> = state
                    .slots
                    .iter()
                    .filter(|(_, e)| !e.retiring)
                    .map(|(i, e)| (e.status.state == SlotState::Busy, *i))
                    .collect();
                candidates.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
                for (_, index) in candidates.into_iter().take(active - size) {
                    if let Some(entry) = state.slots.get_mut(&index) {
                        entry.retiring = true;
                    }
                }
            }
            for entry in state.slots.values() {
                let _ = entry.tx.send(SlotCommand::Wake);
            }
        }
        to_spawn
    }

    pub fn begin_shutdown(&self) {
        let mut state = self.lock();
        state.shutting_down = true;
        // Queued queries are dropped: their askers get "shutting down" when the reply
        // channel closes. Queued jobs are handed back to be requeued on disk.
        let queued: Vec<JobId> = state
            .queue
            .drain(..)
            .filter_map(|w| match w {
                Work::Job(job) => Some(job.spec.job_id),
                Work::Query(_) => None,
            })
            .collect();
        state.unfinished.extend(queued);
        for entry in state.slots.values() {
            let _ = entry.tx.send(SlotCommand::Wake);
        }
        self.tasks.close();
    }

    pub fn abort_all(&self) {
        let state = self.lock();
        for entry in state.slots.values() {
            let _ = entry.tx.send(SlotCommand::Abort);
        }
    }

    pub fn take_unfinished(&self) -> Vec<JobId> {
        std::mem::take(&mut self.lock().unfinished)
    }
}

fn new_entry(index: usize, tx: mpsc::UnboundedSender<SlotCommand>) -> SlotEntry {
    SlotEntry {
        tx,
        status: SlotStatus {
            slot: index,
            pid: None,
            state: SlotState::Starting,
            job: None,
            jobs_done: 0,
            restarts: 0,
            crashes: 0,
            started: None,
        },
        retiring: false,
        leaving: false,
        woken: false,
        idle_since: None,
    }
}

/// Wakes as many idle slots as there is queued work nobody was woken for, longest idle
/// first. (Waking every idle slot for each item would make all of them race for it, and
/// the same one would win every time.)
fn wake_idle(state: &mut PoolState) {
    if state.paused != 0 || state.shutting_down {
        return;
    }
    let woken = state.slots.values().filter(|e| e.woken).count();
    let unclaimed = state.queue.len().saturating_sub(woken);
    if unclaimed == 0 {
        return;
    }
    let mut idle: Vec<&mut SlotEntry> = state
        .slots
        .values_mut()
        .filter(|e| e.status.state == SlotState::Idle && !e.woken)
        .collect();
    idle.sort_by_key(|e| e.idle_since);
    for entry in idle.into_iter().take(unclaimed) {
        entry.woken = true;
        let _ = entry.tx.send(SlotCommand::Wake);
    }
}
