//! The invitations function: invite by email (SES v2), list, resend, revoke, and the
//! invitee's side: pending invitations, accept, decline. Seat limits and daily limits are
//! enforced atomically by the store; only the SHA-256 of a token is ever stored, and no token
//! ever reaches a log.

mod handlers;
mod mailer;

use api::{RouteInfo, RouteTable};
use axum::Router;
use http::Method;
use store::Store;

pub use mailer::{Mailer, MailerConfig, MissingEnv};

/// What every handler shares: built once at init.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub mailer: Mailer,
}

impl api::RouteState for AppState {
    fn rate_store(&self) -> Option<&Store> {
        Some(&self.store)
    }
}

pub fn routes() -> RouteTable<AppState> {
    use handlers::{Accepted, CreateInvite, InviteView, TokenBody};
    use store::Page;
    RouteTable::default()
        .tag("invitations", "Invitations by email, and the invitee's side: pending invitations, accept, decline")
        .route(Method::POST, "/orgs/{orgId}/invites", "createInvite", "Invite someone by email (admin+)", handlers::create)
        .takes::<CreateInvite>()
        .returns::<InviteView>(201)
        .rate_class(domain::RateClass::Invitations)
        .route(Method::GET, "/orgs/{orgId}/invites", "listInvites", "List invitations, optionally by status (admin+)", handlers::list)
        .returns::<Page<InviteView>>(200)
        .paginated(&["status"])
        .query_values("status", &["pending", "accepted", "declined", "revoked", "expired"])
        .route(Method::POST, "/orgs/{orgId}/invites/{inviteId}/resend", "resendInvite", "Send an invitation again with a new token (admin+)", handlers::resend)
        .returns::<InviteView>(200)
        .rate_class(domain::RateClass::Invitations)
        .route(Method::DELETE, "/orgs/{orgId}/invites/{inviteId}", "revokeInvite", "Revoke an invitation (admin+)", handlers::revoke)
        .no_content()
        .route(Method::GET, "/invites/pending", "listMyInvites", "Invitations addressed to the caller's verified email", handlers::pending)
        .returns::<Page<InviteView>>(200)
        .paginated(&[])
        .errors(&[403])
        .route(Method::POST, "/invites/accept", "acceptInvite", "Accept an invitation with its token", handlers::accept)
        .takes::<TokenBody>()
        .returns::<Accepted>(200)
        .errors(&[403, 404])
        .route(Method::POST, "/invites/decline", "declineInvite", "Decline an invitation with its token", handlers::decline)
        .takes::<TokenBody>()
        .no_content()
        .errors(&[403, 404])
}

/// The finished router with its state, and the list of its routes.
pub fn router(state: AppState) -> (Router, Vec<RouteInfo>) {
    routes().into_router(state)
}

/// The schedule that expires overdue invitations, freeing their seats.
pub const EXPIRE_SCHEDULE: &str = "expire-invitations";
/// At most this many invitations are expired by one sweep; the next takes the rest.
pub const EXPIRE_PER_SWEEP: usize = 5_000;

/// Every way this function is invoked: its routes, and the schedule that expires overdue
/// invitations. The SES client is built on the process's one AWS configuration, so it
/// retries like every other client.
pub fn handlers(platform: &api::Platform) -> Result<api::Handlers, mailer::MissingEnv> {
    let ses = aws_sdk_sesv2::Client::from_conf(aws_sdk_sesv2::config::Builder::from(&platform.aws).interceptor(telemetry::CallCounter).build());
    let mailer = Mailer::new(ses, MailerConfig::from_vars(|name| platform.var(name))?);
    let state = AppState { store: platform.store.clone(), mailer };
    let store = platform.store.clone();
    Ok(api::Handlers {
        http: Some(unfinished_router(state).0),
        schedule: Some(api::handler(move |event: api::ScheduledEvent| {
            let store = store.clone();
            async move { on_schedule(&store, event).await }
        })),
        ..Default::default()
    })
}

/// The sweep: every pending invitation past its expiry becomes expired and frees its seat,
/// whether or not anyone lists its org's invitations.
pub async fn on_schedule(store: &Store, event: api::ScheduledEvent) -> Result<(), String> {
    if event.detail.schedule != EXPIRE_SCHEDULE {
        return Err(format!("unknown schedule {}", event.detail.schedule));
    }
    let expired = store.expire_due_invites(EXPIRE_PER_SWEEP).await.map_err(|e| e.to_string())?;
    tracing::info!(expired, "invitation expiry sweep");
    Ok(())
}

/// The routes with their state, for a runner that merges several functions.
pub fn unfinished_router(state: AppState) -> (Router, Vec<RouteInfo>) {
    routes().with_state(state)
}
