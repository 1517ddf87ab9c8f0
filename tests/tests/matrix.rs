//! The authorization matrix: every route of every HTTP function, the status each kind of
//! caller gets, run against the real handlers and store through the merged router the local
//! runner serves. A route the table does not list fails the test.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::BTreeSet;

use serde_json::{Value, json};

mod common;
use common::{Fixture, Who};

const COLUMNS: [Who; 7] = [Who::Owner, Who::Admin, Who::Member, Who::Viewer, Who::Other, Who::Platform, Who::Anonymous];

/// (method, path, body, expected statuses in column order)
type Row = (&'static str, &'static str, Option<fn(&Fixture) -> Value>, [u16; 7]);

#[rustfmt::skip]
const MATRIX: &[Row] = &[
    //                                                                                 owner admin member viewer other platform anon
    ("POST",   "/orgs",                                  Some(|_| json!({"name": "New Co"})),          [201, 201, 201, 201, 201, 201, 401]),
    ("GET",    "/orgs",                                  None,                                         [200, 200, 200, 200, 200, 200, 401]),
    ("GET",    "/orgs/{orgId}",                          None,                                         [200, 200, 200, 200, 404, 200, 401]),
    ("PATCH",  "/orgs/{orgId}",                          Some(|_| json!({"name": "Renamed"})),         [200, 200, 403, 403, 404, 403, 401]),
    ("DELETE", "/orgs/{orgId}",                          None,                                         [204, 403, 403, 403, 404, 403, 401]),
    ("GET",    "/orgs/{orgId}/usage",                    None,                                         [200, 200, 200, 200, 404, 200, 401]),
    ("GET",    "/orgs/{orgId}/costs",                    None,                                         [200, 403, 403, 403, 404, 403, 401]),
    ("GET",    "/orgs/{orgId}/members",                  None,                                         [200, 200, 200, 200, 404, 200, 401]),
    ("PATCH",  "/orgs/{orgId}/members/{userId}",         Some(|_| json!({"role": "viewer"})),          [200, 200, 403, 403, 404, 403, 401]),
    ("DELETE", "/orgs/{orgId}/members/{userId}",         None,                                         [204, 204, 403, 403, 404, 403, 401]),
    ("POST",   "/orgs/{orgId}/transfer-ownership",       Some(|f| json!({"userId": f.target.sub})),    [204, 403, 403, 403, 404, 403, 401]),
    ("GET",    "/me",                                    None,                                         [200, 200, 200, 200, 200, 200, 401]),
    ("PATCH",  "/me",                                    Some(|_| json!({"displayName": "Pat"})),      [200, 200, 200, 200, 200, 200, 401]),
    ("GET",    "/admin/orgs",                            None,                                         [403, 403, 403, 403, 403, 200, 401]),
    ("GET",    "/admin/costs",                           None,                                         [403, 403, 403, 403, 403, 200, 401]),
    ("POST",   "/admin/orgs/{orgId}/suspend",            None,                                         [403, 403, 403, 403, 403, 200, 401]),
    ("POST",   "/admin/orgs/{orgId}/reactivate",         None,                                         [403, 403, 403, 403, 403, 200, 401]),
    ("PUT",    "/admin/orgs/{orgId}/plan",               Some(|_| json!({"plan": "STARTER"})),         [403, 403, 403, 403, 403, 200, 401]),
    ("GET",    "/admin/orgs/{orgId}/limits",             None,                                         [403, 403, 403, 403, 403, 200, 401]),
    ("PUT",    "/admin/orgs/{orgId}/limits",             Some(|_| json!({"multiplier": 2})),           [403, 403, 403, 403, 403, 200, 401]),
    // Purging an org that is not being deleted is a conflict even for an operator.
    ("POST",   "/admin/orgs/{orgId}/purge",              None,                                         [403, 403, 403, 403, 403, 409, 401]),
    // invites
    ("POST",   "/orgs/{orgId}/invites",                  Some(|f| json!({"email": f.newcomer, "role": "viewer"})), [201, 201, 403, 403, 404, 403, 401]),
    ("GET",    "/orgs/{orgId}/invites",                  None,                                         [200, 200, 403, 403, 404, 403, 401]),
    ("POST",   "/orgs/{orgId}/invites/{inviteId}/resend", None,                                        [200, 200, 403, 403, 404, 403, 401]),
    ("DELETE", "/orgs/{orgId}/invites/{inviteId}",       None,                                         [204, 204, 403, 403, 404, 403, 401]),
    ("GET",    "/invites/pending",                       None,                                         [200, 200, 200, 200, 200, 200, 401]),
    // The fixture's invitation is addressed to nobody in the columns: refused alike.
    ("POST",   "/invites/accept",                        Some(|f| json!({"token": f.token})),          [404, 404, 404, 404, 404, 404, 401]),
    ("POST",   "/invites/decline",                       Some(|f| json!({"token": f.token})),          [404, 404, 404, 404, 404, 404, 401]),
    // projects: the fixture's project, task and comment are the owner's
    ("POST",   "/orgs/{orgId}/projects",                 Some(|_| json!({"name": "P"})),               [201, 201, 201, 403, 404, 403, 401]),
    ("GET",    "/orgs/{orgId}/projects",                 None,                                         [200, 200, 200, 200, 404, 200, 401]),
    ("GET",    "/orgs/{orgId}/projects/{projectId}",     None,                                         [200, 200, 200, 200, 404, 200, 401]),
    ("PATCH",  "/orgs/{orgId}/projects/{projectId}",     Some(|_| json!({"name": "R"})),               [200, 200, 403, 403, 404, 403, 401]),
    ("POST",   "/orgs/{orgId}/projects/{projectId}/archive", None,                                     [200, 200, 403, 403, 404, 403, 401]),
    ("POST",   "/orgs/{orgId}/projects/{projectId}/restore", None,                                     [200, 200, 403, 403, 404, 403, 401]),
    ("DELETE", "/orgs/{orgId}/projects/{projectId}",     None,                                         [204, 204, 403, 403, 404, 403, 401]),
    ("POST",   "/orgs/{orgId}/projects/{projectId}/tasks", Some(|_| json!({"title": "T"})),            [201, 201, 201, 403, 404, 403, 401]),
    ("GET",    "/orgs/{orgId}/projects/{projectId}/tasks", None,                                       [200, 200, 200, 200, 404, 200, 401]),
    ("POST",   "/orgs/{orgId}/projects/{projectId}/tasks/import", Some(|_| json!("title\nImported\n")),  [201, 201, 201, 403, 404, 403, 401]),
    ("GET",    "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}", None,                              [200, 200, 200, 200, 404, 200, 401]),
    ("PATCH",  "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}", Some(|_| json!({"title": "X"})),   [200, 200, 200, 403, 404, 403, 401]),
    ("POST",   "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}/move", Some(|_| json!({"status": "done"})), [200, 200, 200, 403, 404, 403, 401]),
    ("DELETE", "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}", None,                              [204, 204, 204, 403, 404, 403, 401]),
    ("GET",    "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}/history", None,                      [200, 200, 200, 200, 404, 200, 401]),
    ("GET",    "/orgs/{orgId}/tasks",                    None,                                         [200, 200, 200, 200, 404, 200, 401]),
    ("GET",    "/orgs/{orgId}/labels",                   None,                                         [200, 200, 200, 200, 404, 200, 401]),
    ("POST",   "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}/comments", Some(|_| json!({"text": "hi @someone"})), [201, 201, 201, 403, 404, 403, 401]),
    ("GET",    "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}/comments", None,                     [200, 200, 200, 200, 404, 200, 401]),
    ("PATCH",  "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}/comments/{commentId}", Some(|_| json!({"text": "edited"})), [200, 403, 403, 403, 404, 403, 401]),
    ("DELETE", "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}/comments/{commentId}", None,         [204, 204, 403, 403, 404, 403, 401]),
    // notifications: each caller's own inbox; the fixture's notification is the owner's
    ("GET",    "/orgs/{orgId}/notifications",            None,                                         [200, 200, 200, 200, 404, 200, 401]),
    ("GET",    "/orgs/{orgId}/notifications/unread-count", None,                                       [200, 200, 200, 200, 404, 200, 401]),
    ("POST",   "/orgs/{orgId}/notifications/{notificationId}/read", None,                              [200, 404, 404, 404, 404, 404, 401]),
    ("POST",   "/orgs/{orgId}/notifications/read-all",   None,                                         [204, 204, 204, 204, 404, 403, 401]),
    ("GET",    "/orgs/{orgId}/notification-preferences", None,                                         [200, 200, 200, 200, 404, 200, 401]),
    ("PUT",    "/orgs/{orgId}/notification-preferences", Some(|_| json!({"timeZone": "Europe/Paris"})), [200, 200, 200, 200, 404, 403, 401]),
    // files: the fixture's file is the owner's, ready, with a thumbnail and text
    ("POST",   "/orgs/{orgId}/files",                    Some(|_| json!({"name": "a.txt", "size": 5, "contentType": "text/plain"})), [201, 201, 201, 403, 404, 403, 401]),
    ("GET",    "/orgs/{orgId}/files",                    None,                                         [200, 200, 200, 200, 404, 200, 401]),
    ("GET",    "/orgs/{orgId}/files/{fileId}",           None,                                         [200, 200, 200, 200, 404, 200, 401]),
    ("PATCH",  "/orgs/{orgId}/files/{fileId}",           Some(|_| json!({"name": "b.png"})),           [200, 200, 403, 403, 404, 403, 401]),
    ("DELETE", "/orgs/{orgId}/files/{fileId}",           None,                                         [204, 204, 403, 403, 404, 403, 401]),
    ("GET",    "/orgs/{orgId}/files/{fileId}/download",  None,                                         [302, 302, 302, 302, 404, 302, 401]),
    ("GET",    "/orgs/{orgId}/files/{fileId}/thumbnail", None,                                         [302, 302, 302, 302, 404, 302, 401]),
    ("GET",    "/orgs/{orgId}/files/{fileId}/text",      None,                                         [302, 302, 302, 302, 404, 302, 401]),
    // chat: the fixture's conversation is the owner's; nobody else reaches it, admins included
    ("GET",    "/orgs/{orgId}/chat/settings",            None,                                         [200, 200, 200, 200, 404, 200, 401]),
    ("PUT",    "/orgs/{orgId}/chat/settings",            Some(|_| chat_settings()),                    [200, 200, 403, 403, 404, 403, 401]),
    ("POST",   "/orgs/{orgId}/conversations",            Some(|_| json!({})),                          [201, 201, 201, 403, 404, 403, 401]),
    ("GET",    "/orgs/{orgId}/conversations",            None,                                         [200, 200, 200, 403, 404, 403, 401]),
    ("GET",    "/orgs/{orgId}/conversations/{conversationId}", None,                                   [200, 404, 404, 403, 404, 403, 401]),
    ("PATCH",  "/orgs/{orgId}/conversations/{conversationId}", Some(|_| json!({"title": "Renamed"})),  [200, 404, 404, 403, 404, 403, 401]),
    ("DELETE", "/orgs/{orgId}/conversations/{conversationId}", None,                                   [204, 404, 404, 403, 404, 403, 401]),
    ("POST",   "/orgs/{orgId}/conversations/{conversationId}/messages", Some(|_| json!({"content": "Hello there"})), [201, 404, 404, 403, 404, 403, 401]),
    // audit: admins read the org's log, owners verify it, operators read every org's
    ("GET",    "/orgs/{orgId}/audit",                    None,                                         [200, 200, 403, 403, 404, 403, 401]),
    ("GET",    "/orgs/{orgId}/audit/verify",             None,                                         [200, 403, 403, 403, 404, 403, 401]),
    ("GET",    "/admin/audit",                           None,                                         [403, 403, 403, 403, 403, 200, 401]),
    // exports: the fixture's org and its owner have a complete export; /me by the last owner of an org is refused
    ("POST",   "/orgs/{orgId}/exports",                  None,                                         [202, 403, 403, 403, 404, 403, 401]),
    ("GET",    "/orgs/{orgId}/exports",                  None,                                         [200, 403, 403, 403, 404, 403, 401]),
    ("GET",    "/orgs/{orgId}/exports/{exportId}",       None,                                         [200, 403, 403, 403, 404, 403, 401]),
    ("POST",   "/me/export",                             None,                                         [202, 202, 202, 202, 202, 202, 401]),
    ("GET",    "/me/export",                             None,                                         [200, 404, 404, 404, 404, 404, 401]),
    ("DELETE", "/me",                                    None,                                         [409, 204, 204, 204, 409, 204, 401]),
    // Public: the signed token is the credential, whoever sends it (a mail client, say).
    ("GET",    "/unsubscribe",                           None,                                         [200, 200, 200, 200, 200, 200, 200]),
    ("POST",   "/unsubscribe",                           Some(|_| json!("List-Unsubscribe=One-Click")), [200, 200, 200, 200, 200, 200, 200]),
];

/// Valid chat settings for the fixture's plan (Starter).
fn chat_settings() -> Value {
    json!({"systemPrompt": "Be brief.", "allowedModels": ["us.amazon.nova-lite-v1:0"], "defaultModel": "us.amazon.nova-lite-v1:0",
           "temperature": 0.3, "maxOutputTokens": 512, "retrieval": true})
}

#[test]
fn the_matrix_lists_every_route_and_nothing_else() {
    let routes: Vec<api::RouteInfo> = registry::routes().into_iter().map(|(_, r)| r).collect();
    let declared: BTreeSet<(String, String)> = routes.iter().map(|r| (r.method.to_string(), r.path.to_owned())).collect();
    let listed: BTreeSet<(String, String)> = MATRIX.iter().map(|(m, p, _, _)| (m.to_string(), p.to_string())).collect();
    assert_eq!(declared, listed, "the router and the matrix disagree");
    assert_eq!(listed.len(), MATRIX.len(), "a route is listed twice");
}

#[tokio::test]
async fn every_cell_of_the_matrix() {
    let mut failures = Vec::new();
    for (method, path, body, expected) in MATRIX {
        let cells = COLUMNS.iter().zip(expected.iter()).map(|(who, want)| {
            async move {
                // A fresh table and org per cell, so destructive routes do not disturb
                // other cells.
                let store = testkit::fresh_store().await;
                let config = testkit::sdk_config().await;
                let queues = local_runner::events::queue_env(&config, store.table_name(), &[registry::function("exports").unwrap()]).await.unwrap();
                let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
                local_runner::provision::private_bucket(&s3, &local_runner::provision::export_bucket(store.table_name())).await.unwrap();
                let platform = local_runner::provision::platform(&config, store.clone(), "https://app.example.com", queues);
                let (router, _) = local_runner::server::functions(&platform).unwrap();
                let f = Fixture::new(&store).await;
                let mut call = f.call(method, path, body.map(|b| b(&f)));
                if let Some(c) = f.caller(*who) {
                    call = call.by(c);
                }
                let got = call.send(&router).await;
                let problem_ok = got.status < 400 || got.header("content-type") == Some("application/problem+json");
                (got.status != *want || !problem_ok).then(|| format!("{method} {path} as {who:?}: got {} want {want}: {}", got.status, got.body))
            }
        });
        failures.extend(futures::future::join_all(cells).await.into_iter().flatten());
    }
    assert!(failures.is_empty(), "matrix cells failed:\n{}", failures.join("\n"));
}
