//! Tenantry on one machine: the local AWS endpoint, the resources the infrastructure would
//! create, every function's routes under API Gateway's paths behind Cognito token
//! verification, and local-only auth routes.

pub mod auth_routes;
pub mod control;
pub mod events;
pub mod jwt;
pub mod provision;
pub mod server;
