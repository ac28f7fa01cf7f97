//! Extra request headers for the opening handshake (`--header "Name: value"`, e.g. a bearer token):
//! checked once when the run starts and rendered once, so a session only copies bytes. No I/O.

/// Header lines to add to every upgrade request, already rendered as `Name: value\r\n` each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(String);

/// Names the handshake writes itself: a second copy would make the request ambiguous, not test auth.
const OWN: [&str; 5] = [
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
];

impl Headers {
    /// Parses `Name: value` lines; the name must be an RFC 9110 §5.6.2 token and the value hold no
    /// CR, LF or NUL (which would end the header early or split it into a second one).
    pub fn parse(lines: &[String]) -> Result<Self, String> {
        let mut rendered = String::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("--header {line:?}: expected \"Name: value\""))?;
            let value = value.trim_matches([' ', '\t']);
            if name.is_empty() || !name.bytes().all(is_token) {
                return Err(format!("--header {line:?}: {name:?} is not a header name"));
            }
            if OWN.iter().any(|own| own.eq_ignore_ascii_case(name)) {
                return Err(format!(
                    "--header {line:?}: {name} is set by the handshake itself"
                ));
            }
            if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                return Err(format!(
                    "--header {name}: the value holds a CR, LF or NUL byte"
                ));
            }
            rendered.push_str(name);
            rendered.push_str(": ");
            rendered.push_str(value);
            rendered.push_str("\r\n");
        }
        Ok(Headers(rendered))
    }

    /// The lines to write before the request's blank line (empty when there are none).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// tchar of RFC 9110 §5.6.2.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str]) -> Result<Headers, String> {
        Headers::parse(&lines.iter().map(|l| l.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn lines_render_in_order_with_values_trimmed() {
        let headers = parse(&["Authorization: Bearer a.b.c", "X-Trace:1", "X-Empty:"]).unwrap();
        assert_eq!(
            headers.as_str(),
            "Authorization: Bearer a.b.c\r\nX-Trace: 1\r\nX-Empty: \r\n"
        );
        assert_eq!(parse(&[]).unwrap().as_str(), "");
    }

    #[test]
    fn malformed_lines_are_refused() {
        for bad in [
            "no colon",
            ": value",
            "Bad Name: x",
            "Bad\r\nName: x",
            "X-A: one\r\nX-B: two",
            "X-A: nul\0",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_handshakes_own_headers_are_refused() {
        for own in [
            "Host: x",
            "upgrade: x",
            "CONNECTION: x",
            "Sec-WebSocket-Key: x",
        ] {
            let err = parse(&[own]).unwrap_err();
            assert!(err.contains("set by the handshake"), "{own:?}: {err}");
        }
    }
}
