//! Per-key rate limits (via `governor`): login/register per IP and per IP + email, sends and
//! writes per user; and the bound on concurrent password hashes. Memory stays bounded: idle
//! keys are dropped every minute, and a map that still grows past `MAX_KEYS` starts over.

use std::{hash::Hash, net::IpAddr, num::NonZeroU32, time::Duration};

use governor::{clock::Clock, clock::DefaultClock, DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

use super::error::{AppError, AppResult};

/// Keys one limiter keeps at most (attacker-chosen emails and addresses cannot grow it further).
const MAX_KEYS: usize = 100_000;

/// A keyed limiter allowing `per_minute` requests per key, refilled evenly.
pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    /// Replaced by a fresh one when it holds too many keys.
    limiter: std::sync::RwLock<DefaultKeyedRateLimiter<K>>,
    quota: Quota,
    clock: DefaultClock,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub fn per_minute(per_minute: u32) -> Self {
        let burst = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(burst);
        Self {
            limiter: std::sync::RwLock::new(RateLimiter::keyed(quota)),
            quota,
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request from `key`'s allowance, or says how long to wait.
    pub fn check(&self, key: &K) -> AppResult<()> {
        if self.keys() >= MAX_KEYS {
            let mut limiter = self.limiter.write().unwrap_or_else(|p| p.into_inner());
            limiter.retain_recent();
            if limiter.len() >= MAX_KEYS {
                *limiter = RateLimiter::keyed(self.quota);
            }
        }
        let limiter = self.limiter.read().unwrap_or_else(|p| p.into_inner());
        limiter
            .check_key(key)
            .map_err(|not_until| AppError::RateLimited {
                retry_after: not_until
                    .wait_time_from(self.clock.now())
                    .max(Duration::from_secs(1)),
            })
    }

    /// Forgets keys whose allowance is full again (they would behave the same when new).
    pub fn forget_idle(&self) {
        let limiter = self.limiter.read().unwrap_or_else(|p| p.into_inner());
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }

    pub fn keys(&self) -> usize {
        self.limiter.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Every limiter of the app, built once from the config.
pub struct Limits {
    pub auth_by_ip: KeyedLimiter<IpAddr>,
    /// Keyed by the caller's IP and the email together: a stranger's failed logins for your
    /// email use up their own allowance, not yours.
    pub auth_by_ip_and_email: KeyedLimiter<(Option<IpAddr>, String)>,
    pub sends_by_user: KeyedLimiter<uuid::Uuid>,
    /// REST writes and MCP requests.
    pub writes_by_user: KeyedLimiter<uuid::Uuid>,
    /// argon2id takes 19 MiB and tens of milliseconds per hash: at most one per core at once.
    hashes: Semaphore,
    hash_waiters: AtomicUsize,
}

/// Callers that may wait for a password hash at once; more are told to retry.
const HASH_QUEUE: usize = 64;

impl Limits {
    pub fn new(config: &super::config::Config) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            auth_by_ip: KeyedLimiter::per_minute(config.auth_rate_per_ip),
            auth_by_ip_and_email: KeyedLimiter::per_minute(config.auth_rate_per_email),
            sends_by_user: KeyedLimiter::per_minute(config.send_rate_per_user),
            writes_by_user: KeyedLimiter::per_minute(config.write_rate_per_user),
            hashes: Semaphore::new(cores),
            hash_waiters: AtomicUsize::new(0),
        }
    }

    /// Drops idle keys of every limiter (run every minute).
    pub fn forget_idle(&self) {
        self.auth_by_ip.forget_idle();
        self.auth_by_ip_and_email.forget_idle();
        self.sends_by_user.forget_idle();
        self.writes_by_user.forget_idle();
    }
}

/// Runs `hash` (argon2id, on a blocking thread) when a hashing slot is free; 429 when too
/// many callers already wait for one.
pub async fn with_hash_slot<T>(
    limits: &Limits,
    hash: impl std::future::Future<Output = T>,
) -> AppResult<T> {
    let busy = || AppError::RateLimited {
        retry_after: Duration::from_secs(2),
    };
    let waiting = limits.hash_waiters.fetch_add(1, Ordering::SeqCst);
    let slot = if waiting >= HASH_QUEUE {
        Err(busy())
    } else {
        match tokio::time::timeout(Duration::from_secs(10), limits.hashes.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(busy()),
        }
    };
    limits.hash_waiters.fetch_sub(1, Ordering::SeqCst);
    let _slot = slot?;
    Ok(hash.await)
}

/// Keeps the limiters small for the life of the process.
pub async fn forget_idle_forever(limits: std::sync::Arc<Limits>) {
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        limits.forget_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_keys_stays_bounded() {
        let limiter = KeyedLimiter::<u64>::per_minute(1);
        for key in 0..(MAX_KEYS as u64 + 10) {
            let _ = limiter.check(&key);
        }
        assert!(limiter.keys() <= MAX_KEYS, "{}", limiter.keys());
    }

    #[tokio::test]
    async fn password_hashing_is_bounded_and_a_flood_is_refused() {
        use std::sync::{atomic::AtomicUsize, Arc};
        let limits = Arc::new(Limits::new(&crate::server::config::Config::for_tests()));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let attempts = (0..100).map(|_| {
            let (limits, running, most) = (limits.clone(), running.clone(), most.clone());
            tokio::spawn(async move {
                with_hash_slot(&limits, async {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            })
        });
        let results = futures::future::join_all(attempts).await;
        let refused = results
            .iter()
            .filter(|r| matches!(r, Ok(Err(AppError::RateLimited { .. }))))
            .count();
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        assert!(
            most.load(Ordering::SeqCst) <= cores,
            "at most one hash per core"
        );
        assert!(refused > 0, "a flood beyond the queue is refused");
        assert!(refused < 100, "the queue is served");
    }
}
