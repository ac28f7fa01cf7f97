//! HTTP header grammar (RFC 9110 §5.6): tokens, comma-separated token lists, RFC 6455 §9.1
//! extension lists, and `host[:port]` (RFC 9110 §7.2). The handshake rules read headers with it;
//! the config checks validate names and addresses with the same functions.

use http::header::{self, HeaderMap, HeaderName};

use super::SEC_EXTENSIONS;

/// Whether any line of a comma-separated header holds `token` (case-insensitive).
pub(super) fn has_token(headers: &HeaderMap, name: impl header::AsHeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// An RFC 9110 §5.6.2 token: one or more tchars. Also what RFC 6265 cookie names and RFC 6455
/// subprotocol names must be, so the config checks use it too.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A comma-separated list of tokens over every header line; `None` when an element is malformed.
pub(super) fn token_list(headers: &HeaderMap, name: HeaderName) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for value in headers.get_all(name).iter() {
        for element in value.to_str().ok()?.split(',') {
            let element = element.trim();
            if !is_token(element) {
                return None;
            }
            out.push(element.to_owned());
        }
    }
    Some(out)
}

/// RFC 6455 §9.1: `extension-token *( ";" extension-param )`, params `token [ "=" (token |
/// quoted-string) ]`. Returns the trimmed elements.
pub(super) fn extension_list(headers: &HeaderMap) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for value in headers.get_all(SEC_EXTENSIONS).iter() {
        for element in split_outside_quotes(value.to_str().ok()?, ',') {
            let element = element.trim();
            let mut parts = split_outside_quotes(element, ';').into_iter();
            if !is_token(parts.next()?.trim()) {
                return None;
            }
            for param in parts {
                let (name, value) = match param.split_once('=') {
                    Some((n, v)) => (n.trim(), Some(v.trim())),
                    None => (param.trim(), None),
                };
                let value_ok = value.is_none_or(|v| is_token(v) || is_quoted_token(v));
                if !is_token(name) || !value_ok {
                    return None;
                }
            }
            out.push(element.to_owned());
        }
    }
    Some(out)
}

/// RFC 6455 §9.1: a quoted parameter value must itself be a token once unquoted.
fn is_quoted_token(v: &str) -> bool {
    v.len() >= 2 && v.starts_with('"') && v.ends_with('"') && is_token(&v[1..v.len() - 1])
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port` (a Host header, an endpoint, an origin's
/// authority) into the host as written, brackets kept, and the port text, unchecked. `None` when
/// the text has no such shape: a second `:` outside brackets, an unclosed `[`, or junk after `]`.
pub fn split_host_port(text: &str) -> Option<(&str, Option<&str>)> {
    if text.starts_with('[') {
        let end = text.find(']')?;
        let (host, after) = text.split_at(end + 1);
        return match after {
            "" => Some((host, None)),
            _ => after
                .strip_prefix(':')
                .filter(|port| !port.contains(':'))
                .map(|port| (host, Some(port))),
        };
    }
    match text.split_once(':') {
        Some((host, port)) if !port.contains(':') => Some((host, Some(port))),
        Some(_) => None,
        None => Some((text, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        for good in ["a", "chat.v1", "io_srv", "x!#$%&'*+-.^_`|~9"] {
            assert!(is_token(good), "{good}");
        }
        for bad in ["", "a b", "a,b", "a;b", "a=b", "\"a\"", "é", "a/b", "a\tb"] {
            assert!(!is_token(bad), "{bad}");
        }
    }

    #[test]
    fn host_and_port() {
        assert_eq!(split_host_port("example.com"), Some(("example.com", None)));
        assert_eq!(split_host_port("a.com:8080"), Some(("a.com", Some("8080"))));
        assert_eq!(split_host_port("a.com:"), Some(("a.com", Some(""))));
        assert_eq!(split_host_port("[::1]"), Some(("[::1]", None)));
        assert_eq!(split_host_port("[::1]:80"), Some(("[::1]", Some("80"))));
        assert_eq!(
            split_host_port("[2001:db8::1]:443"),
            Some(("[2001:db8::1]", Some("443")))
        );
        assert_eq!(split_host_port(""), Some(("", None)));
        // Not host[:port]: the port is not checked here, the shape is.
        assert_eq!(split_host_port("::1"), None);
        assert_eq!(split_host_port("a:b:80"), None);
        assert_eq!(split_host_port("[::1"), None);
        assert_eq!(split_host_port("[::1]x"), None);
        assert_eq!(split_host_port("[::1]x:80"), None);
        assert_eq!(split_host_port("[::1]:80:90"), None);
    }
}
