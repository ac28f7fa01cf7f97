//! Connects with retries across endpoints: one loop, for tunnels and pooled HTTP requests alike —
//! pick an untried eligible endpoint, mark it tried, try it, and count a failed connect toward its
//! ejection. What may be retried differs only in whether the request can be sent twice.

use std::future::Future;
use std::sync::Arc;

use super::dial::UpstreamStream;
use super::endpoint::Endpoint;
use super::{ConnectError, Selection, Upstream};

/// What one try on an endpoint came to.
#[derive(Debug)]
pub enum Attempt<T, E> {
    /// It worked; the endpoint is credited with a good connect.
    Done(T),
    /// Nothing reached the endpoint: counted toward its ejection, and the next may be tried.
    ConnectFailed(ConnectError),
    /// The request reached the endpoint (or the client failed it): never retried.
    Failed(E),
}

/// Whether a failed connect may move on to the next endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Nothing was used up: the next eligible endpoint is tried, as nginx's proxy_next_upstream
    /// does before anything was sent.
    NextEndpoint,
    /// The first try took what cannot be sent twice (a streamed request body).
    Never,
}

impl Upstream {
    /// How many endpoints one request may try.
    pub fn attempts(&self) -> usize {
        self.config.connect_attempts
    }

    /// Runs `each` on chosen endpoints until one is `Done` or `Failed`, up to `connect_attempts`
    /// endpoints (one with `Retry::Never`). With none left, the last connect error, or
    /// `NoHealthyEndpoint` when no endpoint was eligible.
    pub async fn attempt<T, E, F, Fut>(
        &self,
        selection: &Selection,
        retry: Retry,
        mut each: F,
    ) -> Result<(T, Arc<Endpoint>), E>
    where
        F: FnMut(Arc<Endpoint>) -> Fut,
        Fut: Future<Output = Attempt<T, E>>,
        E: From<ConnectError>,
    {
        let mut tried = self.untried();
        let mut last = None;
        for _ in 0..self.attempts() {
            let Some(endpoint) = self.pick(selection, &tried) else {
                break;
            };
            self.mark_tried(&endpoint, &mut tried);
            match each(endpoint.clone()).await {
                Attempt::Done(value) => {
                    endpoint.connect_succeeded();
                    return Ok((value, endpoint));
                }
                Attempt::ConnectFailed(error) => {
                    tracing::debug!(upstream = %self.name, %error, "connect failed");
                    self.connect_failed(&endpoint);
                    last = Some(error);
                    if retry == Retry::Never {
                        break;
                    }
                }
                Attempt::Failed(error) => return Err(error),
            }
        }
        Err(E::from(last.unwrap_or_else(|| {
            ConnectError::NoHealthyEndpoint {
                upstream: self.name.to_string(),
            }
        })))
    }

    /// A fresh connection for a tunnel (never pooled), on the next eligible endpoint when one fails.
    pub async fn connect(
        &self,
        selection: &Selection,
    ) -> Result<(UpstreamStream, Arc<Endpoint>), ConnectError> {
        let timeout = self.config.connect_timeout;
        self.attempt(selection, Retry::NextEndpoint, |endpoint| async move {
            match self.dialer.connect(&endpoint.addr, timeout).await {
                Ok(stream) => Attempt::Done(stream),
                Err(error) => Attempt::ConnectFailed(error),
            }
        })
        .await
    }

    /// A failed connect: counted, and toward ejection.
    fn connect_failed(&self, endpoint: &Endpoint) {
        self.metrics
            .upstream_connect_error(&self.name, &endpoint.addr);
        endpoint.connect_failed(self.config.max_fails, self.config.fail_timeout);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::config::Config;
    use crate::metrics::Metrics;

    /// An upstream of three endpoints, each ejected at its first failed connect.
    fn upstream(attempts: usize) -> Upstream {
        let yaml = format!(
            r#"
listeners: [{{ name: public, bind: "127.0.0.1:0" }}]
admin: {{ bind: "127.0.0.1:0" }}
upstreams:
  u:
    endpoints: ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
    connect_attempts: {attempts}
    max_fails: 1
    fail_timeout: 1h
routes: [{{ name: r, match: {{ path_prefix: "/" }}, upstream: u }}]
"#
        );
        let config = Config::from_yaml(&yaml).unwrap_or_else(|e| panic!("{:?}", e.messages()));
        Upstream::new(&config.upstreams[0], &Metrics::new()).unwrap()
    }

    /// The caller's error: "connect" when tries ran out on connect failures, "none" when no
    /// endpoint was eligible, else its own.
    #[derive(Debug, PartialEq)]
    struct Caller(&'static str);

    impl From<ConnectError> for Caller {
        fn from(e: ConnectError) -> Self {
            match e {
                ConnectError::NoHealthyEndpoint { .. } => Caller("none"),
                _ => Caller("connect"),
            }
        }
    }

    fn refused(endpoint: &Endpoint) -> Attempt<(), Caller> {
        Attempt::ConnectFailed(ConnectError::Failed {
            endpoint: endpoint.addr.to_string(),
            source: std::io::ErrorKind::ConnectionRefused.into(),
        })
    }

    /// Runs `attempt` with `outcome(n, endpoint)` for the n-th try (from 1); returns the endpoint
    /// that served (or the error) and the endpoints tried, in order.
    async fn run(
        upstream: &Upstream,
        retry: Retry,
        outcome: impl Fn(usize, &Endpoint) -> Attempt<(), Caller>,
    ) -> (Result<String, Caller>, Vec<String>) {
        let tried = Mutex::new(Vec::new());
        let result = upstream
            .attempt(&Selection::default(), retry, |endpoint| {
                let mut tried = tried.lock().unwrap();
                tried.push(endpoint.addr.to_string());
                let outcome = outcome(tried.len(), &endpoint);
                async move { outcome }
            })
            .await
            .map(|((), endpoint)| endpoint.addr.to_string());
        (result, tried.into_inner().unwrap())
    }

    fn distinct(tried: &[String]) -> usize {
        let mut d = tried.to_vec();
        d.sort();
        d.dedup();
        d.len()
    }

    #[tokio::test]
    async fn connect_failures_move_on_to_untried_endpoints_until_none_is_left() {
        let up = upstream(3);
        let (result, tried) = run(&up, Retry::NextEndpoint, |_, e| refused(e)).await;
        assert_eq!(result, Err(Caller("connect")));
        assert_eq!((tried.len(), distinct(&tried)), (3, 3), "{tried:?}");
        // Each was ejected by its failure: none is eligible, and nothing is tried.
        let (result, tried) = run(&up, Retry::NextEndpoint, |_, _| Attempt::Done(())).await;
        assert_eq!(result, Err(Caller("none")));
        assert!(tried.is_empty());
    }

    #[tokio::test]
    async fn the_first_endpoint_that_connects_serves() {
        let up = upstream(3);
        let (result, tried) = run(&up, Retry::NextEndpoint, |n, e| match n {
            1 => refused(e),
            _ => Attempt::Done(()),
        })
        .await;
        assert_eq!(tried.len(), 2);
        assert_ne!(tried[0], tried[1]);
        assert_eq!(result, Ok(tried[1].clone()));
    }

    #[tokio::test]
    async fn what_cannot_be_sent_twice_is_tried_once() {
        let up = upstream(3);
        let (result, tried) = run(&up, Retry::Never, |_, e| refused(e)).await;
        assert_eq!(result, Err(Caller("connect")));
        assert_eq!(tried.len(), 1);
    }

    #[tokio::test]
    async fn a_failure_after_the_connect_is_never_retried() {
        let up = upstream(3);
        let (result, tried) = run(&up, Retry::NextEndpoint, |_, _| {
            Attempt::Failed(Caller("reset"))
        })
        .await;
        assert_eq!(result, Err(Caller("reset")));
        assert_eq!(tried.len(), 1);
    }

    #[tokio::test]
    async fn connect_attempts_bounds_the_tries() {
        let up = upstream(2);
        let (result, tried) = run(&up, Retry::NextEndpoint, |_, e| refused(e)).await;
        assert_eq!(result, Err(Caller("connect")));
        assert_eq!((tried.len(), distinct(&tried)), (2, 2));
    }
}
