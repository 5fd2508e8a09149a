//! Password check: constant-time comparison, late answers to failures, per-peer counts.
//!
//! The password lives in one place ([`Auth`]) that SIGHUP can update; it is never formatted
//! into a log line (the type has no `Debug` that shows it). A wrong password is answered only
//! after a delay that doubles with the peer's recent failures, up to [`MAX_DELAY`]. The
//! checks of one peer address take turns ([`Auth::verify`]): a failure holds that peer's turn
//! through its delay, so opening more connections does not buy more guesses per second.
//!
//! The price is that a flood of wrong passwords from one address also delays the right
//! password from that address. Sources listed in `auth_exempt` (front ends that share an
//! address, a trusted network) do not take turns: each of their failures is still answered
//! after its delay, but holds back nobody else's check.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::addr_range::AddrRange;

/// Longest delay before a failure is answered.
pub const MAX_DELAY: Duration = Duration::from_secs(10);
/// Failures older than this no longer count towards a peer's delay.
const FAILURE_MEMORY: Duration = Duration::from_secs(600);
/// Peers remembered at most (oldest forgotten first) so a scan cannot grow the table.
const MAX_PEERS: usize = 4096;

/// Failures recorded for one peer address.
#[derive(Debug, Clone, Copy)]
struct PeerFailures {
    count: u32,
    last: Instant,
}

pub struct Auth {
    password: RwLock<Vec<u8>>,
    base_delay: Duration,
    failures: Mutex<HashMap<IpAddr, PeerFailures>>,
    /// One turn per peer address: its password checks happen one at a time.
    turns: Mutex<HashMap<IpAddr, Arc<tokio::sync::Mutex<()>>>>,
    /// Sources that do not take turns (`auth_exempt`).
    exempt: RwLock<Vec<AddrRange>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Compares in time that depends only on the lengths, never on where bytes differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        // Compare against the expected password cyclically so the loop length is the input's.
        let y = if b.is_empty() { 0 } else { b[i % b.len()] };
        diff |= x ^ y;
    }
    diff == 0
}

impl Auth {
    pub fn new(password: String, base_delay: Duration) -> Self {
        Self {
            password: RwLock::new(password.into_bytes()),
            base_delay,
            failures: Mutex::new(HashMap::new()),
            turns: Mutex::new(HashMap::new()),
            exempt: RwLock::new(Vec::new()),
        }
    }

    /// Replaces the sources exempt from taking turns.
    pub fn set_exempt(&self, exempt: Vec<AddrRange>) {
        *self.exempt.write().unwrap_or_else(|e| e.into_inner()) = exempt;
    }

    fn is_exempt(&self, peer: IpAddr) -> bool {
        let exempt = self.exempt.read().unwrap_or_else(|e| e.into_inner());
        exempt.iter().any(|range| range.contains(peer))
    }

    /// Checks `offered` for `peer` in that peer's turn. A wrong password keeps the turn for
    /// its delay, so the peer's next check, on whatever connection, waits until it passed;
    /// returns whether it matched and, when not, the peer's recent failure count.
    /// An exempt peer's checks do not wait for each other.
    pub async fn verify(&self, peer: IpAddr, offered: &str) -> Result<(), u32> {
        if self.is_exempt(peer) {
            if self.check(offered) {
                return Ok(());
            }
            let (delay, count) = self.record_failure(peer, Instant::now());
            tokio::time::sleep(delay).await;
            return Err(count);
        }
        let turn = self.turn(peer);
        let _turn = turn.lock().await;
        if self.check(offered) {
            return Ok(());
        }
        let (delay, count) = self.record_failure(peer, Instant::now());
        tokio::time::sleep(delay).await;
        Err(count)
    }

    fn turn(&self, peer: IpAddr) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        if turns.len() >= MAX_PEERS && !turns.contains_key(&peer) {
            // Turns nobody holds or waits for are only a lookup away from being made anew.
            turns.retain(|_, turn| Arc::strong_count(turn) > 1);
        }
        turns.entry(peer).or_default().clone()
    }

    pub fn set_password(&self, password: String) {
        *self.password.write().unwrap_or_else(|e| e.into_inner()) = password.into_bytes();
    }

    pub fn check(&self, offered: &str) -> bool {
        let expected = self.password.read().unwrap_or_else(|e| e.into_inner());
        constant_time_eq(offered.as_bytes(), &expected)
    }

    /// Records a failure from `peer` and returns how long to wait before answering, and the
    /// peer's recent failure count.
    pub fn record_failure(&self, peer: IpAddr, now: Instant) -> (Duration, u32) {
        let mut table = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() >= MAX_PEERS && !table.contains_key(&peer) {
            table.retain(|_, f| now.duration_since(f.last) < FAILURE_MEMORY);
            if table.len() >= MAX_PEERS {
                if let Some(oldest) = table.iter().min_by_key(|(_, f)| f.last).map(|(ip, _)| *ip) {
                    table.remove(&oldest);
                }
            }
        }
        let entry = table.entry(peer).or_insert(PeerFailures {
            count: 0,
            last: now,
        });
        if now.duration_since(entry.last) >= FAILURE_MEMORY {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        let factor = 1u32 << (entry.count - 1).min(5);
        ((self.base_delay * factor).min(MAX_DELAY), entry.count)
    }

    /// Total failures currently remembered (for statistics).
    pub fn failures_total(&self) -> u64 {
        let table = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        table.values().map(|f| u64::from(f.count)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_matches_only_equal_inputs() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secreT", b"secret"));
        assert!(!constant_time_eq(b"secret1", b"secret"));
        assert!(!constant_time_eq(b"secre", b"secret"));
        assert!(!constant_time_eq(b"", b"secret"));
        assert!(constant_time_eq(b"", b""));
        // A prefix repeated cyclically must not match.
        assert!(!constant_time_eq(b"abab", b"ab"));
    }

    /// 20 guesses at once from one address: answered one after another, each after its
    /// delay, so connections buy no parallelism; another address is not held up.
    #[tokio::test(start_paused = true)]
    async fn concurrent_guesses_from_one_peer_take_turns() {
        let auth = Arc::new(Auth::new("pw".into(), Duration::from_millis(500)));
        let attacker: IpAddr = "127.0.0.2".parse().unwrap();
        let start = tokio::time::Instant::now();
        let guesses: Vec<_> = (0..20)
            .map(|_| {
                let auth = auth.clone();
                tokio::spawn(async move {
                    assert!(auth.verify(attacker, "guess").await.is_err());
                    start.elapsed()
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Even the right password from that address is checked only in its turn.
        let right_guess = {
            let auth = auth.clone();
            tokio::spawn(async move {
                assert_eq!(auth.verify(attacker, "pw").await, Ok(()));
                start.elapsed()
            })
        };
        let legit = tokio::time::Instant::now();
        assert_eq!(
            auth.verify("127.0.0.1".parse().unwrap(), "pw").await,
            Ok(())
        );
        assert_eq!(
            legit.elapsed(),
            Duration::ZERO,
            "another peer does not wait"
        );
        let mut answered = Vec::new();
        for guess in guesses {
            answered.push(guess.await.unwrap());
        }
        answered.sort();
        // 0.5 + 1 + 2 + 4 + 8 s, then 10 s each.
        assert_eq!(answered[4], Duration::from_millis(15_500));
        assert_eq!(answered[5], Duration::from_millis(25_500));
        assert_eq!(answered[19], Duration::from_millis(165_500));
        assert_eq!(right_guess.await.unwrap(), Duration::from_millis(165_500));
    }

    /// A flood of wrong passwords from an exempt address: each is answered after its delay,
    /// but the right password from the same address is served at once.
    #[tokio::test(start_paused = true)]
    async fn exempt_sources_do_not_take_turns() {
        let auth = Arc::new(Auth::new("pw".into(), Duration::from_millis(500)));
        auth.set_exempt(vec!["127.0.0.0/8".parse().expect("a range")]);
        let shared: IpAddr = "127.0.0.3".parse().unwrap();
        let start = tokio::time::Instant::now();
        let flood: Vec<_> = (0..100)
            .map(|_| {
                let auth = auth.clone();
                tokio::spawn(async move {
                    assert!(auth.verify(shared, "old password").await.is_err());
                    start.elapsed()
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let right = tokio::time::Instant::now();
        assert_eq!(auth.verify(shared, "pw").await, Ok(()));
        assert_eq!(
            right.elapsed(),
            Duration::ZERO,
            "not held back by the flood"
        );
        let mut answered = Vec::new();
        for f in flood {
            answered.push(f.await.unwrap());
        }
        // Every failure still waited for a delay (0.5 s at least, 10 s at most).
        assert!(answered.iter().all(|d| *d >= Duration::from_millis(500)));
        assert!(answered.iter().all(|d| *d <= MAX_DELAY));
        // A source outside the range still takes turns.
        auth.set_exempt(Vec::new());
        assert!(!auth.is_exempt(shared));
    }

    #[test]
    fn delay_doubles_per_failure_and_is_capped() {
        let auth = Auth::new("pw".into(), Duration::from_millis(500));
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        assert_eq!(
            auth.record_failure(peer, t0),
            (Duration::from_millis(500), 1)
        );
        assert_eq!(auth.record_failure(peer, t0).0, Duration::from_secs(1));
        assert_eq!(auth.record_failure(peer, t0).0, Duration::from_secs(2));
        for _ in 0..10 {
            auth.record_failure(peer, t0);
        }
        assert_eq!(auth.record_failure(peer, t0).0, MAX_DELAY);
        let other: IpAddr = "::1".parse().unwrap();
        assert_eq!(auth.record_failure(other, t0).1, 1, "counted per peer");
        let later = t0 + FAILURE_MEMORY;
        assert_eq!(
            auth.record_failure(peer, later).1,
            1,
            "old failures forgotten"
        );
    }

    #[test]
    fn password_can_be_replaced_and_is_not_debug_printed() {
        let auth = Auth::new("old".into(), Duration::ZERO);
        assert!(auth.check("old"));
        auth.set_password("new".into());
        assert!(!auth.check("old"));
        assert!(auth.check("new"));
        assert!(!format!("{auth:?}").contains("new"));
    }
}
