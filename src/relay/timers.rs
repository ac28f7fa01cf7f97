//! The tunnel's timers, one future each, off the frame path: the drain close on shutdown, and the
//! watchdog for keepalive pings and the idle timeout.

use std::time::Duration;

use super::shared::Shared;
use crate::config::Keepalive;
use crate::drain::DrainSignal;
use wsgate_proto::close::CloseCode;
use wsgate_proto::tracker::Sender;

/// On shutdown, at this tunnel's random moment of the drain window, the client gets a close frame
/// (written by the upstream -> client pump between frames). Its close reply then reaches the upstream
/// as an ordinary relayed close, so nothing the client sent before it is lost. Never completes.
pub(super) async fn drain_close(mut drain: DrainSignal, shared: &Shared) {
    let plan = drain.started().await;
    let at = plan.started + plan.spread.mul_f64(rand::random::<f64>());
    // Boxed: a timer is over a hundred bytes, which every idle tunnel would hold for a drain.
    Box::pin(tokio::time::sleep_until(at)).await;
    shared.toward(Sender::Client).post_close(plan.close_code);
    std::future::pending().await
}

/// Why the watchdog ends a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// This side did not answer a keepalive ping in time.
    Dead(Sender),
    /// No data frame in either direction for `idle_timeout`.
    Idle,
}

/// Sleeps until the next deadline and acts: pings a side silent for `interval`, declares it dead when
/// `timeout` passes with nothing heard, ends an idle tunnel. Pending forever when neither is set.
pub(super) async fn watchdog(
    shared: &Shared,
    keepalive: Option<Keepalive>,
    idle_timeout: Option<Duration>,
) -> Verdict {
    if keepalive.is_none() && idle_timeout.is_none() {
        return std::future::pending().await;
    }
    let ms = |d: Duration| d.as_millis() as u64;
    // When the outstanding ping to each side was sent.
    let mut ping_sent: [Option<u64>; 2] = [None, None];
    loop {
        let now = shared.now_ms();
        let mut next = u64::MAX;
        if let Some(idle) = idle_timeout {
            let deadline = shared.last_data() + ms(idle);
            if now >= deadline {
                return Verdict::Idle;
            }
            next = next.min(deadline);
        }
        if let Some(ka) = keepalive {
            for (i, side) in [Sender::Client, Sender::Upstream].into_iter().enumerate() {
                let heard = shared.last_heard(side);
                if ping_sent[i].is_some_and(|sent| heard >= sent) {
                    // Anything at all since the ping proves the peer alive.
                    ping_sent[i] = None;
                }
                match ping_sent[i] {
                    Some(sent) if now >= sent + ms(ka.timeout) => return Verdict::Dead(side),
                    Some(sent) => next = next.min(sent + ms(ka.timeout)),
                    None if now >= heard + ms(ka.interval) => {
                        if send_ping(shared, side) {
                            ping_sent[i] = Some(now);
                            next = next.min(now + ms(ka.timeout));
                        } else {
                            next = next.min(now + 100);
                        }
                    }
                    None => next = next.min(heard + ms(ka.interval)),
                }
            }
        }
        tokio::time::sleep_until(shared.at_ms(next)).await;
    }
}

/// Asks the writer toward `side` for a ping carrying a fresh random token; its pong will not be relayed.
fn send_ping(shared: &Shared, side: Sender) -> bool {
    let token = rand::random::<u64>() | 1;
    shared.set_ping_token(side, token);
    shared.toward(side).post_ping(token)
}

/// The code each side gets when the watchdog ends the tunnel: the live side of a dead peer gets 1001
/// "going away"; on idle, both do.
pub(super) fn closes(verdict: Verdict) -> &'static [(Sender, CloseCode)] {
    const AWAY: CloseCode = CloseCode::GOING_AWAY;
    match verdict {
        Verdict::Dead(Sender::Client) => &[(Sender::Upstream, AWAY)],
        Verdict::Dead(Sender::Upstream) => &[(Sender::Client, AWAY)],
        Verdict::Idle => &[(Sender::Client, AWAY), (Sender::Upstream, AWAY)],
    }
}
