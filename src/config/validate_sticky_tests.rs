//! `upstreams.NAME.sticky_cookie` validation: names, paths, Max-Age, SameSite and Secure.

use super::super::types::{SameSite, StickyCookie};
use super::super::Config;
use super::tests::{errors, with};
use std::time::Duration;

fn sticky(block: &str) -> String {
    with(
        "    balance: round_robin\n",
        &format!("    sticky_cookie: {block}\n"),
    )
}

#[test]
fn sticky_cookie_defaults_and_every_attribute() {
    let u = &Config::from_yaml(&sticky("{ name: srv }"))
        .unwrap()
        .upstreams[0];
    assert_eq!(
        u.sticky_cookie,
        Some(StickyCookie {
            name: "srv".into(),
            path: "/".into(),
            max_age: None,
            secure: None,
            http_only: true,
            same_site: SameSite::Lax,
        })
    );
    let full = "{ name: io_srv, path: /socket.io/, max_age: 1h, secure: true, http_only: false, same_site: None }";
    let u = &Config::from_yaml(&sticky(full)).unwrap().upstreams[0];
    assert_eq!(
        u.sticky_cookie,
        Some(StickyCookie {
            name: "io_srv".into(),
            path: "/socket.io/".into(),
            max_age: Some(Duration::from_secs(3600)),
            secure: Some(true),
            http_only: false,
            same_site: SameSite::None,
        })
    );
}

#[test]
fn sticky_cookie_mistakes_are_named() {
    assert_eq!(
        Config::from_yaml(&sticky("{}")).unwrap_err().messages()[0],
        "line 11, column 20: upstreams.chat.sticky_cookie: missing field `name`"
    );
    let cases = [
        (
            "{ name: \"bad name\" }",
            "upstreams.chat.sticky_cookie.name: \"bad name\" is not a cookie name",
        ),
        (
            "{ name: \"a=b\" }",
            "upstreams.chat.sticky_cookie.name: \"a=b\" is not",
        ),
        (
            "{ name: \"\" }",
            "upstreams.chat.sticky_cookie.name: \"\" is not",
        ),
        (
            "{ name: srv, path: chat }",
            "upstreams.chat.sticky_cookie.path: \"chat\" must start with '/'",
        ),
        (
            "{ name: srv, path: \"/a;b\" }",
            "upstreams.chat.sticky_cookie.path: \"/a;b\" must start",
        ),
        (
            "{ name: srv, max_age: soon }",
            "upstreams.chat.sticky_cookie.max_age: \"soon\" is not a duration",
        ),
        (
            "{ name: srv, max_age: 1500ms }",
            "upstreams.chat.sticky_cookie.max_age: \"1500ms\": Max-Age counts whole seconds",
        ),
        (
            "{ name: srv, same_site: loose }",
            "upstreams.chat.sticky_cookie.same_site: \"loose\" is not strict, lax or none",
        ),
        (
            "{ name: srv, same_site: none }",
            "upstreams.chat.sticky_cookie.same_site: none needs secure: true",
        ),
        (
            "{ name: srv, same_site: none, secure: false }",
            "upstreams.chat.sticky_cookie.same_site: none needs secure: true",
        ),
    ];
    for (block, expected) in cases {
        let errors = errors(&sticky(block));
        assert_eq!(errors.len(), 1, "{block}: {errors:?}");
        assert!(errors[0].starts_with(expected), "{block}: {errors:?}");
    }
    let unknown = errors(&sticky("{ name: srv, domain: example.com }"));
    assert!(unknown[0].contains("unknown field `domain`"), "{unknown:?}");
}
