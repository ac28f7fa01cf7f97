//! Tests of token sources: parsing, finding, stripping and redacting.

use super::*;

fn sources(specs: &[&str]) -> Vec<TokenSource> {
    specs
        .iter()
        .map(|s| TokenSource::parse(s).unwrap())
        .collect()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn found(specs: &[&str], uri: &str, pairs: &[(&str, &str)]) -> Option<(String, usize)> {
    find(&sources(specs), &uri.parse().unwrap(), &headers(pairs)).map(|f| (f.token, f.source))
}

fn some(token: &str, source: usize) -> Option<(String, usize)> {
    Some((token.to_owned(), source))
}

#[test]
fn parse_each_kind() {
    assert_eq!(
        TokenSource::parse("header:Authorization"),
        Ok(TokenSource::Header(http::header::AUTHORIZATION))
    );
    assert_eq!(
        TokenSource::parse("header:X-Token"),
        Ok(TokenSource::Header(HeaderName::from_static("x-token")))
    );
    assert_eq!(
        TokenSource::parse("query:access_token"),
        Ok(TokenSource::Query("access_token".into()))
    );
    assert_eq!(
        TokenSource::parse("cookie:session"),
        Ok(TokenSource::Cookie("session".into()))
    );
    assert_eq!(
        TokenSource::parse("subprotocol:access_token."),
        Ok(TokenSource::Subprotocol("access_token.".into()))
    );
}

#[test]
fn parse_errors_say_what_is_wrong() {
    let err = |s: &str| TokenSource::parse(s).unwrap_err();
    assert!(err("Authorization").contains("KIND:NAME"));
    assert!(err("body:token").contains("unknown kind \"body\""));
    assert!(err("Header:Authorization").contains("unknown kind"));
    assert!(err("header:").contains("empty name"));
    assert!(err("query:").contains("empty name"));
    assert!(err("header:bad header").contains("not a valid header name"));
    assert!(err("query:a=b").contains("not a valid query parameter name"));
    assert!(err("cookie:a;b").contains("not a valid cookie name"));
    assert!(err("subprotocol:a,b").contains("not a valid subprotocol prefix"));
    assert!(err("subprotocol:a b").contains("not a valid subprotocol prefix"));
}

#[test]
fn authorization_takes_only_bearer() {
    let s = &["header:Authorization"];
    assert_eq!(
        found(s, "/", &[("authorization", "Bearer abc")]),
        some("abc", 0)
    );
    assert_eq!(
        found(s, "/", &[("authorization", "bearer abc")]),
        some("abc", 0)
    );
    assert_eq!(
        found(s, "/", &[("authorization", "BEARER   abc  ")]),
        some("abc", 0)
    );
    assert_eq!(
        found(s, "/", &[("authorization", "Bearer\tabc")]),
        some("abc", 0)
    );
    assert_eq!(
        found(s, "/", &[("authorization", "Basic dXNlcjpwdw==")]),
        None
    );
    assert_eq!(found(s, "/", &[("authorization", "abc")]), None);
    assert_eq!(found(s, "/", &[("authorization", "Bearer ")]), None);
    assert_eq!(found(s, "/", &[("authorization", "Bearer")]), None);
    assert_eq!(found(s, "/", &[]), None);
    // Several lines: the first that holds a bearer token.
    let lines = [
        ("authorization", "Basic x"),
        ("authorization", "Bearer second"),
    ];
    assert_eq!(found(s, "/", &lines), some("second", 0));
}

#[test]
fn other_headers_take_the_whole_value_or_a_bearer_one() {
    let s = &["header:X-Token"];
    assert_eq!(found(s, "/", &[("x-token", "  abc ")]), some("abc", 0));
    assert_eq!(found(s, "/", &[("x-token", "Bearer abc")]), some("abc", 0));
    assert_eq!(found(s, "/", &[("x-token", "")]), None);
    assert_eq!(found(s, "/", &[("x-token", "   ")]), None);
    let lines = [("x-token", ""), ("x-token", "two")];
    assert_eq!(found(s, "/", &lines), some("two", 0));
}

#[test]
fn first_source_in_list_order_wins() {
    let s = &["query:t", "header:Authorization", "cookie:c"];
    let h = [
        ("authorization", "Bearer from-header"),
        ("cookie", "c=from-cookie"),
    ];
    assert_eq!(found(s, "/?t=from-query", &h), some("from-query", 0));
    assert_eq!(found(s, "/?other=1", &h), some("from-header", 1));
    assert_eq!(
        found(s, "/", &[("cookie", "c=from-cookie")]),
        some("from-cookie", 2)
    );
    assert_eq!(found(s, "/", &[]), None);
}

#[test]
fn query_first_pair_percent_decoded() {
    let s = &["query:access_token"];
    assert_eq!(found(s, "/ws?access_token=abc", &[]), some("abc", 0));
    assert_eq!(
        found(s, "/ws?a=1&access_token=abc&b=2", &[]),
        some("abc", 0)
    );
    assert_eq!(
        found(s, "/ws?access_token=one&access_token=two", &[]),
        some("one", 0)
    );
    assert_eq!(found(s, "/ws?access_token=a%2Eb%3d", &[]), some("a.b=", 0));
    assert_eq!(found(s, "/ws?access_token=a+b", &[]), some("a+b", 0));
    assert_eq!(
        found(s, "/ws?access_token=%E2%9C%93", &[]),
        some("\u{2713}", 0)
    );
    // Bad encodings: a lone `%`, one hex digit, non-hex, bytes that are not UTF-8.
    assert_eq!(found(s, "/ws?access_token=abc%", &[]), None);
    assert_eq!(found(s, "/ws?access_token=abc%4", &[]), None);
    assert_eq!(found(s, "/ws?access_token=%zz", &[]), None);
    assert_eq!(found(s, "/ws?access_token=%ff", &[]), None);
    // Missing values, other names, no query.
    assert_eq!(found(s, "/ws?access_token=", &[]), None);
    assert_eq!(found(s, "/ws?access_token", &[]), None);
    assert_eq!(
        found(s, "/ws?access_token&access_token=x", &[]),
        some("x", 0)
    );
    assert_eq!(found(s, "/ws?xaccess_token=abc", &[]), None);
    assert_eq!(found(s, "/ws", &[]), None);
}

#[test]
fn cookies_on_several_lines_with_odd_spacing_and_quotes() {
    let s = &["cookie:session"];
    assert_eq!(found(s, "/", &[("cookie", "session=abc")]), some("abc", 0));
    assert_eq!(
        found(s, "/", &[("cookie", "a=1;session=abc;b=2")]),
        some("abc", 0)
    );
    assert_eq!(
        found(s, "/", &[("cookie", "a=1 ;  session = abc ; b=2")]),
        some("abc", 0)
    );
    assert_eq!(
        found(s, "/", &[("cookie", "session=\"abc\"")]),
        some("abc", 0)
    );
    assert_eq!(found(s, "/", &[("cookie", "session=\"\"")]), None);
    assert_eq!(found(s, "/", &[("cookie", "session=")]), None);
    assert_eq!(found(s, "/", &[("cookie", "session")]), None);
    assert_eq!(
        found(s, "/", &[("cookie", "xsession=abc; sessionx=abc")]),
        None
    );
    let lines = [("cookie", "a=1"), ("cookie", "b=2; session=late")];
    assert_eq!(found(s, "/", &lines), some("late", 0));
}

#[test]
fn subprotocol_entry_with_the_prefix() {
    let s = &["subprotocol:access_token."];
    let h = [("sec-websocket-protocol", "chat, access_token.abc")];
    assert_eq!(found(s, "/", &h), some("abc", 0));
    let h = [("sec-websocket-protocol", "  access_token.abc  ,chat")];
    assert_eq!(found(s, "/", &h), some("abc", 0));
    let lines = [
        ("sec-websocket-protocol", "chat"),
        ("sec-websocket-protocol", "v2, access_token.xyz"),
    ];
    assert_eq!(found(s, "/", &lines), some("xyz", 0));
    assert_eq!(
        found(s, "/", &[("sec-websocket-protocol", "access_token.")]),
        None
    );
    assert_eq!(
        found(s, "/", &[("sec-websocket-protocol", "chat, ,")]),
        None
    );
    assert_eq!(
        found(s, "/", &[("sec-websocket-protocol", "Access_token.abc")]),
        None
    );
}

fn stripped(spec: &str, uri: &str, pairs: &[(&str, &str)]) -> (String, Vec<String>) {
    let mut uri: Uri = uri.parse().unwrap();
    let mut h = headers(pairs);
    strip(&TokenSource::parse(spec).unwrap(), &mut uri, &mut h);
    let protocols = h
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    (uri.to_string(), protocols)
}

#[test]
fn strip_query_removes_every_pair_of_the_name() {
    let q = |uri: &str| stripped("query:t", uri, &[]).0;
    assert_eq!(q("/ws?t=abc"), "/ws");
    assert_eq!(q("/ws?a=1&t=abc&b=2"), "/ws?a=1&b=2");
    assert_eq!(q("/ws?t=1&a=1&t=2&t"), "/ws?a=1");
    assert_eq!(q("/ws?tt=1&a=t"), "/ws?tt=1&a=t");
    assert_eq!(q("/ws?a=1&&b=2"), "/ws?a=1&&b=2");
    assert_eq!(q("/ws"), "/ws");
    assert_eq!(
        q("http://example.com/ws?t=1&x=2"),
        "http://example.com/ws?x=2"
    );
}

#[test]
fn strip_subprotocol_rebuilds_or_removes_the_header() {
    let p = |pairs: &[(&str, &str)]| stripped("subprotocol:tok.", "/", pairs).1;
    assert_eq!(
        p(&[("sec-websocket-protocol", "tok.abc")]),
        Vec::<String>::new()
    );
    assert_eq!(
        p(&[("sec-websocket-protocol", "chat, tok.abc, v2")]),
        ["chat, v2"]
    );
    let lines = [
        ("sec-websocket-protocol", "tok.abc"),
        ("sec-websocket-protocol", "chat"),
    ];
    assert_eq!(p(&lines), ["chat"]);
    let lines = [
        ("sec-websocket-protocol", "a"),
        ("sec-websocket-protocol", "b"),
    ];
    assert_eq!(p(&lines), ["a", "b"], "untouched without a token entry");
}

#[test]
fn strip_leaves_headers_and_cookies() {
    let h = [("authorization", "Bearer abc"), ("cookie", "s=abc")];
    for spec in ["header:Authorization", "cookie:s"] {
        let mut uri: Uri = "/ws?s=abc".parse().unwrap();
        let mut map = headers(&h);
        strip(&TokenSource::parse(spec).unwrap(), &mut uri, &mut map);
        assert_eq!(uri, "/ws?s=abc");
        assert_eq!(map, headers(&h));
    }
}
