//! A slot's burp queries: send one status query to a ready burp child and follow its lines
//! (`protocol::burp::QueryExchange`) until the answer, the `[Burp] timeout`, the child's
//! death or a line out of step. Whatever happens the query is answered exactly once, before
//! a failed child is stopped, so a hung burp never holds its asker past the deadline.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{control, describe_breach, exit_after_eof, ChildEnd, Control, Running, Session};
use crate::config::WorkerConfig;
use crate::pool::child::StdoutEvent;
use crate::pool::messages::{QueuedQuery, SlotCommand};
use crate::pool::restart::Failure;
use crate::pool::state::Shared;
use crate::pool::{BurpDialect, QueryOutcome};
use crate::protocol::burp::{QueryAnswer, QueryExchange, QueryStep};

/// How a query ended on the child's side.
enum QueryEnd {
    Answered(QueryAnswer),
    /// The child must go: hung, died, or out of step. The reason is for the log and the asker.
    ChildFailed(String),
    Aborted,
}

/// Runs one burp query; `None` when the child stays (it answered), `Some` when it must go.
pub(super) async fn run_query(
    shared: &Shared,
    index: usize,
    running: &mut Running,
    commands: &mut mpsc::UnboundedReceiver<SlotCommand>,
    config: &WorkerConfig,
    dialect: &BurpDialect,
    query: QueuedQuery,
) -> Option<ChildEnd> {
    let markers = match &running.session {
        Session::Burp(info) => info.markers,
        Session::Worker => false,
    };
    let grace = config.grace;
    let end = match running.process.send_line(query.query.as_str()).await {
        Err(_) => {
            let exit = exit_after_eof(&mut running.process, grace).await;
            QueryEnd::ChildFailed(format!(
                "burp child {} before the query was sent",
                exit.describe()
            ))
        }
        Ok(()) => {
            let exchange = QueryExchange::new(&query.query, markers);
            follow_query(running, commands, exchange, dialect.query_timeout, grace).await
        }
    };
    let pid = running.process.pid;
    match end {
        QueryEnd::Answered(answer) => {
            running.jobs_answered += 1;
            shared.answer_query(index, query, QueryOutcome::Answered(answer));
            None
        }
        // The asker hears first; stopping the child may take the grace period.
        QueryEnd::ChildFailed(reason) => {
            let message = format!(
                "burp child pid {pid} gave no answer to {:?}: {reason}",
                query.query.as_str()
            );
            shared.answer_query(index, query, QueryOutcome::NoAnswer { reason });
            running.process.stop(grace).await;
            Some(ChildEnd::Failed {
                failure: Failure::Transient,
                message,
            })
        }
        QueryEnd::Aborted => {
            shared.answer_query(
                index,
                query,
                QueryOutcome::NoAnswer {
                    reason: "the daemon is shutting down".into(),
                },
            );
            running.process.stop(grace).await;
            Some(ChildEnd::Leave)
        }
    }
}

/// Follows a burp child's lines for one query until it is answered or the child must go.
async fn follow_query(
    running: &mut Running,
    commands: &mut mpsc::UnboundedReceiver<SlotCommand>,
    mut exchange: QueryExchange,
    allowed: Duration,
    grace: Duration,
) -> QueryEnd {
    let deadline = Instant::now() + allowed;
    loop {
        tokio::select! {
            biased;
            event = running.stdout.recv() => match event {
                Some(StdoutEvent::Line(line)) => match exchange.on_line(&line) {
                    Ok(QueryStep::Continue) => {}
                    Ok(QueryStep::Answered(answer)) => return QueryEnd::Answered(answer),
                    Err(e) => return QueryEnd::ChildFailed(e.to_string()),
                },
                Some(StdoutEvent::Eof { .. }) | None => {
                    let exit = exit_after_eof(&mut running.process, grace).await;
                    return QueryEnd::ChildFailed(exit.describe());
                }
                Some(other) => return QueryEnd::ChildFailed(describe_breach(&other)),
            },
            exit = running.process.wait() => return QueryEnd::ChildFailed(exit.describe()),
            _ = tokio::time::sleep_until(deadline) => {
                return QueryEnd::ChildFailed(format!("no answer within [Burp] timeout ({allowed:?})"));
            }
            command = commands.recv() => if let Some(Control::Abort) = control(command, None) {
                return QueryEnd::Aborted;
            },
        }
    }
}
