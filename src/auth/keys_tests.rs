//! Tests of key files: each format read, each way of failing named with the path.

use super::*;
use Algorithm::*;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/jwt");

fn data(name: &str) -> PathBuf {
    Path::new(DATA).join(name)
}

/// A file of its own under the temp dir, for one test.
fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsgate-jwt-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn loaded(path: &Path, algorithms: &[Algorithm]) -> (Vec<KeyType>, Vec<Algorithm>) {
    let (keys, algs) = load(path, algorithms).unwrap();
    (keys.iter().map(|k| k.kind).collect(), algs)
}

fn problem(path: &Path, algorithms: &[Algorithm]) -> KeyProblem {
    let err = load(path, algorithms).err().expect("an error");
    assert_eq!(err.path, path);
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    err.problem
}

#[test]
fn pem_public_keys_of_each_type() {
    let cases = [
        (
            "rsa.pub.pem",
            KeyType::Rsa,
            vec![RS256, RS384, RS512, PS256],
        ),
        ("ec256.pub.pem", KeyType::P256, vec![ES256]),
        ("ec384.pub.pem", KeyType::P384, vec![ES384]),
        ("ed25519.pub.pem", KeyType::Ed25519, vec![EdDSA]),
    ];
    for (file, kind, defaults) in cases {
        assert_eq!(loaded(&data(file), &[]), (vec![kind], defaults), "{file}");
    }
    // A secret names its one algorithm.
    let secret = loaded(&data("hmac.secret"), &[HS256]);
    assert_eq!(secret, (vec![KeyType::Secret], vec![HS256]));
}

#[test]
fn pkcs1_rsa_public_key() {
    let path = data("rsa.pkcs1.pub.pem");
    let pem = std::fs::read(&path).unwrap();
    assert!(pem.starts_with(b"-----BEGIN RSA PUBLIC KEY-----"));
    assert_eq!(loaded(&path, &[RS256]), (vec![KeyType::Rsa], vec![RS256]));
}

#[test]
fn jwks_keeps_kid_and_alg() {
    let (keys, algs) = load(&data("jwks.json"), &[]).unwrap();
    let seen: Vec<_> = keys
        .iter()
        .map(|k| (k.kid.as_deref(), k.alg, k.kind))
        .collect();
    assert_eq!(
        seen,
        [
            (Some("rsa1"), None, KeyType::Rsa),
            (Some("ec1"), Some(ES256), KeyType::P256),
            (Some("ed1"), None, KeyType::Ed25519),
        ]
    );
    assert_eq!(algs, [RS256, RS384, RS512, PS256, ES256, EdDSA]);
}

#[test]
fn jwks_oct_key_and_skipped_encryption_key() {
    let path = temp_file(
        "oct.json",
        br#"{"keys": [{"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
                      {"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}"#,
    );
    let (keys, algs) = load(&path, &[]).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0].kind, keys[0].kid.as_deref()),
        (KeyType::Secret, Some("h"))
    );
    assert_eq!(algs, [HS256]);
}

#[test]
fn explicit_algorithms_are_checked_against_the_keys() {
    assert_eq!(
        loaded(&data("rsa.pub.pem"), &[PS384, RS256, PS384]).1,
        [PS384, RS256]
    );
    assert!(matches!(
        problem(&data("rsa.pub.pem"), &[RS256, ES256, HS256]),
        KeyProblem::AlgorithmsUnsupported(a) if a == [ES256, HS256]
    ));
    // The JWK's `alg` limits its key: ec1 says ES256, so nothing else.
    assert!(matches!(
        problem(&data("jwks.json"), &[ES384]),
        KeyProblem::AlgorithmsUnsupported(a) if a == [ES384]
    ));
}

#[test]
fn secrets() {
    let path = temp_file("secret", b"s3cret\n");
    let (keys, _) = load(&path, &[HS256]).unwrap();
    assert_eq!(
        keys[0].key.as_bytes(),
        b"s3cret",
        "one trailing newline removed"
    );
    let path = temp_file("secret-crlf", b"s3cret\r\n");
    assert_eq!(
        load(&path, &[HS256]).unwrap().0[0].key.as_bytes(),
        b"s3cret"
    );
    let path = temp_file("secret-two", b"s3cret\n\n");
    assert_eq!(
        load(&path, &[HS256]).unwrap().0[0].key.as_bytes(),
        b"s3cret\n"
    );
    // Not named: a garbled key file must not load as a secret.
    for algs in [&[][..], &[RS256], &[HS384], &[HS256, HS512]] {
        assert!(matches!(
            problem(&data("hmac.secret"), algs),
            KeyProblem::SecretNeedsHs256(a) if a == algs
        ));
    }
}

#[test]
fn each_bad_file_says_why() {
    let missing = std::env::temp_dir().join("wsgate-jwt-no-such-file");
    assert!(matches!(problem(&missing, &[]), KeyProblem::Unreadable(_)));
    assert!(matches!(
        problem(&temp_file("empty", b""), &[]),
        KeyProblem::Empty
    ));
    assert!(matches!(
        problem(&temp_file("newline", b"\n"), &[]),
        KeyProblem::Empty
    ));
    assert!(matches!(
        problem(&temp_file("bad.json", b"{\"keys\": ["), &[]),
        KeyProblem::NotJson(_)
    ));
    assert!(matches!(
        problem(&temp_file("nokeys.json", b"{\"k\": 1}"), &[]),
        KeyProblem::NoKeysArray
    ));
    assert!(matches!(
        problem(&temp_file("obj.json", b"{\"keys\": {}}"), &[]),
        KeyProblem::NoKeysArray
    ));
    assert!(matches!(
        problem(&temp_file("zero.json", b"{\"keys\": []}"), &[]),
        KeyProblem::NoKeys
    ));

    let private = std::fs::read(data("rsa.pem")).unwrap();
    assert!(matches!(
        problem(&temp_file("private.pem", &private), &[]),
        KeyProblem::PemNotPublic { label } if label == "PRIVATE KEY"
    ));
    let cert = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        problem(&temp_file("cert.pem", cert), &[]),
        KeyProblem::PemNotPublic { label } if label == "CERTIFICATE"
    ));
    let junk = b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    assert!(matches!(
        problem(&temp_file("junk.pem", junk), &[]),
        KeyProblem::PemUnsupported(_)
    ));
}

#[test]
fn each_unsupported_jwk_names_its_index() {
    let rsa_n = {
        let jwks: Value =
            serde_json::from_slice(&std::fs::read(data("jwks.json")).unwrap()).unwrap();
        jwks["keys"][0]["n"].as_str().unwrap().to_owned()
    };
    let good = format!(r#"{{"kty": "RSA", "n": "{rsa_n}", "e": "AQAB"}}"#);
    let cases = [
        (r#"{"n": "AQAB"}"#, "no \"kty\""),
        (r#"{"kty": 7}"#, "\"kty\" is not a string"),
        (
            r#"{"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}"#,
            "curve \"P-521\"",
        ),
        (
            r#"{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}"#,
            "bad key parameters",
        ),
        (r#"{"kty": "EC", "crv": "P-256", "x": "AAAA"}"#, "no \"y\""),
        (
            r#"{"kty": "OKP", "crv": "X25519", "x": "AA"}"#,
            "curve \"X25519\"",
        ),
        (
            r#"{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}"#,
            "bad key parameters",
        ),
        (
            r#"{"kty": "RSA", "n": "AQAB", "e": "AQAB"}"#,
            "RSA modulus of 17 bits",
        ),
        (r#"{"kty": "RSA", "n": "!!", "e": "AQAB"}"#, "not base64url"),
        (r#"{"kty": "oct", "k": ""}"#, "empty \"k\""),
        (
            r#"{"kty": "oct", "k": "c2VjcmV0", "alg": "RS256"}"#,
            "does not fit a oct key",
        ),
        (
            r#"{"kty": "oct", "k": "c2VjcmV0", "alg": "none"}"#,
            "\"alg\" \"none\"",
        ),
        (
            r#"{"kty": "oct", "k": "c2VjcmV0", "kid": 1}"#,
            "\"kid\" is not a string",
        ),
        (r#"{"kty": "RSA-PSS"}"#, "key type \"RSA-PSS\""),
    ];
    for (entry, why_part) in cases {
        let file = temp_file(
            "one.json",
            format!(r#"{{"keys": [{good}, {entry}]}}"#).as_bytes(),
        );
        match problem(&file, &[]) {
            KeyProblem::UnsupportedJwk { index: 1, why } => {
                assert!(why.contains(why_part), "{entry}: {why}")
            }
            other => panic!("{entry}: {other:?}"),
        }
    }
    let exp = format!(r#"{{"keys": [{{"kty": "RSA", "n": "{rsa_n}", "e": "AA"}}]}}"#);
    assert!(matches!(
        problem(&temp_file("exp.json", exp.as_bytes()), &[]),
        KeyProblem::UnsupportedJwk { index: 0, why } if why.contains("exponent")
    ));
}
