//! `DELETE /me`: erases the caller's account (caller from verified claims only).
//!
//! Refused with 409, naming the orgs, while the caller is the last owner of one. Otherwise, in
//! each of their orgs: comments and history become tombstones, conversations and notifications
//! go, the org's exports are withdrawn (their objects deleted: they list the members), and the
//! membership is removed with a `user.erased` event (the audit log's consumer drops the email
//! from that user's entries when it sees it); then invitations to their address, their own
//! exports (objects too), their profile, and last their Cognito user (so that a failure before
//! it leaves a user who can sign in and try again). Every step is safe to repeat.

use api::{ApiError, ApiResult, Caller, ProblemOrg};
use axum::extract::State;
use axum::http::StatusCode;
use domain::{DomainError, Identity};

use crate::AppState;

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Erasure {
    Done {
        orgs: usize,
        objects: usize,
    },
    /// The caller is the last owner of these orgs (id, name).
    Blocked(Vec<(String, String)>),
}

pub async fn erase_route(State(app): State<AppState>, Caller(who): Caller) -> ApiResult<StatusCode> {
    match erase_user(&app, &who).await? {
        Erasure::Done { .. } => Ok(StatusCode::NO_CONTENT),
        Erasure::Blocked(orgs) => {
            let names: Vec<String> = orgs.iter().map(|(id, name)| format!("{name} ({id})")).collect();
            let mut e = ApiError::new(StatusCode::CONFLICT, "last-owner", "Last owner")
                .detail(format!("you are the last owner of {}: transfer the ownership or delete the organization first", names.join(", ")));
            e.orgs = Some(Box::new(orgs.into_iter().map(|(id, name)| ProblemOrg { id, name }).collect()));
            Err(e)
        }
    }
}

/// Erases `who`'s account (see the module).
pub async fn erase_user(app: &AppState, who: &Identity) -> Result<Erasure, DomainError> {
    let erasure = app.store.erasure(who).await?;
    if !erasure.last_owner_of.is_empty() {
        return Ok(Erasure::Blocked(erasure.last_owner_of.iter().map(|o| (o.id.to_string(), o.name.clone())).collect()));
    }
    let mut objects = 0;
    for scope in &erasure.memberships {
        let withdrawn = app.store.erase_in_org(scope).await?;
        objects += delete_objects(app, &withdrawn).await?;
    }
    let own = app.store.erase_account(&who.user_id, who.email.as_ref()).await?;
    objects += delete_objects(app, &own).await?;
    delete_sign_in(app, who).await?;
    tracing::info!(user_id = %who.user_id, orgs = erasure.memberships.len(), objects, "account erased");
    Ok(Erasure::Done { orgs: erasure.memberships.len(), objects })
}

/// Deletes export objects (and any upload of them still open).
async fn delete_objects(app: &AppState, keys: &[String]) -> Result<usize, DomainError> {
    let failed = |e: String| {
        tracing::error!(error = e, "deleting export objects failed");
        DomainError::Unavailable
    };
    for key in keys {
        app.s3.delete_object().bucket(&*app.export_bucket).key(key).send().await.map_err(|e| failed(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        let uploads = app
            .s3
            .list_multipart_uploads()
            .bucket(&*app.export_bucket)
            .prefix(key)
            .send()
            .await
            .map_err(|e| failed(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        for upload in uploads.uploads() {
            if let (Some(k), Some(id)) = (upload.key(), upload.upload_id()) {
                let _ = app.s3.abort_multipart_upload().bucket(&*app.export_bucket).key(k).upload_id(id).send().await;
            }
        }
    }
    Ok(keys.len())
}

/// Deletes the Cognito user (Cognito's username is the `sub` when users sign in with their
/// email; the address itself is an alias of it). One already gone counts as deleted.
async fn delete_sign_in(app: &AppState, who: &Identity) -> Result<(), DomainError> {
    use aws_sdk_cognitoidentityprovider::operation::admin_delete_user::AdminDeleteUserError;
    let Some(pool) = &app.user_pool_id else {
        tracing::warn!("no user pool configured: the Cognito user stays");
        return Ok(());
    };
    let mut names = vec![who.user_id.to_string()];
    names.extend(who.email.as_ref().map(|e| e.as_str().to_owned()));
    for name in names {
        match app.cognito.admin_delete_user().user_pool_id(&**pool).username(&name).send().await {
            Ok(_) => return Ok(()),
            Err(e) if e.as_service_error().is_some_and(AdminDeleteUserError::is_user_not_found_exception) => continue,
            Err(e) => {
                tracing::error!(error = %aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&e), "deleting the Cognito user failed");
                return Err(DomainError::Unavailable);
            }
        }
    }
    Ok(())
}
