//! The accept loop every listening socket runs (proxy listeners, the admin listener, the demo's echo
//! backend): accept, hand the connection on, and back off after a failed accept.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// How long to wait after a failed accept: out of file descriptors, the next accept would fail at
/// once again, so retrying at once would spin.
const BACKOFF: Duration = Duration::from_millis(50);

/// Accepts on `socket` until the task is aborted, handing each connection to `each` (which spawns
/// what serves it). `what` names the socket in the log.
pub(crate) async fn accept_forever(
    socket: TcpListener,
    what: &'static str,
    mut each: impl FnMut(TcpStream, SocketAddr),
) {
    loop {
        match socket.accept().await {
            Ok((stream, peer)) => each(stream, peer),
            Err(e) => {
                // Out of file descriptors, or a connection reset before accept.
                tracing::warn!(listener = what, error = %e, "accept failed");
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }
}
