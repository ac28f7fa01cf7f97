//! Affinity cookies (`sticky_cookie`): the first response names the endpoint that served it in a
//! cookie of wsgate's own, and later requests carrying it go back there while it is eligible, as
//! HAProxy's `cookie SRV insert` does. The value is opaque but stable: a keyed digest of the
//! upstream name and endpoint address, so every replica and every reload that keeps the endpoint
//! routes it alike, and the address itself never reaches the client.

use http::{HeaderMap, HeaderValue};
use sha1::{Digest, Sha1};

use crate::config::{SameSite, StickyCookie};

/// Fixed: changing it would move every client holding a cookie.
const KEY: &[u8] = b"wsgate sticky_cookie v1\0";

/// The cookie value naming `endpoint` of `upstream`: 16 hex digits.
pub fn cookie_value(upstream: &str, endpoint: &str) -> String {
    let mut digest = Sha1::new();
    digest.update(KEY);
    digest.update(upstream.as_bytes());
    digest.update([0]);
    digest.update(endpoint.as_bytes());
    digest.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every `name=value` pair of every `Cookie` header, in order (values unquoted).
pub fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            (k.trim(), v)
        })
}

pub struct Sticky {
    name: String,
    /// Each endpoint's cookie value, in endpoint order.
    values: Vec<String>,
    /// Everything after the value, built once: with and without `Secure`.
    attributes: [String; 2],
}

impl Sticky {
    pub fn new(config: &StickyCookie, upstream: &str, endpoints: &[String]) -> Self {
        let mut attributes = format!("; Path={}", config.path);
        if let Some(age) = config.max_age {
            attributes.push_str(&format!("; Max-Age={}", age.as_secs()));
        }
        if config.http_only {
            attributes.push_str("; HttpOnly");
        }
        attributes.push_str(match config.same_site {
            SameSite::Strict => "; SameSite=Strict",
            SameSite::Lax => "; SameSite=Lax",
            SameSite::None => "; SameSite=None",
        });
        let secure = match config.secure {
            Some(false) => attributes.clone(),
            _ => format!("{attributes}; Secure"),
        };
        let plain = match config.secure {
            Some(true) => secure.clone(),
            _ => attributes,
        };
        Sticky {
            name: config.name.clone(),
            values: endpoints
                .iter()
                .map(|e| cookie_value(upstream, e))
                .collect(),
            attributes: [plain, secure],
        }
    }

    /// The endpoint the request's affinity cookie names: the first of its cookies of that name
    /// whose value is one of ours (a stale or forged one is ignored).
    pub fn pinned(&self, headers: &HeaderMap) -> Option<usize> {
        cookies(headers)
            .filter(|(k, _)| *k == self.name)
            .find_map(|(_, v)| self.values.iter().position(|ours| ours == v))
    }

    /// The `Set-Cookie` naming endpoint `index`; `tls` says the client came over a TLS listener.
    pub fn set_cookie(&self, index: usize, tls: bool) -> HeaderValue {
        let text = format!(
            "{}={}{}",
            self.name,
            self.values[index],
            self.attributes[usize::from(tls)]
        );
        // Validation admits only tokens and printable paths.
        HeaderValue::try_from(text).expect("a valid Set-Cookie value")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config() -> StickyCookie {
        StickyCookie {
            name: "srv".into(),
            path: "/".into(),
            max_age: None,
            secure: None,
            http_only: true,
            same_site: SameSite::Lax,
        }
    }

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(http::header::COOKIE, c.parse().unwrap());
        }
        h
    }

    #[test]
    fn values_are_opaque_stable_and_distinct() {
        let a = cookie_value("app", "10.0.0.1:80");
        assert_eq!(a, cookie_value("app", "10.0.0.1:80"));
        assert_eq!(a.len(), 16);
        assert!(!a.contains("10.0.0.1"));
        assert_ne!(a, cookie_value("app", "10.0.0.2:80"));
        assert_ne!(a, cookie_value("other", "10.0.0.1:80"));
        // Pinned (from `printf 'wsgate sticky_cookie v1\0app\00010.0.0.1:80' | sha1sum`): a change
        // of digest or key would move every client holding a cookie.
        assert_eq!(a, "28a3831a4a8ec97f");
    }

    #[test]
    fn finds_the_cookie_among_lists_and_headers() {
        let endpoints = ["10.0.0.1:80".to_owned(), "10.0.0.2:80".to_owned()];
        let sticky = Sticky::new(&config(), "app", &endpoints);
        let b = cookie_value("app", "10.0.0.2:80");
        assert_eq!(sticky.pinned(&headers(&[&format!("srv={b}")])), Some(1));
        let list = format!("theme=dark; srv={b}; x=y");
        assert_eq!(sticky.pinned(&headers(&[&list])), Some(1));
        let split = format!("srv=\"{b}\"");
        assert_eq!(sticky.pinned(&headers(&["a=b; c=d", &split])), Some(1));
        // A stale value first does not hide a good one.
        let stale = format!("srv=0123456789abcdef; srv={b}");
        assert_eq!(sticky.pinned(&headers(&[&stale])), Some(1));
        assert_eq!(sticky.pinned(&headers(&["srv=garbage"])), None);
        assert_eq!(sticky.pinned(&headers(&[&format!("xsrv={b}")])), None);
        assert_eq!(sticky.pinned(&headers(&[])), None);
    }

    #[test]
    fn set_cookie_attributes() {
        let endpoints = ["10.0.0.1:80".to_owned()];
        let a = cookie_value("app", "10.0.0.1:80");
        let sticky = Sticky::new(&config(), "app", &endpoints);
        assert_eq!(
            sticky.set_cookie(0, false),
            format!("srv={a}; Path=/; HttpOnly; SameSite=Lax").as_str()
        );
        assert_eq!(
            sticky.set_cookie(0, true),
            format!("srv={a}; Path=/; HttpOnly; SameSite=Lax; Secure").as_str()
        );
        let custom = StickyCookie {
            path: "/chat".into(),
            max_age: Some(Duration::from_secs(3600)),
            secure: Some(true),
            http_only: false,
            same_site: SameSite::None,
            ..config()
        };
        let sticky = Sticky::new(&custom, "app", &endpoints);
        let expected = format!("srv={a}; Path=/chat; Max-Age=3600; SameSite=None; Secure");
        assert_eq!(sticky.set_cookie(0, false), expected.as_str());
        let never = StickyCookie {
            secure: Some(false),
            ..config()
        };
        let sticky = Sticky::new(&never, "app", &endpoints);
        assert!(!sticky
            .set_cookie(0, true)
            .to_str()
            .unwrap()
            .contains("Secure"));
    }
}
