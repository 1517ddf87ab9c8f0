//! The caller's identity, from the API Gateway REST Cognito authorizer's claims in the
//! request context, and nowhere else: never headers, query or body.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use domain::{Identity, OrgId, UserId};
use http::request::Parts;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use serde_json::Value;

use crate::ApiError;

/// The verified caller. Rejects with 401 when the request carries no usable claims.
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        identity_of(parts).map(Caller).ok_or_else(ApiError::unauthorized)
    }
}

pub(crate) fn identity_of(parts: &Parts) -> Option<Identity> {
    match parts.extensions.request_context_ref()? {
        RequestContext::ApiGatewayV1(ctx) => match ctx.authorizer.fields.get("claims")? {
            Value::Object(claims) => identity_from_claims(&claims.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            _ => None,
        },
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The orgs the verified token's `tenantry_orgs` claim names (`orgId:role` items, written by
/// PreTokenGeneration when the token was issued): who was a member of them then. Never an
/// authorization (that reads DynamoDB); the rate limits use it to charge an org's budget
/// concurrently with the authorization, which a stranger's token cannot make them do.
pub(crate) fn claimed_orgs(parts: &Parts) -> Vec<OrgId> {
    match parts.extensions.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(ctx)) => match ctx.authorizer.fields.get("claims") {
            Some(Value::Object(claims)) => orgs_of(claims.get("tenantry_orgs")),
            _ => Vec::new(),
        },
        #[allow(unreachable_patterns)]
        _ => Vec::new(),
    }
}

/// The org ids of a `tenantry_orgs` claim: a JSON array, or API Gateway REST's string of it
/// (`"[a:owner b:admin]"` or `"a:owner,b:admin"`).
fn orgs_of(claim: Option<&Value>) -> Vec<OrgId> {
    let items: Vec<String> = match claim {
        Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        Some(Value::String(s)) => s.trim_matches(|c| c == '[' || c == ']').split([',', ' ']).filter(|g| !g.is_empty()).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    items.iter().filter_map(|item| item.split(':').next()?.parse().ok()).collect()
}

/// Builds an identity from authorizer claims. API Gateway REST passes every claim as a
/// string (`"true"`, groups as `"a,b"` or `"[a b]"`); JSON-typed values are accepted too.
pub fn identity_from_claims(claims: &HashMap<String, Value>) -> Option<Identity> {
    let text = |name: &str| match claims.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let user_id: UserId = text("sub")?.parse().ok()?;
    let email = text("email").and_then(|e| e.parse().ok());
    let email_verified = text("email_verified").is_some_and(|v| v == "true");
    let groups: Vec<String> = match claims.get("cognito:groups") {
        Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        Some(Value::String(s)) => s.trim_matches(|c| c == '[' || c == ']').split([',', ' ']).filter(|g| !g.is_empty()).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    Some(Identity { user_id, email, email_verified, platform_admin: groups.iter().any(|g| g == Identity::PLATFORM_ADMIN_GROUP) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> HashMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn rest_authorizer_string_claims() {
        let id = identity_from_claims(&claims(json!({
            "sub": "1f0c8a4e-1111-2222-3333-444455556666", "email": "A@Example.com",
            "email_verified": "true", "cognito:groups": "editors,platform-admin"
        })))
        .unwrap();
        assert_eq!(id.email.unwrap().as_str(), "A@example.com");
        assert!(id.email_verified && id.platform_admin);
        let id = identity_from_claims(&claims(json!({"sub": "u1", "cognito:groups": "[editors platform-admin]"}))).unwrap();
        assert!(id.platform_admin && !id.email_verified);
        let id = identity_from_claims(&claims(json!({"sub": "u1", "cognito:groups": "platform-administrators"}))).unwrap();
        assert!(!id.platform_admin);
    }

    #[test]
    fn org_claims_as_api_gateway_hands_them_over() {
        let a = OrgId::new();
        let b = OrgId::new();
        assert_eq!(orgs_of(Some(&json!(format!("[{a}:owner {b}:viewer]")))), vec![a, b]);
        assert_eq!(orgs_of(Some(&json!(format!("{a}:owner,{b}:viewer")))), vec![a, b]);
        assert_eq!(orgs_of(Some(&json!([format!("{a}:admin"), "junk:owner"]))), vec![a]);
        assert!(orgs_of(None).is_empty() && orgs_of(Some(&json!("[]"))).is_empty());
    }

    #[test]
    fn unusable_claims_give_no_identity() {
        assert!(identity_from_claims(&claims(json!({}))).is_none());
        assert!(identity_from_claims(&claims(json!({"sub": ""}))).is_none());
        assert!(identity_from_claims(&claims(json!({"sub": "a#b"}))).is_none());
        assert!(identity_from_claims(&claims(json!({"sub": 5}))).is_none());
    }
}
