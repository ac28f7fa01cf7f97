//! Errors of the proxy layer and the one mapping from each to the HTTP status the client gets.

use http::StatusCode;

use crate::metrics::names;
use crate::upstream::ConnectError;
use wsgate_proto::handshake::HandshakeError;

/// Which side a failure came from (decides the status and the metric result).
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no route matches")]
    NoRoute,
    /// The route's `websocket.max_connections` tunnels are open.
    #[error("the route is at its tunnel limit")]
    OverCapacity,
    /// The client's upgrade request broke a rule.
    #[error("bad upgrade request: {0}")]
    ClientHandshake(#[source] HandshakeError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The client closed its connection before its request body was whole (nginx's 499).
    #[error("the client closed its connection inside the request body")]
    ClientGone,
    /// The client's request body broke HTTP/1.1 framing (a bad chunk).
    #[error("bad request body: {0}")]
    ClientBody(String),
    /// The backend failed while we sent the request or read its answer.
    #[error("upstream failed: {0}")]
    Upstream(String),
    /// The upstream accepted the connection but sent no response head within `response_timeout`.
    #[error("upstream {endpoint} did not answer within {timeout:?}")]
    ResponseTimeout {
        endpoint: String,
        timeout: std::time::Duration,
    },
    /// The backend's 101 broke a rule: never a tunnel.
    #[error("bad upgrade response from upstream: {0}")]
    UpstreamHandshake(#[source] HandshakeError),
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::OverCapacity => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::ClientHandshake(e) => e.status(),
            ProxyError::ClientGone => super::client_closed(),
            ProxyError::ClientBody(_) => StatusCode::BAD_REQUEST,
            ProxyError::Connect(ConnectError::Timeout { .. }) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Connect(ConnectError::Failed { .. }) => StatusCode::BAD_GATEWAY,
            ProxyError::Connect(ConnectError::Tls { .. }) => StatusCode::BAD_GATEWAY,
            ProxyError::Connect(ConnectError::NoHealthyEndpoint { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::ResponseTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamHandshake(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The `result` label of `wsgate_ws_handshakes_total`.
    pub fn handshake_result(&self) -> &'static str {
        match self {
            ProxyError::NoRoute => names::NO_ROUTE_RESULT,
            ProxyError::OverCapacity => "over_capacity",
            ProxyError::ClientHandshake(e) => e.result_label(),
            // Upgrades carry no body; these cannot happen on that path.
            ProxyError::ClientGone | ProxyError::ClientBody(_) => "bad_request",
            ProxyError::Connect(ConnectError::Timeout { .. }) => "timeout",
            ProxyError::Connect(ConnectError::Failed { .. }) => "upstream_unavailable",
            ProxyError::Connect(ConnectError::Tls { .. }) => "upstream_unavailable",
            ProxyError::Connect(ConnectError::NoHealthyEndpoint { .. }) => "upstream_unavailable",
            ProxyError::ResponseTimeout { .. } => "timeout",
            ProxyError::Upstream(_) => "upstream_unavailable",
            ProxyError::UpstreamHandshake(e) => e.result_label(),
        }
    }

    pub fn response_headers(&self) -> http::HeaderMap {
        match self {
            ProxyError::ClientHandshake(e) => e.response_headers(),
            _ => http::HeaderMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn statuses() {
        assert_eq!(ProxyError::NoRoute.status(), StatusCode::NOT_FOUND);
        assert_eq!(ProxyError::NoRoute.handshake_result(), "no_route");
        let timeout = ProxyError::Connect(ConnectError::Timeout {
            endpoint: "a:1".into(),
            timeout: Duration::from_secs(1),
        });
        assert_eq!(timeout.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(timeout.handshake_result(), "timeout");
        let refused = ProxyError::Connect(ConnectError::Failed {
            endpoint: "a:1".into(),
            source: std::io::ErrorKind::ConnectionRefused.into(),
        });
        assert_eq!(refused.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(refused.handshake_result(), "upstream_unavailable");
        assert_eq!(
            ProxyError::OverCapacity.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(ProxyError::OverCapacity.handshake_result(), "over_capacity");
        let none = ProxyError::Connect(ConnectError::NoHealthyEndpoint {
            upstream: "u".into(),
        });
        assert_eq!(none.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(none.handshake_result(), "upstream_unavailable");
        let slow = ProxyError::ResponseTimeout {
            endpoint: "a:1".into(),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(slow.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(slow.handshake_result(), "timeout");
        let upstream = ProxyError::Upstream("reset".into());
        assert_eq!(upstream.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(ProxyError::ClientGone.status().as_u16(), 499);
        let chunk = ProxyError::ClientBody("bad chunk".into());
        assert_eq!(chunk.status(), StatusCode::BAD_REQUEST);
    }

    /// Fails to compile when a variant is added, so that the label test below covers it.
    fn every_handshake_error() -> Vec<HandshakeError> {
        use HandshakeError::*;
        let all = vec![
            MethodNotGet("POST".into()),
            DuplicateHeader("upgrade"),
            NoConnectionUpgrade,
            HasBody,
            UnsupportedVersion(None),
            MissingKey,
            BadKey,
            BadProtocolSyntax,
            BadExtensionSyntax,
            ForbiddenOrigin(None),
            UpstreamNotUpgraded,
            BadAccept,
            BadSubprotocol("x".into()),
            BadExtension("x".into()),
        ];
        for e in &all {
            match e {
                MethodNotGet(_)
                | DuplicateHeader(_)
                | NoConnectionUpgrade
                | HasBody
                | UnsupportedVersion(_)
                | MissingKey
                | BadKey
                | BadProtocolSyntax
                | BadExtensionSyntax
                | ForbiddenOrigin(_)
                | UpstreamNotUpgraded
                | BadAccept
                | BadSubprotocol(_)
                | BadExtension(_) => {}
            }
        }
        all
    }

    /// The series created at 0 per route are exactly the results a routed upgrade can get.
    #[test]
    fn handshake_results_are_listed_for_the_metrics() {
        let io = || std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let mut errors: Vec<ProxyError> = every_handshake_error()
            .into_iter()
            .flat_map(|e| {
                [
                    ProxyError::ClientHandshake(e.clone()),
                    ProxyError::UpstreamHandshake(e),
                ]
            })
            .collect();
        errors.extend([
            ProxyError::OverCapacity,
            ProxyError::Connect(ConnectError::Timeout {
                endpoint: "a:1".into(),
                timeout: Duration::from_secs(1),
            }),
            ProxyError::Connect(ConnectError::Failed {
                endpoint: "a:1".into(),
                source: io(),
            }),
            ProxyError::Connect(ConnectError::Tls {
                endpoint: "a:1".into(),
                message: "x".into(),
            }),
            ProxyError::Connect(ConnectError::NoHealthyEndpoint {
                upstream: "u".into(),
            }),
            ProxyError::Upstream("reset".into()),
            ProxyError::ResponseTimeout {
                endpoint: "a:1".into(),
                timeout: Duration::from_secs(1),
            },
            ProxyError::ClientGone,
            ProxyError::ClientBody("bad chunk".into()),
        ]);
        for e in &errors {
            match e {
                ProxyError::NoRoute
                | ProxyError::OverCapacity
                | ProxyError::ClientGone
                | ProxyError::ClientBody(_)
                | ProxyError::ClientHandshake(_)
                | ProxyError::Connect(_)
                | ProxyError::Upstream(_)
                | ProxyError::ResponseTimeout { .. }
                | ProxyError::UpstreamHandshake(_) => {}
            }
        }
        // upgrade.rs labels a tunnel `ok` and a non-101 answer `upstream_rejected`.
        let mut produced: Vec<&str> = errors.iter().map(ProxyError::handshake_result).collect();
        produced.extend(["ok", "upstream_rejected"]);
        produced.sort_unstable();
        produced.dedup();
        let mut listed = names::HANDSHAKE_RESULTS.to_vec();
        listed.sort_unstable();
        assert_eq!(produced, listed);
        assert_eq!(
            ProxyError::NoRoute.handshake_result(),
            names::NO_ROUTE_RESULT
        );
    }
}
