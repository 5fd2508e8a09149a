//! Connections that have not authenticated yet. At most half of `max_connections` may be in
//! that state; admitting one more closes the oldest of them. Together with `login_timeout`
//! this keeps connections that never send a password (a flood of idle TLS connections) from
//! holding every slot: a real client's new connection pushes out the oldest idle one and
//! logs in long before the flood could push it out in turn.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// The connections waiting to authenticate, oldest first.
pub struct PreAuthPool {
    limit: usize,
    inner: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    next_id: u64,
    queue: VecDeque<(u64, CancellationToken)>,
}

/// One connection's place among the unauthenticated; dropping it (on login, or when the
/// connection ends) takes it out, so it can no longer be evicted.
pub struct PreAuth {
    id: u64,
    evict: CancellationToken,
    pool: Arc<PreAuthPool>,
}

impl PreAuthPool {
    pub fn new(limit: usize) -> Arc<PreAuthPool> {
        Arc::new(PreAuthPool {
            limit: limit.max(1),
            inner: Mutex::new(Waiting::default()),
        })
    }

    /// Admits a new connection, closing the oldest unauthenticated one if the pool is full.
    pub fn admit(self: &Arc<Self>) -> PreAuth {
        let mut waiting = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while waiting.queue.len() >= self.limit {
            if let Some((_, oldest)) = waiting.queue.pop_front() {
                oldest.cancel();
            }
        }
        let id = waiting.next_id;
        waiting.next_id += 1;
        let evict = CancellationToken::new();
        waiting.queue.push_back((id, evict.clone()));
        PreAuth {
            id,
            evict,
            pool: self.clone(),
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .queue
            .len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl PreAuth {
    /// Cancelled when a newer connection pushed this one out.
    pub fn eviction(&self) -> CancellationToken {
        self.evict.clone()
    }
}

impl Drop for PreAuth {
    fn drop(&mut self) {
        let mut waiting = self.pool.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = waiting.queue.iter().position(|(id, _)| *id == self.id) {
            waiting.queue.remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_pool_evicts_its_oldest_and_logins_leave_it() {
        let pool = PreAuthPool::new(2);
        let first = pool.admit();
        let second = pool.admit();
        let third = pool.admit();
        assert!(first.eviction().is_cancelled(), "oldest pushed out");
        assert!(!second.eviction().is_cancelled() && !third.eviction().is_cancelled());
        assert_eq!(pool.len(), 2);
        drop(second); // logged in
        assert_eq!(pool.len(), 1);
        let fourth = pool.admit();
        assert!(
            !third.eviction().is_cancelled(),
            "room was made by the login"
        );
        drop((first, third, fourth));
        assert!(pool.is_empty());
    }
}
