//! Token bucket tests: exact refills, the burst cap, debt and its wait, Retry-After rounding, and
//! loops over many (rate, burst, n, dt) combinations asserting no panic and the invariants.

use std::time::Duration;

use super::*;

fn rate(per_second: u64, burst: u64) -> Rate {
    Rate { per_second, burst }
}

/// Whole tokens in the bucket, rounded down (debt as negative).
fn tokens(b: &TokenBucket) -> i64 {
    b.level.div_euclid(MILLI as i64)
}

#[test]
fn starts_full_and_takes_the_burst_then_refuses() {
    let mut b = TokenBucket::new(rate(10, 5), 0);
    assert!(b.is_full(0));
    for _ in 0..5 {
        assert_eq!(b.try_take(1, 0), Ok(()));
    }
    // 10/s: one token every 100 ms.
    assert_eq!(b.try_take(1, 0), Err(Duration::from_millis(100)));
    assert!(!b.is_full(0));
    assert_eq!(b.try_take(1, 99), Err(Duration::from_millis(1)));
    assert_eq!(b.try_take(1, 100), Ok(()));
    assert!(b.is_full(600));
    assert!(!b.is_full(599));
}

#[test]
fn many_small_refills_equal_one_big_one() {
    // Rates that do not divide 1000 are where a per-step float or truncation would drift.
    for per_second in [1, 3, 7, 333, 999, 1_001, 65_537] {
        let r = rate(per_second, 1_000_000_000);
        let mut stepped = TokenBucket::new(r, 0);
        let mut once = TokenBucket::new(r, 0);
        stepped.take(2_000_000_000);
        once.take(2_000_000_000);
        for now in 1..=100_000 {
            stepped.refill(now);
        }
        once.refill(100_000);
        assert_eq!(stepped.level, once.level, "{per_second}/s");
        // From 1e9 tokens of debt, 100 s at `per_second` tokens/s, exactly.
        assert_eq!(tokens(&once), -1_000_000_000 + 100 * per_second as i64);
    }
}

#[test]
fn refill_is_capped_at_the_burst() {
    let mut b = TokenBucket::new(rate(1_000, 3), 0);
    b.take(3);
    b.refill(1_000_000);
    assert_eq!(tokens(&b), 3);
    assert_eq!(b.level, b.cap);
    assert!(b.is_full(1_000_000));
}

#[test]
fn time_going_backwards_adds_nothing_and_does_not_panic() {
    let mut b = TokenBucket::new(rate(1, 1), 1_000);
    assert_eq!(b.try_take(1, 1_000), Ok(()));
    b.refill(0);
    assert_eq!(b.try_take(1, 500), Err(Duration::from_millis(1_000)));
    assert_eq!(b.last_ms, 1_000);
    assert_eq!(b.try_take(1, 2_000), Ok(()));
}

#[test]
fn take_goes_into_debt_and_wait_says_until_zero() {
    let mut b = TokenBucket::new(rate(100, 10), 0);
    assert_eq!(b.wait(), None);
    b.take(10);
    assert_eq!(b.wait(), None, "exactly empty is not debt");
    // A frame of 50 with 0 left: 50 tokens of debt at 100/s.
    b.take(50);
    assert_eq!(b.wait(), Some(Duration::from_millis(500)));
    b.refill(499);
    assert_eq!(b.wait(), Some(Duration::from_millis(1)));
    // In debt nothing fits, not even 0.
    assert_eq!(b.try_take(0, 499), Err(Duration::from_millis(1)));
    b.refill(500);
    assert_eq!(b.wait(), None);
    assert_eq!(b.try_take(0, 500), Ok(()));
}

#[test]
fn retry_after_rounds_up_and_is_never_zero() {
    // 3/s: a token every 333.33 ms; the wait rounds up to 334, and 1 ms before it is 1 ms, never 0.
    let mut b = TokenBucket::new(rate(3, 1), 0);
    assert_eq!(b.try_take(1, 0), Ok(()));
    assert_eq!(b.try_take(1, 0), Err(Duration::from_millis(334)));
    assert_eq!(b.try_take(1, 333), Err(Duration::from_millis(1)));
    assert_eq!(b.try_take(1, 334), Ok(()));
    // A huge rate still refuses with at least 1 ms.
    let mut fast = TokenBucket::new(rate(u64::MAX, 1), 0);
    assert_eq!(fast.try_take(1, 0), Ok(()));
    assert_eq!(fast.try_take(1, 0), Err(Duration::from_millis(1)));
}

#[test]
fn more_than_the_burst_waits_as_if_the_burst() {
    let mut b = TokenBucket::new(rate(10, 4), 0);
    assert_eq!(b.try_take(1_000, 0), Ok(()), "full: as if 4");
    assert_eq!(tokens(&b), 0);
    assert_eq!(b.try_take(u64::MAX, 0), Err(Duration::from_millis(400)));
    assert_eq!(b.try_take(u64::MAX, 400), Ok(()));
}

#[test]
fn a_zero_rate_never_refills_and_says_so() {
    let mut b = TokenBucket::new(rate(0, 2), 0);
    assert_eq!(b.try_take(2, 0), Ok(()));
    assert_eq!(b.try_take(1, u64::MAX), Err(Duration::MAX));
    b.take(1);
    assert_eq!(b.wait(), Some(Duration::MAX));
    assert!(!b.is_full(u64::MAX));
}

#[test]
fn a_zero_burst_is_taken_as_one() {
    let mut b = TokenBucket::new(rate(1, 0), 0);
    assert_eq!(b.rate(), rate(1, 1));
    assert_eq!(b.try_take(1, 0), Ok(()));
    assert_eq!(b.try_take(1, 0), Err(Duration::from_secs(1)));
}

#[test]
fn extreme_inputs_saturate() {
    let mut b = TokenBucket::new(rate(u64::MAX, u64::MAX), u64::MAX);
    assert_eq!(b.rate(), rate(u64::MAX, u64::MAX).normalised());
    b.take(u64::MAX);
    b.take(u64::MAX);
    assert_eq!(b.level, -MAX_LEVEL, "debt is bounded");
    assert!(b.wait().is_some());
    b.refill(u64::MAX);
    b.refill(0);
    let mut slow = TokenBucket::new(rate(1, u64::MAX), 0);
    slow.take(u64::MAX);
    slow.take(u64::MAX);
    // The bounded debt at 1 token/s: long, but a number.
    assert_eq!(slow.wait(), Some(Duration::from_millis(MAX_MILLI)));
    slow.refill(u64::MAX);
    assert!(slow.is_full(u64::MAX));
    assert_eq!(slow.try_take(u64::MAX, u64::MAX), Ok(()));
}

#[test]
fn is_small() {
    assert!(std::mem::size_of::<TokenBucket>() <= 32);
}

/// xorshift64*: deterministic inputs without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Mostly small values, sometimes the edges of `u64`.
    fn value(&mut self) -> u64 {
        match self.next() % 8 {
            0 => 0,
            1 => u64::MAX - self.next() % 4,
            2 => self.next(),
            3 => self.next() % 1_000_000_000,
            _ => self.next() % 1_000,
        }
    }
}

#[test]
fn random_operations_keep_the_invariants() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2_000 {
        let r = rate(rng.value(), rng.value());
        let mut now = rng.value();
        let mut b = TokenBucket::new(r, now);
        assert!(b.is_full(now));
        for _ in 0..50 {
            let n = rng.value();
            match rng.next() % 6 {
                0 => now = now.saturating_add(rng.value()),
                // Backwards, as a clock read on another thread can be.
                1 => now = now.saturating_sub(rng.next() % 100),
                _ => {}
            }
            match rng.next() % 4 {
                0 => b.refill(now),
                1 => b.take(n),
                _ => match b.try_take(n, now) {
                    Ok(()) => assert!(b.level >= 0),
                    Err(wait) => {
                        assert!(wait >= Duration::from_millis(1), "refused with no wait");
                        let later = b.last_ms.saturating_add(wait.as_millis() as u64);
                        if wait != Duration::MAX && later < u64::MAX {
                            // Waiting as long as it said is enough.
                            let mut probe = b.clone();
                            assert_eq!(probe.try_take(n, later), Ok(()), "{r:?} n={n}");
                        }
                    }
                },
            }
            assert!(b.level <= b.cap, "tokens above the burst: {b:?}");
            assert!(b.level >= -MAX_LEVEL, "unbounded debt: {b:?}");
            assert!(b.cap >= MILLI as i64);
            assert_eq!(b.wait().is_some(), b.level < 0);
        }
    }
}
