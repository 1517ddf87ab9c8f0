//! The notifications function: the first consumer of the domain events.
//!
//! - Stream: the domain events on the table's stream (its event source mapping lets only
//!   INSERTs of `_type = event` through) become notifications: in the recipient's in-app inbox
//!   and/or by email, as their preferences say, once per event and recipient however often a
//!   record is delivered. A record that fails is reported alone in `batchItemFailures`.
//! - Schedule `notification-sweep` (every 15 minutes): due-date reminders (24 hours before,
//!   and when overdue) from the cross-org due-day index, mail held back by quiet hours, and
//!   digests at each user's local hour.
//! - EventBridge: SES bounces and complaints of the stack's configuration set put the
//!   address on the suppression list.
//! - Routes: the caller's inbox in an org (list, unread count, mark read, mark all read),
//!   their preferences, and the unauthenticated one-click unsubscribe (RFC 8058).

mod compose;
mod consumer;
mod feedback;
mod inbox;
mod mailer;
mod sweep;

use api::{RouteInfo, RouteTable};
use axum::Router;
use http::Method;
use store::Store;

pub use compose::{notifications_for, reminder_id};
pub use consumer::{on_event, on_stream};
pub use feedback::{on_feedback, to_suppress};
pub use mailer::{MailConfig, Mailer, MissingEnv};
pub use sweep::{DUE_SOON_SECS, SWEEP_SCHEDULE, SweepReport, on_schedule, sweep};

/// What every handler shares: built once at init.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub mailer: Mailer,
    /// Signs and verifies unsubscribe tokens.
    pub unsubscribe_key: std::sync::Arc<Vec<u8>>,
}

impl api::RouteState for AppState {
    fn rate_store(&self) -> Option<&Store> {
        Some(&self.store)
    }
}

impl AppState {
    pub fn new(store: Store, mailer: Mailer) -> AppState {
        let unsubscribe_key = std::sync::Arc::new(store.derived_key("unsubscribe"));
        AppState { store, mailer, unsubscribe_key }
    }
}

/// The function's route table.
pub fn routes() -> RouteTable<AppState> {
    use domain::notify::Preferences;
    use inbox::{UnreadCount, UnsubscribeForm};
    use store::{Notification, Page};
    RouteTable::default()
        .tag("notifications", "The caller's notifications in an organization, their preferences, and one-click unsubscribe")
        .route(
            Method::GET,
            "/orgs/{orgId}/notifications",
            "listNotifications",
            "The caller's notifications, newest first; only unread ones with unread=true",
            inbox::list,
        )
        .returns::<Page<Notification>>(200)
        .paginated(&["unread"])
        .query_values("unread", &["true", "false"])
        .route(
            Method::GET,
            "/orgs/{orgId}/notifications/unread-count",
            "countUnreadNotifications",
            "How many of the caller's notifications are unread",
            inbox::unread_count,
        )
        .returns::<UnreadCount>(200)
        .route(Method::POST, "/orgs/{orgId}/notifications/{notificationId}/read", "markNotificationRead", "Mark one notification read", inbox::mark_read)
        .returns::<Notification>(200)
        .route(Method::POST, "/orgs/{orgId}/notifications/read-all", "markAllNotificationsRead", "Mark every notification read", inbox::mark_all_read)
        .no_content()
        .route(
            Method::GET,
            "/orgs/{orgId}/notification-preferences",
            "getNotificationPreferences",
            "The caller's notification preferences in the org",
            inbox::get_preferences,
        )
        .returns::<Preferences>(200)
        .route(
            Method::PUT,
            "/orgs/{orgId}/notification-preferences",
            "putNotificationPreferences",
            "Replace the caller's notification preferences in the org",
            inbox::put_preferences,
        )
        .takes::<Preferences>()
        .returns::<Preferences>(200)
        .route(Method::GET, "/unsubscribe", "unsubscribePage", "The confirmation page of an unsubscribe link (changes nothing)", inbox::unsubscribe_page)
        .public()
        .returns_media(200, "text/html")
        .query(&["token"])
        .errors(&[400])
        .route(Method::POST, "/unsubscribe", "unsubscribe", "One-click unsubscribe (RFC 8058): stops email of one kind from one org", inbox::unsubscribe)
        .public()
        .takes_media::<UnsubscribeForm>("application/x-www-form-urlencoded")
        .returns_media(200, "text/html")
        .query(&["token"])
        .errors(&[400])
}

/// Every way this function is invoked: its routes, the domain events on the table's stream,
/// and the sweep's schedule. The SES client is built on the process's one AWS configuration,
/// so it retries (throttling included, with backoff) like every other client.
pub fn handlers(platform: &api::Platform) -> Result<api::Handlers, MissingEnv> {
    let ses = aws_sdk_sesv2::Client::from_conf(aws_sdk_sesv2::config::Builder::from(&platform.aws).interceptor(telemetry::CallCounter).build());
    let mailer = Mailer::new(ses, MailConfig::from_vars(|name| platform.var(name))?);
    let app = AppState::new(platform.store.clone(), mailer);
    let (stream_app, schedule_app, bus_app) = (app.clone(), app.clone(), app.clone());
    Ok(api::Handlers {
        http: Some(routes().with_state(app).0),
        stream: Some(api::handler(move |event| {
            let app = stream_app.clone();
            async move { on_stream(&app, event).await }
        })),
        schedule: Some(api::handler(move |event| {
            let app = schedule_app.clone();
            async move { on_schedule(&app, event).await }
        })),
        bus: Some(api::handler(move |event| {
            let app = bus_app.clone();
            async move { on_feedback(&app, event).await }
        })),
        ..Default::default()
    })
}

/// The finished router with its state, and the list of its routes.
pub fn router(app: AppState) -> (Router, Vec<RouteInfo>) {
    routes().into_router(app)
}

/// The routes with their state, for a runner that merges several functions.
pub fn unfinished_router(app: AppState) -> (Router, Vec<RouteInfo>) {
    routes().with_state(app)
}
