//! Taps: frames of one tunnel as it carries them, for `GET /tunnels/{id}/tap`. The pumps look at one
//! relaxed atomic per read; only while a tap is attached do they copy a frame's header (and, when
//! asked for, the front of its payload) into a bounded broadcast channel. A tap that falls behind
//! loses the oldest lines and is told how many; the tunnel never waits for it.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast;
use wsgate_proto::frame::{parse_header, FrameHeader};
use wsgate_proto::mask::apply_mask;
use wsgate_proto::tracker::Sender;

/// Lines a tap may fall behind by before the oldest are dropped.
pub const TAP_BACKLOG: usize = 1024;

/// Payload bytes a tap may ask for at most.
pub const MAX_TAP_PAYLOAD: usize = 64 * 1024;

/// One frame as a tap sees it.
#[derive(Debug)]
pub struct TapFrame {
    pub sender: Sender,
    pub header: FrameHeader,
    /// Milliseconds since the tunnel started.
    pub at_ms: u64,
    /// The front of the payload, unmasked (empty unless a tap asked for payloads).
    pub payload: Box<[u8]>,
}

#[derive(Default)]
pub(super) struct TapHub {
    /// Taps attached; the pumps read it once per read.
    attached: AtomicUsize,
    /// Payload bytes the taps attached want at most.
    payload: AtomicU32,
    /// `None` before the first tap and after the tunnel ended.
    channel: Mutex<Option<broadcast::Sender<Arc<TapFrame>>>>,
    /// Set under `channel`'s lock as the tunnel ends, so that no tap attaches after its end.
    ended: std::sync::atomic::AtomicBool,
}

/// A tap's end of the channel; detaches when dropped.
pub struct TapReceiver {
    pub(super) frames: broadcast::Receiver<Arc<TapFrame>>,
    pub(super) tunnel: Arc<super::LiveTunnel>,
}

impl TapReceiver {
    pub async fn recv(&mut self) -> Result<Arc<TapFrame>, broadcast::error::RecvError> {
        self.frames.recv().await
    }
}

impl Drop for TapReceiver {
    fn drop(&mut self) {
        let hub = &self.tunnel.shared.tap;
        if hub.attached.fetch_sub(1, Ordering::Relaxed) == 1 {
            hub.payload.store(0, Ordering::Relaxed);
        }
    }
}

impl TapHub {
    /// The only cost of taps to a tunnel that has none.
    pub(super) fn is_attached(&self) -> bool {
        self.attached.load(Ordering::Relaxed) != 0
    }

    /// Attaches a tap wanting up to `payload` bytes of each frame; `None` once the tunnel ended.
    pub(super) fn attach(&self, payload: usize) -> Option<broadcast::Receiver<Arc<TapFrame>>> {
        let mut channel = self.channel.lock().unwrap_or_else(PoisonError::into_inner);
        if self.ended.load(Ordering::Relaxed) {
            return None;
        }
        let receiver = match channel.as_ref() {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = broadcast::channel(TAP_BACKLOG);
                *channel = Some(sender);
                receiver
            }
        };
        let payload = payload.min(MAX_TAP_PAYLOAD) as u32;
        self.payload.fetch_max(payload, Ordering::Relaxed);
        self.attached.fetch_add(1, Ordering::Relaxed);
        Some(receiver)
    }

    /// The tunnel ended: taps read what is queued, then see the channel closed.
    pub(super) fn end(&self) {
        let mut channel = self.channel.lock().unwrap_or_else(PoisonError::into_inner);
        self.ended.store(true, Ordering::Relaxed);
        channel.take();
    }

    /// A copy of the frame at the front of `bytes` (as the sender sent it), or `None` while its
    /// header is incomplete or invalid. Called only while a tap is attached.
    pub(super) fn peek(&self, sender: Sender, bytes: &[u8], at_ms: u64) -> Option<TapFrame> {
        let (header, header_len) = parse_header(bytes).ok().flatten()?;
        let want = (self.payload.load(Ordering::Relaxed) as usize)
            .min(usize::try_from(header.payload_len).unwrap_or(usize::MAX));
        let available = &bytes[header_len..];
        let mut payload: Box<[u8]> = available[..want.min(available.len())].into();
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key, 0);
        }
        Some(TapFrame {
            sender,
            header,
            at_ms,
            payload,
        })
    }

    /// Hands a frame to every tap; never waits.
    pub(super) fn send(&self, frame: TapFrame) {
        let channel = self.channel.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = channel.as_ref() {
            let _ = sender.send(Arc::new(frame));
        }
    }
}
