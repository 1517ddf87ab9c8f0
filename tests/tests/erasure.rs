//! Account erasure on the local AWS endpoint: a user with memberships, comments, history, a
//! conversation, notifications, an invitation, an upload and exports is erased; then no item
//! of the table (every attribute, nested, case-insensitive) and no object of any bucket (zips
//! opened) holds their email, and their Cognito user is gone. The last owner of an org is
//! refused with 409 naming it.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::io::Read;

use aws_sdk_cognitoidentityprovider::types::{AttributeType, UsernameAttributeType};
use domain::{Action, Clock, OrgName, Role};
use local_runner::events::LocalEvents;
use store::NewOrg;
use testkit::{ApiCall, Caller};

fn org(name: &str) -> NewOrg {
    NewOrg { name: OrgName::parse("name", name).unwrap(), slug: None }
}

/// Whether `bytes` (or, for a zip, any of its entries) holds `needle`.
fn holds(bytes: &[u8], needle: &str) -> bool {
    if String::from_utf8_lossy(bytes).to_lowercase().contains(needle) {
        return true;
    }
    if let Ok(mut archive) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) {
        for i in 0..archive.len() {
            let mut data = Vec::new();
            archive.by_index(i).unwrap().read_to_end(&mut data).unwrap();
            if holds(&data, needle) {
                return true;
            }
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn an_erased_user_leaves_no_email_behind() {
    let store = testkit::fresh_store().await.with_clock(Clock::offset());
    let config = testkit::sdk_config().await;
    let function = registry::function("exports").unwrap();
    let mut vars = local_runner::events::queue_env(&config, store.table_name(), std::slice::from_ref(&function)).await.unwrap();
    // A user pool holding the user, as Cognito does (email is the sign-in name).
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&config);
    let pool = cognito.create_user_pool().pool_name("erasure").username_attributes(UsernameAttributeType::Email).send().await.unwrap();
    let pool_id = pool.user_pool.unwrap().id.unwrap();
    vars.insert("USER_POOL_ID".into(), pool_id.clone());
    let platform = local_runner::provision::platform(&config, store.clone(), "https://app.example.com", vars);
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
    let uploads = local_runner::provision::upload_bucket(store.table_name());
    let exports_bucket = local_runner::provision::export_bucket(store.table_name());
    s3.create_bucket().bucket(&uploads).send().await.unwrap();
    local_runner::provision::private_bucket(&s3, &exports_bucket).await.unwrap();
    let events = LocalEvents::setup(&config, &platform, vec![function], &uploads).await.unwrap();
    let app = exports::AppState::from_platform(&platform).unwrap();
    let router = exports::routes().into_router(app.clone()).0;

    let owner = Caller::new("owner");
    let victim = Caller::new("victim");
    let email = victim.email.to_lowercase();
    cognito
        .admin_create_user()
        .user_pool_id(&pool_id)
        .username(&victim.email)
        .user_attributes(AttributeType::builder().name("email").value(&victim.email).build().unwrap())
        .send()
        .await
        .unwrap();
    store.ensure_user(&owner.identity()).await.unwrap();
    store.ensure_user(&victim.identity()).await.unwrap();
    let acme = store.create_org(&owner.identity(), None, org("Acme")).await.unwrap();
    let acme = store.authorize(&owner.identity(), acme.org_id(), Action::ManageMembers).await.unwrap();
    store.add_member(&acme, &victim.identity().user_id, Role::Member, victim.identity().email, Some("Victor Tim".into())).await.unwrap();
    // The victim's own org, of which they are the last owner.
    let own = store.create_org(&victim.identity(), Some("Victor Tim".into()), org("Victor's")).await.unwrap();
    // Another org invites the victim's address.
    let other_owner = Caller::new("other");
    let other = store.create_org(&other_owner.identity(), None, org("Other")).await.unwrap();
    let other = store.authorize(&other_owner.identity(), other.org_id(), Action::ManageInvites).await.unwrap();
    let token = store::InviteToken::generate().unwrap();
    let new = store::NewInvite { email: victim.email.parse().unwrap(), role: Role::Member, token: &token, ttl_secs: 3600 };
    store.create_invite(&other, &store::InviteContext::default(), new).await.unwrap();

    // The victim's work in Acme: a task (history), a comment, a conversation, a notification,
    // an upload.
    let mine = store.authorize(&victim.identity(), acme.org_id(), Action::WriteWorkload).await.unwrap();
    let project = store.create_project(&acme, domain::work::ProjectName::parse("name", "P").unwrap(), String::new()).await.unwrap();
    let draft = store::TaskDraft::new(domain::work::TaskTitle::parse("title", "Victim's task").unwrap());
    let task = store.create_task(&mine, &project, draft, None, &store::OrgLabels::default()).await.unwrap();
    // (Not the address: the `comment.created` event carries an excerpt of the text until its
    // TTL, 3 days, deletes it; events have no index by author that erasure could find them by.)
    let comment = store.create_comment(&mine, &task, "call me, Victor".into(), Vec::new()).await.unwrap();
    store.create_comment(&acme, &task, "the owner's comment".into(), Vec::new()).await.unwrap();
    let conversation = store.create_conversation(&mine, None).await.unwrap();
    let message = |role, content: String| store::chat::ChatMessage {
        id: domain::chat::MessageId::new(),
        conversation_id: conversation.id,
        role,
        content,
        status: store::chat::MessageStatus::Complete,
        model: None,
        usage: None,
        latency_ms: None,
        citations: Vec::new(),
        error: None,
        created_at: store.clock().rfc3339(),
    };
    let turn = store::chat::Turn {
        question: message(store::chat::ChatRole::User, format!("my address is {}", victim.email)),
        answer: Some(message(store::chat::ChatRole::Assistant, "Noted.".into())),
        title: None,
    };
    store.record_turn(&mine, &conversation, turn).await.unwrap();
    let recipient = store.recipient(acme.org_id(), &victim.identity().user_id).await.unwrap().unwrap();
    let note = store::NewNotification {
        id: ulid::Ulid::new().to_string(),
        kind: domain::notify::NotificationKind::Mentioned,
        actor: owner.sub.clone(),
        at: store.clock().rfc3339(),
        title: format!("Mail sent to {}", victim.email),
        body: String::new(),
        project_id: Some(project.id),
        task_id: Some(task.id),
    };
    store.deliver_notification(&recipient, &note).await.unwrap();
    let new = store::NewFile { name: "notes.txt".into(), content_type: "text/plain", size: 5, attach_to: None };
    let file = store.reserve_upload(&mine, new, store.clock().epoch() + 3600).await.unwrap();
    s3.put_object().bucket(&uploads).key(file.object_key()).body(b"notes".to_vec().into()).send().await.unwrap();

    // Exports that hold the email: Acme's (its members) and the victim's own.
    ApiCall::post(&format!("/orgs/{}/exports", acme.org_id())).by(&owner).send(&router).await.expect(202);
    ApiCall::post("/me/export").by(&victim).send(&router).await.expect(202);
    while events.pump().await > 0 {}
    let view = ApiCall::get("/me/export").by(&victim).send(&router).await.expect(200).body;
    assert_eq!(view["status"], "complete");
    let all_objects = || async {
        let mut found = Vec::new();
        for bucket in [&uploads, &exports_bucket] {
            let listed = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
            for o in listed.contents() {
                let body = s3.get_object().bucket(bucket).key(o.key().unwrap()).send().await.unwrap().body.collect().await.unwrap().into_bytes();
                found.push((format!("{bucket}/{}", o.key().unwrap()), body.to_vec()));
            }
        }
        found
    };
    assert!(all_objects().await.iter().any(|(_, b)| holds(b, &email)), "the exports hold the email before");

    // The last owner of an org is refused, and told which.
    let refused = ApiCall::delete("/me").by(&victim).send(&router).await.expect_problem(409, "last-owner").body;
    assert_eq!(refused["orgs"][0]["id"], own.org_id().to_string());
    assert_eq!(refused["orgs"][0]["name"], "Victor's");
    // Someone else becomes an owner there too.
    let own = store.authorize(&victim.identity(), own.org_id(), Action::ManageMembers).await.unwrap();
    store.add_member(&own, &other_owner.identity().user_id, Role::Owner, other_owner.identity().email, None).await.unwrap();

    ApiCall::delete("/me").by(&victim).send(&router).await.expect(204);
    // Again: nothing left to do.
    ApiCall::delete("/me").by(&victim).send(&router).await.expect(204);
    while events.pump().await > 0 {}

    // No item of the table holds the email, in any attribute, nested, in any case.
    let leftovers: Vec<String> = testkit::scan_all(&store)
        .await
        .into_iter()
        .map(|item| serde_json::to_string(&serde_dynamo::from_item::<_, serde_json::Value>(item).unwrap()).unwrap())
        .filter(|json| json.to_lowercase().contains(&email))
        .collect();
    assert!(leftovers.is_empty(), "items still holding the email:\n{}", leftovers.join("\n"));
    // No object of any bucket (inside zips too).
    let objects = all_objects().await;
    let holding: Vec<&String> = objects.iter().filter(|(_, b)| holds(b, &email)).map(|(k, _)| k).collect();
    assert!(holding.is_empty(), "objects still holding the email: {holding:?}");
    // Acme's export is withdrawn; the victim's own is gone.
    let acme_exports = ApiCall::get(&format!("/orgs/{}/exports", acme.org_id())).by(&owner).send(&router).await.expect(200).body;
    assert_eq!(acme_exports["items"][0]["status"], "withdrawn");
    ApiCall::get("/me/export").by(&victim).send(&router).await.expect_problem(404, "not-found");
    // The membership is gone, the comment is a tombstone, the owner's comment is untouched.
    assert!(store.get_member(&acme, &victim.identity().user_id).await.unwrap().is_none());
    let comments = store.list_comments(&acme, project.id, task.id, &store::PageRequest::first(100)).await.unwrap().items;
    let erased = comments.iter().find(|c| c.id == comment.id).unwrap();
    assert_eq!((erased.author.as_str(), erased.text.as_str()), (store::ERASED_USER, store::ERASED_TEXT));
    assert!(comments.iter().any(|c| c.text == "the owner's comment"));
    // The Cognito user is gone.
    assert!(cognito.admin_get_user().user_pool_id(&pool_id).username(&victim.email).send().await.is_err());
}
