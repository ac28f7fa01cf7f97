//! The byte streams a run goes over, plain TCP or TLS, and the connectors that open them. The kind is
//! chosen once per run (every mode is generic over `Connect`), so a plain run dispatches nothing per
//! message: its code is today's `TcpStream` code.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite, Interest};
use tokio::net::TcpStream;

use crate::ws::Url;

/// What one `Stream::exchange` did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Progress {
    /// Bytes of `out` taken.
    pub wrote: usize,
    /// Bytes read into `buf` (`Some(0)`: end of stream); `None`: nothing to read yet.
    pub read: Option<usize>,
}

/// A connected stream that can write and read at once from one task.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Waits until some of `out` is written or some bytes are read into `buf` (both, when both are
    /// ready). With `out` empty, it only reads (a TLS stream first flushes what it has buffered).
    fn exchange(
        &mut self,
        out: &[u8],
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<Progress>> + Send;
}

impl Stream for TcpStream {
    /// Readiness, then `try_write` / `try_read`: one syscall per direction per wake-up.
    async fn exchange(&mut self, out: &[u8], buf: &mut [u8]) -> io::Result<Progress> {
        let interest = if out.is_empty() {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        let ready = self.ready(interest).await?;
        let mut progress = Progress::default();
        if ready.is_writable() && !out.is_empty() {
            match self.try_write(out) {
                Ok(n) => progress.wrote = n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if ready.is_readable() {
            match self.try_read(buf) {
                Ok(n) => progress.read = Some(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(progress)
    }
}

/// Opens connections to one target; cheap to clone, shared by every task of a run.
pub trait Connect: Clone + Send + Sync + 'static {
    type Stream: Stream;

    /// A connected stream, TLS handshake (if any) done, ready for the WebSocket handshake.
    fn connect(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// JSON fields to append to the run's line: `,"tls":...` on TLS, nothing on plain TCP.
    fn json_fields(&self) -> String;
}

/// Plain TCP to an address resolved once, so that no connect waits on a name lookup.
#[derive(Clone)]
pub struct Plain {
    addr: SocketAddr,
}

impl Plain {
    pub async fn new(url: &Url) -> Result<Self, String> {
        Ok(Plain {
            addr: resolve(&url.authority).await?,
        })
    }
}

impl Connect for Plain {
    type Stream = TcpStream;

    async fn connect(&self) -> io::Result<TcpStream> {
        let stream = TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn json_fields(&self) -> String {
        String::new()
    }
}

/// The first address of `authority`, IPv4 first: the bench's servers listen on 127.0.0.1, and a
/// `localhost` that also names `::1` would otherwise cost a refused connect each time.
pub async fn resolve(authority: &str) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(authority)
        .await
        .map_err(|e| format!("{authority}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{authority}: no address"))
}
