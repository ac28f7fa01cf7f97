//! Why no connection to an upstream could be made, with its cause kept, and which side a failure
//! is on (pingora's `ErrorSource`: downstream, upstream, internal).

use std::error::Error as _;
use std::io;
use std::time::Duration;

use rustls::pki_types::InvalidDnsNameError;

/// Which party a failure is on: it decides whose fault the status says it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client: a bad or abandoned request (4xx, 499).
    Client,
    /// The backend: unreachable, slow or misbehaving (502, 503, 504).
    Upstream,
    /// wsgate itself: one of its own limits, or a bug (500 for a bug).
    Internal,
}

/// Why no connection to the upstream could be made; decides 502, 503 or 504.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP and TLS together took longer than `connect_timeout`.
    #[error("connect to {endpoint} timed out after {timeout:?}")]
    Timeout { endpoint: String, timeout: Duration },
    /// TCP (or the I/O under a TLS handshake) failed: refused, unreachable, reset.
    #[error("connect to {endpoint} failed: {source}")]
    Failed {
        endpoint: String,
        #[source]
        source: io::Error,
    },
    /// The TLS handshake was refused: a certificate that does not verify, an alert.
    #[error("TLS handshake with {endpoint} failed: {source}")]
    Tls {
        endpoint: String,
        #[source]
        source: rustls::Error,
    },
    /// The endpoint's host is no name a certificate can be verified for (and no `server_name`).
    #[error("TLS handshake with {endpoint} failed: {source}")]
    ServerName {
        endpoint: String,
        #[source]
        source: InvalidDnsNameError,
    },
    /// The pooled HTTP client could not connect (TCP or TLS inside hyper-util).
    #[error("connect to {endpoint} failed: {source}")]
    Pooled {
        endpoint: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("every endpoint of upstream {upstream:?} is ejected or failing health checks")]
    NoHealthyEndpoint { upstream: String },
}

impl ConnectError {
    /// Every connect failure is the backend's: a bad endpoint name is a property of the upstream.
    pub fn side(&self) -> Side {
        match self {
            ConnectError::Timeout { .. }
            | ConnectError::Failed { .. }
            | ConnectError::Tls { .. }
            | ConnectError::ServerName { .. }
            | ConnectError::Pooled { .. }
            | ConnectError::NoHealthyEndpoint { .. } => Side::Upstream,
        }
    }

    /// A connect failure of the pooled client: a timeout when an I/O cause says so (504), else a
    /// failure with the whole error kept (502).
    pub fn pooled(
        endpoint: &str,
        timeout: Duration,
        source: hyper_util::client::legacy::Error,
    ) -> ConnectError {
        let mut cause = source.source();
        while let Some(c) = cause {
            if let Some(io) = c.downcast_ref::<io::Error>() {
                if io.kind() == io::ErrorKind::TimedOut {
                    return ConnectError::Timeout {
                        endpoint: endpoint.to_owned(),
                        timeout,
                    };
                }
                break;
            }
            cause = c.source();
        }
        ConnectError::Pooled {
            endpoint: endpoint.to_owned(),
            source,
        }
    }

    /// A failed TLS handshake as tokio-rustls reports it: the rustls error when there is one, else
    /// the I/O error under it.
    pub fn tls(endpoint: &str, error: io::Error) -> ConnectError {
        let endpoint = endpoint.to_owned();
        if error
            .get_ref()
            .is_none_or(|inner| !inner.is::<rustls::Error>())
        {
            return ConnectError::Failed {
                endpoint,
                source: error,
            };
        }
        let kind = error.kind();
        match error.into_inner().map(|e| e.downcast::<rustls::Error>()) {
            Some(Ok(source)) => ConnectError::Tls {
                endpoint,
                source: *source,
            },
            // Not reached (checked above); kept as the I/O error it was.
            Some(Err(other)) => ConnectError::Failed {
                endpoint,
                source: io::Error::new(kind, other),
            },
            None => ConnectError::Failed {
                endpoint,
                source: kind.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_refused_tls_handshake_keeps_its_rustls_error() {
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        let io = io::Error::new(io::ErrorKind::InvalidData, alert.clone());
        match ConnectError::tls("a:1", io) {
            ConnectError::Tls { endpoint, source } => {
                assert_eq!(endpoint, "a:1");
                assert_eq!(source, alert);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn io_failing_under_a_tls_handshake_is_a_failed_connect() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        let error = ConnectError::tls("a:1", reset);
        assert!(matches!(&error, ConnectError::Failed { source, .. }
            if source.kind() == io::ErrorKind::ConnectionReset));
        assert!(error.source().is_some());
        let other = io::Error::other("not rustls");
        assert!(matches!(
            ConnectError::tls("a:1", other),
            ConnectError::Failed { .. }
        ));
    }

    #[test]
    fn every_connect_failure_is_the_upstreams() {
        let errors = [
            ConnectError::Timeout {
                endpoint: "a:1".into(),
                timeout: Duration::from_secs(1),
            },
            ConnectError::Failed {
                endpoint: "a:1".into(),
                source: io::ErrorKind::ConnectionRefused.into(),
            },
            ConnectError::NoHealthyEndpoint {
                upstream: "u".into(),
            },
        ];
        for e in errors {
            assert_eq!(e.side(), Side::Upstream, "{e:?}");
        }
    }
}
