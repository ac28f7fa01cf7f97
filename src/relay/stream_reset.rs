//! RST_STREAM CANCEL for a WebSocket on an HTTP/2 stream where a TCP tunnel would be aborted.
//!
//! hyper hands a stream over as an `Upgraded` whose writes go to a send task of hyper's own; when
//! the `Upgraded` is dropped, that task ends the stream with END_STREAM, an orderly end. To abort
//! instead, the send task must go without sending it: then the stream is dropped unfinished and h2
//! resets it with CANCEL. hyper spawns that task through wsgate's executor in the same poll in
//! which it sends the stream's 200, so the answer arms a `StreamReset` on the thread for the
//! executor to attach to the very next task it spawns there (`arm`, `take_armed`, `Resettable`).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;

/// Shared by a tunnel's HTTP/2 leg and the stream's send task.
#[derive(Default)]
pub struct StreamReset {
    reset: AtomicBool,
    waker: AtomicWaker,
}

impl StreamReset {
    /// The stream is to be reset, not ended: its send task stops without END_STREAM.
    pub fn reset(&self) {
        self.reset.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn is_reset(&self) -> bool {
        self.reset.load(Ordering::Acquire)
    }
}

thread_local! {
    static ARMED: RefCell<Option<Arc<StreamReset>>> = const { RefCell::new(None) };
}

/// Called as a stream's 200 leaves wsgate's service, inside hyper's poll that spawns its send task.
pub fn arm(reset: Arc<StreamReset>) {
    ARMED.with(|armed| *armed.borrow_mut() = Some(reset));
}

/// The handle armed in the current poll, if any (for the task being spawned now).
pub fn take_armed() -> Option<Arc<StreamReset>> {
    ARMED.with(|armed| armed.borrow_mut().take())
}

/// A task hyper spawned, stopped without another poll once its stream is reset. It also clears
/// what its poll armed and nothing took, so that a handle never reaches another stream's task.
pub struct Resettable<F> {
    future: F,
    reset: Option<Arc<StreamReset>>,
}

impl<F> Resettable<F> {
    pub fn new(future: F, reset: Option<Arc<StreamReset>>) -> Self {
        Resettable { future, reset }
    }
}

impl<F: Future<Output = ()> + Unpin> Future for Resettable<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(reset) = &self.reset {
            reset.waker.register(cx.waker());
            if reset.is_reset() {
                return Poll::Ready(());
            }
        }
        let polled = Pin::new(&mut self.future).poll(cx);
        drop(take_armed());
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reset_task_stops_without_another_poll_and_an_armed_handle_goes_to_one_task() {
        let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = polls.clone();
        let forever = Box::pin(std::future::poll_fn(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            Poll::<()>::Pending
        }));
        arm(Arc::new(StreamReset::default()));
        let reset = take_armed().expect("armed");
        assert!(take_armed().is_none(), "taken once");
        let task = tokio::spawn(Resettable::new(forever, Some(reset.clone())));
        tokio::task::yield_now().await;
        reset.reset();
        task.await.expect("the task ends");
        assert_eq!(polls.load(Ordering::SeqCst), 1);

        // What a poll arms and no spawn takes is gone after that poll.
        let mut arming = Resettable::new(
            Box::pin(async { arm(Arc::new(StreamReset::default())) }),
            None,
        );
        let waker = std::task::Waker::noop();
        assert!(Pin::new(&mut arming)
            .poll(&mut Context::from_waker(waker))
            .is_ready());
        assert!(take_armed().is_none());
    }
}
