//! Who may use the admin API: a bearer token read from `admin.token_file` (again on each reload)
//! for the endpoints that change or reveal traffic (closes, taps), and for listings too with
//! `admin.protect_reads`. With no token file, those endpoints answer only on a loopback address.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::HeaderMap;

use crate::config::AdminConfig;

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Probes, metrics, the page.
    Nothing,
    /// `GET /tunnels`, `GET /tunnels/{id}`.
    Read,
    /// Closes and taps.
    Write,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("this endpoint needs Authorization: Bearer with the token of admin.token_file")]
    NoToken,
    #[error("wrong token")]
    WrongToken,
    #[error("admin.token_file is not set and the admin listener is not on a loopback address")]
    NotLoopback,
    /// Without a token, only a request addressed to the loopback listener by address or
    /// `localhost`, from no other origin: a web page the operator's browser has open elsewhere
    /// must not close tunnels (a cross-site POST, or DNS rebinding to 127.0.0.1).
    #[error(
        "without admin.token_file, closes and taps take requests from this host's own pages only"
    )]
    CrossOrigin,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("admin.token_file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("admin.token_file {path}: the file holds no token")]
    Empty { path: String },
}

/// The admin settings a reload may change.
#[derive(Debug, Default)]
pub struct Policy {
    token: Option<Box<str>>,
    pub protect_reads: bool,
    pub tap_payloads: bool,
}

impl Policy {
    /// Reads the token file, if any.
    pub fn load(config: &AdminConfig) -> Result<Policy, TokenError> {
        Ok(Policy {
            token: config.token_file.as_deref().map(read_token).transpose()?,
            protect_reads: config.protect_reads,
            tap_payloads: config.tap_payloads,
        })
    }
}

fn read_token(path: &Path) -> Result<Box<str>, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(TokenError::Empty {
            path: path.display().to_string(),
        });
    }
    Ok(token.into())
}

pub struct Access {
    policy: ArcSwap<Policy>,
    loopback: bool,
}

impl Access {
    pub fn new(policy: Policy, loopback: bool) -> Self {
        Access {
            policy: ArcSwap::from_pointee(policy),
            loopback,
        }
    }

    pub fn replace(&self, policy: Policy) {
        self.policy.store(Arc::new(policy));
    }

    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    pub fn check(&self, headers: &HeaderMap, need: Need) -> Result<(), Denied> {
        let policy = self.policy.load();
        let token = policy.token.as_deref();
        match (need, token) {
            (Need::Nothing, _) => Ok(()),
            (Need::Read, _) if !policy.protect_reads => Ok(()),
            (_, Some(token)) => match bearer(headers) {
                None => Err(Denied::NoToken),
                Some(given) if same(given.as_bytes(), token.as_bytes()) => Ok(()),
                Some(_) => Err(Denied::WrongToken),
            },
            // protect_reads needs a token file (config validation), so only writes reach here.
            (_, None) if self.loopback => {
                if local_and_same_origin(headers) {
                    Ok(())
                } else {
                    Err(Denied::CrossOrigin)
                }
            }
            (_, None) => Err(Denied::NotLoopback),
        }
    }
}

/// `Host` names a loopback address or `localhost`, and `Origin`, if sent, is that same host.
fn local_and_same_origin(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(host) = text(http::header::HOST) else {
        return false;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let local = name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let same_origin = text(http::header::ORIGIN).is_none_or(|origin| {
        origin
            .strip_prefix("http://")
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
    });
    local && same_origin
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Compares in time that depends on the length only, not on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(
                http::header::AUTHORIZATION,
                HeaderValue::from_str(a).unwrap(),
            );
        }
        h
    }

    fn access(token: Option<&str>, protect_reads: bool, loopback: bool) -> Access {
        Access::new(
            Policy {
                token: token.map(Into::into),
                protect_reads,
                tap_payloads: false,
            },
            loopback,
        )
    }

    #[test]
    fn with_a_token_writes_need_it() {
        let a = access(Some("s3cret"), false, true);
        assert_eq!(a.check(&headers(None), Need::Write), Err(Denied::NoToken));
        assert_eq!(
            a.check(&headers(Some("Bearer nope")), Need::Write),
            Err(Denied::WrongToken)
        );
        assert_eq!(
            a.check(&headers(Some("Basic s3cret")), Need::Write),
            Err(Denied::NoToken)
        );
        assert_eq!(
            a.check(&headers(Some("bearer s3cret")), Need::Write),
            Ok(())
        );
        assert_eq!(a.check(&headers(None), Need::Read), Ok(()));
        assert_eq!(a.check(&headers(None), Need::Nothing), Ok(()));
    }

    #[test]
    fn protect_reads_makes_listings_need_it() {
        let a = access(Some("s3cret"), true, true);
        assert_eq!(a.check(&headers(None), Need::Read), Err(Denied::NoToken));
        assert_eq!(a.check(&headers(Some("Bearer s3cret")), Need::Read), Ok(()));
        assert_eq!(a.check(&headers(None), Need::Nothing), Ok(()));
    }

    fn local(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = headers(None);
        h.insert(http::header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(http::header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn without_a_token_writes_only_from_this_hosts_own_pages() {
        let a = access(None, false, true);
        for host in [
            "127.0.0.1:9901",
            "localhost:9901",
            "[::1]:9901",
            "127.0.0.1",
        ] {
            assert_eq!(a.check(&local(None, host), Need::Write), Ok(()), "{host}");
        }
        let page = local(Some("http://127.0.0.1:9901"), "127.0.0.1:9901");
        assert_eq!(a.check(&page, Need::Write), Ok(()));
        let cross = local(Some("https://evil.example"), "127.0.0.1:9901");
        assert_eq!(a.check(&cross, Need::Write), Err(Denied::CrossOrigin));
        let rebound = local(Some("http://evil.example:9901"), "evil.example:9901");
        assert_eq!(a.check(&rebound, Need::Write), Err(Denied::CrossOrigin));
        assert_eq!(
            a.check(&headers(None), Need::Write),
            Err(Denied::CrossOrigin)
        );
        // Reads are not writes: a listing is the same for anyone.
        assert_eq!(a.check(&cross, Need::Read), Ok(()));
    }

    #[test]
    fn without_a_token_writes_only_on_loopback() {
        assert_eq!(
            access(None, false, true).check(&local(None, "127.0.0.1:1"), Need::Write),
            Ok(())
        );
        assert_eq!(
            access(None, false, false).check(&headers(None), Need::Write),
            Err(Denied::NotLoopback)
        );
        assert_eq!(
            access(None, false, false).check(&headers(None), Need::Read),
            Ok(())
        );
    }

    #[test]
    fn a_reload_replaces_the_token() {
        let a = access(Some("old"), false, true);
        a.replace(Policy {
            token: Some("new".into()),
            ..Policy::default()
        });
        assert_eq!(
            a.check(&headers(Some("Bearer old")), Need::Write),
            Err(Denied::WrongToken)
        );
        assert_eq!(a.check(&headers(Some("Bearer new")), Need::Write), Ok(()));
    }

    #[test]
    fn the_token_file_is_trimmed_and_must_hold_one() {
        let dir = std::env::temp_dir().join(format!("wsgate-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "abc\n").unwrap();
        assert_eq!(read_token(&file).unwrap().as_ref(), "abc");
        std::fs::write(&file, " \n").unwrap();
        assert!(matches!(read_token(&file), Err(TokenError::Empty { .. })));
        assert!(matches!(
            read_token(&dir.join("missing")),
            Err(TokenError::Read { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
