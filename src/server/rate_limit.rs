//! Per-key rate limits (login/register per IP and per email, sends per user), via `governor`.

use std::{hash::Hash, num::NonZeroU32, time::Duration};

use governor::{clock::Clock, clock::DefaultClock, DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::{AppError, AppResult};

/// A keyed limiter allowing `per_minute` requests per key, refilled evenly.
pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    clock: DefaultClock,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub fn per_minute(per_minute: u32) -> Self {
        let burst = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(burst)),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request from `key`'s allowance, or says how long to wait.
    pub fn check(&self, key: &K) -> AppResult<()> {
        self.limiter
            .check_key(key)
            .map_err(|not_until| AppError::RateLimited {
                retry_after: not_until
                    .wait_time_from(self.clock.now())
                    .max(Duration::from_secs(1)),
            })
    }
}

/// Every limiter of the app, built once from the config.
pub struct Limits {
    pub auth_by_ip: KeyedLimiter<std::net::IpAddr>,
    pub auth_by_email: KeyedLimiter<String>,
    pub sends_by_user: KeyedLimiter<uuid::Uuid>,
}

impl Limits {
    pub fn new(config: &super::config::Config) -> Self {
        Self {
            auth_by_ip: KeyedLimiter::per_minute(config.auth_rate_per_ip),
            auth_by_email: KeyedLimiter::per_minute(config.auth_rate_per_email),
            sends_by_user: KeyedLimiter::per_minute(config.send_rate_per_user),
        }
    }
}
