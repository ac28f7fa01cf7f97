//! A tunnel as the rest of wsgate sees it while it runs (the admin API's `/tunnels`): what it is,
//! fixed at its start, and its live state, read from the atomics its pumps keep anyway, never by a
//! message to its task. Closing from outside posts to its mailboxes, as a drain does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use wsgate_proto::tracker::Sender;

use super::control::CloseReason;
use super::shared::Shared;
use super::tap::TapReceiver;
use crate::metrics::Transport;

/// What a tunnel is: set once, before its relay starts.
#[derive(Debug, Clone)]
pub struct TunnelInfo {
    pub id: u64,
    pub route: Arc<str>,
    pub listener: Arc<str>,
    /// The TCP peer (the PROXY protocol's source where the listener takes it).
    pub client: SocketAddr,
    pub upstream: Arc<str>,
    pub endpoint: Arc<str>,
    pub transport: Transport,
    pub subprotocol: Option<Box<str>>,
    /// The `Sec-WebSocket-Extensions` the client got.
    pub extensions: Option<Box<str>>,
    /// Who the route's auth admitted (JWT `sub`, or forward auth's identity header).
    pub subject: Option<Box<str>>,
}

pub struct LiveTunnel {
    pub info: TunnelInfo,
    pub(super) shared: Shared,
    ended: Notify,
}

/// Traffic one side sent so far (as `/tunnels` shows it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Traffic {
    pub frames: u64,
    pub messages: u64,
    /// Payload bytes.
    pub bytes: u64,
}

/// A tunnel's state at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    pub age: Duration,
    pub from_client: Traffic,
    pub from_upstream: Traffic,
    /// Since the start, when the last data frame passed either way (its start until one did).
    pub last_data: Duration,
    pub pings_answered: u64,
    pub state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Open,
    /// A close frame was sent or asked for: the close handshake runs.
    Closing,
    /// The relay has ended.
    Closed,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Closing => "closing",
            State::Closed => "closed",
        }
    }
}

impl LiveTunnel {
    pub fn new(info: TunnelInfo) -> Self {
        LiveTunnel {
            info,
            shared: Shared::new(),
            ended: Notify::new(),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let traffic = |sender| {
            let (frames, messages, bytes) = self.shared.traffic(sender);
            Traffic {
                frames,
                messages,
                bytes,
            }
        };
        let state = if self.shared.has_ended() {
            State::Closed
        } else if self.shared.is_closing() || self.shared.admin_close_asked() {
            State::Closing
        } else {
            State::Open
        };
        Snapshot {
            age: self.shared.age(),
            from_client: traffic(Sender::Client),
            from_upstream: traffic(Sender::Upstream),
            last_data: Duration::from_millis(self.shared.last_data()),
            pings_answered: self.shared.pings_answered(),
            state,
        }
    }

    /// Asks for a close frame with `code` and `reason` to both sides, between frames, as a drain
    /// does; the tunnel then waits for the close handshake up to its close grace. The first close
    /// asked for wins. `reason` is cut to `MAX_REASON_LEN` bytes.
    pub fn close(&self, code: u16, reason: &str) {
        self.shared.set_admin_reason(reason);
        for side in [Sender::Client, Sender::Upstream] {
            self.shared
                .toward(side)
                .post_close_because(code, CloseReason::Admin);
        }
    }

    /// Resolves once the relay has ended (at once if it has).
    pub async fn ended(&self) {
        loop {
            let notified = self.ended.notified();
            if self.shared.has_ended() {
                return;
            }
            notified.await;
        }
    }

    /// The relay has ended (or never started): taps end, waiters wake.
    pub fn end(&self) {
        self.shared.set_ended();
        self.shared.tap.end();
        self.ended.notify_waiters();
    }

    /// Attaches a tap; `None` once the tunnel has ended.
    pub fn tap(self: &Arc<Self>, payload: usize) -> Option<TapReceiver> {
        let frames = self.shared.tap.attach(payload)?;
        Some(TapReceiver {
            frames,
            tunnel: self.clone(),
        })
    }

    /// When the tunnel started by the wall clock: now less its age, so that a tunnel's start
    /// reads no second clock (only the monotonic one its timers use).
    pub fn started(&self) -> SystemTime {
        SystemTime::now() - self.shared.age()
    }

    /// Whether the relay has ended.
    pub fn has_ended(&self) -> bool {
        self.shared.has_ended()
    }
}
