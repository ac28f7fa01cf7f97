//! The byte streams a tunnel runs over: plain TCP (split into owned halves, lock-free) or TLS on
//! either leg (split with `tokio::io::split`, since one TLS session serves both directions).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::buffer::ReadBuffer;

/// The writing half of a tunnel leg.
pub trait TunnelWrite: AsyncWrite + Unpin + Send {
    /// Makes the connection's close a reset (TCP only; a TLS leg just closes).
    fn reset_on_close(&mut self) {}
}

impl TunnelWrite for OwnedWriteHalf {
    fn reset_on_close(&mut self) {
        // A zero linger makes the close an RST; it does not block, unlike a positive linger.
        #[allow(deprecated)]
        let _ = self.as_ref().set_linger(Some(Duration::ZERO));
    }
}

impl<T: AsyncRead + AsyncWrite + Send> TunnelWrite for WriteHalf<T> {}

/// The reading half of a tunnel leg.
pub trait TunnelRead: AsyncRead + Unpin + Send + Sized {
    /// Reads into `buf`, taking its memory only once there is something to read where the
    /// transport can tell (plain TCP); a TLS leg must read to know, so it holds its buffer.
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuffer,
    ) -> Poll<io::Result<usize>> {
        let mut spare = ReadBuf::new(buf.spare());
        let read = ready!(Pin::new(&mut *self).poll_read(cx, &mut spare));
        let read = read.map(|()| spare.filled().len());
        Poll::Ready(finish_read(buf, read))
    }
}

impl TunnelRead for OwnedReadHalf {
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuffer,
    ) -> Poll<io::Result<usize>> {
        ready!(self.as_ref().poll_read_ready(cx))?;
        // Through `poll_read`, not `try_read`: a short read then marks the socket drained, which
        // saves the recv that would only say EAGAIN.
        let mut spare = ReadBuf::new(buf.spare());
        match Pin::new(&mut *self).poll_read(cx, &mut spare) {
            Poll::Ready(read) => {
                let read = read.map(|()| spare.filled().len());
                Poll::Ready(finish_read(buf, read))
            }
            // A spurious wakeup: the buffer goes back until data really arrives.
            Poll::Pending => {
                buf.release_if_empty();
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Send> TunnelRead for ReadHalf<T> {}

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
    type Read: TunnelRead;
    type Write: TunnelWrite;
    fn split(self) -> (Self::Read, Self::Write);
}

impl TunnelIo for TcpStream {
    type Read = tokio::net::tcp::OwnedReadHalf;
    type Write = OwnedWriteHalf;
    fn split(self) -> (Self::Read, Self::Write) {
        self.into_split()
    }
}

impl<T: TunnelIo> TunnelIo for Box<T> {
    type Read = T::Read;
    type Write = T::Write;
    fn split(self) -> (Self::Read, Self::Write) {
        (*self).split()
    }
}

impl TunnelIo for tokio_rustls::server::TlsStream<TcpStream> {
    type Read = ReadHalf<Self>;
    type Write = WriteHalf<Self>;
    fn split(self) -> (Self::Read, Self::Write) {
        tokio::io::split(self)
    }
}

impl TunnelIo for tokio_rustls::client::TlsStream<TcpStream> {
    type Read = ReadHalf<Self>;
    type Write = WriteHalf<Self>;
    fn split(self) -> (Self::Read, Self::Write) {
        tokio::io::split(self)
    }
}
