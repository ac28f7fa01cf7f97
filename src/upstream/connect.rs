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
                upstream: self.name.clone(),
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
