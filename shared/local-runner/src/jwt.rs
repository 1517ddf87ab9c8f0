//! Verification of Cognito ID tokens, as API Gateway's Cognito authorizer does it: RS256
//! signature by a key of the pool's JWKS, issuer, audience (the app client), expiry, and
//! `token_use = id`.

use std::collections::HashMap;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Map, Value};

#[derive(Debug, PartialEq, Eq)]
pub enum VerifyError {
    Malformed,
    UnknownKey,
    WrongAlgorithm,
    Invalid(String),
}

/// Verifies ID tokens of one user pool and app client.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl TokenVerifier {
    pub fn from_jwks(jwks: &str, issuer: &str, audience: &str) -> Result<TokenVerifier, String> {
        let set: JwkSet = serde_json::from_str(jwks).map_err(|e| format!("bad JWKS: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            keys.insert(kid, DecodingKey::from_jwk(jwk).map_err(|e| format!("bad JWK: {e}"))?);
        }
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        Ok(TokenVerifier { keys, validation })
    }

    /// Fetches the pool's JWKS from the local endpoint.
    pub async fn fetch(endpoint: &str, user_pool_id: &str, issuer: &str, audience: &str) -> Result<TokenVerifier, String> {
        let host = format!("cognito-idp.{}.amazonaws.com", testkit::endpoint::REGION);
        let jwks = testkit::endpoint::http_get(endpoint, &format!("/{user_pool_id}/.well-known/jwks.json"), &host).await?;
        Self::from_jwks(&jwks, issuer, audience)
    }

    /// The token's claims when it is a valid ID token of this pool and client.
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, VerifyError> {
        let header = decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(VerifyError::WrongAlgorithm);
        }
        let key = self.keys.get(header.kid.as_deref().unwrap_or_default()).ok_or(VerifyError::UnknownKey)?;
        let data = decode::<Map<String, Value>>(token, key, &self.validation).map_err(|e| VerifyError::Invalid(e.to_string()))?;
        if data.claims.get("token_use").and_then(Value::as_str) != Some("id") {
            return Err(VerifyError::Invalid("not an ID token".into()));
        }
        Ok(data.claims)
    }
}

/// Claims as API Gateway REST's Cognito authorizer passes them: every value a string, lists
/// joined with commas.
pub fn as_authorizer_claims(claims: &Map<String, Value>) -> Value {
    let out: Map<String, Value> = claims
        .iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => items.iter().map(|i| i.as_str().map(str::to_owned).unwrap_or_else(|| i.to_string())).collect::<Vec<_>>().join(","),
                other => other.to_string(),
            };
            (k.clone(), Value::String(s))
        })
        .collect();
    Value::Object(out)
}
