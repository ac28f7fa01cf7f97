//! Query strings of admin requests (`application/x-www-form-urlencoded`: `+` is a space, `%XX` a
//! byte), and the answers' JSON.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use super::Body;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the query string is not form-encoded UTF-8 near {0:?}")]
pub struct BadQuery(pub String);

/// Each `name=value` pair, decoded, in order.
pub fn pairs(query: Option<&str>) -> Result<Vec<(String, String)>, BadQuery> {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Ok(Vec::new());
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| decode(s).ok_or_else(|| BadQuery(pair.to_owned()));
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let mut text = serde_json::to_vec(value).unwrap_or_default();
    text.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(text)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub fn error(status: StatusCode, message: impl std::fmt::Display) -> Response<Body> {
    json(status, &serde_json::json!({ "error": message.to_string() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_form_decoded() {
        let got = pairs(Some(
            "route=chat&reason=going+away%21&client=10.0.0.0%2F8&all",
        ))
        .unwrap();
        let want = [
            ("route", "chat"),
            ("reason", "going away!"),
            ("client", "10.0.0.0/8"),
            ("all", ""),
        ];
        assert_eq!(
            got,
            want.map(|(n, v)| (n.to_owned(), v.to_owned())).to_vec()
        );
        assert_eq!(pairs(None).unwrap(), vec![]);
        assert_eq!(pairs(Some("")).unwrap(), vec![]);
        assert!(pairs(Some("a=%zz")).is_err());
        assert!(pairs(Some("a=%ff")).is_err());
    }
}
