//! A token bucket in integer fixed point with time as an argument: the handshake rate per client
//! IP and the per-tunnel message/byte limits refilled once per socket read. No I/O, no clock reads,
//! no allocation, no floats.

use std::time::Duration;

/// Milli-tokens per token. A rate of `r` tokens per second is then exactly `r` milli-tokens per
/// millisecond, so a refill is one multiplication with no remainder: no drift however it is split.
const MILLI: u64 = 1_000;

/// The largest level, debt or refill in milli-tokens (2^61): sums of two of them stay inside `i64`,
/// so every step below is plain arithmetic after one clamp. 2.3e15 tokens is more than any limit.
const MAX_MILLI: u64 = 1 << 61;
const MAX_LEVEL: i64 = 1 << 61;

/// Tokens per second and the most that can be banked. `burst` below 1 is taken as 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u64,
    pub burst: u64,
}

impl Rate {
    /// The rate a bucket actually runs at: `burst` in `1..=MAX_MILLI / 1000` and `per_second` at most
    /// `MAX_MILLI`, so that a caller comparing rates (a reload) compares like with like.
    pub fn normalised(self) -> Rate {
        Rate {
            per_second: self.per_second.min(MAX_MILLI),
            burst: self.burst.clamp(1, MAX_MILLI / MILLI),
        }
    }
}

/// A token bucket: 32 bytes, refilled from the time the caller passes.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Milli-tokens; negative while in debt (after `take` of more than there was).
    level: i64,
    /// `burst` in milli-tokens: the level never exceeds it.
    cap: i64,
    /// Milli-tokens per millisecond (= tokens per second).
    per_ms: u64,
    /// The `now_ms` of the last refill; never moves backwards.
    last_ms: u64,
}

impl TokenBucket {
    /// A bucket that starts full.
    pub fn new(rate: Rate, now_ms: u64) -> Self {
        let rate = rate.normalised();
        let cap = to_milli(rate.burst);
        TokenBucket {
            level: cap,
            cap,
            per_ms: rate.per_second,
            last_ms: now_ms,
        }
    }

    /// The (normalised) rate this bucket runs at.
    pub fn rate(&self) -> Rate {
        Rate {
            per_second: self.per_ms,
            burst: self.cap.unsigned_abs() / MILLI,
        }
    }

    /// Adds what accrued since the last refill, up to the burst. A `now_ms` earlier than the last
    /// one (clocks read on different threads) adds nothing and is otherwise ignored.
    pub fn refill(&mut self, now_ms: u64) {
        if now_ms <= self.last_ms {
            return;
        }
        let accrued = self.accrued(now_ms);
        self.level = self.level.saturating_add(accrued).min(self.cap);
        self.last_ms = now_ms;
    }

    /// Takes `n` tokens if they are there. Otherwise takes nothing and returns how long until they
    /// would be (a Retry-After: at least 1 ms, `Duration::MAX` for a rate of zero). More than the
    /// burst can never fit, so such an `n` is taken as the burst: it passes when the bucket is full.
    pub fn try_take(&mut self, n: u64, now_ms: u64) -> Result<(), Duration> {
        self.refill(now_ms);
        let need = to_milli(n.min(self.cap.unsigned_abs() / MILLI));
        if self.level >= need {
            self.level -= need;
            Ok(())
        } else {
            Err(self.time_for(need - self.level))
        }
    }

    /// Takes `n` tokens unconditionally, going into debt if there are fewer: a frame bigger than the
    /// burst still passes, and `wait` then says how long the tunnel pauses. The debt is bounded
    /// (2^61 milli-tokens) so nothing overflows.
    pub fn take(&mut self, n: u64) {
        self.level = (self.level - to_milli(n)).max(-MAX_LEVEL);
    }

    /// `None` when not in debt; else how long, from the last refill, until the level is back at 0.
    pub fn wait(&self) -> Option<Duration> {
        (self.level < 0).then(|| self.time_for(-self.level))
    }

    /// Whether the bucket would be full at `now_ms`: an entry holding only this bucket can be
    /// forgotten without losing anything, since a new one starts full.
    pub fn is_full(&self, now_ms: u64) -> bool {
        self.level.saturating_add(self.accrued(now_ms)) >= self.cap
    }

    /// Milli-tokens accrued from `last_ms` to `now_ms`, clamped to twice `MAX_MILLI`: enough to go
    /// from the deepest debt to a full bucket in one step, and still no overflow when added.
    fn accrued(&self, now_ms: u64) -> i64 {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        let milli = elapsed.saturating_mul(self.per_ms).min(2 * MAX_MILLI);
        i64::try_from(milli).unwrap_or(i64::MAX)
    }

    /// Time until `deficit` (> 0) milli-tokens have accrued, rounded up to whole milliseconds.
    fn time_for(&self, deficit: i64) -> Duration {
        if self.per_ms == 0 {
            return Duration::MAX;
        }
        let deficit = deficit.unsigned_abs();
        Duration::from_millis(deficit.div_ceil(self.per_ms))
    }
}

/// Tokens to milli-tokens, clamped to `MAX_MILLI`.
fn to_milli(tokens: u64) -> i64 {
    clamp_milli(tokens.saturating_mul(MILLI))
}

/// A milli-token amount clamped to `MAX_MILLI`, as `i64` (which always holds it).
fn clamp_milli(milli: u64) -> i64 {
    // MAX_MILLI < i64::MAX: the conversion cannot fail; the fallback only avoids an unwrap.
    i64::try_from(milli.min(MAX_MILLI)).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[path = "bucket_tests.rs"]
mod tests;
