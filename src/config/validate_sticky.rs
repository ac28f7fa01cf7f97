//! Validation of `upstreams.NAME.sticky_cookie`: a cookie name browsers accept, attributes that do
//! not make browsers drop the cookie.

use super::super::raw::RawStickyCookie;
use super::super::types::{SameSite, StickyCookie};
use super::super::units::parse_duration;
use super::Errors;
// RFC 6265 §4.1.1: a cookie-name is an RFC 2616 token.
use wsgate_proto::handshake::is_token;

pub(super) fn sticky_cookie(
    path: &str,
    raw: &RawStickyCookie,
    errors: &mut Errors,
) -> StickyCookie {
    let path = format!("{path}.sticky_cookie");
    if !is_token(&raw.name) {
        errors.push(
            format!("{path}.name"),
            format!(
                "{:?} is not a cookie name (an RFC 6265 token: letters, digits, !#$%&'*+-.^_`|~)",
                raw.name
            ),
        );
    }
    let cookie_path = raw.path.clone().unwrap_or_else(|| "/".to_owned());
    // RFC 6265 path-value: any CHAR but CTLs and ';'.
    if !cookie_path.starts_with('/')
        || cookie_path
            .bytes()
            .any(|b| b == b';' || !(0x20..0x7f).contains(&b))
    {
        errors.push(
            format!("{path}.path"),
            format!("{cookie_path:?} must start with '/' and hold no ';' or control characters"),
        );
    }
    let max_age = raw.max_age.as_ref().map(|text| {
        let parsed = parse_duration(text).and_then(|d| {
            if d.subsec_nanos() == 0 {
                Ok(d)
            } else {
                Err(format!("{text:?}: Max-Age counts whole seconds"))
            }
        });
        errors.take(
            format!("{path}.max_age"),
            parsed,
            std::time::Duration::from_secs(1),
        )
    });
    let same_site = match raw
        .same_site
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("lax") => SameSite::Lax,
        Some("strict") => SameSite::Strict,
        Some("none") => SameSite::None,
        Some(_) => {
            errors.push(
                format!("{path}.same_site"),
                format!(
                    "{:?} is not strict, lax or none",
                    raw.same_site.as_deref().unwrap_or("")
                ),
            );
            SameSite::Lax
        }
    };
    if same_site == SameSite::None && raw.secure != Some(true) {
        errors.push(
            format!("{path}.same_site"),
            "none needs secure: true (browsers drop SameSite=None cookies without Secure)",
        );
    }
    StickyCookie {
        name: raw.name.clone(),
        path: cookie_path,
        max_age,
        secure: raw.secure,
        http_only: raw.http_only.unwrap_or(true),
        same_site,
    }
}
