//! The organizations function: orgs, members and roles, usage against the plan, the caller's
//! profile, and the platform operators' routes. `main.rs` runs this router on Lambda; the
//! same router runs under a plain local server and in tests.

mod admin;
mod costs;
mod me;
mod members;
mod orgs;

use api::{RouteInfo, RouteTable};
use axum::Router;
use http::Method;
use store::Store;

/// What every handler shares: built once at init.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// The price table the cost ledger is priced with (the repository's, with the
    /// deployment's `COST_PRICES`).
    pub prices: std::sync::Arc<domain::prices::Prices>,
}

impl api::RouteState for AppState {
    fn rate_store(&self) -> Option<&Store> {
        Some(&self.store)
    }
}

/// The function's route table.
pub fn routes() -> RouteTable<AppState> {
    use admin::{OrgRateLimits, SetLimits, SetPlan};
    use me::UpdateMe;
    use members::{ChangeRole, TransferOwnership};
    use orgs::{CreateOrg, OrgView, UpdateOrg};
    use store::{Member, MyOrg, Org, Page, Usage, UserProfile};
    RouteTable::default()
        .tag("organizations", "Organizations: create, read, update, delete, usage against the plan")
        .route(Method::POST, "/orgs", "createOrg", "Create an organization; the caller becomes its owner", orgs::create)
        .takes::<CreateOrg>()
        .returns::<OrgView>(201)
        .header("Location", "the new organization's path")
        .header("ETag", "the organization's version, for If-Match")
        .route(Method::GET, "/orgs", "listMyOrgs", "The caller's organizations with their role", orgs::list_mine)
        .returns::<Page<MyOrg>>(200)
        .paginated(&[])
        .route(Method::GET, "/orgs/{orgId}", "getOrg", "Read an organization", orgs::get)
        .returns::<OrgView>(200)
        .header("ETag", "the organization's version, for If-Match")
        .route(Method::PATCH, "/orgs/{orgId}", "updateOrg", "Update an organization's name and settings (admin+)", orgs::update)
        .takes::<UpdateOrg>()
        .returns::<OrgView>(200)
        .header("ETag", "the organization's version, for If-Match")
        .errors(&[412])
        .route(Method::DELETE, "/orgs/{orgId}", "deleteOrg", "Delete an organization; its data is purged asynchronously (owner)", orgs::delete)
        .no_content()
        .route(Method::GET, "/orgs/{orgId}/usage", "getUsage", "Usage against the plan's limits", orgs::usage)
        .returns::<Usage>(200)
        .route(Method::GET, "/orgs/{orgId}/costs", "getOrgCosts", "What serving the organization cost in a month, per service and per day (owner)", costs::org)
        .returns::<costs::OrgCosts>(200)
        .query(&["month"])
        .tag("members", "Members of an organization, their roles, and ownership")
        .route(Method::GET, "/orgs/{orgId}/members", "listMembers", "List members", members::list)
        .returns::<Page<Member>>(200)
        .paginated(&[])
        .route(Method::PATCH, "/orgs/{orgId}/members/{userId}", "changeMemberRole", "Change a member's role (admin+)", members::change_role)
        .takes::<ChangeRole>()
        .returns::<Member>(200)
        .route(Method::DELETE, "/orgs/{orgId}/members/{userId}", "removeMember", "Remove a member, or leave", members::remove)
        .no_content()
        .route(Method::POST, "/orgs/{orgId}/transfer-ownership", "transferOwnership", "Make another member the owner (owner)", members::transfer_ownership)
        .takes::<TransferOwnership>()
        .no_content()
        .tag("profile", "The caller's own profile")
        .route(Method::GET, "/me", "getMe", "The caller's profile", me::get)
        .returns::<UserProfile>(200)
        .route(Method::PATCH, "/me", "updateMe", "Update the caller's display name", me::update)
        .takes::<UpdateMe>()
        .returns::<UserProfile>(200)
        .tag("platform", "Platform operators (Cognito group platform-admin): every organization, suspension, plans, purges")
        .route(Method::GET, "/admin/orgs", "adminListOrgs", "All organizations (platform operators)", admin::list)
        .returns::<Page<Org>>(200)
        .paginated(&["status"])
        .query_values("status", &["active", "suspended", "deleting"])
        .route(Method::POST, "/admin/orgs/{orgId}/suspend", "adminSuspendOrg", "Suspend an organization (platform operators)", admin::suspend)
        .returns::<Org>(200)
        .route(Method::POST, "/admin/orgs/{orgId}/reactivate", "adminReactivateOrg", "Reactivate an organization (platform operators)", admin::reactivate)
        .returns::<Org>(200)
        .route(Method::PUT, "/admin/orgs/{orgId}/plan", "adminSetPlan", "Change an organization's plan (platform operators)", admin::set_plan)
        .takes::<SetPlan>()
        .returns::<Org>(200)
        .route(
            Method::GET,
            "/admin/costs",
            "adminCosts",
            "Every organization's cost in a month, ranked, with revenue and margin per plan (platform operators)",
            costs::platform,
        )
        .returns::<costs::PlatformCosts>(200)
        .query(&["month"])
        .route(
            Method::GET,
            "/admin/orgs/{orgId}/limits",
            "adminGetLimits",
            "An organization's rate limits: its plan's, the override, those in force (platform operators)",
            admin::get_limits,
        )
        .returns::<OrgRateLimits>(200)
        .route(
            Method::PUT,
            "/admin/orgs/{orgId}/limits",
            "adminSetLimits",
            "Override an organization's rate limits: a multiplier of the plan's or explicit numbers, until an optional expiry (platform operators)",
            admin::set_limits,
        )
        .takes::<SetLimits>()
        .returns::<OrgRateLimits>(200)
}

/// The finished router with its state, and the list of its routes.
pub fn router(store: Store) -> (Router, Vec<RouteInfo>) {
    routes().into_router(AppState { store, prices: prices_from(std::env::var(domain::prices::PRICES_ENV).ok()) })
}

fn prices_from(overrides: Option<String>) -> std::sync::Arc<domain::prices::Prices> {
    std::sync::Arc::new(costs::prices(overrides.filter(|v| !v.trim().is_empty())))
}

/// Every way this function is invoked: its routes.
pub fn handlers(platform: &api::Platform) -> api::Handlers {
    let state = AppState { store: platform.store.clone(), prices: prices_from(platform.var(domain::prices::PRICES_ENV)) };
    api::Handlers { http: Some(routes().with_state(state).0), ..Default::default() }
}

/// The routes with their state, for a runner that merges several functions.
pub fn unfinished_router(store: Store) -> (Router, Vec<RouteInfo>) {
    routes().with_state(AppState { store, prices: prices_from(std::env::var(domain::prices::PRICES_ENV).ok()) })
}
