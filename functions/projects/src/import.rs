//! `POST …/tasks/import`: a CSV file of tasks. Every row is validated first (cells, and
//! assignees against the org's members); any error answers 422 naming the row and column of
//! each, and imports nothing. Files over the plan's size are refused from their
//! `Content-Length` (or while being read), files over its row count after reading one row
//! too many; both 413. With an `Idempotency-Key`, a retried upload imports nothing twice.

use std::collections::BTreeMap;

use api::{ApiError, ApiResult, Caller, Params};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use domain::task_csv::{CsvFailure, parse_tasks_csv};
use domain::work::{MAX_LABELS_PER_ORG, TaskStatus};
use domain::{Action, DomainError, Email, FieldError};
use sha2::{Digest, Sha256};
use store::{Idempotency, ImportOutcome, TaskDraft};

use crate::AppState;
use crate::projects::ProjectPath;

/// The header that makes an import idempotent.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn too_large(detail: String) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Import too large").detail(detail)
}

/// The `Idempotency-Key`, if any: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get(IDEMPOTENCY_KEY) else { return Ok(None) };
    let key = v.to_str().ok().filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
    key.map(|k| Some(hex(&Sha256::digest(k.as_bytes())))).ok_or_else(|| ApiError::malformed("Idempotency-Key must be 1 to 255 visible ASCII characters"))
}

pub async fn import(
    State(app): State<AppState>,
    Caller(who): Caller,
    p: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<ImportOutcome>)> {
    let path = ProjectPath::of(&p)?;
    let essence = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|ct| ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if essence.as_deref() != Some("text/csv") {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type").detail("send text/csv"));
    }
    let key_hash = idempotency_key(&headers)?;
    let store = &app.store;
    let key = key_hash.as_deref();
    let (scope, (project, labels, ranks, recorded)) = store
        .authorize_with(&who, path.org, Action::WriteWorkload, |pending| async move {
            let mut columns = Vec::new();
            for status in TaskStatus::ALL.iter().copied() {
                let rank = store.last_rank(&pending, path.project, status);
                columns.push(async move { (status, rank.await) });
            }
            let ranks = futures::future::join_all(columns);
            let recorded = async {
                match key {
                    Some(k) => store.import_record(&pending, path.project, k).await,
                    None => Ok(None),
                }
            };
            let (project, labels, ranks, recorded) = futures::join!(store.get_project(&pending, path.project), store.org_labels(&pending), ranks, recorded);
            let mut last = BTreeMap::new();
            for (status, rank) in ranks {
                last.insert(status, rank?);
            }
            Ok((project?, labels?, last, recorded?))
        })
        .await?;
    let project = project.ok_or(DomainError::NotFound)?;

    let limits = scope.org().plan.limits();
    let max_bytes = usize::try_from(limits.import_bytes).unwrap_or(usize::MAX);
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let size_limit = || too_large(format!("the plan imports files of at most {max_bytes} bytes"));
    if declared.is_some_and(|n| n > max_bytes) {
        return Err(size_limit());
    }
    let bytes = axum::body::to_bytes(body, max_bytes).await.map_err(|_| size_limit())?;
    let body_hash = hex(&Sha256::digest(&bytes));
    // A finished import under this key answers again before the file is parsed.
    if let Some(r) = &recorded
        && r.done
        && r.body_hash == body_hash
    {
        return Ok((StatusCode::CREATED, Json(ImportOutcome { imported: r.imported, replayed: true })));
    }

    let max_rows = usize::try_from(limits.import_rows).unwrap_or(usize::MAX);
    let rows = match parse_tasks_csv(&bytes, max_rows) {
        Ok(rows) => rows,
        Err(CsvFailure::TooManyRows { max }) => return Err(too_large(format!("the plan imports at most {max} rows at once"))),
        Err(CsvFailure::Invalid(errors)) => {
            return Err(ApiError::invalid(
                errors.into_iter().map(|e| FieldError::in_row(u64::try_from(e.row).unwrap_or(u64::MAX), e.column, e.message)).collect(),
            ));
        }
    };

    // Assignees by email, each looked up once.
    let mut emails: Vec<Email> = Vec::new();
    for email in rows.iter().filter_map(|r| r.assignee_email.as_ref()) {
        if !emails.contains(email) {
            emails.push(email.clone());
        }
    }
    let members = store.members_by_email(&scope, &emails).await?;
    let mut errors = Vec::new();
    let mut known = labels.names.clone();
    let mut drafts = Vec::with_capacity(rows.len());
    for row in rows {
        let line = u64::try_from(row.row).unwrap_or(u64::MAX);
        let assignee = match &row.assignee_email {
            Some(email) => match members.get(email) {
                Some(user) => Some(user.clone()),
                None => {
                    errors.push(FieldError::in_row(line, "assignee", "is not the email of a member of this organization"));
                    None
                }
            },
            None => None,
        };
        for label in &row.labels {
            if !known.contains(label.as_str()) {
                if known.len() >= MAX_LABELS_PER_ORG {
                    errors.push(FieldError::in_row(
                        line,
                        "labels",
                        format!("{} would exceed the organization's limit of {MAX_LABELS_PER_ORG} labels", label.as_str()),
                    ));
                } else {
                    known.insert(label.as_str().to_owned());
                }
            }
        }
        drafts.push(TaskDraft {
            title: row.title,
            description: row.description.unwrap_or_default(),
            status: row.status,
            priority: row.priority,
            assignee,
            due: row.due,
            labels: row.labels,
        });
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let idempotency = key_hash.map(|key_hash| Idempotency { key_hash, body_hash, recorded });
    let outcome = store.import_tasks(&scope, &project, drafts, &ranks, &labels, idempotency).await?;
    Ok((StatusCode::CREATED, Json(outcome)))
}
