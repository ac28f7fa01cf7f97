//! The byte streams a tunnel runs over: plain TCP (split into owned halves, lock-free) or TLS on
//! either leg (split with `tokio::io::split`, since one TLS session serves both directions).

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

/// The writing half of a tunnel leg.
pub trait TunnelWrite: AsyncWrite + Unpin + Send {
    /// Writes what fits without waiting; `WouldBlock` when nothing does (or the transport cannot say).
    fn try_write_now(&mut self, _buf: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }

    /// Makes the connection's close a reset (TCP only; a TLS leg just closes).
    fn reset_on_close(&mut self) {}
}

impl TunnelWrite for OwnedWriteHalf {
    fn try_write_now(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.try_write(buf)
    }

    fn reset_on_close(&mut self) {
        // A zero linger makes the close an RST; it does not block, unlike a positive linger.
        #[allow(deprecated)]
        let _ = self.as_ref().set_linger(Some(Duration::ZERO));
    }
}

impl<T: AsyncRead + AsyncWrite + Send> TunnelWrite for WriteHalf<T> {}

/// A connection a tunnel can run over.
pub trait TunnelIo: Send + 'static {
    type Read: AsyncRead + Unpin + Send;
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
