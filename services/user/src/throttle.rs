//! Login and signup throttling in Redis, so that every replica counts the same attempts:
//! failed logins per account and per client address, signups per client address, each in a
//! fixed window. Past its limit a key is refused with 429 and `Retry-After` (the window's
//! remaining time) before any password work is done; a successful login clears its account's
//! count. The limits are live config keys (`[throttle]`).

use std::net::IpAddr;

use kommerce_kit::cache::Redis;
use kommerce_kit::http::ApiError;

use crate::config::ThrottleSettings;

/// What a counter allows now (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refused for this many more seconds.
    Refuse(u32),
}

/// `count` attempts so far in a window that ends in `ttl_secs` (`None`: no window open).
pub fn judge(count: u32, ttl_secs: Option<i64>, limit: u32) -> Verdict {
    if limit == 0 || count < limit {
        return Verdict::Allow;
    }
    let remaining = ttl_secs.filter(|t| *t > 0).unwrap_or(1);
    Verdict::Refuse(u32::try_from(remaining).unwrap_or(u32::MAX))
}

/// An account's key never holds the e-mail itself.
fn account_key(redis: &Redis, email: &str) -> String {
    let hex = kommerce_kit::digest::sha256_hex(email.as_bytes(), 12);
    redis.key(&["throttle", "login", "account", &hex])
}

fn address_key(redis: &Redis, what: &str, ip: IpAddr) -> String {
    redis.key(&["throttle", what, "address", &ip.to_string()])
}

fn unavailable(e: &redis::RedisError) -> ApiError {
    tracing::error!(error = %e, "throttle counters unreachable");
    ApiError::unavailable("sign-in is temporarily unavailable")
}

/// The verdicts of `(key, limit)` counters, read in one round trip; the first refusal wins.
async fn check(redis: &Redis, counters: &[(&str, u32)]) -> Result<Verdict, ApiError> {
    let mut pipe = redis::pipe();
    for (key, _) in counters {
        pipe.get(*key).ttl(*key);
    }
    let read: Vec<(Option<u32>, i64)> = pipe
        .query_async(&mut redis.conn())
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(counters
        .iter()
        .zip(read)
        .map(|((_, limit), (count, ttl))| judge(count.unwrap_or(0), Some(ttl), *limit))
        .find(|v| *v != Verdict::Allow)
        .unwrap_or(Verdict::Allow))
}

/// Counts one attempt against each of `keys` in one atomic round trip; the first attempt
/// opens a key's window.
async fn count(redis: &Redis, keys: &[&str], window_secs: u64) -> Result<(), ApiError> {
    let window = i64::try_from(window_secs).unwrap_or(i64::MAX);
    let mut pipe = redis::pipe();
    pipe.atomic();
    for key in keys {
        pipe.incr(*key, 1)
            .ignore()
            .cmd("EXPIRE")
            .arg(*key)
            .arg(window)
            .arg("NX")
            .ignore();
    }
    let _: () = pipe
        .query_async(&mut redis.conn())
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(())
}

fn refused(seconds: u32, what: &str) -> ApiError {
    ApiError::TooManyRequests {
        detail: format!("too many {what}; try again in {seconds} s"),
        retry_after: seconds,
    }
}

/// Before checking a password: refused while the account or the address is over its limit.
pub async fn before_login(
    redis: &Redis,
    t: &ThrottleSettings,
    email: &str,
    ip: IpAddr,
) -> Result<(), ApiError> {
    let (account, address) = (account_key(redis, email), address_key(redis, "login", ip));
    let counters = [
        (account.as_str(), t.login_failures_per_account),
        (address.as_str(), t.login_failures_per_address),
    ];
    match check(redis, &counters).await? {
        Verdict::Refuse(secs) => Err(refused(secs, "failed sign-ins")),
        Verdict::Allow => Ok(()),
    }
}

/// A wrong password or an unknown account: counts against both.
pub async fn login_failed(
    redis: &Redis,
    t: &ThrottleSettings,
    email: &str,
    ip: IpAddr,
) -> Result<(), ApiError> {
    let (account, address) = (account_key(redis, email), address_key(redis, "login", ip));
    count(redis, &[&account, &address], t.window_secs).await
}

/// A successful login clears its account's failures (not the address's).
pub async fn login_succeeded(redis: &Redis, email: &str) {
    let cleared: redis::RedisResult<()> = redis::cmd("DEL")
        .arg(account_key(redis, email))
        .query_async(&mut redis.conn())
        .await;
    if let Err(e) = cleared {
        tracing::warn!(error = %e, "login failures not cleared; they expire with their window");
    }
}

/// Every signup attempt counts against its address.
pub async fn signup(redis: &Redis, t: &ThrottleSettings, ip: IpAddr) -> Result<(), ApiError> {
    let key = address_key(redis, "signup", ip);
    if let Verdict::Refuse(secs) = check(redis, &[(&key, t.signups_per_address)]).await? {
        return Err(refused(secs, "signups from this address"));
    }
    count(redis, &[&key], t.window_secs).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_refuses_at_its_limit_for_the_rest_of_its_window() {
        assert_eq!(judge(0, None, 5), Verdict::Allow);
        assert_eq!(judge(4, Some(100), 5), Verdict::Allow);
        assert_eq!(judge(5, Some(100), 5), Verdict::Refuse(100));
        assert_eq!(
            judge(9, Some(-1), 5),
            Verdict::Refuse(1),
            "no TTL: a second at least"
        );
        assert_eq!(
            judge(1_000, Some(7), 0),
            Verdict::Allow,
            "0 turns a limit off"
        );
    }
}
