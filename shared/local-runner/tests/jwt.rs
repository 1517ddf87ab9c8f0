//! Token verification refuses everything the REST Cognito authorizer refuses.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use local_runner::jwt::{TokenVerifier, VerifyError};
use serde_json::{Value, json};

const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Test";
const AUDIENCE: &str = "client-123";

fn verifier() -> TokenVerifier {
    TokenVerifier::from_jwks(include_str!("fixtures/test-jwks.json"), ISSUER, AUDIENCE).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn claims() -> Value {
    json!({"sub": "user-1", "iss": ISSUER, "aud": AUDIENCE, "token_use": "id", "exp": now() + 600, "iat": now(), "email": "a@example.com"})
}

fn sign(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_der(include_bytes!("fixtures/test-signing-key.der"));
    let header = Header { kid: Some("test-key".into()), ..Header::new(Algorithm::RS256) };
    encode(&header, claims, &key).unwrap()
}

fn with(field: &str, value: Value) -> Value {
    let mut c = claims();
    c[field] = value;
    c
}

#[test]
fn a_valid_id_token_passes() {
    let got = verifier().verify(&sign(&claims())).unwrap();
    assert_eq!(got["sub"], "user-1");
}

#[test]
fn wrong_issuer_audience_expiry_and_use_are_refused() {
    let v = verifier();
    for bad in [
        with("iss", json!("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other")),
        with("aud", json!("another-client")),
        with("exp", json!(now() - 10)),
        with("token_use", json!("access")),
    ] {
        assert!(matches!(v.verify(&sign(&bad)), Err(VerifyError::Invalid(_))), "accepted {bad}");
    }
}

#[test]
fn bad_signature_alg_none_and_unknown_keys_are_refused() {
    let v = verifier();
    let token = sign(&claims());
    let parts: Vec<&str> = token.split('.').collect();

    // payload swapped for another user's, signature kept
    let forged_payload = URL_SAFE_NO_PAD.encode(with("sub", json!("admin")).to_string());
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert!(matches!(v.verify(&forged), Err(VerifyError::Invalid(_))));

    // alg: none with no signature
    let none_header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": "test-key"}).to_string());
    let unsigned = format!("{}.{}.", none_header, parts[1]);
    assert!(v.verify(&unsigned).is_err());

    // HS256 signed with the public JWKS as the secret (algorithm confusion)
    let hs = encode(
        &Header { kid: Some("test-key".into()), ..Header::new(Algorithm::HS256) },
        &claims(),
        &EncodingKey::from_secret(include_bytes!("fixtures/test-jwks.json")),
    )
    .unwrap();
    assert_eq!(v.verify(&hs), Err(VerifyError::WrongAlgorithm));

    // a key the pool does not have
    let other_kid = {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT", "kid": "other"}).to_string());
        format!("{}.{}.{}", header, parts[1], parts[2])
    };
    assert_eq!(v.verify(&other_kid), Err(VerifyError::UnknownKey));

    for junk in ["", "a.b", "a.b.c", "....", "Bearer x"] {
        assert!(v.verify(junk).is_err());
    }
}
