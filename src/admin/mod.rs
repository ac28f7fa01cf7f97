//! The admin listener: `/metrics` (Prometheus text), `/healthz` (the process runs), `/readyz` (it
//! accepts traffic), the live tunnels API (`/tunnels`, tunnels.rs; taps, tap.rs) and its page at
//! `/`. Served only on `admin.bind`, never through a public listener.

pub mod access;
mod query;
mod tap;
mod tunnels;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::drain::DrainSignal;
use crate::listener::accept_forever;
use crate::metrics::Metrics;
use crate::sessions::Registry;
use access::{Access, Denied, Need};

type Body = BoxBody<Bytes, Infallible>;

/// The live page: one self-contained file, no external scripts or fonts.
const PAGE: &str = include_str!("page.html");

pub(crate) struct Admin {
    pub metrics: Metrics,
    pub drain: DrainSignal,
    pub sessions: Arc<Registry>,
    pub access: Arc<Access>,
}

/// Serves until the process exits: probes and scrapes must keep working while draining.
pub(crate) async fn serve(socket: TcpListener, admin: Arc<Admin>) {
    accept_forever(socket, "admin", |stream, _| {
        let admin = admin.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(admin.answer(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    })
    .await
}

/// What a request asks for, by path and method.
enum Endpoint {
    Page,
    Metrics,
    Healthz,
    Readyz,
    List,
    CloseMany,
    Show(u64),
    Close(u64),
    Tap(u64),
}

impl Endpoint {
    /// The endpoint and the methods it takes, or `None` for an unknown path.
    fn of(path: &str) -> Option<Result<(Endpoint, Method), String>> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let id = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| format!("{s:?} is not a tunnel id"))
        };
        let get = |endpoint| Ok((endpoint, Method::GET));
        Some(match segments.as_slice() {
            [] => get(Endpoint::Page),
            ["metrics"] => get(Endpoint::Metrics),
            ["healthz"] => get(Endpoint::Healthz),
            ["readyz"] => get(Endpoint::Readyz),
            ["tunnels"] => get(Endpoint::List),
            ["tunnels", "close"] => Ok((Endpoint::CloseMany, Method::POST)),
            ["tunnels", s] => id(s).map(|id| (Endpoint::Show(id), Method::GET)),
            ["tunnels", s, "close"] => id(s).map(|id| (Endpoint::Close(id), Method::POST)),
            ["tunnels", s, "tap"] => id(s).map(|id| (Endpoint::Tap(id), Method::GET)),
            _ => return None,
        })
    }

    fn needs(&self) -> Need {
        match self {
            Endpoint::Page | Endpoint::Metrics | Endpoint::Healthz | Endpoint::Readyz => {
                Need::Nothing
            }
            Endpoint::List | Endpoint::Show(_) => Need::Read,
            Endpoint::CloseMany | Endpoint::Close(_) | Endpoint::Tap(_) => Need::Write,
        }
    }
}

impl Admin {
    async fn answer(&self, req: Request<Incoming>) -> Response<Body> {
        let (endpoint, method) = match Endpoint::of(req.uri().path()) {
            None => return text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
            Some(Err(e)) => return query::error(StatusCode::BAD_REQUEST, e),
            Some(Ok(found)) => found,
        };
        let head = method == Method::GET && req.method() == Method::HEAD;
        if req.method() != method && !head {
            let mut response = query::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} takes {method}", req.uri().path()),
            );
            response.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_str(method.as_str()).expect("a method is a header value"),
            );
            return response;
        }
        if let Err(denied) = self.access.check(req.headers(), endpoint.needs()) {
            return refusal(denied);
        }
        let query = match query::pairs(req.uri().query()) {
            Ok(pairs) => pairs,
            Err(e) => return query::error(StatusCode::BAD_REQUEST, e),
        };
        let response = match endpoint {
            Endpoint::Page => text(StatusCode::OK, "text/html; charset=utf-8", PAGE.into()),
            Endpoint::Metrics => text(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render(),
            ),
            Endpoint::Healthz => text(StatusCode::OK, "text/plain", "ok\n".into()),
            Endpoint::Readyz if !self.drain.is_draining() => {
                text(StatusCode::OK, "text/plain", "ready\n".into())
            }
            Endpoint::Readyz => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "draining\n".into(),
            ),
            Endpoint::List => self.list(&query),
            Endpoint::Show(id) => self.show(id, &query),
            Endpoint::Close(id) => self.close(id, &query).await,
            Endpoint::CloseMany => self.close_many(&query),
            Endpoint::Tap(id) => self.tap(id, &query),
        };
        if head {
            let (parts, _) = response.into_parts();
            return Response::from_parts(parts, empty());
        }
        response
    }
}

fn refusal(denied: Denied) -> Response<Body> {
    let status = match denied {
        Denied::NoToken | Denied::WrongToken => StatusCode::UNAUTHORIZED,
        Denied::NotLoopback | Denied::CrossOrigin => StatusCode::FORBIDDEN,
    };
    let mut response = query::error(status, &denied);
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"wsgate admin\""),
        );
    }
    response
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn empty() -> Body {
    Full::new(Bytes::new()).boxed()
}
