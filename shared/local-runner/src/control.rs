//! Local control routes (absent from the deployed API): the runner's clock, which schedules
//! fire by, and the event deliveries so far.
//!
//! - `GET /local/clock`: now, and when each schedule fires next.
//! - `POST /local/clock` `{"advanceSeconds": n}`: moves the clock ahead and fires what
//!   became due; answers the deliveries that made.
//! - `GET /local/events`: the deliveries to handlers (stream, queues, S3, schedules).

use std::sync::Arc;
use std::time::Duration;

use api::{ApiError, ApiResult, JsonBody};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::events::LocalEvents;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Advance {
    /// Seconds to move the clock ahead (at most a year).
    advance_seconds: u64,
}

pub fn router(events: Arc<LocalEvents>) -> Router {
    Router::new().route("/local/clock", get(clock).post(advance)).route("/local/events", get(deliveries)).with_state(events)
}

fn clock_view(events: &LocalEvents) -> Value {
    json!({ "now": events.clock().rfc3339(), "schedules": events.schedules() })
}

async fn clock(State(events): State<Arc<LocalEvents>>) -> Json<Value> {
    Json(clock_view(&events))
}

async fn advance(State(events): State<Arc<LocalEvents>>, JsonBody(body): JsonBody<Advance>) -> ApiResult<Json<Value>> {
    if body.advance_seconds > 366 * 86_400 {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", "Invalid request").detail("advanceSeconds is at most a year"));
    }
    let deliveries =
        events.advance(Duration::from_secs(body.advance_seconds)).await.map_err(|e| ApiError::new(StatusCode::CONFLICT, "conflict", "Conflict").detail(e))?;
    let fired = deliveries.len();
    let mut view = clock_view(&events);
    view["fired"] = json!(fired);
    view["deliveries"] = json!(deliveries);
    Ok(Json(view))
}

async fn deliveries(State(events): State<Arc<LocalEvents>>) -> Json<Value> {
    Json(json!({ "items": events.log().all() }))
}
