//! The projects function: an org's workload. Projects (within the plan's limit), their tasks
//! on a board (fractional order, so a move writes one item), "my tasks" and "due between"
//! across the org, comments with @mentions, every task change in its history, `ETag` and
//! `If-Match` on every task and project, and a CSV import. (The open tasks of a member who
//! leaves are unassigned by the `org-purge` function, a reader of the table's stream.)

mod comments;
mod import;
mod input;
mod projects;
mod tasks;

use api::{RouteInfo, RouteTable};
use axum::Router;
use http::Method;
use store::Store;

/// What every handler shares: built once at init.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
}

impl api::RouteState for AppState {
    fn rate_store(&self) -> Option<&Store> {
        Some(&self.store)
    }
}

/// The function's route table.
pub fn routes() -> RouteTable<AppState> {
    use input::{CommentBody, CreateProject, CreateTask, MoveTask, UpdateProject, UpdateTask};
    use store::{Comment, ImportOutcome, Page, Project, Task, TaskHistoryEntry};
    const ETAG: (&str, &str) = ("ETag", "the item's version, for If-Match");
    RouteTable::default()
        .tag("projects", "Projects: the org's workload, within the plan's limit on active projects")
        .route(Method::POST, "/orgs/{orgId}/projects", "createProject", "Create a project (member+)", projects::create)
        .takes::<CreateProject>()
        .returns::<Project>(201)
        .header(ETAG.0, ETAG.1)
        .header("Location", "the new project's path")
        .route(Method::GET, "/orgs/{orgId}/projects", "listProjects", "List projects, newest first, optionally by status", projects::list)
        .returns::<Page<Project>>(200)
        .paginated(&["status"])
        .query_values("status", &["active", "archived"])
        .route(Method::GET, "/orgs/{orgId}/projects/{projectId}", "getProject", "Read a project", projects::get)
        .returns::<Project>(200)
        .header(ETAG.0, ETAG.1)
        .route(
            Method::PATCH,
            "/orgs/{orgId}/projects/{projectId}",
            "updateProject",
            "Change a project's name, description or status (member+ their own, admin+ any)",
            projects::update,
        )
        .takes::<UpdateProject>()
        .returns::<Project>(200)
        .header(ETAG.0, ETAG.1)
        .errors(&[412])
        .route(
            Method::POST,
            "/orgs/{orgId}/projects/{projectId}/archive",
            "archiveProject",
            "Archive a project: read-only, and not counted against the plan",
            projects::archive,
        )
        .returns::<Project>(200)
        .header(ETAG.0, ETAG.1)
        .errors(&[412])
        .route(
            Method::POST,
            "/orgs/{orgId}/projects/{projectId}/restore",
            "restoreProject",
            "Restore an archived project, within the plan's limit",
            projects::restore,
        )
        .returns::<Project>(200)
        .header(ETAG.0, ETAG.1)
        .errors(&[412])
        .route(
            Method::DELETE,
            "/orgs/{orgId}/projects/{projectId}",
            "deleteProject",
            "Delete a project; its tasks, comments and history are purged asynchronously (admin+)",
            projects::delete,
        )
        .no_content()
        .errors(&[412])
        .tag("tasks", "Tasks: a project's board, the caller's tasks, due dates, history, CSV import")
        .route(Method::POST, "/orgs/{orgId}/projects/{projectId}/tasks", "createTask", "Create a task at the end of its column (member+)", tasks::create)
        .takes::<CreateTask>()
        .returns::<Task>(201)
        .header(ETAG.0, ETAG.1)
        .header("Location", "the new task's path")
        .route(
            Method::GET,
            "/orgs/{orgId}/projects/{projectId}/tasks",
            "listTasks",
            "A board column in manual order (status), or all the project's tasks by creation",
            tasks::list,
        )
        .returns::<Page<Task>>(200)
        .paginated(&["status"])
        .query_values("status", &["todo", "in_progress", "blocked", "done", "canceled"])
        .route(Method::GET, "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}", "getTask", "Read a task", tasks::get)
        .returns::<Task>(200)
        .header(ETAG.0, ETAG.1)
        .route(Method::PATCH, "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}", "updateTask", "Change some of a task's fields (member+)", tasks::update)
        .takes::<UpdateTask>()
        .returns::<Task>(200)
        .header(ETAG.0, ETAG.1)
        .errors(&[412])
        .route(
            Method::POST,
            "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}/move",
            "moveTask",
            "Move a task within or across board columns (member+)",
            tasks::move_task,
        )
        .takes::<MoveTask>()
        .returns::<Task>(200)
        .header(ETAG.0, ETAG.1)
        .errors(&[412])
        .route(
            Method::DELETE,
            "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}",
            "deleteTask",
            "Delete a task with its comments and history (member+)",
            tasks::delete,
        )
        .no_content()
        .errors(&[412])
        .route(
            Method::GET,
            "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}/history",
            "listTaskHistory",
            "Every change to a task, oldest first",
            tasks::history,
        )
        .returns::<Page<TaskHistoryEntry>>(200)
        .paginated(&[])
        .route(
            Method::POST,
            "/orgs/{orgId}/projects/{projectId}/tasks/import",
            "importTasks",
            "Import tasks from CSV: every row valid, or nothing imported (member+)",
            import::import,
        )
        .takes_media::<String>("text/csv")
        .returns::<ImportOutcome>(201)
        .rate_class(domain::RateClass::Imports)
        .route(
            Method::GET,
            "/orgs/{orgId}/tasks",
            "listOrgTasks",
            "Open tasks across the org: the caller's (assignee=me) by due date, or those due in a range",
            tasks::list_org,
        )
        .returns::<Page<Task>>(200)
        .paginated(&["assignee", "dueAfter", "dueBefore"])
        .route(Method::GET, "/orgs/{orgId}/labels", "listLabels", "The labels the org's tasks use", tasks::labels)
        .returns::<tasks::Labels>(200)
        .tag("comments", "Comments on tasks, with @mentions")
        .route(Method::POST, "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}/comments", "createComment", "Comment on a task (member+)", comments::create)
        .takes::<CommentBody>()
        .returns::<Comment>(201)
        .route(Method::GET, "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}/comments", "listComments", "A task's comments, oldest first", comments::list)
        .returns::<Page<Comment>>(200)
        .paginated(&[])
        .route(Method::PATCH, "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}/comments/{commentId}", "editComment", "Edit your own comment", comments::edit)
        .takes::<CommentBody>()
        .returns::<Comment>(200)
        .route(
            Method::DELETE,
            "/orgs/{orgId}/projects/{projectId}/tasks/{taskId}/comments/{commentId}",
            "deleteComment",
            "Delete your own comment (admin+: any)",
            comments::delete,
        )
        .no_content()
}

/// The finished router with its state, and the list of its routes.
pub fn router(store: Store) -> (Router, Vec<RouteInfo>) {
    routes().into_router(AppState { store })
}

/// Every way this function is invoked: its routes.
pub fn handlers(platform: &api::Platform) -> api::Handlers {
    let app = AppState { store: platform.store.clone() };
    api::Handlers { http: Some(routes().with_state(app).0), ..Default::default() }
}

/// The routes with their state, for a runner that merges several functions.
pub fn unfinished_router(store: Store) -> (Router, Vec<RouteInfo>) {
    routes().with_state(AppState { store })
}
