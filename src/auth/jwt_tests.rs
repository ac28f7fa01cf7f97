//! Tests of verification: tokens signed here with the test keys of tests/data/jwt.

use std::path::Path;

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

use super::*;
use Algorithm::*;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/jwt");
const NOW: u64 = 1_700_000_000;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(DATA).join(name)).unwrap()
}

fn settings(file: &str) -> JwtSettings {
    JwtSettings {
        keys: Path::new(DATA).join(file),
        issuer: None,
        audiences: Vec::new(),
        // A secret file must name its algorithm.
        algorithms: if file == "hmac.secret" {
            vec![HS256]
        } else {
            Vec::new()
        },
        leeway: Duration::ZERO,
    }
}

fn verifier(file: &str) -> Verifier {
    Verifier::load(&settings(file)).unwrap()
}

/// The private key for `alg` (the secret for HS*), as make.sh wrote it.
fn private_key(alg: Algorithm, file: &str) -> EncodingKey {
    let bytes = data(file);
    match alg {
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => EncodingKey::from_rsa_pem(&bytes).unwrap(),
        ES256 | ES384 => EncodingKey::from_ec_pem(&bytes).unwrap(),
        EdDSA => EncodingKey::from_ed_pem(&bytes).unwrap(),
        HS256 | HS384 | HS512 => EncodingKey::from_secret(bytes.strip_suffix(b"\n").unwrap()),
    }
}

fn sign_with(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).unwrap()
}

fn sign(alg: Algorithm, file: &str, kid: Option<&str>, claims: &Value) -> String {
    sign_with(alg, &private_key(alg, file), kid, claims)
}

/// An HS256 token over `claims` (the fast algorithm, for the claim checks).
fn hs(claims: Value) -> String {
    sign(HS256, "hmac.secret", None, &claims)
}

/// `header.payload.` with both parts given as JSON text.
fn unsigned(header: &str, payload: &str) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    )
}

#[test]
fn each_key_type_verifies_from_its_pem() {
    let cases = [
        (RS256, "rsa.pem", "rsa.pub.pem"),
        (PS256, "rsa.pem", "rsa.pub.pem"),
        (RS256, "rsa.pem", "rsa.pkcs1.pub.pem"),
        (ES256, "ec256.pem", "ec256.pub.pem"),
        (ES384, "ec384.pem", "ec384.pub.pem"),
        (EdDSA, "ed25519.pem", "ed25519.pub.pem"),
        (HS256, "hmac.secret", "hmac.secret"),
    ];
    for (alg, private, public) in cases {
        let token = sign(alg, private, Some("any-kid"), &json!({"sub": "ann"}));
        let claims = verifier(public).verify(&token, NOW).unwrap();
        assert_eq!(claims.get("sub"), Some(&json!("ann")), "{alg:?} {public}");
    }
}

#[test]
fn jwks_keys_by_kid_and_by_alg() {
    let v = verifier("jwks.json");
    for (alg, private, kid) in [
        (RS256, "rsa.pem", "rsa1"),
        (ES256, "ec256.pem", "ec1"),
        (EdDSA, "ed25519.pem", "ed1"),
    ] {
        let claims = json!({"sub": kid});
        assert!(
            v.verify(&sign(alg, private, Some(kid), &claims), NOW)
                .is_ok(),
            "{kid}"
        );
        // Without a kid, the keys that fit the algorithm are tried.
        assert!(
            v.verify(&sign(alg, private, None, &claims), NOW).is_ok(),
            "{alg:?}"
        );
    }
}

#[test]
fn unknown_kid() {
    let v = verifier("jwks.json");
    let token = sign(ES256, "ec256.pem", Some("nope"), &json!({}));
    assert!(matches!(v.verify(&token, NOW), Err(JwtError::UnknownKey)));
    // rsa1 exists, but is no ES256 key.
    let token = sign(ES256, "ec256.pem", Some("rsa1"), &json!({}));
    assert!(matches!(v.verify(&token, NOW), Err(JwtError::UnknownKey)));
}

#[test]
fn wrong_key_or_signature_is_bad_signature() {
    let other = EncodingKey::from_secret(b"not the secret");
    let token = sign_with(HS256, &other, None, &json!({}));
    assert!(matches!(
        verifier("hmac.secret").verify(&token, NOW),
        Err(JwtError::BadSignature)
    ));
    // Another token's signature on these claims, for each asymmetric type.
    for (alg, private, public) in [
        (RS256, "rsa.pem", "rsa.pub.pem"),
        (ES256, "ec256.pem", "jwks.json"),
        (EdDSA, "ed25519.pem", "ed25519.pub.pem"),
    ] {
        let key = private_key(alg, private);
        let a = sign_with(alg, &key, None, &json!({"sub": "a"}));
        let b = sign_with(alg, &key, None, &json!({"sub": "b"}));
        let forged = format!(
            "{}.{}",
            a.rsplit_once('.').unwrap().0,
            b.rsplit_once('.').unwrap().1
        );
        let v = verifier(public);
        assert!(v.verify(&b, NOW).is_ok());
        assert!(
            matches!(v.verify(&forged, NOW), Err(JwtError::BadSignature)),
            "{alg:?}"
        );
        // A signature of the wrong length for the algorithm.
        let short = format!("{}.AAAA", a.rsplit_once('.').unwrap().0);
        assert!(
            matches!(v.verify(&short, NOW), Err(JwtError::BadSignature)),
            "{alg:?}"
        );
    }
}

#[test]
fn garbage_is_malformed() {
    let v = verifier("hmac.secret");
    let hs_header = r#"{"alg":"HS256"}"#;
    let valid_sig_bad_payload = {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(hs_header),
            URL_SAFE_NO_PAD.encode("[1,2]")
        );
        let sig = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &private_key(HS256, "hmac.secret"),
            HS256,
        )
        .unwrap();
        format!("{message}.{sig}")
    };
    let five = format!("{}..x.y.z", URL_SAFE_NO_PAD.encode(hs_header));
    let cases = [
        String::new(),
        "garbage".into(),
        "a.b".into(),
        "a.b.c".into(),
        "!!.e30.".into(),
        unsigned("not json", "{}"),
        unsigned("[1]", "{}"),
        unsigned(r#"{"typ":"JWT"}"#, "{}"),
        unsigned(r#"{"alg":5}"#, "{}"),
        unsigned(r#"{"alg":"HS256","kid":5}"#, "{}"),
        format!("{}!!", unsigned(hs_header, "{}")),
        five,
        valid_sig_bad_payload,
    ];
    for token in cases {
        assert!(
            matches!(v.verify(&token, NOW), Err(JwtError::Malformed(_))),
            "{token:?}"
        );
    }
    let exp_text = hs(json!({"exp": "tomorrow"}));
    assert!(matches!(
        v.verify(&exp_text, NOW),
        Err(JwtError::Malformed(_))
    ));
}

#[test]
fn algorithms_not_allowed() {
    let rsa = verifier("rsa.pub.pem");
    let none = unsigned(r#"{"alg":"none"}"#, r#"{"sub":"x"}"#);
    assert!(matches!(
        rsa.verify(&none, NOW),
        Err(JwtError::AlgorithmNotAllowed(None))
    ));
    // The classic confusion: HMAC keyed with the RSA public key's bytes.
    let confused = sign_with(
        HS256,
        &EncodingKey::from_secret(&data("rsa.pub.pem")),
        None,
        &json!({}),
    );
    assert!(matches!(
        rsa.verify(&confused, NOW),
        Err(JwtError::AlgorithmNotAllowed(Some(HS256)))
    ));
    let mut only_rs256 = settings("rsa.pub.pem");
    only_rs256.algorithms = vec![RS256];
    let ps = sign(PS256, "rsa.pem", None, &json!({}));
    let v = Verifier::load(&only_rs256).unwrap();
    assert!(matches!(
        v.verify(&ps, NOW),
        Err(JwtError::AlgorithmNotAllowed(Some(PS256)))
    ));
    assert_eq!(v.algorithms(), [RS256]);
    let es384 = sign(ES384, "ec384.pem", None, &json!({}));
    assert!(matches!(
        verifier("jwks.json").verify(&es384, NOW),
        Err(JwtError::AlgorithmNotAllowed(Some(ES384)))
    ));
}

fn with_leeway(secs: u64) -> Verifier {
    let mut s = settings("hmac.secret");
    s.leeway = Duration::from_secs(secs);
    Verifier::load(&s).unwrap()
}

#[test]
fn exp_with_leeway_boundaries() {
    let v = with_leeway(30);
    let at = |exp: Value| v.verify(&hs(json!({ "exp": exp })), NOW);
    assert!(matches!(at(json!(NOW - 31)), Err(JwtError::Expired)));
    assert!(
        matches!(at(json!(NOW - 30)), Err(JwtError::Expired)),
        "exactly now - leeway"
    );
    assert!(at(json!(NOW - 29)).is_ok());
    assert!(at(json!(-5)).is_err());
    assert!(matches!(
        at(json!((NOW - 30) as f64 + 0.5)),
        Err(JwtError::Expired)
    ));
    let v = with_leeway(0);
    assert!(matches!(
        v.verify(&hs(json!({"exp": NOW})), NOW),
        Err(JwtError::Expired)
    ));
    assert!(v.verify(&hs(json!({"exp": NOW + 1})), NOW).is_ok());
    assert!(v.verify(&hs(json!({"exp": u64::MAX})), NOW).is_ok());
    assert!(
        v.verify(&hs(json!({"sub": "no exp"})), NOW).is_ok(),
        "no exp is accepted"
    );
}

#[test]
fn nbf_with_leeway_boundaries() {
    let v = with_leeway(30);
    let at = |nbf: u64| v.verify(&hs(json!({ "nbf": nbf })), NOW);
    assert!(at(NOW + 29).is_ok());
    assert!(at(NOW + 30).is_ok(), "exactly now + leeway");
    assert!(matches!(at(NOW + 31), Err(JwtError::NotYetValid)));
    let v = with_leeway(0);
    assert!(v.verify(&hs(json!({"nbf": NOW})), NOW).is_ok());
    assert!(matches!(
        v.verify(&hs(json!({"nbf": NOW + 1})), NOW),
        Err(JwtError::NotYetValid)
    ));
    // Sums at the ends of u64 saturate rather than overflow.
    assert!(with_leeway(u64::MAX)
        .verify(&hs(json!({"nbf": u64::MAX})), u64::MAX)
        .is_ok());
}

#[test]
fn issuer() {
    let mut s = settings("hmac.secret");
    s.issuer = Some("https://id.example".into());
    let v = Verifier::load(&s).unwrap();
    assert!(v
        .verify(&hs(json!({"iss": "https://id.example"})), NOW)
        .is_ok());
    for bad in [
        json!({"iss": "https://other"}),
        json!({}),
        json!({"iss": ["https://id.example"]}),
    ] {
        assert!(
            matches!(v.verify(&hs(bad.clone()), NOW), Err(JwtError::WrongIssuer)),
            "{bad}"
        );
    }
    assert!(verifier("hmac.secret")
        .verify(&hs(json!({"iss": "anyone"})), NOW)
        .is_ok());
}

#[test]
fn audience_as_string_or_array() {
    let mut s = settings("hmac.secret");
    s.audiences = vec!["chat".into(), "feed".into()];
    let v = Verifier::load(&s).unwrap();
    for good in [json!({"aud": "feed"}), json!({"aud": ["x", "chat"]})] {
        assert!(v.verify(&hs(good.clone()), NOW).is_ok(), "{good}");
    }
    for bad in [
        json!({"aud": "x"}),
        json!({"aud": ["x", 5]}),
        json!({"aud": []}),
        json!({"aud": 5}),
        json!({}),
    ] {
        assert!(
            matches!(
                v.verify(&hs(bad.clone()), NOW),
                Err(JwtError::WrongAudience)
            ),
            "{bad}"
        );
    }
    assert!(verifier("hmac.secret")
        .verify(&hs(json!({"aud": "x"})), NOW)
        .is_ok());
}

#[test]
fn status_and_label_per_variant() {
    let malformed = JwtError::Malformed(ErrorKind::InvalidToken.into());
    let cases = [
        (JwtError::Missing, 401, "unauthorized"),
        (malformed, 401, "unauthorized"),
        (JwtError::AlgorithmNotAllowed(None), 401, "unauthorized"),
        (
            JwtError::AlgorithmNotAllowed(Some(HS256)),
            401,
            "unauthorized",
        ),
        (JwtError::UnknownKey, 401, "unauthorized"),
        (JwtError::BadSignature, 401, "unauthorized"),
        (JwtError::Expired, 401, "unauthorized"),
        (JwtError::NotYetValid, 401, "unauthorized"),
        (JwtError::WrongIssuer, 403, "forbidden"),
        (JwtError::WrongAudience, 403, "forbidden"),
    ];
    for (e, status, label) in cases {
        assert_eq!(
            (e.status().as_u16(), e.result_label()),
            (status, label),
            "{e}"
        );
    }
}

#[test]
fn messages_never_hold_the_token() {
    let v = verifier("jwks.json");
    let tokens = [
        sign(ES256, "ec256.pem", Some("nope"), &json!({})),
        sign(ES256, "ec256.pem", None, &json!({"exp": 1})),
        unsigned(r#"{"alg":"none"}"#, "{}"),
        unsigned(r#"{"alg":"ES256"}"#, "[1]"),
        format!("{}x", sign(ES256, "ec256.pem", None, &json!({}))),
    ];
    for token in tokens {
        let e = v.verify(&token, NOW).unwrap_err();
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(&s.to_string());
            source = s.source();
        }
        for part in token.split('.').filter(|p| p.len() > 3) {
            assert!(!text.contains(part), "{text} holds {part}");
        }
    }
}

#[test]
fn claims_as_header_values() {
    let claims = verifier("hmac.secret")
        .verify(
            &hs(json!({
                "sub": "ann", "n": 42, "f": 1.5, "admin": true, "roles": ["a", "b"],
                "org": {"id": 7}, "nul": null, "nl": "a\nb", "uni": "caf\u{e9}", "exp": NOW + 60,
            })),
            NOW,
        )
        .unwrap();
    let h = |c: &str| claims.header_value(c);
    assert_eq!(h("sub").as_deref(), Some("ann"));
    assert_eq!(h("n").as_deref(), Some("42"));
    assert_eq!(h("f").as_deref(), Some("1.5"));
    assert_eq!(h("admin").as_deref(), Some("true"));
    assert_eq!(h("roles").as_deref(), Some(r#"["a","b"]"#));
    assert_eq!(h("org").as_deref(), Some(r#"{"id":7}"#));
    assert_eq!(
        (h("nul"), h("nl"), h("uni"), h("absent")),
        (None, None, None, None)
    );
    assert_eq!(claims.expires_at(), Some(NOW + 60));
    assert_eq!(Claims(Map::new()).expires_at(), None);
}

#[test]
fn verifier_is_shareable() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<Verifier>();
    shareable::<Claims>();
    let v = verifier("jwks.json");
    assert!(format!("{v:?}").contains("keys: 3"));
}

#[test]
fn load_error_names_the_file() {
    let e = Verifier::load(&settings("no-such-file")).unwrap_err();
    assert!(e.to_string().contains("no-such-file"), "{e}");
    assert!(matches!(e.problem, KeyProblem::Unreadable(_)));
}
