//! `websocket.rate_limit` inside a pump: the sender's data messages and payload bytes against token
//! buckets. Refilled once per read with the clock reading the pump takes anyway; taken per data
//! frame with integer maths; control frames take nothing. Only tunnels of limited routes have one.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use prometheus::IntCounter;
use tokio::time::Sleep;

use super::shared::Shared;
use crate::config::{LimitAction, RateConfig, TrafficLimit};
use crate::limits::bucket::{Rate, TokenBucket};

pub(super) struct RateGate {
    messages: Option<TokenBucket>,
    bytes: Option<TokenBucket>,
    action: LimitAction,
    /// Armed while a throttled sender waits for its buckets to refill; kept for reuse.
    resume: Option<Pin<Box<Sleep>>>,
    throttled: bool,
    counter: IntCounter,
}

/// What a data frame did to the sender's allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Allowance {
    Within,
    /// `action: close`: the sender went over; this frame is not forwarded.
    Exceeded,
}

fn rate(config: RateConfig) -> Rate {
    Rate {
        per_second: config.per_second,
        burst: config.burst,
    }
}

impl RateGate {
    pub(super) fn new(limit: &TrafficLimit, now_ms: u64, counter: IntCounter) -> Self {
        RateGate {
            messages: limit.messages.map(|m| TokenBucket::new(rate(m), now_ms)),
            bytes: limit.bytes.map(|b| TokenBucket::new(rate(b), now_ms)),
            action: limit.action,
            resume: None,
            throttled: false,
            counter,
        }
    }

    /// Once per read, before its frames are walked.
    pub(super) fn refill(&mut self, now_ms: u64) {
        for bucket in [&mut self.messages, &mut self.bytes].into_iter().flatten() {
            bucket.refill(now_ms);
        }
    }

    /// A data frame of `payload_len` bytes ended (`message_end`: and its message with it).
    pub(super) fn frame(&mut self, payload_len: u64, message_end: bool, now_ms: u64) -> Allowance {
        let messages = u64::from(message_end);
        match self.action {
            LimitAction::Throttle => {
                // Into debt: the frame passes, and reading waits until the debt is paid.
                if let Some(bucket) = &mut self.messages {
                    bucket.take(messages);
                }
                if let Some(bucket) = &mut self.bytes {
                    bucket.take(payload_len);
                }
                Allowance::Within
            }
            LimitAction::Close => {
                let over = |bucket: &mut Option<TokenBucket>, n: u64| {
                    n > 0
                        && bucket
                            .as_mut()
                            .is_some_and(|b| b.try_take(n, now_ms).is_err())
                };
                if over(&mut self.messages, messages) || over(&mut self.bytes, payload_len) {
                    self.counter.inc();
                    Allowance::Exceeded
                } else {
                    Allowance::Within
                }
            }
        }
    }

    /// Ready when the sender may be read: at once unless a throttled sender is in debt, then once
    /// its buckets have refilled. Each pause counts once.
    pub(super) fn poll_resume(&mut self, cx: &mut Context<'_>, shared: &Shared) -> Poll<()> {
        loop {
            let Some(wait) = self.wait() else {
                self.throttled = false;
                return Poll::Ready(());
            };
            let at = tokio::time::Instant::now() + wait;
            let timer = self
                .resume
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            if !self.throttled {
                self.throttled = true;
                self.counter.inc();
                timer.as_mut().reset(at);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.refill(shared.now_ms());
            // Still short (the clock's milliseconds): wait out the rest on a re-armed timer.
            if let (Some(wait), Some(timer)) = (self.wait(), self.resume.as_mut()) {
                timer.as_mut().reset(tokio::time::Instant::now() + wait);
            }
        }
    }

    fn wait(&self) -> Option<std::time::Duration> {
        [&self.messages, &self.bytes]
            .into_iter()
            .flatten()
            .filter_map(TokenBucket::wait)
            .max()
    }
}
