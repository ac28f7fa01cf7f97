//! The byte streams a tunnel runs over. Each leg is one stream, owned by the tunnel and lent to
//! whichever pump reads or writes it: both pumps run in the tunnel's one task, so a TLS session
//! serves both directions without a lock, and a plain one without splitting.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::buffer::ReadBuffer;

/// One leg of a tunnel: read by the pump from this side, written by the pump toward it.
pub trait Leg: AsyncWrite + Unpin + Send {
    /// Reads into `buf`, taking its memory only once there is something to read, so an idle
    /// leg holds no read buffer.
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuffer,
    ) -> Poll<io::Result<usize>>;

    /// Makes the connection's close a reset (TCP only; a TLS leg just closes).
    fn reset_on_close(&mut self) {}

    /// Bytes written are held back until a flush (a TLS session's records that its socket
    /// could not take yet).
    fn holds_written(&self) -> bool {
        false
    }

    /// The pump writing toward this leg has ended. A plain leg sends its FIN now, as the write
    /// half that pump used to own did when it was dropped; the rest just close with the tunnel.
    fn end_writes(&mut self) {}

    /// Closing the connection is all its orderly end needs (a FIN): true for plain TCP; a TLS leg
    /// owes its peer a close_notify first.
    fn fin_on_close(&self) -> bool {
        false
    }
}

impl Leg for TcpStream {
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuffer,
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_read_ready(cx))?;
        // Through `poll_read`, not `try_read`: a short read then marks the socket drained, which
        // saves the recv that would only say EAGAIN.
        poll_read_via(self, cx, buf)
    }

    fn reset_on_close(&mut self) {
        // A zero linger makes the close an RST; it does not block, unlike a positive linger.
        #[allow(deprecated)]
        let _ = self.set_linger(Some(Duration::ZERO));
    }

    fn fin_on_close(&self) -> bool {
        true
    }

    fn end_writes(&mut self) {
        // A TCP stream's shutdown is one `shutdown(2)` and never pending, so no waker is needed.
        let mut cx = Context::from_waker(Waker::noop());
        let _ = Pin::new(self).poll_shutdown(&mut cx);
    }
}

/// A TLS stream as a leg: read through rustls's own plaintext buffer, so a read buffer is taken
/// only once a record has been decrypted.
pub struct TlsLeg<S> {
    io: S,
    /// A read error met after some bytes were read: returned by the next read (as tokio-rustls's
    /// own `poll_read` does).
    error: Option<io::Error>,
}

/// What a TLS leg asks its session.
pub trait TlsSession {
    /// Encrypted bytes wait to be written to the socket.
    fn wants_write(&self) -> bool;
}

impl<IO> TlsSession for Box<tokio_rustls::server::TlsStream<IO>> {
    fn wants_write(&self) -> bool {
        self.get_ref().1.wants_write()
    }
}

impl<IO> TlsSession for Box<tokio_rustls::client::TlsStream<IO>> {
    fn wants_write(&self) -> bool {
        self.get_ref().1.wants_write()
    }
}

impl<S: AsyncBufRead + AsyncWrite + TlsSession + Unpin + Send> Leg for TlsLeg<S> {
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuffer,
    ) -> Poll<io::Result<usize>> {
        if let Some(error) = self.error.take() {
            return Poll::Ready(finish_read(buf, Err(error)));
        }
        let mut read = 0;
        while buf.spare_len() > 0 {
            let chunk = match Pin::new(&mut self.io).poll_fill_buf(cx) {
                Poll::Ready(Ok(chunk)) => chunk,
                Poll::Ready(Err(error)) if read > 0 => {
                    self.error = Some(error);
                    break;
                }
                Poll::Ready(Err(error)) => return Poll::Ready(finish_read(buf, Err(error))),
                Poll::Pending if read > 0 => break,
                // Nothing decrypted yet: no buffer was taken.
                Poll::Pending => return Poll::Pending,
            };
            if chunk.is_empty() {
                break;
            }
            let spare = buf.spare();
            let n = chunk.len().min(spare.len());
            spare[..n].copy_from_slice(&chunk[..n]);
            Pin::new(&mut self.io).consume(n);
            buf.advance(n);
            read += n;
        }
        if read == 0 {
            // The end of the stream.
            buf.release_if_empty();
        }
        Poll::Ready(Ok(read))
    }

    fn holds_written(&self) -> bool {
        self.io.wants_write()
    }
}

/// `AsyncWrite` for a leg whose writes go straight to its `io` field: `write_through!(impl<..>
/// AsyncWrite for Leg<..>);`.
macro_rules! write_through {
    ($($head:tt)*) => {
        $($head)* {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bytes: &[u8],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.get_mut().io).poll_write(cx, bytes)
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut self.get_mut().io).poll_flush(cx)
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
            }
        }
    };
}
#[cfg(test)]
pub(super) use write_through;

write_through!(impl<S: AsyncWrite + Unpin> AsyncWrite for TlsLeg<S>);

/// Reads through `poll_read` into the buffer, which is taken for the call and given back if
/// nothing came (a spurious wakeup, or a stream that cannot tell it has bytes without reading).
pub(super) fn poll_read_via(
    io: &mut (impl AsyncRead + Unpin),
    cx: &mut Context<'_>,
    buf: &mut ReadBuffer,
) -> Poll<io::Result<usize>> {
    let mut spare = ReadBuf::new(buf.spare());
    match Pin::new(io).poll_read(cx, &mut spare) {
        Poll::Ready(read) => {
            let read = read.map(|()| spare.filled().len());
            Poll::Ready(finish_read(buf, read))
        }
        Poll::Pending => {
            buf.release_if_empty();
            Poll::Pending
        }
    }
}

/// Counts what was read; at the end of the stream the buffer goes back at once, not when the
/// tunnel ends, so a wave of closing tunnels takes no memory.
fn finish_read(buf: &mut ReadBuffer, read: io::Result<usize>) -> io::Result<usize> {
    match read {
        Ok(n) if n > 0 => buf.advance(n),
        _ => buf.release_if_empty(),
    }
    read
}

/// A connection a tunnel can run over.
pub trait TunnelIo: Send + 'static {
    type Leg: Leg;
    fn into_leg(self) -> Self::Leg;
}

impl TunnelIo for TcpStream {
    type Leg = TcpStream;
    fn into_leg(self) -> Self::Leg {
        self
    }
}

/// Boxed, as the proxy hands them over: a TLS session is over a kilobyte, kept out of the
/// tunnel's future.
impl<IO> TunnelIo for Box<tokio_rustls::server::TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Leg = TlsLeg<Self>;
    fn into_leg(self) -> Self::Leg {
        TlsLeg {
            io: self,
            error: None,
        }
    }
}

impl<IO> TunnelIo for Box<tokio_rustls::client::TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Leg = TlsLeg<Self>;
    fn into_leg(self) -> Self::Leg {
        TlsLeg {
            io: self,
            error: None,
        }
    }
}

/// A WebSocket on an HTTP/2 stream (RFC 8441), as hyper hands it over: its DATA frames are the
/// tunnel's bytes. Reading releases flow-control window as the pump takes bytes, so the client's
/// sending is bounded by the stream's window; writing waits for the client's window, so a client
/// that stops reading meets `write_timeout`. Its orderly end is END_STREAM, sent when the leg's
/// writes end or it is dropped; like a TCP client, it is closed by wsgate once both close frames
/// are through (h2 then resets the client's half with CANCEL if the client has not ended it).
pub struct H2Leg {
    io: hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>,
    reset: std::sync::Arc<super::stream_reset::StreamReset>,
}

impl Leg for H2Leg {
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuffer,
    ) -> Poll<io::Result<usize>> {
        poll_read_via(&mut self.io, cx, buf)
    }

    fn reset_on_close(&mut self) {
        // RST_STREAM CANCEL instead of END_STREAM (stream_reset.rs).
        self.reset.reset();
    }

    fn end_writes(&mut self) {
        // Closes hyper's channel to the stream's send task, which sends END_STREAM; nothing to
        // wait for here.
        let mut cx = Context::from_waker(Waker::noop());
        let _ = Pin::new(&mut self.io).poll_shutdown(&mut cx);
    }

    fn fin_on_close(&self) -> bool {
        true
    }
}

write_through!(impl AsyncWrite for H2Leg);

/// An HTTP/2 stream as hyper handed it over, and the handle that resets it.
pub struct H2Stream {
    pub stream: hyper::upgrade::Upgraded,
    pub reset: std::sync::Arc<super::stream_reset::StreamReset>,
}

impl TunnelIo for H2Stream {
    type Leg = H2Leg;
    fn into_leg(self) -> Self::Leg {
        H2Leg {
            io: hyper_util::rt::TokioIo::new(self.stream),
            reset: self.reset,
        }
    }
}
