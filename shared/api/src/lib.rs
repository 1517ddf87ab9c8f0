//! The request pipeline every HTTP function shares: identity from the authorizer's claims,
//! problem+json errors, the CORS policy, strict JSON bodies, pagination parameters, the route table that
//! feeds the router, the OpenAPI document and the authorization matrix, and the Lambda
//! entry point.

mod cors;
mod etag;
mod function;
mod identity;
mod json;
mod lambda;
mod link;
pub mod metering;
pub mod openapi;
mod pagination;
mod params;
mod problem;
mod rate;
mod routes;

pub use cors::{ALLOWED_ORIGINS_ENV, BadOrigin, Cors};
pub use etag::{if_match, last_writer_wins, with_etag};
pub use function::{
    BoxFuture, EventKind, Handler, Handlers, InvokeError, Platform, RecordFailures, ScheduleDetail, ScheduledEvent, event_kind, handler, serve, serve_streaming,
};
pub use identity::{Caller, identity_from_claims};
pub use json::{JsonBody, MAX_BODY_BYTES, OptionalJsonBody, parse as parse_json};
pub use lambda::{RUNTIME_API_ENV, init_or_report, init_tracing, report_init_error_to, run};
pub use link::{Link, accepts, redirect_or_link};
pub use pagination::PageQuery;
pub use params::Params;
pub use problem::{ApiError, ApiResult, PROBLEM_JSON, ProblemOrg};
pub use rate::{RATELIMIT, RATELIMIT_POLICY};
pub use routes::{RouteInfo, RouteState, RouteTable, SchemaFn, Tag, finish, finish_with};
