//! Request bodies and their validation: every bad field is named in one 422.

use api::{ApiError, ApiResult};
use domain::work::{self, Due, PROJECT_DESCRIPTION_MAX, Priority, ProjectName, ProjectStatus, TASK_DESCRIPTION_MAX, TaskId, TaskStatus, TaskTitle};
use domain::{FieldError, UserId};
use serde::{Deserialize, Deserializer};
use store::{TaskDraft, TaskPatch};

/// Absent stays `None`; `null` becomes `Some(None)`.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Collects field errors while values are parsed.
#[derive(Default)]
struct Checker(Vec<FieldError>);

impl Checker {
    fn take<T>(&mut self, r: Result<T, FieldError>) -> Option<T> {
        r.map_err(|e| self.0.push(e)).ok()
    }
    fn take_all<T>(&mut self, r: Result<T, Vec<FieldError>>) -> Option<T> {
        r.map_err(|e| self.0.extend(e)).ok()
    }
    fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> ApiResult<T> {
        if !self.0.is_empty() {
            return Err(ApiError::invalid(self.0));
        }
        value().ok_or_else(|| ApiError::invalid(vec![FieldError::new("body", "is invalid")]))
    }
}

fn user(field: &str, raw: &str) -> Result<UserId, FieldError> {
    raw.parse().map_err(|_| FieldError::new(field, "must be a user id (a member's userId)"))
}

/// What [`ProjectName::parse`] and [`TaskTitle::parse`] accept: something besides spaces, no control characters.
const NAME_PATTERN: &str = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// 1 to 100 characters.
    #[schemars(length(min = 1, max = 100), regex(pattern = NAME_PATTERN))]
    name: String,
    /// Markdown, at most 2,000 characters.
    #[serde(default)]
    #[schemars(length(max = 2000))]
    description: Option<String>,
}

impl CreateProject {
    pub fn validate(self) -> ApiResult<(ProjectName, String)> {
        let mut c = Checker::default();
        let name = c.take(ProjectName::parse("name", &self.name));
        let description = c.take(work::description("description", self.description.as_deref().unwrap_or(""), PROJECT_DESCRIPTION_MAX));
        c.finish(|| Some((name?, description?)))
    }
}

/// At least one field.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("minProperties" = 1))]
pub struct UpdateProject {
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 100), regex(pattern = NAME_PATTERN))]
    name: Option<String>,
    #[serde(default)]
    #[schemars(with = "String", length(max = 2000))]
    description: Option<String>,
    #[serde(default)]
    #[schemars(with = "ProjectStatus")]
    status: Option<ProjectStatus>,
}

impl UpdateProject {
    pub fn validate(self) -> ApiResult<store::ProjectPatch> {
        let mut c = Checker::default();
        if self.name.is_none() && self.description.is_none() && self.status.is_none() {
            c.0.push(FieldError::new("body", "give a name, description or status to change"));
        }
        let name = self.name.map(|n| c.take(ProjectName::parse("name", &n)));
        let description = self.description.map(|d| c.take(work::description("description", &d, PROJECT_DESCRIPTION_MAX)));
        let status = self.status;
        c.finish(|| Some(store::ProjectPatch { name: name.flatten(), description: description.flatten(), status }))
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// 1 to 200 characters.
    #[schemars(length(min = 1, max = 200), regex(pattern = NAME_PATTERN))]
    title: String,
    /// Markdown, at most 10,000 characters.
    #[serde(default)]
    #[schemars(length(max = 10000))]
    description: Option<String>,
    /// Default `todo`.
    #[serde(default)]
    status: Option<TaskStatus>,
    /// Default `none`.
    #[serde(default)]
    priority: Option<Priority>,
    /// A member's user id.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,128}$"))]
    assignee: Option<String>,
    /// An RFC 3339 date (`2026-12-01`, due by the end of that day, UTC) or date-time.
    #[serde(default)]
    #[schemars(with = "Option<Due>")]
    due: Option<String>,
    /// At most 10 labels of 1 to 32 characters (stored lowercase), from the org's set of at
    /// most 100.
    #[serde(default)]
    #[schemars(length(max = 10))]
    labels: Option<Vec<String>>,
}

impl CreateTask {
    pub fn validate(self) -> ApiResult<TaskDraft> {
        let mut c = Checker::default();
        let title = c.take(TaskTitle::parse("title", &self.title));
        let description = c.take(work::description("description", self.description.as_deref().unwrap_or(""), TASK_DESCRIPTION_MAX));
        let assignee = self.assignee.map(|a| c.take(user("assignee", &a)));
        let due = self.due.map(|d| c.take(Due::parse("due", &d)));
        let labels = c.take_all(work::labels("labels", &self.labels.unwrap_or_default()));
        c.finish(|| {
            Some(TaskDraft {
                title: title?,
                description: description?,
                status: self.status.unwrap_or(TaskStatus::Todo),
                priority: self.priority.unwrap_or_default(),
                assignee: assignee.flatten(),
                due: due.flatten(),
                labels: labels?,
            })
        })
    }
}

/// At least one field; `null` clears `assignee` or `due`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("minProperties" = 1))]
pub struct UpdateTask {
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 200), regex(pattern = NAME_PATTERN))]
    title: Option<String>,
    #[serde(default)]
    #[schemars(with = "String", length(max = 10000))]
    description: Option<String>,
    /// A new status puts the task at the end of that column.
    #[serde(default)]
    #[schemars(with = "TaskStatus")]
    status: Option<TaskStatus>,
    #[serde(default)]
    #[schemars(with = "Priority")]
    priority: Option<Priority>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<String>", regex(pattern = r"^[A-Za-z0-9_-]{1,128}$"))]
    assignee: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<Due>")]
    due: Option<Option<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(max = 10))]
    labels: Option<Vec<String>>,
}

impl UpdateTask {
    pub fn validate(self) -> ApiResult<TaskPatch> {
        let mut c = Checker::default();
        let UpdateTask { title, description, status, priority, assignee, due, labels } = self;
        if title.is_none() && description.is_none() && status.is_none() && priority.is_none() && assignee.is_none() && due.is_none() && labels.is_none() {
            c.0.push(FieldError::new("body", "give at least one field to change"));
        }
        let title = title.map(|t| c.take(TaskTitle::parse("title", &t)));
        let description = description.map(|d| c.take(work::description("description", &d, TASK_DESCRIPTION_MAX)));
        let assignee = assignee.map(|a| a.map(|a| c.take(user("assignee", &a))));
        let due = due.map(|d| d.map(|d| c.take(Due::parse("due", &d))));
        let labels = labels.map(|l| c.take_all(work::labels("labels", &l)));
        c.finish(|| {
            Some(TaskPatch {
                title: title.map(|t| t.ok_or(())).transpose().ok()?,
                description: description.map(|t| t.ok_or(())).transpose().ok()?,
                status,
                priority,
                assignee: assignee.map(|a| a.map(|a| a.ok_or(())).transpose()).transpose().ok()?,
                due: due.map(|d| d.map(|d| d.ok_or(())).transpose()).transpose().ok()?,
                labels: labels.map(|l| l.ok_or(())).transpose().ok()?,
            })
        })
    }
}

/// Where a task goes: a column (default: its own) and its neighbours there as the client
/// sees them; neither: the end of the column.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveTask {
    #[serde(default)]
    pub status: Option<TaskStatus>,
    /// The task it goes right after (absent or null: the top, when `before` is given).
    #[serde(default)]
    #[schemars(with = "Option<String>", regex(pattern = r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"))]
    pub after: Option<String>,
    /// The task it goes right before (absent or null: the bottom, when `after` is given).
    #[serde(default)]
    #[schemars(with = "Option<String>", regex(pattern = r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"))]
    pub before: Option<String>,
}

impl MoveTask {
    pub fn neighbours(&self) -> ApiResult<(Option<TaskId>, Option<TaskId>)> {
        let mut c = Checker::default();
        let parse = |field: &str, raw: &Option<String>| {
            raw.as_deref().map(|r| r.parse::<TaskId>().map_err(|_| FieldError::new(field, "must be a task id"))).transpose()
        };
        let after = c.take(parse("after", &self.after));
        let before = c.take(parse("before", &self.before));
        if self.status.is_none() && self.after.is_none() && self.before.is_none() {
            c.0.push(FieldError::new("body", "give the column (status) and/or the neighbours (after, before) to move to"));
        }
        c.finish(|| Some((after?, before?)))
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    /// Markdown, 1 to 5,000 characters; `@handle` mentions a member (see a member's `handle`).
    #[schemars(length(min = 1, max = 5000), regex(pattern = r"\S"))]
    text: String,
}

impl CommentBody {
    pub fn validate(self) -> ApiResult<String> {
        let mut c = Checker::default();
        let text = c.take(work::comment_text("text", &self.text));
        c.finish(|| text)
    }
}
