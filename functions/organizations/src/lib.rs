//! The organizations function: orgs, members and roles, usage against the plan, the caller's
//! profile, and the platform operators' routes. `main.rs` runs this router on Lambda; the
//! same router runs under a plain local server and in tests.

mod admin;
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
}

/// The function's route table.
pub fn routes() -> RouteTable<AppState> {
    RouteTable::default()
        .route(Method::POST, "/orgs", "createOrg", "Create an organization; the caller becomes its owner", orgs::create)
        .route(Method::GET, "/orgs", "listMyOrgs", "The caller's organizations with their role", orgs::list_mine)
        .route(Method::GET, "/orgs/{orgId}", "getOrg", "Read an organization", orgs::get)
        .route(Method::PATCH, "/orgs/{orgId}", "updateOrg", "Update an organization's name and settings (admin+)", orgs::update)
        .route(Method::DELETE, "/orgs/{orgId}", "deleteOrg", "Delete an organization and purge its data (owner)", orgs::delete)
        .route(Method::GET, "/orgs/{orgId}/usage", "getUsage", "Usage against the plan's limits", orgs::usage)
        .route(Method::GET, "/orgs/{orgId}/members", "listMembers", "List members", members::list)
        .route(Method::PATCH, "/orgs/{orgId}/members/{userId}", "changeMemberRole", "Change a member's role (admin+)", members::change_role)
        .route(Method::DELETE, "/orgs/{orgId}/members/{userId}", "removeMember", "Remove a member, or leave", members::remove)
        .route(Method::POST, "/orgs/{orgId}/transfer-ownership", "transferOwnership", "Make another member the owner (owner)", members::transfer_ownership)
        .route(Method::GET, "/me", "getMe", "The caller's profile", me::get)
        .route(Method::PATCH, "/me", "updateMe", "Update the caller's display name", me::update)
        .route(Method::GET, "/admin/orgs", "adminListOrgs", "All organizations (platform operators)", admin::list)
        .route(Method::POST, "/admin/orgs/{orgId}/suspend", "adminSuspendOrg", "Suspend an organization (platform operators)", admin::suspend)
        .route(Method::POST, "/admin/orgs/{orgId}/reactivate", "adminReactivateOrg", "Reactivate an organization (platform operators)", admin::reactivate)
        .route(Method::PUT, "/admin/orgs/{orgId}/plan", "adminSetPlan", "Change an organization's plan (platform operators)", admin::set_plan)
        .route(Method::POST, "/admin/orgs/{orgId}/purge", "adminResumePurge", "Resume the purge of a deleted organization (platform operators)", admin::resume_purge)
}

/// The finished router with its state, and the list of its routes.
pub fn router(store: Store) -> (Router, Vec<RouteInfo>) {
    routes().into_router(AppState { store })
}

/// The routes with their state, for a runner that merges several functions.
pub fn unfinished_router(store: Store) -> (Router, Vec<RouteInfo>) {
    routes().with_state(AppState { store })
}
