//! Errors of the proxy layer: each keeps its cause, names the side that failed, and maps to the one
//! HTTP status the client gets and the `result` label of its handshake metric.

use std::time::Duration;

use http::StatusCode;

use super::access::AccessError;
use super::backend::LegError;
use crate::metrics::names;
use crate::upstream::{ConnectError, Side};
use wsgate_proto::handshake::HandshakeError;
use wsgate_proto::head::HeadError;

/// The pooled client's error: for a request that reached the upstream, or whose body failed.
type ClientError = hyper_util::client::legacy::Error;

/// Why a request got an answer of wsgate's own rather than the upstream's.
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
    #[error("the client closed its connection inside the request body: {source}")]
    ClientGone {
        #[source]
        source: ClientError,
    },
    /// The client's request body broke HTTP/1.1 framing (a bad chunk).
    #[error("bad request body: {source}")]
    ClientBody {
        #[source]
        source: ClientError,
    },
    /// The backend failed while the pooled client sent the request or read its answer.
    #[error("upstream failed: {endpoint}: {source}")]
    Upstream {
        endpoint: String,
        #[source]
        source: ClientError,
    },
    /// The backend failed on the upgrade connection before its final response head, or sent a bad one.
    #[error("upstream failed: {endpoint}: {source}")]
    UpstreamUpgrade {
        endpoint: String,
        #[source]
        source: LegError,
    },
    /// The upstream accepted the connection but sent no response head within `response_timeout`.
    #[error("upstream {endpoint} did not answer within {timeout:?}")]
    ResponseTimeout { endpoint: String, timeout: Duration },
    /// The backend's 101 broke a rule: never a tunnel.
    #[error("bad upgrade response from upstream: {0}")]
    UpstreamHandshake(#[source] HandshakeError),
    /// wsgate could not build the upstream request from parts it had validated: a bug of its own.
    #[error("building the upstream request failed: {0}")]
    BuildRequest(#[source] http::Error),
    /// The same for the hand-written upgrade request head.
    #[error("building the upstream upgrade request failed: {0}")]
    BuildHead(#[source] HeadError),
    /// An access check (token, auth service, per-client limit) refused the request.
    #[error(transparent)]
    Access(#[from] AccessError),
}

impl ProxyError {
    /// Whose failure it is.
    pub fn side(&self) -> Side {
        match self {
            ProxyError::NoRoute
            | ProxyError::ClientHandshake(_)
            | ProxyError::ClientGone { .. }
            | ProxyError::ClientBody { .. } => Side::Client,
            ProxyError::Connect(e) => e.side(),
            ProxyError::Upstream { .. }
            | ProxyError::UpstreamUpgrade { .. }
            | ProxyError::ResponseTimeout { .. }
            | ProxyError::UpstreamHandshake(_) => Side::Upstream,
            ProxyError::OverCapacity | ProxyError::BuildRequest(_) | ProxyError::BuildHead(_) => {
                Side::Internal
            }
            ProxyError::Access(AccessError::AuthService(_)) => Side::Upstream,
            ProxyError::Access(_) => Side::Client,
        }
    }

    /// The status the client gets: the one mapping, row by row in the test below.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::OverCapacity => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::ClientHandshake(e) => e.status(),
            ProxyError::ClientGone { .. } => super::client_closed(),
            ProxyError::ClientBody { .. } => StatusCode::BAD_REQUEST,
            ProxyError::Connect(e) => match e {
                ConnectError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
                ConnectError::Failed { .. }
                | ConnectError::Tls { .. }
                | ConnectError::ServerName { .. }
                | ConnectError::Pooled { .. } => StatusCode::BAD_GATEWAY,
                ConnectError::NoHealthyEndpoint { .. } => StatusCode::SERVICE_UNAVAILABLE,
            },
            ProxyError::ResponseTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Upstream { .. } | ProxyError::UpstreamUpgrade { .. } => {
                StatusCode::BAD_GATEWAY
            }
            ProxyError::UpstreamHandshake(_) => StatusCode::BAD_GATEWAY,
            ProxyError::BuildRequest(_) | ProxyError::BuildHead(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ProxyError::Access(e) => e.status(),
        }
    }

    /// The `result` label of `wsgate_ws_handshakes_total`.
    pub fn handshake_result(&self) -> &'static str {
        match self {
            ProxyError::NoRoute => names::NO_ROUTE_RESULT,
            ProxyError::OverCapacity => "over_capacity",
            ProxyError::ClientHandshake(e) => e.result_label(),
            // Upgrades carry no body; these cannot happen on that path.
            ProxyError::ClientGone { .. } | ProxyError::ClientBody { .. } => "bad_request",
            ProxyError::Connect(ConnectError::Timeout { .. }) => "timeout",
            ProxyError::Connect(_) => "upstream_unavailable",
            ProxyError::ResponseTimeout { .. } => "timeout",
            ProxyError::Upstream { .. } | ProxyError::UpstreamUpgrade { .. } => {
                "upstream_unavailable"
            }
            ProxyError::UpstreamHandshake(e) => e.result_label(),
            // The label it always had; `names::HANDSHAKE_RESULTS` has no `internal` series.
            ProxyError::BuildRequest(_) | ProxyError::BuildHead(_) => "upstream_unavailable",
            ProxyError::Access(e) => e.handshake_result(),
        }
    }

    pub fn response_headers(&self) -> http::HeaderMap {
        match self {
            ProxyError::ClientHandshake(e) => e.response_headers(),
            ProxyError::Access(e) => e.response_headers(),
            _ => http::HeaderMap::new(),
        }
    }
}

impl ProxyError {
    /// wsgate's answer to the client: its own short page, or the auth service's denial as it came.
    pub fn into_response(self) -> http::Response<super::Body> {
        use http_body_util::{BodyExt, Full};
        match self {
            ProxyError::Access(AccessError::Denied(response)) => {
                (*response).map(|body| Full::new(body).map_err(|never| match never {}).boxed())
            }
            error => super::error_response(error.status(), error.response_headers()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::forward::ForwardError;
    use crate::auth::jwt::JwtError;
    use crate::limits::clients::Limited;
    use http_body_util::Empty;
    use hyper_util::rt::TokioExecutor;

    /// Real errors of each kind, made by real (local) failures.
    mod make {
        use super::*;

        type Client = hyper_util::client::legacy::Client<
            hyper_util::client::legacy::connect::HttpConnector,
            Empty<bytes::Bytes>,
        >;

        fn client() -> Client {
            hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .build(hyper_util::client::legacy::connect::HttpConnector::new())
        }

        /// A connect refused by a port nobody listens on.
        pub async fn refused() -> ClientError {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            drop(listener);
            let uri = format!("http://{addr}/");
            let error = client().get(uri.parse().unwrap()).await.unwrap_err();
            assert!(error.is_connect(), "{error:?}");
            error
        }

        /// A request the upstream accepted and then hung up on.
        pub async fn hung_up() -> ClientError {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { drop(listener.accept().await) });
            let uri = format!("http://{addr}/");
            let error = client().get(uri.parse().unwrap()).await.unwrap_err();
            assert!(!error.is_connect(), "{error:?}");
            error
        }

        /// An upgrade connection whose peer vanished before answering.
        pub async fn vanished() -> LegError {
            let (ours, theirs) = tokio::io::duplex(64);
            drop(theirs);
            match crate::proxy::backend::exchange(ours, b"GET / HTTP/1.1\r\n\r\n").await {
                Err(error) => error,
                Ok(_) => panic!("an exchange with nobody answered"),
            }
        }

        pub fn bad_parts() -> http::Error {
            http::Request::builder().uri("\n").body(()).unwrap_err()
        }

        pub fn bad_head() -> HeadError {
            match wsgate_proto::head::RequestHead::new(&http::Method::GET, "/a b") {
                Err(error) => error,
                Ok(_) => panic!("a target with a space was accepted"),
            }
        }

        pub fn connect(kind: &str) -> ConnectError {
            let endpoint = "a:1".to_owned();
            match kind {
                "timeout" => ConnectError::Timeout {
                    endpoint,
                    timeout: Duration::from_secs(1),
                },
                "failed" => ConnectError::Failed {
                    endpoint,
                    source: std::io::ErrorKind::ConnectionRefused.into(),
                },
                "tls" => ConnectError::Tls {
                    endpoint,
                    source: rustls::Error::InvalidCertificate(
                        rustls::CertificateError::UnknownIssuer,
                    ),
                },
                "server_name" => ConnectError::ServerName {
                    endpoint,
                    source: rustls::pki_types::ServerName::try_from("bad name").unwrap_err(),
                },
                _ => ConnectError::NoHealthyEndpoint {
                    upstream: "u".into(),
                },
            }
        }
    }

    /// One of each variant (of `ProxyError` and `ConnectError`), with the handshake errors left to
    /// the label test. Fails to compile when a variant is added, so that the tables cover it.
    async fn one_of_each() -> Vec<ProxyError> {
        let all = vec![
            ProxyError::NoRoute,
            ProxyError::OverCapacity,
            ProxyError::ClientHandshake(HandshakeError::MissingKey),
            ProxyError::Connect(make::connect("timeout")),
            ProxyError::Connect(make::connect("failed")),
            ProxyError::Connect(make::connect("tls")),
            ProxyError::Connect(make::connect("server_name")),
            ProxyError::Connect(ConnectError::Pooled {
                endpoint: "a:1".into(),
                source: make::refused().await,
            }),
            ProxyError::Connect(make::connect("none")),
            ProxyError::ClientGone {
                source: make::hung_up().await,
            },
            ProxyError::ClientBody {
                source: make::hung_up().await,
            },
            ProxyError::Upstream {
                endpoint: "a:1".into(),
                source: make::hung_up().await,
            },
            ProxyError::UpstreamUpgrade {
                endpoint: "a:1".into(),
                source: make::vanished().await,
            },
            ProxyError::ResponseTimeout {
                endpoint: "a:1".into(),
                timeout: Duration::from_secs(1),
            },
            ProxyError::UpstreamHandshake(HandshakeError::BadAccept),
            ProxyError::BuildRequest(make::bad_parts()),
            ProxyError::BuildHead(make::bad_head()),
            ProxyError::Access(AccessError::Token(JwtError::Missing)),
            ProxyError::Access(AccessError::Token(JwtError::WrongIssuer)),
            ProxyError::Access(AccessError::Denied(Box::new({
                let mut r = http::Response::new(bytes::Bytes::new());
                *r.status_mut() = StatusCode::FORBIDDEN;
                r
            }))),
            ProxyError::Access(AccessError::AuthService(ForwardError::Timeout(
                Duration::from_secs(1),
            ))),
            ProxyError::Access(AccessError::Limited {
                limit: "client_tunnels_route",
                source: Limited::Tunnels,
            }),
        ];
        for e in &all {
            match e {
                ProxyError::NoRoute
                | ProxyError::OverCapacity
                | ProxyError::ClientHandshake(_)
                | ProxyError::ClientGone { .. }
                | ProxyError::ClientBody { .. }
                | ProxyError::Upstream { .. }
                | ProxyError::UpstreamUpgrade { .. }
                | ProxyError::ResponseTimeout { .. }
                | ProxyError::UpstreamHandshake(_)
                | ProxyError::BuildRequest(_)
                | ProxyError::BuildHead(_) => {}
                ProxyError::Access(
                    AccessError::Token(_)
                    | AccessError::Denied(_)
                    | AccessError::AuthService(_)
                    | AccessError::Limited { .. },
                ) => {}
                ProxyError::Connect(
                    ConnectError::Timeout { .. }
                    | ConnectError::Failed { .. }
                    | ConnectError::Tls { .. }
                    | ConnectError::ServerName { .. }
                    | ConnectError::Pooled { .. }
                    | ConnectError::NoHealthyEndpoint { .. },
                ) => {}
            }
        }
        all
    }

    /// Every variant: its side, its status and its handshake label, one row each.
    #[tokio::test]
    async fn side_status_and_label_of_every_variant() {
        use Side::*;
        let table: [(Side, u16, &str); 22] = [
            (Client, 404, "no_route"),               // NoRoute
            (Internal, 503, "over_capacity"),        // OverCapacity
            (Client, 400, "bad_request"),            // ClientHandshake(MissingKey)
            (Upstream, 504, "timeout"),              // Connect(Timeout)
            (Upstream, 502, "upstream_unavailable"), // Connect(Failed)
            (Upstream, 502, "upstream_unavailable"), // Connect(Tls)
            (Upstream, 502, "upstream_unavailable"), // Connect(ServerName)
            (Upstream, 502, "upstream_unavailable"), // Connect(Pooled)
            (Upstream, 503, "upstream_unavailable"), // Connect(NoHealthyEndpoint)
            (Client, 499, "bad_request"),            // ClientGone
            (Client, 400, "bad_request"),            // ClientBody
            (Upstream, 502, "upstream_unavailable"), // Upstream
            (Upstream, 502, "upstream_unavailable"), // UpstreamUpgrade
            (Upstream, 504, "timeout"),              // ResponseTimeout
            (Upstream, 502, "bad_accept"),           // UpstreamHandshake(BadAccept)
            (Internal, 500, "upstream_unavailable"), // BuildRequest
            (Internal, 500, "upstream_unavailable"), // BuildHead
            (Client, 401, "unauthorized"),           // Access(Token(Missing))
            (Client, 403, "forbidden"),              // Access(Token(WrongIssuer))
            (Client, 403, "forbidden"),              // Access(Denied(403))
            (Upstream, 503, "auth_unavailable"),     // Access(AuthService(Timeout))
            (Client, 429, "limited"),                // Access(Limited)
        ];
        let errors = one_of_each().await;
        assert_eq!(errors.len(), table.len());
        for (error, (side, status, label)) in errors.iter().zip(table) {
            assert_eq!(error.side(), side, "{error:?}");
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.handshake_result(), label, "{error:?}");
        }
    }

    /// Each error keeps the cause it was made from.
    #[tokio::test]
    async fn causes_are_kept() {
        use std::error::Error as _;
        for error in one_of_each().await {
            let bare = matches!(
                error,
                ProxyError::NoRoute
                    | ProxyError::OverCapacity
                    | ProxyError::ResponseTimeout { .. }
                    | ProxyError::Access(AccessError::Denied(_))
                    | ProxyError::Connect(
                        ConnectError::Timeout { .. } | ConnectError::NoHealthyEndpoint { .. }
                    )
            );
            assert_eq!(error.source().is_none(), bare, "{error:?}");
        }
        let build = ProxyError::BuildRequest(make::bad_parts());
        let cause = build.source().unwrap();
        assert!(cause.downcast_ref::<http::Error>().is_some());
        let upgrade = ProxyError::UpstreamUpgrade {
            endpoint: "a:1".into(),
            source: make::vanished().await,
        };
        assert!(upgrade.source().unwrap().is::<LegError>());
        let head = ProxyError::BuildHead(make::bad_head());
        assert!(head.source().unwrap().is::<HeadError>());
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
            MissingPseudoHeader(":path"),
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
                | MissingPseudoHeader(_)
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
    #[tokio::test]
    async fn handshake_results_are_listed_for_the_metrics() {
        let mut errors: Vec<ProxyError> = every_handshake_error()
            .into_iter()
            .flat_map(|e| {
                [
                    ProxyError::ClientHandshake(e.clone()),
                    ProxyError::UpstreamHandshake(e),
                ]
            })
            .collect();
        errors.extend(
            one_of_each()
                .await
                .into_iter()
                .filter(|e| !matches!(e, ProxyError::NoRoute)),
        );
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
