//! A membership that ends unassigns the member's open tasks: the removal's stream record
//! reaches the `org-purge` consumer (its registry entry, its filter, its handler), which
//! unassigns them with a history entry, once, however often the record is delivered.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::HashMap;

use domain::work::{ProjectName, TaskStatus, TaskTitle};
use domain::{Action, OrgName, Role};
use local_runner::events::LocalEvents;
use store::{NewOrg, OrgLabels, Store, TaskDraft};
use testkit::Caller;

async fn events_for(store: &Store) -> LocalEvents {
    let config = testkit::sdk_config().await;
    let platform = local_runner::provision::platform(&config, store.clone(), "https://app.example.com", HashMap::new());
    let cleanup = registry::function("org-purge").expect("org-purge is registered");
    LocalEvents::setup(&config, &platform, vec![cleanup], "").await.expect("event sources wired")
}

#[tokio::test]
async fn a_removed_members_open_tasks_are_unassigned_through_the_stream() {
    let store = testkit::fresh_store_with_stream().await;
    let events = events_for(&store).await;
    let (owner, leaver, stayer) = (Caller::new("owner").identity(), Caller::new("leaver").identity(), Caller::new("stayer").identity());
    let scope = store.create_org(&owner, None, NewOrg { name: OrgName::parse("name", "Busy").unwrap(), slug: None }).await.unwrap();
    let scope = store.authorize(&owner, scope.org_id(), Action::ManageMembers).await.unwrap();
    for who in [&leaver, &stayer] {
        store.add_member(&scope, &who.user_id, Role::Member, who.email.clone(), None).await.unwrap();
    }
    let project = store.create_project(&scope, ProjectName::parse("name", "Work").unwrap(), String::new()).await.unwrap();
    let mut ids = Vec::new();
    for (i, (assignee, status)) in
        [(&leaver, TaskStatus::Todo), (&leaver, TaskStatus::Blocked), (&leaver, TaskStatus::Done), (&stayer, TaskStatus::Todo)].into_iter().enumerate()
    {
        let draft = TaskDraft { status, assignee: Some(assignee.user_id.clone()), ..TaskDraft::new(TaskTitle::parse("title", &format!("t{i}")).unwrap()) };
        ids.push(store.create_task(&scope, &project, draft, None, &OrgLabels::default()).await.unwrap().id);
    }
    events.settle(10).await;
    let earlier = events.log().all().len();
    // The mapping also takes the domain events it fans out (the audit log's among them); none of
    // them unassigns anything.
    assert!(events.log().all().iter().all(|d| d.failed == 0 && d.dead_lettered == 0), "{:?}", events.log().all());

    let target = store.get_member(&scope, &leaver.user_id).await.unwrap().unwrap();
    store.remove_member(&scope, &target).await.unwrap();
    events.settle(10).await;
    let deliveries = events.log().all().split_off(earlier);
    // The membership's removal and its member.removed event (the audit log's).
    assert_eq!(deliveries.iter().map(|d| d.records).sum::<usize>(), 2, "{deliveries:?}");
    assert!(deliveries.iter().all(|d| d.source == "stream" && d.failed == 0), "{deliveries:?}");

    let task = |i: usize| {
        let store = store.clone();
        let scope = scope.clone();
        let id = ids[i];
        async move { store.get_task(&scope, project.id, id).await.unwrap().unwrap() }
    };
    assert_eq!(task(0).await.assignee, None);
    assert_eq!(task(1).await.assignee, None);
    assert_eq!(task(2).await.assignee, Some(leaver.user_id.clone()), "a closed task keeps its assignee: it records who did it");
    assert_eq!(task(3).await.assignee, Some(stayer.user_id.clone()));
    let history = store.task_history(&scope, project.id, ids[0], &store::PageRequest::default()).await.unwrap();
    let last = history.items.last().unwrap();
    assert_eq!((last.action, last.actor.as_str()), (store::TaskAction::Unassigned, store::SYSTEM_ACTOR));
    assert!(store.list_assigned(&scope, &leaver.user_id, &store::PageRequest::default()).await.unwrap().items.is_empty());

    // The same record again (a retry) changes nothing.
    let removed = store.removed_member(scope.org_id(), &leaver.user_id).await.unwrap().unwrap();
    assert_eq!(store.unassign_removed(&removed).await.unwrap(), 0);
    assert_eq!(store.task_history(&scope, project.id, ids[0], &store::PageRequest::default()).await.unwrap().items.len(), history.items.len());
    // A member who is still a member has nothing to unassign.
    assert!(store.removed_member(scope.org_id(), &stayer.user_id).await.unwrap().is_none());
}
