//! One slot: an actor task that owns one child at a time.
//!
//! Life of a slot: start a child and wait until it is ready (a worker's ready line; a burp
//! child's handshake); then, while the child is idle, take the oldest queued work, send it,
//! and follow the child's lines until its one answer, a crash, a protocol breach, the
//! deadline or a cancel. Anything but a clean answer ends the child (its whole process group)
//! and the slot starts a new one, after a backoff when the restart policy says so. Because a
//! replaced child's stdout is dropped with it, a late answer can never be read as the answer
//! to the next job or query; job ids and burp's response markers are checked as well.

use crate::jobs::JobId;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::child::{self, ChildExit, ChildSpec, StdoutEvent, WorkerProcess};
use super::messages::{QueuedJob, SlotCommand, Work};
use super::restart::{Decision, Failure, RestartPolicy};
use super::state::Shared;
use super::{
    CancelOutcome, ChildDialect, JobOutcome, PoolEvent, QueryOutcome, SlotState, BURP_MAX_LINE,
};
use crate::config::WorkerConfig;
use crate::exit::EXIT_CANNOT_START;
use crate::protocol::burp::{BurpLine, Handshake, HandshakeStep, SessionInfo};
use crate::protocol::worker::{excerpt, JobRequest, WorkerMessage};

mod query;

use query::run_query;

const GIB: u128 = 1 << 30;

/// Why a child's life ended, as the slot sees it.
enum ChildEnd {
    /// Unplanned (crash, breach, timeout, failed start): counts against restart intensity.
    Failed { failure: Failure, message: String },
    /// Planned replacement (recycling, cancel): start a new child at once.
    Replace,
    /// The slot leaves (shutdown, shrink).
    Leave,
}

/// The running child and its stdout lines.
struct Running {
    process: WorkerProcess,
    stdout: mpsc::Receiver<StdoutEvent>,
    session: Session,
    /// Jobs (or queries) answered by this child, for `max_jobs` recycling.
    jobs_answered: u64,
}

/// What a ready child speaks.
enum Session {
    Worker,
    Burp(SessionInfo),
}

/// Adds slot `index` to the table and starts its actor; `first_start` hears when its first
/// child is ready (or failed to start).
pub(super) fn spawn(shared: &Arc<Shared>, index: usize, first_start: Option<oneshot::Sender<()>>) {
    let commands = shared.add_slot(index);
    shared
        .tasks
        .spawn(run_slot(shared.clone(), index, commands, first_start));
}

async fn run_slot(
    shared: Arc<Shared>,
    index: usize,
    mut commands: mpsc::UnboundedReceiver<SlotCommand>,
    mut first_start: Option<oneshot::Sender<()>>,
) {
    let config = shared.worker();
    let mut policy = RestartPolicy::new(
        config.max_restarts,
        config.restart_window,
        config.backoff_max,
    );
    let mut children_started: u64 = 0;
    loop {
        if shared.should_leave(index) {
            break;
        }
        let config = shared.worker();
        policy.reconfigure(
            config.max_restarts,
            config.restart_window,
            config.backoff_max,
        );
        shared.set_state(index, SlotState::Starting);
        let started = start_child(&shared, index, &config, &mut commands, children_started).await;
        children_started += 1;
        if let Some(tx) = first_start.take() {
            let _ = tx.send(());
        }
        let end = match started {
            Ok(mut running) => {
                let end = serve_jobs(&shared, index, &mut running, &mut commands).await;
                let grace = shared.worker().grace;
                match end {
                    // Breaches and crashes already stopped the child.
                    ChildEnd::Failed { .. } => running.process.reap().await,
                    ChildEnd::Replace | ChildEnd::Leave => running.process.retire(grace).await,
                };
                end
            }
            Err(end) => end,
        };
        shared.child_gone(index);
        match end {
            ChildEnd::Leave => break,
            ChildEnd::Replace => {}
            ChildEnd::Failed { failure, message } => {
                tracing::warn!(slot = index, "child replaced: {message}");
                if let Decision::BackOff(delay) =
                    policy.record_failure(Instant::now().into_std(), failure)
                {
                    tracing::warn!(slot = index, ?delay, "slot backing off");
                    shared.set_state(index, SlotState::Backoff);
                    if !back_off(&shared, index, delay, &mut commands).await {
                        break;
                    }
                }
            }
        }
    }
    shared.remove_slot(index);
}

/// Waits out a backoff; false when the slot must leave instead.
async fn back_off(
    shared: &Shared,
    index: usize,
    delay: Duration,
    commands: &mut mpsc::UnboundedReceiver<SlotCommand>,
) -> bool {
    let until = Instant::now() + delay;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return true,
            command = commands.recv() => match control(command, None) {
                Some(Control::Wake) if shared.should_leave(index) => return false,
                Some(Control::Abort) => return false,
                _ => {}
            },
        }
    }
}

fn child_spec(shared: &Shared, index: usize, config: &WorkerConfig) -> ChildSpec {
    ChildSpec {
        program: shared.program.clone(),
        args: shared.args.clone(),
        env_allow: config.env.clone(),
        user: config.user.clone(),
        group: config.group.clone(),
        memory_limit: config.memory_limit,
        max_line: match shared.dialect {
            ChildDialect::Worker => config.max_line,
            ChildDialect::Burp(_) => config.max_line.max(BURP_MAX_LINE),
        },
        // A started line must be finished within the stop grace period.
        line_deadline: config.grace,
        slot: index,
    }
}

fn start_failure(shared: &Shared, exit: ChildExit) -> ChildEnd {
    let child = child_name(shared);
    if shared.dialect == ChildDialect::Worker
        && exit
            == (ChildExit::Exited {
                code: EXIT_CANNOT_START,
            })
    {
        ChildEnd::Failed {
            failure: Failure::CannotStart,
            message: format!(
                "{child} cannot start (exit code {EXIT_CANNOT_START}, see its stderr)"
            ),
        }
    } else {
        ChildEnd::Failed {
            failure: Failure::Transient,
            message: format!("{child} {} before it was ready", exit.describe()),
        }
    }
}

/// How children of this pool are called in messages.
fn child_name(shared: &Shared) -> &'static str {
    match shared.dialect {
        ChildDialect::Worker => "worker",
        ChildDialect::Burp(_) => "burp child",
    }
}

/// How a new child becomes ready, per dialect.
enum Readiness {
    /// A worker says `{"ready": …}`.
    Worker,
    /// A burp child goes through the handshake (`protocol::burp`).
    Burp(Handshake),
}

enum ReadyStep {
    Continue,
    Send(&'static str),
    Ready(Session),
}

impl Readiness {
    fn for_dialect(dialect: &ChildDialect) -> Readiness {
        match dialect {
            ChildDialect::Worker => Readiness::Worker,
            ChildDialect::Burp(_) => Readiness::Burp(Handshake::new()),
        }
    }

    /// Feeds one line; `Err` describes a breach.
    fn on_line(&mut self, index: usize, pid: u32, line: &[u8]) -> Result<ReadyStep, String> {
        match self {
            Readiness::Worker => match WorkerMessage::parse(line) {
                Ok(WorkerMessage::Ready(ready)) => {
                    tracing::info!(slot = index, pid, version = %ready.version,
                        analyzer = %ready.analyzer, "worker ready");
                    Ok(ReadyStep::Ready(Session::Worker))
                }
                Ok(other) => Err(format!(
                    "expected a ready line, got {}",
                    excerpt(other.to_line().as_bytes())
                )),
                Err(e) => Err(e.to_string()),
            },
            Readiness::Burp(handshake) => match handshake.on_line(line) {
                Ok(HandshakeStep::Continue) => Ok(ReadyStep::Continue),
                Ok(HandshakeStep::Send(command)) => Ok(ReadyStep::Send(command)),
                Ok(HandshakeStep::Ready(info)) => {
                    tracing::info!(slot = index, pid, server_version = ?info.server_version.map(|v| v.to_string()),
                        markers = info.markers, "burp child ready");
                    Ok(ReadyStep::Ready(Session::Burp(info)))
                }
                Err(e) => Err(e.to_string()),
            },
        }
    }
}

/// Spawns a child and waits until it is ready, within `start_timeout`.
async fn start_child(
    shared: &Shared,
    index: usize,
    config: &WorkerConfig,
    commands: &mut mpsc::UnboundedReceiver<SlotCommand>,
    children_started: u64,
) -> Result<Running, ChildEnd> {
    let (process, mut stdout) = match child::spawn(&child_spec(shared, index, config)) {
        Ok(spawned) => spawned,
        Err(e) => {
            let failure = if e.is_permanent() {
                Failure::CannotStart
            } else {
                Failure::Transient
            };
            return Err(ChildEnd::Failed {
                failure,
                message: e.to_string(),
            });
        }
    };
    let mut process = process;
    shared.child_started(index, process.pid, process.started, children_started > 0);
    let deadline = Instant::now() + config.start_timeout;
    let grace = config.grace;
    let mut readiness = Readiness::for_dialect(&shared.dialect);
    loop {
        tokio::select! {
            biased;
            event = stdout.recv() => {
                let breach = match event {
                    Some(StdoutEvent::Line(line)) => match readiness.on_line(index, process.pid, &line) {
                        Ok(ReadyStep::Continue) => continue,
                        Ok(ReadyStep::Send(command)) => {
                            // A refused write means the child is going; its exit says why.
                            let _ = process.send_line(command).await;
                            continue;
                        }
                        Ok(ReadyStep::Ready(session)) => {
                            if let Session::Burp(info) = &session {
                                shared.burp_child_ready(info.server_version);
                            }
                            return Ok(Running { process, stdout, session, jobs_answered: 0 });
                        }
                        Err(breach) => breach,
                    },
                    Some(StdoutEvent::Eof { .. }) | None => {
                        let exit = exit_after_eof(&mut process, grace).await;
                        process.reap().await;
                        return Err(start_failure(shared, exit));
                    }
                    Some(other) => describe_breach(&other),
                };
                process.stop(grace).await;
                return Err(ChildEnd::Failed {
                    failure: Failure::Transient,
                    message: format!("protocol error at start: {breach}"),
                });
            }
            exit = process.wait() => {
                process.reap().await;
                return Err(start_failure(shared, exit));
            }
            _ = tokio::time::sleep_until(deadline) => {
                process.stop(grace).await;
                return Err(ChildEnd::Failed {
                    failure: Failure::Transient,
                    message: format!("{} not ready within start_timeout ({:?})",
                        child_name(shared), config.start_timeout),
                });
            }
            command = commands.recv() => match control(command, None) {
                Some(Control::Wake) if !shared.should_leave(index) => {}
                Some(Control::Wake | Control::Abort) => {
                    process.stop(grace).await;
                    return Err(ChildEnd::Leave);
                }
                _ => {}
            },
        }
    }
}

/// A command as the slot acts on it, whatever the slot is busy with.
pub(super) enum Control {
    /// Look again (queued work, a shrink, shutdown).
    Wake,
    /// Cancel the job the slot runs now.
    Cancel(oneshot::Sender<CancelOutcome>),
    /// Stop the child now and leave (shutdown grace is over, or the pool is gone).
    Abort,
}

/// The one handler of slot commands for every `select!` of a slot: a cancel of anything but
/// `current` (the job running now, if any) is answered `Unknown` here and needs nothing
/// more (`None`).
pub(super) fn control(command: Option<SlotCommand>, current: Option<&JobId>) -> Option<Control> {
    match command {
        Some(SlotCommand::Wake) => Some(Control::Wake),
        Some(SlotCommand::Cancel { job_id, reply }) if current == Some(&job_id) => {
            Some(Control::Cancel(reply))
        }
        Some(SlotCommand::Cancel { reply, .. }) => {
            let _ = reply.send(CancelOutcome::Unknown);
            None
        }
        Some(SlotCommand::Abort) | None => Some(Control::Abort),
    }
}

/// The child closed its stdout: give it `grace` to exit, then stop its group.
async fn exit_after_eof(process: &mut WorkerProcess, grace: Duration) -> ChildExit {
    match tokio::time::timeout(grace, process.wait()).await {
        Ok(exit) => exit,
        Err(_) => {
            process.signal_group(nix::sys::signal::Signal::SIGKILL);
            process.wait().await
        }
    }
}

fn describe_breach(event: &StdoutEvent) -> String {
    match event {
        StdoutEvent::Line(line) => format!("unexpected line {}", excerpt(line)),
        StdoutEvent::TooLong { limit } => format!("line longer than max_line ({limit} bytes)"),
        StdoutEvent::Stalled { partial, after } => format!(
            "wrote half a line ({} bytes: {}) and stalled for {after:?}",
            partial.len(),
            excerpt(partial)
        ),
        StdoutEvent::Eof { partial } => {
            format!("closed its output (unterminated: {})", excerpt(partial))
        }
        StdoutEvent::ReadError(e) => format!("reading its output failed: {e}"),
    }
}

/// Runs jobs (or queries) on a ready child until it must be replaced or the slot leaves.
async fn serve_jobs(
    shared: &Shared,
    index: usize,
    running: &mut Running,
    commands: &mut mpsc::UnboundedReceiver<SlotCommand>,
) -> ChildEnd {
    loop {
        if shared.should_leave(index) {
            return ChildEnd::Leave;
        }
        let config = shared.worker();
        // Recycling happens between jobs only.
        if config.max_jobs > 0 && running.jobs_answered >= config.max_jobs {
            tracing::info!(
                slot = index,
                pid = running.process.pid,
                jobs = running.jobs_answered,
                "recycling child after max_jobs"
            );
            return ChildEnd::Replace;
        }
        // Only a child that has worked can have grown: a fresh one over the limit (a limit
        // below its start-up RSS) would otherwise be replaced for ever, running nothing.
        if config.recycle_memory > 0 && running.jobs_answered > 0 {
            if let Some(rss) = running.process.rss_bytes() {
                if rss > config.recycle_memory {
                    tracing::info!(
                        slot = index,
                        pid = running.process.pid,
                        rss,
                        "recycling child after recycle_memory"
                    );
                    return ChildEnd::Replace;
                }
            }
        }
        let end = match (shared.take_work(index), &shared.dialect) {
            (Some(Work::Job(job)), _) => {
                run_job(shared, index, running, commands, &config, job).await
            }
            (Some(Work::Query(query)), ChildDialect::Burp(dialect)) => {
                run_query(shared, index, running, commands, &config, dialect, query).await
            }
            (Some(Work::Query(query)), ChildDialect::Worker) => {
                // `Shared::submit` refuses queries for worker pools; answer rather than hang.
                shared.answer_query(
                    index,
                    query,
                    QueryOutcome::NoAnswer {
                        reason: "this pool runs pcapd workers, not burp".into(),
                    },
                );
                None
            }
            (None, _) => wait_idle(running, commands, &config).await,
        };
        if let Some(end) = end {
            return end;
        }
    }
}

/// Waits while idle for a reason to look at the queue again; `Some` when the child ended.
async fn wait_idle(
    running: &mut Running,
    commands: &mut mpsc::UnboundedReceiver<SlotCommand>,
    config: &WorkerConfig,
) -> Option<ChildEnd> {
    tokio::select! {
        biased;
        event = running.stdout.recv() => {
            let message = match event {
                // burp logs now and then on its own (a reconnect, a server message).
                Some(StdoutEvent::Line(line)) if idle_chatter(&running.session, &line) => {
                    tracing::debug!(pid = running.process.pid, "burp child: {}", excerpt(&line));
                    return None;
                }
                Some(StdoutEvent::Eof { .. }) | None => {
                    let exit = exit_after_eof(&mut running.process, config.grace).await;
                    format!("idle child {}", exit.describe())
                }
                Some(other) => {
                    running.process.stop(config.grace).await;
                    format!("protocol error while idle: {}", describe_breach(&other))
                }
            };
            Some(ChildEnd::Failed { failure: Failure::Transient, message })
        }
        exit = running.process.wait() => Some(ChildEnd::Failed {
            failure: Failure::Transient,
            message: format!("idle child {}", exit.describe()),
        }),
        command = commands.recv() => match control(command, None) {
            Some(Control::Abort) => Some(ChildEnd::Leave),
            _ => None,
        },
    }
}

/// A line an idle child may print without being out of step: a burp logline.
fn idle_chatter(session: &Session, line: &[u8]) -> bool {
    matches!(session, Session::Burp(_)) && matches!(BurpLine::parse(line), Ok(BurpLine::Logline(_)))
}

/// Per-job deadline: `timeout` plus `timeout_per_gb` per GiB of input.
pub(super) fn job_deadline(config: &WorkerConfig, input_bytes: u64) -> Duration {
    let extra_nanos = config.timeout_per_gb.as_nanos() * u128::from(input_bytes) / GIB;
    let extra = Duration::from_nanos(u64::try_from(extra_nanos).unwrap_or(u64::MAX));
    config.timeout.saturating_add(extra)
}

/// How a job ended on the child's side.
enum JobEnd {
    Answered(JobOutcome),
    Breach(String),
    Crashed(ChildExit),
    TimedOut(Duration),
    Cancelled(oneshot::Sender<CancelOutcome>),
    Aborted,
}

/// Runs one job; `None` when the child stays (it answered), `Some` when it must go.
async fn run_job(
    shared: &Shared,
    index: usize,
    running: &mut Running,
    commands: &mut mpsc::UnboundedReceiver<SlotCommand>,
    config: &WorkerConfig,
    job: QueuedJob,
) -> Option<ChildEnd> {
    let job_id = job.spec.job_id.clone();
    let allowed = job_deadline(config, job.spec.input_bytes);
    let request = JobRequest {
        job: job_id.to_string(),
        pcaps: job.spec.pcaps.clone(),
        out: job.spec.out.clone(),
        options: job.spec.options.clone(),
    };
    shared.emit(PoolEvent::Started {
        job_id: job_id.clone(),
        slot: index,
        pid: running.process.pid,
    });
    let end = match running.process.send_line(&request.to_line()).await {
        // A closed stdin means the child is gone or going; its exit says why.
        Err(_) => {
            let exit = exit_after_eof(&mut running.process, config.grace).await;
            JobEnd::Crashed(exit)
        }
        Ok(()) => follow_job(shared, running, commands, &job_id, allowed, config.grace).await,
    };
    let grace = config.grace;
    match end {
        JobEnd::Answered(outcome) => {
            running.jobs_answered += 1;
            shared.settle(index, &job_id, outcome);
            None
        }
        JobEnd::Breach(message) => {
            running.process.stop(grace).await;
            let message = format!(
                "worker pid {} broke the protocol on job {job_id}: {message}",
                running.process.pid
            );
            shared.settle(
                index,
                &job_id,
                JobOutcome::ProtocolError {
                    message: message.clone(),
                },
            );
            Some(ChildEnd::Failed {
                failure: Failure::Transient,
                message,
            })
        }
        JobEnd::Crashed(exit) => {
            let message = format!(
                "worker pid {} {} while running job {job_id}",
                running.process.pid,
                exit.describe()
            );
            if job.crashes < config.retries {
                shared.count_retried_crash(index);
                tracing::warn!(
                    slot = index,
                    "{message}; retrying (attempt {} of {})",
                    job.crashes + 2,
                    config.retries + 1
                );
                shared.requeue_front(QueuedJob {
                    crashes: job.crashes + 1,
                    ..job
                });
            } else {
                shared.settle(
                    index,
                    &job_id,
                    JobOutcome::Crashed {
                        exit,
                        message: message.clone(),
                    },
                );
            }
            Some(ChildEnd::Failed {
                failure: Failure::Transient,
                message,
            })
        }
        JobEnd::TimedOut(after) => {
            running.process.stop(grace).await;
            shared.settle(index, &job_id, JobOutcome::TimedOut { after });
            Some(ChildEnd::Failed {
                failure: Failure::Transient,
                message: format!("job {job_id} ran past its deadline of {after:?}"),
            })
        }
        JobEnd::Cancelled(reply) => {
            running.process.stop(grace).await;
            shared.settle(index, &job_id, JobOutcome::Cancelled);
            let _ = reply.send(CancelOutcome::Killed);
            Some(ChildEnd::Replace)
        }
        JobEnd::Aborted => {
            running.process.stop(grace).await;
            shared.give_back(index, &job_id);
            Some(ChildEnd::Leave)
        }
    }
}

/// Follows the child's lines for job `job_id` until something ends the job.
async fn follow_job(
    shared: &Shared,
    running: &mut Running,
    commands: &mut mpsc::UnboundedReceiver<SlotCommand>,
    job_id: &JobId,
    allowed: Duration,
    grace: Duration,
) -> JobEnd {
    let deadline = Instant::now() + allowed;
    loop {
        tokio::select! {
            biased;
            event = running.stdout.recv() => {
                let line = match event {
                    Some(StdoutEvent::Line(line)) => line,
                    Some(StdoutEvent::Eof { .. }) | None => {
                        return JobEnd::Crashed(exit_after_eof(&mut running.process, grace).await);
                    }
                    Some(other) => return JobEnd::Breach(describe_breach(&other)),
                };
                let message = match WorkerMessage::parse(&line) {
                    Ok(message) => message,
                    Err(e) => return JobEnd::Breach(e.to_string()),
                };
                match message {
                    WorkerMessage::Ready(_) => return JobEnd::Breach("a ready line in the middle of a job".to_string()),
                    WorkerMessage::Progress { job, .. }
                    | WorkerMessage::Done { job, .. }
                    | WorkerMessage::Failed { job, .. } if job != job_id.as_str() => {
                        return JobEnd::Breach(format!("answered for job {job:?} while running job {:?}", job_id.as_str()));
                    }
                    WorkerMessage::Progress { progress, .. } => {
                        shared.emit(PoolEvent::Progress {
                            job_id: job_id.clone(),
                            bytes: progress.bytes,
                            total: progress.total,
                        });
                    }
                    WorkerMessage::Done { done, .. } => {
                        return JobEnd::Answered(JobOutcome::Done {
                            logs: done.logs,
                            packets: done.packets,
                            warnings: done.warnings,
                            files_extracted: done.files_extracted,
                            detect_hits: done.detect_hits,
                        });
                    }
                    WorkerMessage::Failed { failed, .. } => {
                        return JobEnd::Answered(JobOutcome::Failed {
                            kind: failed.kind,
                            error: failed.error,
                        });
                    }
                }
            }
            exit = running.process.wait() => return JobEnd::Crashed(exit),
            _ = tokio::time::sleep_until(deadline) => return JobEnd::TimedOut(allowed),
            command = commands.recv() => match control(command, Some(job_id)) {
                Some(Control::Cancel(reply)) => return JobEnd::Cancelled(reply),
                Some(Control::Abort) => return JobEnd::Aborted,
                _ => {}
            },
        }
    }
}
