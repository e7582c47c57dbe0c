//! Per-key rate limits: login/register per IP and per IP + email, sends and writes per user;
//! and the bound on concurrent password hashes. A limit holds across all replicas: it is kept
//! in Postgres (GCRA, one statement per request in `rate_limits`), with a local `governor`
//! in front that refuses a flood without asking the database (a key over its allowance on one
//! replica is over it in total). Memory stays bounded: idle keys are dropped every minute, and
//! a map that still grows past `MAX_KEYS` starts over.

use std::{
    fmt::Debug,
    hash::{Hash, Hasher},
    net::IpAddr,
    num::NonZeroU32,
    time::Duration,
};

use sqlx::PgPool;

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
    /// The allowance all replicas share, if any.
    shared: Option<Shared>,
}

/// A limit kept in Postgres for every replica: GCRA with an emission interval of
/// 60 s / `per_minute` and a burst of `per_minute`.
struct Shared {
    pool: PgPool,
    name: &'static str,
    interval: f64,
    tolerance: f64,
}

impl<K: Hash + Eq + Clone + Debug> KeyedLimiter<K> {
    /// A limiter of this process alone.
    pub fn per_minute(per_minute: u32) -> Self {
        let burst = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(burst);
        Self {
            limiter: std::sync::RwLock::new(RateLimiter::keyed(quota)),
            quota,
            clock: DefaultClock::default(),
            shared: None,
        }
    }

    /// A limiter whose allowance all replicas on `pool`'s database share (`name` keeps its
    /// keys apart from other limiters').
    pub fn shared(per_minute: u32, name: &'static str, pool: PgPool) -> Self {
        let per_minute = per_minute.max(1);
        let interval = 60.0 / f64::from(per_minute);
        Self {
            shared: Some(Shared {
                pool,
                name,
                interval,
                tolerance: interval * f64::from(per_minute - 1),
            }),
            ..Self::per_minute(per_minute)
        }
    }

    /// Takes one request from `key`'s allowance (this replica's, then the shared one), or says
    /// how long to wait.
    pub async fn check(&self, key: &K) -> AppResult<()> {
        self.check_local(key)?;
        match &self.shared {
            Some(shared) => shared.check(key).await,
            None => Ok(()),
        }
    }

    fn check_local(&self, key: &K) -> AppResult<()> {
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

impl Shared {
    async fn check(&self, key: &impl Debug) -> AppResult<()> {
        // Keys are hashed: the table holds no addresses or emails.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        format!("{key:?}").hash(&mut hasher);
        let key = format!("{}:{:016x}", self.name, hasher.finish());
        let taken: Result<Option<i32>, sqlx::Error> = sqlx::query_scalar(
            "INSERT INTO rate_limits AS r (key, tat)
             VALUES ($1, clock_timestamp() + make_interval(secs => $2))
             ON CONFLICT (key) DO UPDATE
                 SET tat = greatest(r.tat, clock_timestamp()) + make_interval(secs => $2)
                 WHERE greatest(r.tat, clock_timestamp()) <= clock_timestamp() + make_interval(secs => $3)
             RETURNING 1",
        )
        .bind(&key)
        .bind(self.interval)
        .bind(self.tolerance)
        .fetch_optional(&self.pool)
        .await;
        match taken {
            Ok(Some(_)) => Ok(()),
            Ok(None) => {
                let wait: Option<f64> = sqlx::query_scalar(
                    "SELECT extract(epoch FROM greatest(tat, clock_timestamp()) - clock_timestamp())::float8 - $2
                     FROM rate_limits WHERE key = $1",
                )
                .bind(&key)
                .bind(self.tolerance)
                .fetch_optional(&self.pool)
                .await
                .ok()
                .flatten();
                Err(AppError::RateLimited {
                    retry_after: Duration::from_secs_f64(wait.unwrap_or(1.0).clamp(1.0, 3600.0)),
                })
            }
            Err(err) => {
                // The database is away: this replica's own limit still holds.
                tracing::warn!(error = %err, "checking a shared rate limit");
                Ok(())
            }
        }
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
    /// The limits, shared through `pool`'s database by every replica.
    pub fn new(config: &super::config::Config, pool: PgPool) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            auth_by_ip: KeyedLimiter::shared(config.auth_rate_per_ip, "auth-ip", pool.clone()),
            auth_by_ip_and_email: KeyedLimiter::shared(
                config.auth_rate_per_email,
                "auth-email",
                pool.clone(),
            ),
            sends_by_user: KeyedLimiter::shared(config.send_rate_per_user, "send", pool.clone()),
            writes_by_user: KeyedLimiter::shared(config.write_rate_per_user, "write", pool),
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

/// Keeps the limiters small for the life of the process (and, every tenth round, the shared
/// table: keys whose allowance is full again are forgotten).
pub async fn forget_idle_forever(limits: std::sync::Arc<Limits>, pool: PgPool) {
    for round in 1u64.. {
        tokio::time::sleep(Duration::from_secs(60)).await;
        limits.forget_idle();
        if round % 10 != 0 {
            continue;
        }
        if pool.is_closed() {
            return;
        }
        if let Err(err) = sqlx::query("DELETE FROM rate_limits WHERE tat < clock_timestamp()")
            .execute(&pool)
            .await
        {
            tracing::warn!(error = %err, "forgetting idle rate limits");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flood_of_keys_stays_bounded() {
        let limiter = KeyedLimiter::<u64>::per_minute(1);
        for key in 0..(MAX_KEYS as u64 + 10) {
            let _ = limiter.check(&key).await;
        }
        assert!(limiter.keys() <= MAX_KEYS, "{}", limiter.keys());
    }

    #[tokio::test]
    async fn password_hashing_is_bounded_and_a_flood_is_refused() {
        use std::sync::{atomic::AtomicUsize, Arc};
        let config = crate::server::config::Config::for_tests();
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://localhost/unused")
            .unwrap();
        let limits = Arc::new(Limits::new(&config, pool));
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
