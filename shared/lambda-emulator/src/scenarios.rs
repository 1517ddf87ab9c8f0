//! The functions, from the registry, and the benchmark scenarios, in one table. Events are
//! built as Lambda delivers them: REST, Cognito, EventBridge (SES feedback, GuardDuty malware
//! scan results) and SQS (the upload bucket's S3 events, the domain events a function
//! subscribes to) events from the sample events in `events/` with the seeded ids, users,
//! tokens, addresses and objects put in; stream records and scheduled events by the local
//! runner's builders (`local_runner::events`).

use std::collections::HashMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::runtime_api::request_id;
use crate::seed::{
    CommentEvent, DeletedOrg, DeletedProject, DueDigests, ExpiredUpload, Fixture, Item, ReadyDocument, RemovedMember, Sample, StartedExport, Upload, User,
};

/// An event kind Lambda delivers to a function, one per kind of source the registry declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// API Gateway REST proxy events; answers carry a `statusCode`.
    Http,
    /// Cognito user-pool trigger events.
    CognitoTrigger,
    /// DynamoDB stream batches; answers carry `batchItemFailures`.
    Stream,
    /// SQS message batches; answers carry `batchItemFailures`. The upload bucket's object
    /// events come this way too: the bucket notifies a queue, each message's body is an S3
    /// event (no function is invoked by S3 directly); and so do the domain events a function
    /// subscribes to (the fan-out sends each to its queue).
    Queue,
    /// EventBridge Scheduler invocations.
    Schedule,
    /// Other EventBridge events, through a rule: SES bounces and complaints, GuardDuty malware
    /// scan results.
    Bus,
}

/// A deployed function as the registry (`registry::all()`) declares it: its binary (named as
/// the function), its sizing, the event kinds its sources send and its environment.
#[derive(Clone)]
pub struct FunctionDef {
    pub binary: &'static str,
    pub memory_mb: u32,
    pub timeout_secs: u64,
    pub kinds: Vec<Kind>,
    /// The ids of its schedules.
    pub schedules: Vec<&'static str>,
    /// The most records its stream event source mapping delivers at once.
    pub stream_batch_size: Option<usize>,
    /// Which variables the infrastructure sets besides the table and the cursor secret.
    pub environment: registry::Environment,
    /// The id of its queue of domain events, when it subscribes to some.
    pub domain_event_queue: Option<&'static str>,
}

impl FunctionDef {
    pub fn of(f: &registry::Function) -> FunctionDef {
        let s = &f.sources;
        let kinds = [
            (s.http, Kind::Http),
            (!s.cognito_triggers.is_empty(), Kind::CognitoTrigger),
            (s.dynamodb_stream.is_some(), Kind::Stream),
            (!s.queues.is_empty() || s.s3.is_some() || s.domain_events.is_some(), Kind::Queue),
            (!s.schedules.is_empty(), Kind::Schedule),
            (s.mail_feedback || s.malware_scan_results, Kind::Bus),
        ];
        FunctionDef {
            binary: f.name,
            memory_mb: f.memory_mb,
            timeout_secs: u64::from(f.timeout_seconds),
            kinds: kinds.into_iter().filter_map(|(has, kind)| has.then_some(kind)).collect(),
            schedules: s.schedules.iter().map(|sch| sch.id).collect(),
            stream_batch_size: s.dynamodb_stream.as_ref().and_then(|d| usize::try_from(d.batch_size).ok()),
            environment: f.environment.clone(),
            domain_event_queue: s.domain_events.as_ref().map(|d| d.queue.id),
        }
    }
}

/// Every function of the registry, in its order.
pub fn functions() -> Vec<FunctionDef> {
    registry::all().iter().map(FunctionDef::of).collect()
}

/// The registry's function `name`.
pub fn function(name: &str) -> Option<FunctionDef> {
    registry::function(name).as_ref().map(FunctionDef::of)
}

/// Who the event comes from, for invocation `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The seeded org's owner.
    Owner,
    /// A user who creates an org: another one each invocation (the platform limits how many
    /// orgs one user creates a day), so each invocation creates the user's first org.
    Creator,
    /// The `i`th invitee (its own invitation and token).
    Invitee,
    /// Someone signing up: a fresh sub and email each invocation.
    NewUser,
    /// Has an open invitation to the seeded org that nobody accepts.
    Branded,
    /// A platform operator.
    Operator,
    /// A seeded member of the org with the member role.
    Member,
}

/// What is seeded for each invocation, just before its event is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerInvocation {
    Nothing,
    /// An org with members that its owner deleted: marked `deleting`, awaiting its purge.
    /// `{orgId}` is this org; the invocation must purge it.
    DeletedOrg,
    /// A member of the seeded org with open tasks, whom its owner removed; the invocation
    /// must unassign their tasks.
    RemovedMember,
    /// A project of the seeded org with tasks, that its owner deleted; the invocation must
    /// purge it.
    DeletedProject,
    /// The invocation's batch of the comment events seeded before the first invocation
    /// ([`Fixture::comment_events`]); the invocation must notify each comment's mentioned member.
    CommentEvents,
    /// Members of the seeded org whose daily digest is due, each with unread notifications and
    /// a mail that quiet hours held back ([`crate::seed::due_digests`]); the invocation must
    /// send and reschedule them.
    DueDigests,
    /// An address an SES feedback event reports as bounced; the invocation must suppress it.
    BouncedAddress,
    /// A file of the seeded org reserved, and its sample's bytes put at its key, just before
    /// the invocation ([`crate::seed::upload`]), as a browser's upload would: the invocation
    /// gets the bucket's event of it and must process it to `ready` with what the sample holds.
    NewUpload,
    /// The `i`th clean malware scan result of the seeded (processed) upload: the invocation
    /// must record it.
    ScanResult,
    /// An upload whose reservation expired just before (its bytes never came): the invocation
    /// must delete it.
    ExpiredUpload,
    /// A document of the seeded org processed to `ready` with its extracted text just before
    /// the invocation ([`crate::seed::ready_document`]): the invocation gets its
    /// `file.processed` event and must put its chunks into the org's vector index.
    ReadyDocument,
    /// An export of the seeded org that its owner started just before the invocation
    /// ([`crate::seed::started_export`]): the invocation gets its work queue's message and must
    /// complete it in one pass.
    StartedExport,
}

/// What was seeded for one invocation.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub deleted_org: Option<DeletedOrg>,
    pub removed_member: Option<RemovedMember>,
    pub deleted_project: Option<DeletedProject>,
    pub comment_events: Option<Vec<CommentEvent>>,
    pub due_digests: Option<DueDigests>,
    pub bounced: Option<String>,
    /// The invocation's upload, and the sequencer of its object event.
    pub upload: Option<Upload>,
    pub sequencer: Option<String>,
    /// Which scan result of the seeded upload this is (1 for the first).
    pub scan: Option<u64>,
    pub expired_upload: Option<ExpiredUpload>,
    /// The invocation's ready document (ingestion).
    pub document: Option<ReadyDocument>,
    /// The invocation's export (its work queue's message).
    pub export: Option<StartedExport>,
}

/// An event to send. In paths, `{orgId}` and `{projectId}` (the workload's board) are
/// replaced, each also a path parameter; in bodies `{orgId}`, `{i}`, `{token}` and
/// `{assignee}` (a member with whom the workload's tasks are shared).
#[derive(Debug, Clone, Copy)]
pub enum EventSpec {
    Http {
        method: &'static str,
        resource: &'static str,
        query: &'static [(&'static str, &'static str)],
        body: Option<&'static str>,
        who: Who,
    },
    /// `events/cognito/<source>.json`; `org_metadata` puts the seeded org into `clientMetadata.orgId`.
    Trigger {
        source: &'static str,
        who: Who,
        org_metadata: bool,
    },
    /// A DynamoDB stream batch of one record, as the function's event source mapping delivers
    /// it: the change that marked the invocation's org `deleting` (`MODIFY`, with the images
    /// the table's stream view carries).
    OrgDeletionRecord,
    /// A stream batch of one record: the removal of the invocation's member's membership
    /// (`REMOVE`, with the membership's item as the old image).
    MemberRemovalRecord,
    /// A stream batch of one record: the marker the deletion of the invocation's project left
    /// (`INSERT`, with the marker as the new image).
    ProjectDeletionRecord,
    /// A stream batch of the invocation's comment events, as many as the function's event
    /// source mapping delivers at once (`INSERT`s, each with the event item as the new image).
    DomainEventRecords,
    /// `events/eventbridge/<source>.json` (SES feedback through EventBridge), naming the
    /// invocation's bounced address.
    MailFeedback {
        source: &'static str,
    },
    /// What EventBridge Scheduler sends when the function's schedule `schedule` fires.
    Schedule {
        schedule: &'static str,
    },
    /// `events/sqs/<source>.json`: a batch of one SQS message whose body is the upload bucket's
    /// `ObjectCreated` event of the invocation's upload of `sample` (its key, size, ETag and a
    /// sequencer).
    UploadEvent {
        source: &'static str,
        sample: Sample,
    },
    /// `events/eventbridge/<source>.json`: GuardDuty's clean scan result of the seeded upload
    /// of `sample`, processed before the first invocation (its bucket, key and ETag).
    ScanResult {
        source: &'static str,
        sample: Sample,
    },
    /// A question the seeded member asks in their conversation (`POST
    /// /orgs/{orgId}/conversations/{conversationId}/messages`, answered as JSON: Converse), which
    /// has [`crate::seed::CONVERSATION_TURNS`] earlier turns. With `indexed_chunks`, the org's
    /// vector index holds that many chunks of its documents ([`crate::seed::corpus`]);
    /// without, the org has no index yet.
    ChatTurn {
        question: &'static str,
        indexed_chunks: usize,
    },
    /// `events/sqs/<source>.json`: a batch of one SQS message from the function's queue of
    /// domain events, whose body is the event of the invocation's document (as the fan-out
    /// sends it).
    DomainEventMessage {
        source: &'static str,
    },
    /// An SQS message of the audit log's queue: a fresh `member.role_changed` event of the
    /// seeded org by its owner (with the request behind it), so every invocation appends an
    /// entry to the org's chain.
    AuditedEvent {
        source: &'static str,
    },
    /// `events/sqs/<source>.json`: a batch of one SQS message of the exports function's work
    /// queue, whose body is the invocation's export (as its start enqueues it).
    ExportMessage {
        source: &'static str,
    },
}

/// The route a chat turn is asked on.
pub const CHAT_MESSAGES: &str = "/orgs/{orgId}/conversations/{conversationId}/messages";

#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub function: &'static str,
    pub name: &'static str,
    pub event: EventSpec,
    pub per_invocation: PerInvocation,
}

const fn http(function: &'static str, name: &'static str, method: &'static str, resource: &'static str, body: Option<&'static str>, who: Who) -> Scenario {
    Scenario { function, name, event: EventSpec::Http { method, resource, query: &[], body, who }, per_invocation: PerInvocation::Nothing }
}

/// A `GET` with a query string.
const fn get(function: &'static str, name: &'static str, resource: &'static str, query: &'static [(&'static str, &'static str)], who: Who) -> Scenario {
    Scenario { function, name, event: EventSpec::Http { method: "GET", resource, query, body: None, who }, per_invocation: PerInvocation::Nothing }
}

const fn trigger(name: &'static str, source: &'static str, who: Who, org_metadata: bool) -> Scenario {
    Scenario { function: "cognito-triggers", name, event: EventSpec::Trigger { source, who, org_metadata }, per_invocation: PerInvocation::Nothing }
}

/// An `org-purge` scenario: each invocation purges an org deleted just before it.
const fn purge(name: &'static str, event: EventSpec) -> Scenario {
    Scenario { function: "org-purge", name, event, per_invocation: PerInvocation::DeletedOrg }
}

/// Every scenario, in the order they run.
pub const SCENARIOS: &[Scenario] = &[
    http("organizations", "create org", "POST", "/orgs", Some(r#"{"name":"Bench Org {i}"}"#), Who::Creator),
    http("organizations", "list members", "GET", "/orgs/{orgId}/members", None, Who::Owner),
    http("organizations", "get org", "GET", "/orgs/{orgId}", None, Who::Owner),
    http("organizations", "get me", "GET", "/me", None, Who::Owner),
    http("invites", "create invite", "POST", "/orgs/{orgId}/invites", Some(r#"{"email":"new-{i}@bench.example.com","role":"member"}"#), Who::Owner),
    http("invites", "list invites", "GET", "/orgs/{orgId}/invites", None, Who::Owner),
    http("invites", "accept invite", "POST", "/invites/accept", Some(r#"{"token":"{token}"}"#), Who::Invitee),
    http(
        "projects",
        "create task",
        "POST",
        "/orgs/{orgId}/projects/{projectId}/tasks",
        Some(r#"{"title":"Bench task {i}","assignee":"{assignee}","due":"2026-12-15","labels":["bench"]}"#),
        Who::Owner,
    ),
    get("projects", "list board", "/orgs/{orgId}/projects/{projectId}/tasks", &[("status", "todo")], Who::Owner),
    get("projects", "my tasks", "/orgs/{orgId}/tasks", &[("assignee", "me")], Who::Owner),
    Scenario { function: "org-purge", name: "member removed (stream)", event: EventSpec::MemberRemovalRecord, per_invocation: PerInvocation::RemovedMember },
    trigger("PreSignUp_SignUp", "PreSignUp_SignUp", Who::NewUser, false),
    trigger("PostConfirmation_ConfirmSignUp", "PostConfirmation_ConfirmSignUp", Who::NewUser, false),
    trigger("TokenGeneration_Authentication", "TokenGeneration_Authentication", Who::Owner, false),
    trigger("PostAuthentication_Authentication", "PostAuthentication_Authentication", Who::Owner, false),
    trigger("CustomMessage_SignUp", "CustomMessage_SignUp", Who::Branded, true),
    purge("deleted org (stream)", EventSpec::OrgDeletionRecord),
    Scenario {
        function: "org-purge",
        name: "deleted project (stream)",
        event: EventSpec::ProjectDeletionRecord,
        per_invocation: PerInvocation::DeletedProject,
    },
    purge("resume-purges (schedule)", EventSpec::Schedule { schedule: "resume-purges" }),
    Scenario {
        function: "invites",
        name: "expire-invitations (schedule)",
        event: EventSpec::Schedule { schedule: "expire-invitations" },
        per_invocation: PerInvocation::Nothing,
    },
    purge("purge org (operator)", EventSpec::Http { method: "POST", resource: "/admin/orgs/{orgId}/purge", query: &[], body: None, who: Who::Operator }),
    get("notifications", "list notifications", "/orgs/{orgId}/notifications", &[], Who::Owner),
    get("notifications", "list unread notifications", "/orgs/{orgId}/notifications", &[("unread", "true")], Who::Owner),
    get("notifications", "unread count", "/orgs/{orgId}/notifications/unread-count", &[], Who::Owner),
    Scenario { function: "notifications", name: "comment events (stream)", event: EventSpec::DomainEventRecords, per_invocation: PerInvocation::CommentEvents },
    Scenario {
        function: "notifications",
        name: "notification-sweep (schedule)",
        event: EventSpec::Schedule { schedule: "notification-sweep" },
        per_invocation: PerInvocation::DueDigests,
    },
    Scenario {
        function: "notifications",
        name: "SES bounce (EventBridge)",
        event: EventSpec::MailFeedback { source: "ses-bounce" },
        per_invocation: PerInvocation::BouncedAddress,
    },
    http("files", "presign upload", "POST", "/orgs/{orgId}/files", Some(r#"{"name":"photo.jpg","size":2097152,"contentType":"image/jpeg"}"#), Who::Member),
    Scenario {
        function: "files",
        name: "process 2 MB JPEG (SQS)",
        event: EventSpec::UploadEvent { source: "s3-object-created", sample: Sample::Jpeg },
        per_invocation: PerInvocation::NewUpload,
    },
    Scenario {
        function: "files",
        name: "process 20-page PDF (SQS)",
        event: EventSpec::UploadEvent { source: "s3-object-created", sample: Sample::Pdf },
        per_invocation: PerInvocation::NewUpload,
    },
    Scenario {
        function: "files",
        name: "upload-sweep (schedule)",
        event: EventSpec::Schedule { schedule: "upload-sweep" },
        per_invocation: PerInvocation::ExpiredUpload,
    },
    Scenario {
        function: "files",
        name: "malware scan result (EventBridge)",
        event: EventSpec::ScanResult { source: "guardduty-malware-scan-result", sample: Sample::Pdf },
        per_invocation: PerInvocation::ScanResult,
    },
    Scenario {
        function: "chat",
        name: "chat turn",
        event: EventSpec::ChatTurn { question: "What were the main risks raised in the planning review, and who follows them up?", indexed_chunks: 0 },
        per_invocation: PerInvocation::Nothing,
    },
    Scenario {
        function: "chat",
        name: "ingest 20-page document (SQS)",
        event: EventSpec::DomainEventMessage { source: "domain-event" },
        per_invocation: PerInvocation::ReadyDocument,
    },
    get("audit", "list audit log", "/orgs/{orgId}/audit", &[], Who::Owner),
    Scenario {
        function: "audit",
        name: "append an entry (SQS)",
        event: EventSpec::AuditedEvent { source: "domain-event" },
        per_invocation: PerInvocation::Nothing,
    },
    get("exports", "list exports", "/orgs/{orgId}/exports", &[], Who::Owner),
    Scenario {
        function: "exports",
        name: "export an org (SQS)",
        event: EventSpec::ExportMessage { source: "domain-event" },
        per_invocation: PerInvocation::StartedExport,
    },
    Scenario {
        function: "chat",
        name: "retrieval on 10,000 chunks",
        event: EventSpec::ChatTurn { question: "What does the quarterly report say about storage growth and seat expansion by plan?", indexed_chunks: 10_000 },
        per_invocation: PerInvocation::Nothing,
    },
];

impl Scenario {
    /// Who the event comes from (`None`: from AWS, not from a user).
    pub fn who(&self) -> Option<Who> {
        match self.event {
            EventSpec::Http { who, .. } | EventSpec::Trigger { who, .. } => Some(who),
            EventSpec::ChatTurn { .. } => Some(Who::Member),
            EventSpec::DomainEventMessage { .. }
            | EventSpec::AuditedEvent { .. }
            | EventSpec::ExportMessage { .. }
            | EventSpec::OrgDeletionRecord
            | EventSpec::MemberRemovalRecord
            | EventSpec::ProjectDeletionRecord
            | EventSpec::DomainEventRecords
            | EventSpec::Schedule { .. }
            | EventSpec::MailFeedback { .. }
            | EventSpec::UploadEvent { .. }
            | EventSpec::ScanResult { .. } => None,
        }
    }

    /// The event kind this scenario sends.
    pub fn kind(&self) -> Kind {
        match self.event {
            EventSpec::Http { .. } | EventSpec::ChatTurn { .. } => Kind::Http,
            EventSpec::Trigger { .. } => Kind::CognitoTrigger,
            EventSpec::OrgDeletionRecord | EventSpec::MemberRemovalRecord | EventSpec::ProjectDeletionRecord | EventSpec::DomainEventRecords => Kind::Stream,
            EventSpec::Schedule { .. } => Kind::Schedule,
            EventSpec::MailFeedback { .. } | EventSpec::ScanResult { .. } => Kind::Bus,
            EventSpec::UploadEvent { .. } | EventSpec::DomainEventMessage { .. } | EventSpec::AuditedEvent { .. } | EventSpec::ExportMessage { .. } => {
                Kind::Queue
            }
        }
    }

    /// Whether the invocations call the model (Bedrock: embeddings, Converse): their durations
    /// include the local endpoint's fake model ([`crate::model`]).
    pub fn calls_the_model(&self) -> bool {
        matches!(self.event, EventSpec::ChatTurn { .. }) || self.per_invocation == PerInvocation::ReadyDocument
    }

    /// The sample file the scenario uploads: before each invocation (processing), or once
    /// before the first, processed already (malware scan results).
    pub fn sample(&self) -> Option<Sample> {
        match self.event {
            EventSpec::UploadEvent { sample, .. } | EventSpec::ScanResult { sample, .. } => Some(sample),
            _ => None,
        }
    }

    /// Whether the scenario needs the seeded [`crate::seed::Workload`] (the projects
    /// function's scenarios act on projects and tasks, a removed member's tasks are
    /// unassigned, and comment events are about the board's tasks).
    pub fn needs_workload(&self) -> bool {
        self.function == "projects" || matches!(self.per_invocation, PerInvocation::RemovedMember | PerInvocation::CommentEvents)
    }

    /// Whether the scenario reads the owner's inbox ([`crate::seed::inbox`]): the
    /// notifications function's routes.
    pub fn needs_inbox(&self) -> bool {
        self.function == "notifications" && self.kind() == Kind::Http
    }

    /// How many comment events to seed for a run of `invocations` invocations (all of them
    /// before the first: [`crate::seed::comment_events`]), and how many to a batch.
    pub fn comment_events(&self, invocations: usize) -> Option<(usize, usize)> {
        match self.event {
            EventSpec::DomainEventRecords => Some((invocations, self.def().stream_batch_size.unwrap_or(1))),
            _ => None,
        }
    }

    /// The scenario's function, from the registry.
    pub fn def(&self) -> FunctionDef {
        function(self.function).unwrap_or_else(|| panic!("scenario {:?} names {:?}, which the registry does not have", self.name, self.function))
    }
}

/// The functions of the registry that no scenario measures.
pub fn unbenchmarked() -> Vec<&'static str> {
    functions().iter().map(|f| f.binary).filter(|f| !SCENARIOS.iter().any(|s| s.function == *f)).collect()
}

/// The sample events the scenarios' events are made from.
#[derive(Debug, Clone)]
pub struct Templates {
    apigw: Value,
    cognito: HashMap<String, Value>,
    eventbridge: HashMap<String, Value>,
    sqs: HashMap<String, Value>,
}

impl Templates {
    /// Reads `events/apigw/get-me.json`, `events/cognito/*.json`, `events/eventbridge/*.json`
    /// and `events/sqs/*.json`.
    pub fn load(events: &Path) -> Result<Templates, String> {
        let read = |p: &Path| -> Result<Value, String> {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
        };
        let folder = |name: &str| -> Result<HashMap<String, Value>, String> {
            let mut events_by_name = HashMap::new();
            let dir = events.join(name);
            for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
                let path = entry.map_err(|e| e.to_string())?.path();
                if path.extension().is_some_and(|x| x == "json") {
                    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
                    events_by_name.insert(name, read(&path)?);
                }
            }
            Ok(events_by_name)
        };
        let apigw = read(&events.join("apigw/get-me.json"))?;
        Ok(Templates { apigw, cognito: folder("cognito")?, eventbridge: folder("eventbridge")?, sqs: folder("sqs")? })
    }

    /// The event of invocation `i` (0 is the cold one) of `scenario`, with what was seeded
    /// for it.
    pub fn build(&self, scenario: &Scenario, fixture: &Fixture, i: usize, prepared: &Prepared) -> Result<Value, String> {
        let deleted = || prepared.deleted_org.as_ref().ok_or_else(|| format!("invocation {i} has no deleted org seeded"));
        let removed = || prepared.removed_member.as_ref().ok_or_else(|| format!("invocation {i} has no removed member seeded"));
        let deleted_project = || prepared.deleted_project.as_ref().ok_or_else(|| format!("invocation {i} has no deleted project seeded"));
        let org_id = match scenario.per_invocation {
            PerInvocation::DeletedOrg => deleted()?.org_id.as_str(),
            PerInvocation::RemovedMember => removed()?.org_id.as_str(),
            PerInvocation::DeletedProject => deleted_project()?.org_id.as_str(),
            PerInvocation::Nothing
            | PerInvocation::CommentEvents
            | PerInvocation::DueDigests
            | PerInvocation::BouncedAddress
            | PerInvocation::NewUpload
            | PerInvocation::ScanResult
            | PerInvocation::ExpiredUpload
            | PerInvocation::ReadyDocument
            | PerInvocation::StartedExport => fixture.org_id.as_str(),
        };
        let workload = fixture.workload.as_ref();
        match scenario.event {
            EventSpec::Http { method, resource, query, body, who } => {
                let user = user(who, fixture, i)?;
                let token = if who == Who::Invitee { fixture.invitees[i].token.as_str() } else { "" };
                let body = match body {
                    Some(b) if b.contains("{assignee}") => {
                        let assignee = workload.ok_or_else(|| format!("{}: {{assignee}} needs the seeded workload", scenario.name))?.assignee.as_str();
                        Some(b.replace("{assignee}", assignee))
                    }
                    other => other.map(str::to_owned),
                };
                let fill = |s: String| s.replace("{orgId}", org_id).replace("{i}", &i.to_string()).replace("{token}", token);
                let value = |name: &str| match name {
                    "orgId" => Some(org_id),
                    "projectId" => workload.map(|w| w.project_id.as_str()),
                    _ => None,
                };
                let params = path_parameters(resource)
                    .into_iter()
                    .map(|name| value(name).map(|v| (name, v)).ok_or_else(|| format!("{}: no value for {{{name}}} in {resource}", scenario.name)))
                    .collect::<Result<Vec<_>, String>>()?;
                Ok(self.http_event(method, resource, query, body.map(fill), &user, &params))
            }
            EventSpec::Trigger { source, org_metadata, who } => {
                let user = user(who, fixture, i)?;
                let mut event = self.cognito.get(source).cloned().ok_or_else(|| format!("no events/cognito/{source}.json"))?;
                put_user(&mut event, &user);
                if org_metadata {
                    event["request"]["clientMetadata"] = json!({ "orgId": org_id });
                }
                Ok(event)
            }
            EventSpec::OrgDeletionRecord => Ok(json!({ "Records": [deletion_record(&fixture.table, deleted()?, i)] })),
            EventSpec::MemberRemovalRecord => Ok(json!({ "Records": [member_removal_record(&fixture.table, removed()?, i)] })),
            EventSpec::ProjectDeletionRecord => Ok(json!({ "Records": [project_deletion_record(&fixture.table, deleted_project()?, i)] })),
            EventSpec::DomainEventRecords => {
                let events =
                    prepared.comment_events.as_deref().filter(|e| !e.is_empty()).ok_or_else(|| format!("invocation {i} has no comment events seeded"))?;
                let records: Vec<Value> = events.iter().enumerate().map(|(j, e)| domain_event_record(&fixture.table, e, i * events.len() + j)).collect();
                Ok(json!({ "Records": records }))
            }
            EventSpec::Schedule { schedule } => Ok(local_runner::events::scheduled_event(scenario.function, schedule, time::OffsetDateTime::now_utc())),
            EventSpec::MailFeedback { source } => {
                let address = prepared.bounced.as_deref().ok_or_else(|| format!("invocation {i} has no bounced address"))?;
                let mut event = self.eventbridge.get(source).cloned().ok_or_else(|| format!("no events/eventbridge/{source}.json"))?;
                put_feedback_address(&mut event, address);
                event["id"] = json!(request_id());
                event["time"] = json!(domain::rfc3339(time::OffsetDateTime::now_utc()));
                Ok(event)
            }
            EventSpec::UploadEvent { source, .. } => {
                let upload = prepared.upload.as_ref().ok_or_else(|| format!("invocation {i} has no upload seeded"))?;
                let sequencer = prepared.sequencer.as_deref().ok_or_else(|| format!("invocation {i} has no sequencer"))?;
                let mut event = self.sqs.get(source).cloned().ok_or_else(|| format!("no events/sqs/{source}.json"))?;
                put_object_created(&mut event, &fixture.table, upload, sequencer)?;
                Ok(event)
            }
            EventSpec::ChatTurn { question, .. } => {
                let user = user(Who::Member, fixture, i)?;
                let conversation = fixture.conversation_id.as_deref().ok_or_else(|| format!("{}: no conversation seeded", scenario.name))?;
                let body = json!({ "content": question }).to_string();
                Ok(self.http_event("POST", CHAT_MESSAGES, &[], Some(body), &user, &[("orgId", org_id), ("conversationId", conversation)]))
            }
            EventSpec::DomainEventMessage { source } => {
                let document = prepared.document.as_ref().ok_or_else(|| format!("invocation {i} has no document seeded"))?;
                self.sqs_message(source, document.event.clone(), &domain_event_queue(scenario, fixture))
            }
            EventSpec::AuditedEvent { source } => {
                let owner = user(Who::Owner, fixture, i)?;
                let now = time::OffsetDateTime::now_utc();
                let body = json!({
                    "id": ulid::Ulid::new().to_string(), "kind": "member.role_changed", "orgId": org_id, "actor": owner.sub,
                    "at": domain::rfc3339(now), "member": format!("bench-member-{i}"), "role": "admin", "previousRole": "member",
                    "request": {"requestId": request_id(), "sourceIp": "203.0.113.10", "userAgent": "tenantry-bench"},
                    "ttl": now.unix_timestamp() + store::EVENT_RETENTION_SECS,
                });
                self.sqs_message(source, body.to_string(), &domain_event_queue(scenario, fixture))
            }
            EventSpec::ExportMessage { source } => {
                let export = prepared.export.as_ref().ok_or_else(|| format!("invocation {i} has no export started"))?;
                self.sqs_message(source, export.message.clone(), &format!("{}-{}-work", fixture.table, scenario.function))
            }
            EventSpec::ScanResult { source, .. } => {
                let upload = fixture.upload.as_ref().ok_or_else(|| format!("{}: no processed upload seeded", scenario.name))?;
                let mut event = self.eventbridge.get(source).cloned().ok_or_else(|| format!("no events/eventbridge/{source}.json"))?;
                let object =
                    event.pointer_mut("/detail/s3ObjectDetails").ok_or_else(|| format!("events/eventbridge/{source}.json has no detail.s3ObjectDetails"))?;
                // GuardDuty names the key as stored (not form-encoded) and the ETag unquoted.
                object["bucketName"] = json!(upload.bucket);
                object["objectKey"] = json!(upload.key);
                object["eTag"] = json!(upload.etag);
                event["id"] = json!(request_id());
                event["time"] = json!(domain::rfc3339(time::OffsetDateTime::now_utc()));
                event["region"] = json!(testkit::endpoint::REGION);
                Ok(event)
            }
        }
    }

    /// `events/sqs/<source>.json` as a fresh delivery of one message with `body` from `queue`.
    fn sqs_message(&self, source: &str, body: String, queue: &str) -> Result<Value, String> {
        let mut event = self.sqs.get(source).cloned().ok_or_else(|| format!("no events/sqs/{source}.json"))?;
        let message = event.pointer_mut("/Records/0").filter(|m| m.is_object()).ok_or_else(|| format!("events/sqs/{source}.json has no message"))?;
        put_message(message, body, queue);
        Ok(event)
    }

    /// A REST proxy event; `params` has a value for every `{name}` of `resource`.
    fn http_event(&self, method: &str, resource: &str, query: &[(&str, &str)], body: Option<String>, user: &User, params: &[(&str, &str)]) -> Value {
        let path = &params.iter().fold(resource.to_owned(), |path, (name, value)| path.replace(&format!("{{{name}}}"), value));
        let mut e = self.apigw.clone();
        e["resource"] = json!(resource);
        e["path"] = json!(path);
        e["httpMethod"] = json!(method);
        e["pathParameters"] =
            if params.is_empty() { Value::Null } else { params.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>().into() };
        if query.is_empty() {
            e["queryStringParameters"] = Value::Null;
            e["multiValueQueryStringParameters"] = Value::Null;
        } else {
            e["queryStringParameters"] = query.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>().into();
            e["multiValueQueryStringParameters"] = query.iter().map(|(k, v)| ((*k).to_owned(), json!([v]))).collect::<serde_json::Map<_, _>>().into();
        }
        if body.is_some() {
            e["headers"]["Content-Type"] = json!("application/json");
            e["multiValueHeaders"]["Content-Type"] = json!(["application/json"]);
        }
        e["body"] = body.map(Value::String).unwrap_or(Value::Null);
        e["isBase64Encoded"] = json!(false);
        let ctx = &mut e["requestContext"];
        ctx["resourcePath"] = json!(resource);
        ctx["httpMethod"] = json!(method);
        ctx["path"] = json!(format!("/prod{path}"));
        ctx["requestId"] = json!(request_id());
        ctx["requestTimeEpoch"] = json!(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64);
        ctx["authorizer"] = json!({ "claims": user.claims() });
        e
    }
}

/// The queue of the domain events `scenario`'s function subscribes to, in the bench stack of
/// `fixture`.
fn domain_event_queue(scenario: &Scenario, fixture: &Fixture) -> String {
    format!("{}-{}-{}", fixture.table, scenario.function, scenario.def().domain_event_queue.unwrap_or("events"))
}

/// Puts the `ObjectCreated` event of `upload` with `sequencer` into an SQS sample event (one
/// message, whose body is an S3 event of one record), as the upload bucket's notification to
/// the queue of the bench stack on `table` delivers it: the bucket, the form-encoded key, the
/// size, ETag and sequencer, the times; a fresh message id and receipt handle, and the body's
/// MD5 as SQS computes it.
pub fn put_object_created(event: &mut Value, table: &str, upload: &Upload, sequencer: &str) -> Result<(), String> {
    let now = time::OffsetDateTime::now_utc();
    let region = testkit::endpoint::REGION;
    let message = event.pointer_mut("/Records/0").filter(|m| m.is_object()).ok_or("the SQS sample has no message")?;
    let mut body: Value = serde_json::from_str(message["body"].as_str().ok_or("the SQS sample's body is not a string")?)
        .map_err(|e| format!("the SQS sample's body is not JSON: {e}"))?;
    let record = body.pointer_mut("/Records/0").filter(|r| r.is_object()).ok_or("the SQS sample's S3 event has no record")?;
    record["awsRegion"] = json!(region);
    record["eventTime"] = json!(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    ));
    record["responseElements"]["x-amz-request-id"] = json!(format!("{:016X}", ulid::Ulid::new().random() as u64));
    let s3 = &mut record["s3"];
    s3["bucket"]["name"] = json!(upload.bucket);
    s3["bucket"]["arn"] = json!(format!("arn:aws:s3:::{}", upload.bucket));
    s3["object"] = json!({ "key": event_key(&upload.key), "size": upload.size, "eTag": upload.etag, "sequencer": sequencer });
    let body = serde_json::to_string(&body).map_err(|e| e.to_string())?;
    put_message(message, body, &format!("{table}-files-uploads"));
    Ok(())
}

/// Makes an SQS sample message a fresh delivery of `body` from `queue`: a new message id and
/// receipt handle, the body's MD5 as SQS computes it, the times, the queue's ARN.
pub fn put_message(message: &mut Value, body: String, queue: &str) {
    use md5::Digest;

    let region = testkit::endpoint::REGION;
    let md5: String = md5::Md5::digest(body.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let sent = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).to_string();
    message["messageId"] = json!(request_id());
    message["receiptHandle"] = json!(format!("AQEB{:032x}", ulid::Ulid::new().0));
    message["md5OfBody"] = json!(md5);
    message["body"] = json!(body);
    message["attributes"]["SentTimestamp"] = json!(sent);
    message["attributes"]["ApproximateFirstReceiveTimestamp"] = json!(sent);
    message["attributes"]["ApproximateReceiveCount"] = json!("1");
    message["eventSourceARN"] = json!(format!("arn:aws:sqs:{region}:123456789012:{queue}"));
    message["awsRegion"] = json!(region);
}

/// An object key as S3 notifications carry it: form-encoded (a space as `+`, other bytes
/// outside the unreserved set as `%XX`), its slashes kept.
pub fn event_key(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => char::from(b).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `{name}` path parameters of a route, in order.
pub fn path_parameters(resource: &str) -> Vec<&str> {
    resource.split('/').filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}')).collect()
}

/// The stream record of the change that marked `org` deleting, as Lambda delivers it: the
/// record the DynamoDB Streams API reports (`MODIFY`, the table's keys, the item before and
/// after as the table's stream view has them), made into Lambda's shape by the local runner's
/// builder. The `i`th of a scenario's records has the `i`th sequence number.
pub fn deletion_record(table: &str, org: &DeletedOrg, i: usize) -> Value {
    change_record(table, Change::Modify { before: &org.before, after: &org.after }, i)
}

/// The stream record of the removal of a membership (`REMOVE`: the keys and, as the table's
/// stream view has it, the item as it was), built as [`deletion_record`] builds its record.
pub fn member_removal_record(table: &str, removed: &RemovedMember, i: usize) -> Value {
    change_record(table, Change::Remove { before: &removed.before }, i)
}

/// The stream record of the marker a project's deletion leaves (`INSERT`: the keys and, as
/// the table's stream view has it, the new item), built as [`deletion_record`] builds its
/// record.
pub fn project_deletion_record(table: &str, deleted: &DeletedProject, i: usize) -> Value {
    change_record(table, Change::Insert { after: &deleted.after }, i)
}

/// The stream record of a domain event's item (`INSERT`: the keys and, as the table's stream
/// view has it, the new item), built as [`deletion_record`] builds its record; the `n`th
/// record of a scenario has the `n`th sequence number.
pub fn domain_event_record(table: &str, event: &CommentEvent, n: usize) -> Value {
    change_record(table, Change::Insert { after: &event.item }, n)
}

/// Puts `address` into an SES event as the bounced (or complaining) recipient and the mail's
/// destination.
fn put_feedback_address(event: &mut Value, address: &str) {
    for list in ["/detail/bounce/bouncedRecipients", "/detail/complaint/complainedRecipients"] {
        for recipient in event.pointer_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
            recipient["emailAddress"] = json!(address);
        }
    }
    if let Some(mail) = event.pointer_mut("/detail/mail") {
        mail["destination"] = json!([address]);
    }
}

/// A change to one item, with the images the change has.
#[derive(Debug, Clone, Copy)]
enum Change<'a> {
    Insert { after: &'a Item },
    Modify { before: &'a Item, after: &'a Item },
    Remove { before: &'a Item },
}

/// The record the DynamoDB Streams API reports for `change` (the table's keys, the images
/// its stream view keeps), made into Lambda's shape by the local runner's builder.
fn change_record(table: &str, change: Change<'_>, i: usize) -> Value {
    use aws_sdk_dynamodbstreams::primitives::DateTime;
    use aws_sdk_dynamodbstreams::types::{OperationType, Record, StreamRecord, StreamViewType};

    let definition = store::TableDefinition::load();
    let view = StreamViewType::from(definition.stream_view_type.as_str());
    let (operation, before, after) = match change {
        Change::Insert { after } => (OperationType::Insert, None, Some(after)),
        Change::Modify { before, after } => (OperationType::Modify, Some(before), Some(after)),
        Change::Remove { before } => (OperationType::Remove, Some(before), None),
    };
    let keys: Item = after
        .or(before)
        .into_iter()
        .flatten()
        .filter(|(k, _)| **k == definition.partition_key || **k == definition.sort_key)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (new_image, old_image) = match view {
        StreamViewType::NewAndOldImages => (after, before),
        StreamViewType::NewImage => (after, None),
        StreamViewType::OldImage => (None, before),
        _ => (None, None),
    };
    let size = [Some(&keys), new_image, old_image].into_iter().flatten().map(item_size).sum::<usize>();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let record = StreamRecord::builder()
        .approximate_creation_date_time(DateTime::from_secs(i64::try_from(now).unwrap_or_default()))
        .set_keys(Some(stream_item(&keys)))
        .set_new_image(new_image.map(stream_item))
        .set_old_image(old_image.map(stream_item))
        .sequence_number(format!("{}{:020}", 4, i + 1))
        .size_bytes(i64::try_from(size).unwrap_or(i64::MAX))
        .stream_view_type(view)
        .build();
    let record = Record::builder()
        .event_id(format!("{:032x}", ulid::Ulid::new().0))
        .event_name(operation)
        .event_version("1.1")
        .event_source("aws:dynamodb")
        .aws_region(testkit::endpoint::REGION)
        .dynamodb(record)
        .build();
    let arn = format!("arn:aws:dynamodb:{}:123456789012:table/{table}/stream/2026-01-01T00:00:00.000", testkit::endpoint::REGION);
    local_runner::events::stream_record(&record, &arn)
}

/// An item in the DynamoDB Streams API's types.
fn stream_item(item: &Item) -> HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue> {
    item.iter().map(|(k, v)| (k.clone(), stream_value(v))).collect()
}

fn stream_value(v: &aws_sdk_dynamodb::types::AttributeValue) -> aws_sdk_dynamodbstreams::types::AttributeValue {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    use aws_sdk_dynamodbstreams::types::AttributeValue as S;
    match v {
        A::S(s) => S::S(s.clone()),
        A::N(n) => S::N(n.clone()),
        A::B(b) => S::B(b.clone()),
        A::Ss(s) => S::Ss(s.clone()),
        A::Ns(n) => S::Ns(n.clone()),
        A::Bs(b) => S::Bs(b.clone()),
        A::M(m) => S::M(stream_item(m)),
        A::L(l) => S::L(l.iter().map(stream_value).collect()),
        A::Bool(b) => S::Bool(*b),
        A::Null(n) => S::Null(*n),
        _ => S::Null(true),
    }
}

/// An item's size as DynamoDB counts it, roughly: names plus values.
fn item_size(item: &Item) -> usize {
    fn value(v: &aws_sdk_dynamodb::types::AttributeValue) -> usize {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        match v {
            A::S(s) | A::N(s) => s.len(),
            A::B(b) => b.as_ref().len(),
            A::Ss(s) | A::Ns(s) => s.iter().map(String::len).sum(),
            A::Bs(b) => b.iter().map(|b| b.as_ref().len()).sum(),
            A::M(m) => 3 + item_size(m),
            A::L(l) => 3 + l.iter().map(|v| 1 + value(v)).sum::<usize>(),
            _ => 1,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

fn user(who: Who, fixture: &Fixture, i: usize) -> Result<User, String> {
    Ok(match who {
        Who::Owner => fixture.owner.clone(),
        Who::Operator => fixture.operator.clone(),
        Who::Creator => User { sub: format!("{}-{i}", fixture.creator.sub), email: format!("creator-{i}@bench.example.com"), ..fixture.creator.clone() },
        Who::Branded => fixture.branded.clone(),
        Who::Member => fixture.member.clone().ok_or("no seeded member has the member role (seed two members or more)")?,
        Who::Invitee => fixture
            .invitees
            .get(i)
            .map(|v| v.user.clone())
            .ok_or_else(|| format!("invocation {i} has no seeded invitation ({} seeded)", fixture.invitees.len()))?,
        Who::NewUser => {
            let u = User::new("", format!("New User {i}"));
            User { email: format!("signup-{i}-{}@bench.example.com", &u.sub[..8]), ..u }
        }
    })
}

/// Puts `user` into a Cognito event: `userName` (email-style or sub-style, as the sample has
/// it) and the `sub`, `email` and `name` attributes the sample carries.
fn put_user(event: &mut Value, user: &User) {
    let by_email = event["userName"].as_str().is_some_and(|u| u.contains('@'));
    event["userName"] = json!(if by_email { &user.email } else { &user.sub });
    if let Some(attrs) = event["request"]["userAttributes"].as_object_mut() {
        for (key, value) in [("sub", &user.sub), ("email", &user.email), ("name", &user.name)] {
            if attrs.contains_key(key) {
                attrs.insert(key.to_owned(), json!(value));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::{Invitee, Workload};

    fn events_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
    }

    fn fixture() -> Fixture {
        Fixture {
            table: "tenantry-bench-01".into(),
            org_id: "01JBENCHORG0000000000000000".into(),
            owner: User::new("owner@bench.example.com", "Owner"),
            creator: User::new("creator@bench.example.com", "Creator"),
            members: 3,
            member_ids: (1..=3).map(|k| format!("6f1c2d3e-0000-4000-8000-00000000a55{k}")).collect(),
            invitees: (0..2).map(|k| Invitee { user: User::new(format!("i{k}@bench.example.com"), "I"), token: format!("tok{k}") }).collect(),
            branded: User::new("branded@bench.example.com", "Branded"),
            operator: User::operator("operator@bench.example.com", "Operator"),
            member: Some(User::new("member-1@bench.example.com", "Member 1")),
            workload: Some(Workload {
                project_id: "01JBENCHPR0JECT00000000000".into(),
                other_project_id: "01JBENCHR0ADMAP00000000000".into(),
                assignee: "6f1c2d3e-0000-4000-8000-00000000a551".into(),
            }),
            comment_events: Vec::new(),
            sample: None,
            upload: Some(upload(Sample::Jpeg)),
            conversation_id: Some("01JDQ3D0000000000000000000".into()),
            corpus: None,
            document: None,
        }
    }

    /// A ready document as `crate::seed::ready_document` answers it.
    fn ready_document() -> ReadyDocument {
        let (org, file) = ("01JDQ2V3X4Y5Z6A7B8C9D0E1F2", "01JDQ3A9K7M2N4P6Q8R0S2T4V6");
        let event = json!({
            "id": "01JDQ3C4M8V2X6Z0B4D8F2H6K0", "kind": "file.processed", "orgId": org, "actor": "system", "at": "2026-11-27T13:05:43Z",
            "title": "Quarterly report 1.pdf", "fileId": file, "fileStatus": "ready", "ttl": 1_772_024_743,
        });
        ReadyDocument {
            org_id: org.into(),
            file_id: file.into(),
            bucket: "tenantry-bench-uploads".into(),
            text_key: format!("derived/{org}/{file}/text.txt"),
            text_etag: "\"9e107d9d372bb6826bd81d3542a419d6\"".into(),
            chunks: 44,
            event: event.to_string(),
        }
    }

    /// A seeded upload of `sample`, as `crate::seed::upload` answers it.
    fn upload(sample: Sample) -> Upload {
        let (org, file) = ("01JBENCHORG0000000000000000", "01JDQ3A9K7M2N4P6Q8R0S2T4V6");
        Upload {
            sample,
            org_id: org.into(),
            file_id: file.into(),
            bucket: "tenantry-bench-uploads".into(),
            key: format!("uploads/{org}/{file}"),
            size: 2_074_321,
            etag: "9e107d9d372bb6826bd81d3542a419d6".into(),
            version: 3,
        }
    }

    fn item(attributes: &[(&str, aws_sdk_dynamodb::types::AttributeValue)]) -> Item {
        attributes.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    /// A membership item before its removal, as the store writes it.
    fn removed_member() -> Prepared {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let (org, user) = ("01JDQ2V3X4Y5Z6A7B8C9D0E1F2", "6f1c2d3e-0000-4000-8000-0000000001ea");
        let before = item(&[
            ("PK", A::S(format!("ORG#{org}"))),
            ("SK", A::S(format!("MEMBER#{user}"))),
            ("_type", A::S("member".into())),
            ("orgId", A::S(org.into())),
            ("userId", A::S(user.into())),
            ("role", A::S("member".into())),
            ("email", A::S("leaver-1@bench.example.com".into())),
            ("displayName", A::S("Leaver 1".into())),
            ("joinedAt", A::S("2026-11-27T13:00:00Z".into())),
            ("handle", A::S("leaver-1".into())),
            ("GSI1PK", A::S(format!("USER#{user}"))),
            ("GSI1SK", A::S(format!("ORG#{org}"))),
        ]);
        let tasks = vec![("01JBENCHPR0JECT00000000000".into(), "01JBENCHTASK00000000000000".into())];
        Prepared { removed_member: Some(RemovedMember { org_id: org.into(), user_id: user.into(), tasks, before }), ..Prepared::default() }
    }

    /// The marker a project's deletion leaves, as the store writes it.
    fn deleted_project() -> Prepared {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let (org, project) = ("01JDQ2V3X4Y5Z6A7B8C9D0E1F2", "01JDQ2V3X4Y5Z6A7B8C9D0E1F3");
        let after = item(&[
            ("PK", A::S(format!("ORG#{org}"))),
            ("SK", A::S(format!("PURGE#PROJECT#{project}"))),
            ("_type", A::S("project-purge".into())),
            ("projectId", A::S(project.into())),
            ("orgId", A::S(org.into())),
            ("deletedBy", A::S("6f1c2d3e-0000-4000-8000-0000000000aa".into())),
            ("deletedAt", A::S("2026-11-27T13:00:00Z".into())),
            ("GSI2PK", A::S("PURGE".into())),
            ("GSI2SK", A::S(format!("{org}#PROJECT#{project}"))),
        ]);
        Prepared { deleted_project: Some(DeletedProject { org_id: org.into(), project_id: project.into(), tasks: 20, after }), ..Prepared::default() }
    }

    /// An org item before and after its deletion, as the store writes them.
    fn deleted_org() -> Prepared {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let org = "01JBENCHPURGE00000000000000";
        let before: Item = [
            ("PK", A::S(format!("ORG#{org}"))),
            ("SK", A::S("ORG".into())),
            ("_type", A::S("org".into())),
            ("id", A::S(org.into())),
            ("name", A::S("Purged Org 1".into())),
            ("status", A::S("active".into())),
            ("memberCount", A::N("11".into())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut after = before.clone();
        after.insert("status".into(), A::S("deleting".into()));
        after.insert("GSI2PK".into(), A::S("PURGE".into()));
        after.insert("GSI2SK".into(), A::S(org.into()));
        Prepared { deleted_org: Some(DeletedOrg { org_id: org.into(), members: 10, before, after }), ..Prepared::default() }
    }

    /// The event item a comment that mentions a member makes, as the store writes it.
    fn comment_event(k: usize) -> CommentEvent {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let (org, project, task) = ("01JDQ2V3X4Y5Z6A7B8C9D0E1F2", "01JDQ2V3X4Y5Z6A7B8C9D0E1F3", "01JDQ2V3X4Y5Z6A7B8C9D0E1F4");
        let id = format!("01JDQ2W0000000000000000{k:03}");
        let mentioned = format!("6f1c2d3e-0000-4000-8000-00000000a{:03}", k % 3);
        let item = item(&[
            ("PK", A::S(format!("EVENT#{id}"))),
            ("SK", A::S("EVENT".into())),
            ("_type", A::S("event".into())),
            ("id", A::S(id.clone())),
            ("kind", A::S("comment.created".into())),
            ("orgId", A::S(org.into())),
            ("actor", A::S("6f1c2d3e-0000-4000-8000-0000000000aa".into())),
            ("at", A::S("2026-11-27T13:00:00Z".into())),
            ("projectId", A::S(project.into())),
            ("taskId", A::S(task.into())),
            ("title", A::S(format!("Board task {k}"))),
            ("assignee", A::S("6f1c2d3e-0000-4000-8000-00000000a551".into())),
            ("createdBy", A::S("6f1c2d3e-0000-4000-8000-0000000000aa".into())),
            ("commentId", A::S(format!("01JDQ2X0000000000000000{k:03}"))),
            ("mentions", A::L(vec![A::S(mentioned.clone())])),
            ("excerpt", A::S(format!("@member-{k} could you take a look at this before Friday?"))),
            ("ttl", A::N("1764507600".into())),
        ]);
        CommentEvent { id, mentioned, item }
    }

    fn comment_events() -> Prepared {
        let batch = function("notifications").unwrap().stream_batch_size.unwrap();
        Prepared { comment_events: Some((0..batch).map(comment_event).collect()), ..Prepared::default() }
    }

    fn prepared(s: &Scenario) -> Prepared {
        match s.per_invocation {
            PerInvocation::DeletedOrg => deleted_org(),
            PerInvocation::RemovedMember => removed_member(),
            PerInvocation::DeletedProject => deleted_project(),
            PerInvocation::CommentEvents => comment_events(),
            PerInvocation::DueDigests => Prepared {
                due_digests: Some(DueDigests { org_id: "01JDQ2V3X4Y5Z6A7B8C9D0E1F2".into(), user_ids: vec!["6f1c2d3e-0000-4000-8000-00000000d001".into()] }),
                ..Prepared::default()
            },
            PerInvocation::BouncedAddress => Prepared { bounced: Some(crate::seed::bounced_address(1)), ..Prepared::default() },
            PerInvocation::NewUpload => {
                let sample = s.sample().unwrap();
                Prepared { upload: Some(upload(sample)), sequencer: Some(crate::seed::sequencer(1)), ..Prepared::default() }
            }
            PerInvocation::ScanResult => Prepared { scan: Some(2), ..Prepared::default() },
            PerInvocation::ExpiredUpload => Prepared {
                expired_upload: Some(ExpiredUpload {
                    file_id: "01JDQ3B0000000000000000000".into(),
                    key: "uploads/01JBENCHORG0000000000000000/01JDQ3B0000000000000000000".into(),
                }),
                ..Prepared::default()
            },
            PerInvocation::ReadyDocument => Prepared { document: Some(ready_document()), ..Prepared::default() },
            PerInvocation::StartedExport => Prepared { export: Some(started_export()), ..Prepared::default() },
            PerInvocation::Nothing => Prepared::default(),
        }
    }

    fn started_export() -> StartedExport {
        let org = "01JDQ2V3X4Y5Z6A7B8C9D0E1F2";
        StartedExport {
            org_id: org.into(),
            export_id: "01JDQ4E0000000000000000000".into(),
            message: json!({"kind": "org", "orgId": org, "exportId": "01JDQ4E0000000000000000000"}).to_string(),
        }
    }

    #[test]
    fn an_export_pass_gets_its_started_export_from_the_work_queue() {
        let t = Templates::load(&events_dir()).unwrap();
        let f = fixture();
        let e = t.build(scenario("export an org (SQS)"), &f, 0, &prepared(scenario("export an org (SQS)"))).unwrap();
        let message = &e["Records"][0];
        let target: store::ExportTarget = serde_json::from_str(message["body"].as_str().unwrap()).unwrap();
        assert_eq!((target.export_id.as_str(), target.kind), ("01JDQ4E0000000000000000000", store::ExportKind::Org));
        assert!(message["eventSourceARN"].as_str().unwrap().ends_with(&format!("{}-exports-work", f.table)), "{}", message["eventSourceARN"]);
        assert!(t.build(scenario("export an org (SQS)"), &f, 0, &Prepared::default()).is_err(), "needs its started export");
    }

    #[test]
    fn every_scenario_builds_from_the_sample_events() {
        let t = Templates::load(&events_dir()).unwrap();
        let f = fixture();
        for s in SCENARIOS {
            let _ = s.def();
            let e = t.build(s, &f, 1, &prepared(s)).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            match s.event {
                EventSpec::Http { method, .. } => {
                    assert_eq!(e["httpMethod"], method);
                    assert!(!e["path"].as_str().unwrap().contains('{'), "{}", e["path"]);
                    for name in path_parameters(e["resource"].as_str().unwrap()) {
                        assert!(e["pathParameters"][name].is_string(), "{}: no path parameter {name}", s.name);
                    }
                    assert!(e["requestContext"]["path"].as_str().unwrap().starts_with("/prod/"));
                }
                EventSpec::Trigger { source, .. } => assert_eq!(e["triggerSource"], source),
                EventSpec::OrgDeletionRecord | EventSpec::MemberRemovalRecord | EventSpec::ProjectDeletionRecord | EventSpec::DomainEventRecords => {
                    assert_eq!(e["Records"][0]["eventSource"], "aws:dynamodb");
                }
                EventSpec::Schedule { schedule } => assert_eq!(e["detail"]["schedule"], schedule),
                EventSpec::MailFeedback { .. } => assert_eq!(e["source"], "aws.ses"),
                EventSpec::UploadEvent { .. } | EventSpec::DomainEventMessage { .. } | EventSpec::AuditedEvent { .. } | EventSpec::ExportMessage { .. } => {
                    assert_eq!(e["Records"][0]["eventSource"], "aws:sqs")
                }
                EventSpec::ScanResult { .. } => assert_eq!(e["source"], "aws.guardduty"),
                EventSpec::ChatTurn { .. } => assert_eq!(e["resource"], CHAT_MESSAGES),
            }
            let kind = match api::event_kind(&e) {
                api::EventKind::Http => Kind::Http,
                api::EventKind::Stream => Kind::Stream,
                api::EventKind::Queue => Kind::Queue,
                api::EventKind::S3 => panic!("{}: no function is invoked by S3 directly (the upload bucket notifies a queue)", s.name),
                api::EventKind::Schedule => Kind::Schedule,
                api::EventKind::Bus => Kind::Bus,
                api::EventKind::Unknown => Kind::CognitoTrigger,
            };
            assert_eq!(kind, s.kind(), "{}: the function would read its event as another kind", s.name);
        }
    }

    #[test]
    fn http_events_carry_ids_claims_and_bodies() {
        let t = Templates::load(&events_dir()).unwrap();
        let f = fixture();
        let accept = SCENARIOS.iter().find(|s| s.name == "accept invite").unwrap();
        let e = t.build(accept, &f, 1, &Prepared::default()).unwrap();
        assert_eq!(e["body"], r#"{"token":"tok1"}"#);
        assert_eq!(e["requestContext"]["authorizer"]["claims"]["sub"], f.invitees[1].user.sub.as_str());
        assert_eq!(e["headers"]["Content-Type"], "application/json");
        let members = SCENARIOS.iter().find(|s| s.name == "list members").unwrap();
        let e = t.build(members, &f, 0, &Prepared::default()).unwrap();
        assert_eq!(e["path"], format!("/orgs/{}/members", f.org_id));
        assert_eq!(e["resource"], "/orgs/{orgId}/members");
        assert_eq!(e["pathParameters"]["orgId"], f.org_id.as_str());
        assert_eq!(e["body"], Value::Null);
        assert!(t.build(accept, &f, 2, &Prepared::default()).is_err(), "only two invitations are seeded");
    }

    #[test]
    fn trigger_events_get_fresh_or_seeded_users() {
        let t = Templates::load(&events_dir()).unwrap();
        let f = fixture();
        let confirm = SCENARIOS.iter().find(|s| s.name == "PostConfirmation_ConfirmSignUp").unwrap();
        let a = t.build(confirm, &f, 1, &Prepared::default()).unwrap();
        let b = t.build(confirm, &f, 2, &Prepared::default()).unwrap();
        let sub = |e: &Value| e["request"]["userAttributes"]["sub"].as_str().unwrap().to_owned();
        assert_ne!(sub(&a), sub(&b));
        assert_eq!(a["userName"], sub(&a).as_str());
        let token = SCENARIOS.iter().find(|s| s.name == "TokenGeneration_Authentication").unwrap();
        assert_eq!(sub(&t.build(token, &f, 5, &Prepared::default()).unwrap()), f.owner.sub);
        let message = SCENARIOS.iter().find(|s| s.name == "CustomMessage_SignUp").unwrap();
        let e = t.build(message, &f, 0, &Prepared::default()).unwrap();
        assert_eq!(e["request"]["clientMetadata"]["orgId"], f.org_id.as_str());
        assert_eq!(e["request"]["userAttributes"]["email"], "branded@bench.example.com");
        let signup = SCENARIOS.iter().find(|s| s.name == "PreSignUp_SignUp").unwrap();
        let e = t.build(signup, &f, 3, &Prepared::default()).unwrap();
        assert!(e["userName"].as_str().unwrap().starts_with("signup-3-"));
        assert!(e["request"]["userAttributes"].get("sub").is_none());
    }

    fn scenario(name: &str) -> &'static Scenario {
        SCENARIOS.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no scenario {name}"))
    }

    #[test]
    fn the_deletion_record_is_the_batch_lambda_delivers_to_the_purge_consumer() {
        let t = Templates::load(&events_dir()).unwrap();
        let (f, p) = (fixture(), deleted_org());
        let org = p.deleted_org.as_ref().unwrap();
        let e = t.build(scenario("deleted org (stream)"), &f, 3, &p).unwrap();
        assert_eq!(api::event_kind(&e), api::EventKind::Stream);
        let records = e["Records"].as_array().unwrap();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!((r["eventName"].as_str(), r["eventVersion"].as_str(), r["awsRegion"].as_str()), (Some("MODIFY"), Some("1.1"), Some("us-east-1")));
        assert!(r["eventSourceARN"].as_str().unwrap().starts_with("arn:aws:dynamodb:us-east-1:123456789012:table/tenantry-bench-01/stream/"));
        assert_eq!(r["eventID"].as_str().unwrap().len(), 32);
        let change = &r["dynamodb"];
        assert_eq!(change["Keys"], json!({"PK": {"S": format!("ORG#{}", org.org_id)}, "SK": {"S": "ORG"}}));
        assert_eq!(change["NewImage"]["status"], json!({"S": "deleting"}));
        assert_eq!(change["OldImage"]["status"], json!({"S": "active"}));
        assert_eq!(change["NewImage"]["memberCount"], json!({"N": "11"}));
        assert_eq!(change["StreamViewType"], "NEW_AND_OLD_IMAGES");
        assert_eq!(change["SequenceNumber"], "400000000000000000004");
        assert!(change["SizeBytes"].as_i64().unwrap() > 100);
        assert!(change["ApproximateCreationDateTime"].as_i64().unwrap() > 1_700_000_000);
        // The purge consumer's event source mapping lets it through, and it reads as Lambda's type.
        let purge = registry::function("org-purge").unwrap();
        let filters = &purge.sources.dynamodb_stream.as_ref().unwrap().filters;
        assert!(local_runner::events::filter::passes(filters, r), "the registry's filter drops {r}");
        let parsed: aws_lambda_events::dynamodb::Event = serde_json::from_value(e.clone()).unwrap();
        assert_eq!(parsed.records[0].change.new_image.get("id"), Some(&serde_dynamo::AttributeValue::S(org.org_id.clone())));
    }

    fn filters_of(function: &str) -> Vec<Value> {
        let f = registry::function(function).unwrap_or_else(|| panic!("the registry has no {function}"));
        f.sources.dynamodb_stream.unwrap_or_else(|| panic!("{function} does not consume the stream")).filters
    }

    #[test]
    fn the_member_removal_record_is_the_batch_lambda_delivers_to_the_unassigning_consumer() {
        let t = Templates::load(&events_dir()).unwrap();
        let (f, p) = (fixture(), removed_member());
        let removed = p.removed_member.as_ref().unwrap();
        let e = t.build(scenario("member removed (stream)"), &f, 2, &p).unwrap();
        assert_eq!(api::event_kind(&e), api::EventKind::Stream);
        let records = e["Records"].as_array().unwrap();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!((r["eventName"].as_str(), r["eventVersion"].as_str(), r["eventSource"].as_str()), (Some("REMOVE"), Some("1.1"), Some("aws:dynamodb")));
        assert!(r["eventSourceARN"].as_str().unwrap().starts_with("arn:aws:dynamodb:us-east-1:123456789012:table/tenantry-bench-01/stream/"));
        let change = &r["dynamodb"];
        assert_eq!(change["Keys"], json!({"PK": {"S": format!("ORG#{}", removed.org_id)}, "SK": {"S": format!("MEMBER#{}", removed.user_id)}}));
        assert!(change.get("NewImage").is_none(), "a removal has no new image: {change}");
        assert_eq!(change["OldImage"]["_type"], json!({"S": "member"}));
        assert_eq!(change["OldImage"]["role"], json!({"S": "member"}));
        assert_eq!(change["StreamViewType"], "NEW_AND_OLD_IMAGES");
        assert_eq!(change["SequenceNumber"], "400000000000000000003");
        assert!(change["SizeBytes"].as_i64().unwrap() > 100);
        // The cleanup function's mapping lets it through, and the consumer reads the org and
        // user from it.
        assert!(local_runner::events::filter::passes(&filters_of("org-purge"), r), "the registry's filter drops {r}");
        let parsed: aws_lambda_events::dynamodb::Event = serde_json::from_value(e.clone()).unwrap();
        let (org, user) = org_purge::member_of(&parsed.records[0]).expect("an ended membership");
        assert_eq!((org.to_string(), user.to_string()), (removed.org_id.clone(), removed.user_id.clone()));
        assert!(t.build(scenario("member removed (stream)"), &f, 0, &Prepared::default()).is_err(), "needs its removed member");
    }

    #[test]
    fn the_project_deletion_record_is_the_batch_lambda_delivers_to_the_purge_consumer() {
        let t = Templates::load(&events_dir()).unwrap();
        let (f, p) = (fixture(), deleted_project());
        let deleted = p.deleted_project.as_ref().unwrap();
        let e = t.build(scenario("deleted project (stream)"), &f, 0, &p).unwrap();
        assert_eq!(api::event_kind(&e), api::EventKind::Stream);
        let r = &e["Records"][0];
        assert_eq!(e["Records"].as_array().unwrap().len(), 1);
        assert_eq!((r["eventName"].as_str(), r["awsRegion"].as_str()), (Some("INSERT"), Some("us-east-1")));
        let change = &r["dynamodb"];
        assert_eq!(change["Keys"], json!({"PK": {"S": format!("ORG#{}", deleted.org_id)}, "SK": {"S": format!("PURGE#PROJECT#{}", deleted.project_id)}}));
        assert!(change.get("OldImage").is_none(), "an insert has no old image: {change}");
        assert_eq!(change["NewImage"]["_type"], json!({"S": store::PROJECT_PURGE_TYPE}));
        assert_eq!(change["SequenceNumber"], "400000000000000000001");
        assert!(local_runner::events::filter::passes(&filters_of("org-purge"), r), "the registry's filter drops {r}");
        assert!(!local_runner::events::filter::passes(&filters_of("notifications"), r), "a purge marker is no domain event");
        let parsed: aws_lambda_events::dynamodb::Event = serde_json::from_value(e.clone()).unwrap();
        let target = org_purge::target_of(&parsed.records[0]);
        assert_eq!(target, Some(store::PurgeTarget::Project(deleted.org_id.parse().unwrap(), deleted.project_id.parse().unwrap())));
    }

    #[test]
    fn project_routes_get_every_path_parameter_and_their_query() {
        let t = Templates::load(&events_dir()).unwrap();
        let f = fixture();
        let w = f.workload.clone().unwrap();
        let create = t.build(scenario("create task"), &f, 4, &Prepared::default()).unwrap();
        assert_eq!(create["path"], format!("/orgs/{}/projects/{}/tasks", f.org_id, w.project_id));
        assert_eq!(create["pathParameters"], json!({"orgId": f.org_id, "projectId": w.project_id}));
        assert_eq!(create["queryStringParameters"], Value::Null);
        let body: Value = serde_json::from_str(create["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, json!({"title": "Bench task 4", "assignee": w.assignee, "due": "2026-12-15", "labels": ["bench"]}));
        let board = t.build(scenario("list board"), &f, 1, &Prepared::default()).unwrap();
        assert_eq!(board["requestContext"]["path"], format!("/prod/orgs/{}/projects/{}/tasks", f.org_id, w.project_id));
        assert_eq!(board["queryStringParameters"], json!({"status": "todo"}));
        assert_eq!(board["multiValueQueryStringParameters"], json!({"status": ["todo"]}));
        assert_eq!(board["body"], Value::Null);
        let mine = t.build(scenario("my tasks"), &f, 1, &Prepared::default()).unwrap();
        assert_eq!(mine["pathParameters"], json!({"orgId": f.org_id}));
        assert_eq!(mine["queryStringParameters"], json!({"assignee": "me"}));
        assert_eq!(mine["requestContext"]["authorizer"]["claims"]["sub"], f.owner.sub.as_str());
        let me = t.build(scenario("get me"), &f, 0, &Prepared::default()).unwrap();
        assert_eq!(me["pathParameters"], Value::Null);
        // Without the workload there is no project (or assignee) to name.
        let bare = Fixture { workload: None, ..f };
        assert!(t.build(scenario("list board"), &bare, 0, &Prepared::default()).is_err());
        assert!(t.build(scenario("create task"), &bare, 0, &Prepared::default()).is_err());
        assert!(t.build(scenario("my tasks"), &bare, 0, &Prepared::default()).is_ok());
        assert_eq!(path_parameters("/orgs/{orgId}/projects/{projectId}/tasks/{taskId}"), ["orgId", "projectId", "taskId"]);
        assert!(path_parameters("/me").is_empty());
        assert!(scenario("member removed (stream)").needs_workload() && !scenario("deleted project (stream)").needs_workload());
    }

    #[test]
    fn the_comment_events_are_the_batch_lambda_delivers_to_the_notifications_consumer() {
        let t = Templates::load(&events_dir()).unwrap();
        let (f, p) = (fixture(), comment_events());
        let events = p.comment_events.as_ref().unwrap();
        let e = t.build(scenario("comment events (stream)"), &f, 2, &p).unwrap();
        assert_eq!(api::event_kind(&e), api::EventKind::Stream);
        let records = e["Records"].as_array().unwrap();
        // As many as the event source mapping delivers at once.
        let batch = registry::function("notifications").unwrap().sources.dynamodb_stream.unwrap().batch_size;
        assert_eq!(records.len(), usize::try_from(batch).unwrap());
        let sequence: Vec<&str> = records.iter().map(|r| r["dynamodb"]["SequenceNumber"].as_str().unwrap()).collect();
        assert_eq!(sequence.first(), Some(&"400000000000000000051"), "the third batch follows the first two");
        assert!(sequence.windows(2).all(|w| w[0] < w[1]), "sequence numbers grow within the batch: {sequence:?}");
        let parsed: aws_lambda_events::dynamodb::Event = serde_json::from_value(e.clone()).unwrap();
        for ((r, event), seen) in records.iter().zip(events).zip(&parsed.records) {
            assert_eq!((r["eventName"].as_str(), r["eventSource"].as_str(), r["eventVersion"].as_str()), (Some("INSERT"), Some("aws:dynamodb"), Some("1.1")));
            let change = &r["dynamodb"];
            assert_eq!(change["Keys"], json!({"PK": {"S": format!("EVENT#{}", event.id)}, "SK": {"S": "EVENT"}}));
            assert!(change.get("OldImage").is_none(), "an insert has no old image: {change}");
            assert_eq!(change["StreamViewType"], "NEW_AND_OLD_IMAGES");
            // The notifications mapping lets it through (and no other consumer's does), and the
            // consumer reads the event it carries.
            assert!(local_runner::events::filter::passes(&filters_of("notifications"), r), "the registry's filter drops {r}");
            assert!(!local_runner::events::filter::passes(&filters_of("org-purge"), r));
            let domain_event = store::DomainEvent::from_image(&seen.change.new_image).unwrap().expect("a domain event");
            assert_eq!(domain_event.kind, store::EventKind::CommentCreated);
            assert_eq!(domain_event.id, event.id);
            assert_eq!(domain_event.mentions.iter().map(ToString::to_string).collect::<Vec<_>>(), std::slice::from_ref(&event.mentioned));
        }
        let ids: std::collections::HashSet<&str> = records.iter().map(|r| r["eventID"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), records.len(), "every record has its own event id");
        assert!(t.build(scenario("comment events (stream)"), &f, 0, &Prepared::default()).is_err(), "needs its events");
        let none = Prepared { comment_events: Some(Vec::new()), ..Prepared::default() };
        assert!(t.build(scenario("comment events (stream)"), &f, 0, &none).is_err(), "an empty batch is never delivered");
        assert!(scenario("comment events (stream)").needs_workload());
        assert_eq!(scenario("comment events (stream)").comment_events(201), Some((201, 25)));
        assert_eq!(scenario("list notifications").comment_events(201), None);
    }

    #[test]
    fn ses_feedback_is_the_event_the_eventbridge_rule_delivers() {
        let t = Templates::load(&events_dir()).unwrap();
        let p = prepared(scenario("SES bounce (EventBridge)"));
        let address = p.bounced.clone().unwrap();
        let e = t.build(scenario("SES bounce (EventBridge)"), &fixture(), 1, &p).unwrap();
        assert_eq!(api::event_kind(&e), api::EventKind::Bus);
        assert_eq!((e["source"].as_str(), e["detail-type"].as_str()), (Some("aws.ses"), Some("Email Bounced")));
        assert_eq!(e["detail"]["eventType"], "Bounce");
        assert_eq!(e["detail"]["bounce"]["bounceType"], "Permanent", "only a permanent bounce suppresses");
        assert_eq!(e["detail"]["bounce"]["bouncedRecipients"][0]["emailAddress"], address.as_str());
        assert_eq!(e["detail"]["mail"]["destination"], json!([address]));
        assert!(address.parse::<domain::Email>().is_ok(), "{address}");
        let parsed: aws_lambda_events::eventbridge::EventBridgeEvent<Value> = serde_json::from_value(e.clone()).unwrap();
        assert_eq!(parsed.source, "aws.ses");
        let again = t.build(scenario("SES bounce (EventBridge)"), &fixture(), 1, &p).unwrap();
        assert_ne!(e["id"], again["id"], "each delivery has its own id");
        assert!(t.build(scenario("SES bounce (EventBridge)"), &fixture(), 1, &Prepared::default()).is_err(), "needs its address");
        // The complaint sample takes an address the same way.
        let mut complaint = t.eventbridge.get("ses-complaint").cloned().unwrap();
        put_feedback_address(&mut complaint, &address);
        assert_eq!(complaint["detail"]["complaint"]["complainedRecipients"][0]["emailAddress"], address.as_str());
        assert_eq!(complaint["detail"]["mail"]["destination"], json!([address]));
        assert_ne!(crate::seed::bounced_address(1), crate::seed::bounced_address(2));
    }

    #[test]
    fn the_notification_routes_read_the_owners_inbox() {
        let t = Templates::load(&events_dir()).unwrap();
        let f = fixture();
        let list = t.build(scenario("list unread notifications"), &f, 0, &Prepared::default()).unwrap();
        assert_eq!(list["path"], format!("/orgs/{}/notifications", f.org_id));
        assert_eq!(list["queryStringParameters"], json!({"unread": "true"}));
        assert_eq!(list["requestContext"]["authorizer"]["claims"]["sub"], f.owner.sub.as_str());
        let count = t.build(scenario("unread count"), &f, 0, &Prepared::default()).unwrap();
        assert_eq!(count["path"], format!("/orgs/{}/notifications/unread-count", f.org_id));
        assert_eq!(count["queryStringParameters"], Value::Null);
        assert!(scenario("list notifications").needs_inbox() && scenario("unread count").needs_inbox());
        assert!(!scenario("notification-sweep (schedule)").needs_inbox() && !scenario("list members").needs_inbox());
        let sweep = t.build(scenario("notification-sweep (schedule)"), &f, 0, &prepared(scenario("notification-sweep (schedule)"))).unwrap();
        let parsed: api::ScheduledEvent = serde_json::from_value(sweep).unwrap();
        assert_eq!((parsed.detail.schedule.as_str(), parsed.detail.function.as_str()), ("notification-sweep", "notifications"));
        assert!(!scenario("notification-sweep (schedule)").needs_workload());
    }

    #[test]
    fn the_schedule_event_is_what_eventbridge_scheduler_sends() {
        let t = Templates::load(&events_dir()).unwrap();
        let e = t.build(scenario("resume-purges (schedule)"), &fixture(), 0, &deleted_org()).unwrap();
        assert_eq!(api::event_kind(&e), api::EventKind::Schedule);
        let parsed: api::ScheduledEvent = serde_json::from_value(e).unwrap();
        assert_eq!((parsed.detail.schedule.as_str(), parsed.detail.function.as_str()), ("resume-purges", "org-purge"));
    }

    #[test]
    fn the_operator_purges_the_invocations_org() {
        let t = Templates::load(&events_dir()).unwrap();
        let (f, p) = (fixture(), deleted_org());
        let e = t.build(scenario("purge org (operator)"), &f, 0, &p).unwrap();
        let org = &p.deleted_org.as_ref().unwrap().org_id;
        assert_eq!(e["path"], format!("/admin/orgs/{org}/purge"));
        assert_eq!(e["pathParameters"]["orgId"], org.as_str());
        assert_eq!(e["requestContext"]["authorizer"]["claims"]["cognito:groups"], "platform-admin");
        assert!(t.build(scenario("purge org (operator)"), &f, 0, &Prepared::default()).is_err(), "needs its deleted org");
        let owner = t.build(scenario("get org"), &f, 0, &Prepared::default()).unwrap();
        assert!(owner["requestContext"]["authorizer"]["claims"].get("cognito:groups").is_none());
    }

    #[test]
    fn every_registry_function_has_a_scenario() {
        let missing = unbenchmarked();
        assert!(missing.is_empty(), "functions of the registry without a bench scenario (add them to SCENARIOS): {missing:?}");
    }

    #[test]
    fn every_way_a_function_is_invoked_has_a_scenario() {
        for f in functions() {
            let ours: Vec<&Scenario> = SCENARIOS.iter().filter(|s| s.function == f.binary).collect();
            for kind in &f.kinds {
                assert!(ours.iter().any(|s| s.kind() == *kind), "{} receives {kind:?} events, but no scenario sends it one", f.binary);
            }
            for id in &f.schedules {
                let fired = ours.iter().any(|s| matches!(s.event, EventSpec::Schedule { schedule } if schedule == *id));
                assert!(fired, "no scenario fires {}'s schedule {id}", f.binary);
            }
        }
    }

    #[test]
    fn scenarios_send_only_what_their_functions_receive() {
        let routes = registry::routes();
        for s in SCENARIOS {
            let def = s.def();
            assert!(def.kinds.contains(&s.kind()), "{}: {} receives no {:?} events", s.name, s.function, s.kind());
            match s.event {
                EventSpec::Schedule { schedule } => assert!(def.schedules.contains(&schedule), "{}: {} has no schedule {schedule}", s.name, s.function),
                EventSpec::Http { method, resource, .. } => {
                    let served = routes.iter().any(|(f, r)| *f == s.function && r.method.as_str() == method && r.path == resource);
                    assert!(served, "{}: {} serves no {method} {resource}", s.name, s.function);
                }
                EventSpec::ChatTurn { .. } => {
                    let served = routes.iter().any(|(f, r)| *f == s.function && r.method.as_str() == "POST" && r.path == CHAT_MESSAGES);
                    assert!(served, "{}: {} serves no POST {CHAT_MESSAGES}", s.name, s.function);
                }
                EventSpec::ExportMessage { .. } => assert!(def.environment.export_bucket, "{}: {} has no exports bucket", s.name, s.function),
                EventSpec::DomainEventMessage { .. } | EventSpec::AuditedEvent { .. } => {
                    assert!(def.domain_event_queue.is_some(), "{}: {} subscribes to no domain events", s.name, s.function)
                }
                _ => {}
            }
        }
    }

    #[test]
    fn functions_come_from_the_registry() {
        let purge = function("org-purge").unwrap();
        assert_eq!((purge.binary, purge.memory_mb, purge.timeout_secs), ("org-purge", 256, 300));
        assert_eq!(purge.kinds, [Kind::Http, Kind::Stream, Kind::Schedule]);
        assert_eq!(purge.schedules, ["resume-purges"]);
        let triggers = function("cognito-triggers").unwrap();
        assert_eq!((triggers.memory_mb, triggers.timeout_secs, triggers.kinds.as_slice()), (128, 5, [Kind::CognitoTrigger].as_slice()));
        assert!(function("invites").unwrap().environment.ses_from_address);
        let notifications = function("notifications").unwrap();
        assert_eq!(notifications.kinds, [Kind::Http, Kind::Stream, Kind::Schedule, Kind::Bus]);
        assert_eq!((notifications.schedules.as_slice(), notifications.stream_batch_size), (["notification-sweep"].as_slice(), Some(25)));
        assert_eq!(function("projects").unwrap().stream_batch_size, None);
        // The upload bucket's events come through a queue, the malware scan results through a
        // rule: queue and EventBridge events.
        let files = function("files").unwrap();
        assert_eq!((files.memory_mb, files.timeout_secs), (1024, 60));
        assert_eq!(files.kinds, [Kind::Http, Kind::Queue, Kind::Schedule, Kind::Bus]);
        assert_eq!(files.schedules, ["upload-sweep"]);
        assert!(files.environment.upload_bucket && purge.environment.upload_bucket);
        assert!(!function("organizations").unwrap().environment.upload_bucket);
        assert_eq!(functions().len(), registry::all().len());
    }

    #[test]
    fn the_files_scenarios_cover_each_way_files_is_invoked() {
        let ours: Vec<(&str, Kind)> = SCENARIOS.iter().filter(|s| s.function == "files").map(|s| (s.name, s.kind())).collect();
        assert_eq!(
            ours,
            [
                ("presign upload", Kind::Http),
                ("process 2 MB JPEG (SQS)", Kind::Queue),
                ("process 20-page PDF (SQS)", Kind::Queue),
                ("upload-sweep (schedule)", Kind::Schedule),
                ("malware scan result (EventBridge)", Kind::Bus),
            ]
        );
        assert_eq!(scenario("process 2 MB JPEG (SQS)").sample(), Some(Sample::Jpeg));
        assert_eq!(scenario("process 20-page PDF (SQS)").sample(), Some(Sample::Pdf));
        assert_eq!(scenario("malware scan result (EventBridge)").sample(), Some(Sample::Pdf));
        assert_eq!(scenario("presign upload").sample(), None);
        assert_eq!(scenario("process 2 MB JPEG (SQS)").per_invocation, PerInvocation::NewUpload, "each invocation processes a new file");
    }

    #[test]
    fn a_member_reserves_an_upload() {
        let t = Templates::load(&events_dir()).unwrap();
        let f = fixture();
        let e = t.build(scenario("presign upload"), &f, 3, &Prepared::default()).unwrap();
        assert_eq!((e["httpMethod"].as_str(), e["path"].as_str()), (Some("POST"), Some(format!("/orgs/{}/files", f.org_id).as_str())));
        assert_eq!(e["pathParameters"], json!({"orgId": f.org_id}));
        assert_eq!(e["requestContext"]["authorizer"]["claims"]["sub"], f.member.as_ref().unwrap().sub.as_str());
        let body: Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, json!({"name": "photo.jpg", "size": 2_097_152, "contentType": "image/jpeg"}));
        let alone = Fixture { member: None, ..f };
        assert!(t.build(scenario("presign upload"), &alone, 0, &Prepared::default()).is_err(), "needs a member");
    }

    #[test]
    fn the_upload_event_is_an_sqs_message_whose_body_is_the_buckets_s3_event() {
        use aws_lambda_events::s3::S3Event;
        use aws_lambda_events::sqs::SqsEvent;
        use md5::Digest;

        let t = Templates::load(&events_dir()).unwrap();
        let f = Fixture { upload: None, ..fixture() };
        let s = scenario("process 20-page PDF (SQS)");
        let p = prepared(s);
        let u = p.upload.clone().unwrap();
        assert_eq!(u.sample, Sample::Pdf);
        let e = t.build(s, &f, 1, &p).unwrap();
        assert_eq!(api::event_kind(&e), api::EventKind::Queue);
        let m = &e["Records"][0];
        assert_eq!(e["Records"].as_array().unwrap().len(), 1);
        assert_eq!((m["eventSource"].as_str(), m["awsRegion"].as_str()), (Some("aws:sqs"), Some("us-east-1")));
        assert_eq!(m["eventSourceARN"], "arn:aws:sqs:us-east-1:123456789012:tenantry-bench-01-files-uploads");
        let body = m["body"].as_str().unwrap();
        let md5: String = md5::Md5::digest(body.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(m["md5OfBody"], md5.as_str());
        assert!(m["attributes"]["SentTimestamp"].as_str().unwrap().parse::<u64>().unwrap() > 1_700_000_000_000);
        // As the function reads it: the SQS event, then its body as an S3 event.
        let sqs: SqsEvent = serde_json::from_value(e.clone()).unwrap();
        let s3: S3Event = serde_json::from_str(sqs.records[0].body.as_deref().unwrap()).unwrap();
        let r = &s3.records[0];
        assert_eq!((r.event_source.as_deref(), r.event_name.as_deref()), (Some("aws:s3"), Some("ObjectCreated:Post")));
        assert_eq!(r.s3.bucket.name.as_deref(), Some(u.bucket.as_str()));
        let object = &r.s3.object;
        assert_eq!(object.key.as_deref().and_then(files::decode_key).as_deref(), Some(u.key.as_str()));
        assert_eq!((object.size, object.e_tag.as_deref()), (Some(i64::try_from(u.size).unwrap()), Some(u.etag.as_str())));
        assert_eq!(object.sequencer.as_deref(), p.sequencer.as_deref());
        assert!(r.event_time.timestamp() > 1_700_000_000);
        // Each delivery is its own message; each invocation's sequencer is greater than the last.
        let again = t.build(s, &f, 1, &p).unwrap();
        assert_ne!(again["Records"][0]["messageId"], m["messageId"]);
        let sequencers: Vec<String> = (0..300).map(crate::seed::sequencer).collect();
        assert!(sequencers.windows(2).all(|w| store::sequencer_order(&w[1], &w[0]) == std::cmp::Ordering::Greater), "{sequencers:?}");
        assert!(t.build(s, &f, 1, &Prepared { sequencer: None, ..p.clone() }).is_err(), "needs its sequencer");
        assert!(t.build(s, &f, 1, &Prepared { upload: None, ..p.clone() }).is_err(), "needs its upload");
        assert_eq!(event_key("uploads/a b+c/é"), "uploads/a+b%2Bc/%C3%A9");
        assert_eq!(files::decode_key(&event_key("uploads/a b+c/é")).as_deref(), Some("uploads/a b+c/é"));
    }

    #[test]
    fn the_scan_result_is_guarddutys_event_for_the_seeded_object() {
        let t = Templates::load(&events_dir()).unwrap();
        let f = fixture();
        let u = f.upload.clone().unwrap();
        let s = scenario("malware scan result (EventBridge)");
        let e = t.build(s, &f, 1, &prepared(s)).unwrap();
        assert!(t.build(s, &Fixture { upload: None, ..fixture() }, 1, &prepared(s)).is_err(), "needs its processed file");
        assert_eq!(api::event_kind(&e), api::EventKind::Bus);
        assert_eq!((e["source"].as_str(), e["detail-type"].as_str()), (Some("aws.guardduty"), Some("GuardDuty Malware Protection Object Scan Result")));
        let d = &e["detail"];
        assert_eq!(d["s3ObjectDetails"]["bucketName"], u.bucket.as_str());
        assert_eq!(d["s3ObjectDetails"]["objectKey"], u.key.as_str());
        assert_eq!(d["s3ObjectDetails"]["eTag"], u.etag.as_str());
        assert_eq!(d["scanResultDetails"]["scanResultStatus"], store::SCAN_CLEAN);
        let parsed: aws_lambda_events::eventbridge::EventBridgeEvent<Value> = serde_json::from_value(e).unwrap();
        assert_eq!(parsed.source, "aws.guardduty");
        let sweep = t.build(scenario("upload-sweep (schedule)"), &f, 0, &prepared(scenario("upload-sweep (schedule)"))).unwrap();
        let parsed: api::ScheduledEvent = serde_json::from_value(sweep).unwrap();
        assert_eq!((parsed.detail.schedule.as_str(), parsed.detail.function.as_str()), ("upload-sweep", "files"));
    }

    #[test]
    fn the_chat_scenarios_cover_each_way_chat_is_invoked() {
        let chat = function("chat").unwrap();
        assert_eq!(chat.kinds, [Kind::Http, Kind::Queue], "its routes, and its queue of domain events");
        assert_eq!(chat.domain_event_queue, Some(::chat::INGEST_QUEUE));
        assert!(chat.environment.upload_bucket && chat.environment.vector_buckets);
        let ours: Vec<(&str, Kind)> = SCENARIOS.iter().filter(|s| s.function == "chat").map(|s| (s.name, s.kind())).collect();
        assert_eq!(ours, [("chat turn", Kind::Http), ("ingest 20-page document (SQS)", Kind::Queue), ("retrieval on 10,000 chunks", Kind::Http)]);
        assert!(SCENARIOS.iter().filter(|s| s.function == "chat").all(Scenario::calls_the_model));
        assert!(!scenario("presign upload").calls_the_model());
        assert!(matches!(scenario("retrieval on 10,000 chunks").event, EventSpec::ChatTurn { indexed_chunks: 10_000, .. }));
        assert!(matches!(scenario("chat turn").event, EventSpec::ChatTurn { indexed_chunks: 0, .. }));
    }

    #[test]
    fn a_chat_turn_is_the_members_question_in_their_conversation() {
        let t = Templates::load(&events_dir()).unwrap();
        let f = fixture();
        let e = t.build(scenario("chat turn"), &f, 2, &Prepared::default()).unwrap();
        let conversation = f.conversation_id.as_deref().unwrap();
        assert_eq!((e["httpMethod"].as_str(), e["resource"].as_str()), (Some("POST"), Some(CHAT_MESSAGES)));
        assert_eq!(e["path"], format!("/orgs/{}/conversations/{conversation}/messages", f.org_id));
        assert_eq!(e["pathParameters"], json!({"orgId": f.org_id, "conversationId": conversation}));
        assert_eq!(e["requestContext"]["authorizer"]["claims"]["sub"], f.member.as_ref().unwrap().sub.as_str());
        let body: Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
        let input: ::chat::PostMessage = serde_json::from_value(body.clone()).unwrap();
        assert!(!input.content.to_lowercase().contains("task"), "the question does not call the task tool");
        assert_eq!(e["headers"]["Content-Type"], "application/json");
        assert!(e["headers"].get("Accept").is_none_or(|a| !a.as_str().unwrap_or("").contains("event-stream")), "answered as JSON");
        assert!(t.build(scenario("chat turn"), &Fixture { conversation_id: None, ..fixture() }, 0, &Prepared::default()).is_err(), "needs its conversation");
    }

    #[test]
    fn the_ingestion_message_carries_the_domain_event_as_the_fan_out_sends_it() {
        use aws_lambda_events::sqs::SqsEvent;
        use md5::Digest;

        let t = Templates::load(&events_dir()).unwrap();
        let f = fixture();
        let s = scenario("ingest 20-page document (SQS)");
        let p = prepared(s);
        let e = t.build(s, &f, 1, &p).unwrap();
        assert_eq!(api::event_kind(&e), api::EventKind::Queue);
        let m = &e["Records"][0];
        assert_eq!(e["Records"].as_array().unwrap().len(), 1);
        assert_eq!(m["eventSourceARN"], "arn:aws:sqs:us-east-1:123456789012:tenantry-bench-01-chat-ingest");
        let body = m["body"].as_str().unwrap();
        assert_eq!(body, p.document.as_ref().unwrap().event);
        let md5: String = md5::Md5::digest(body.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(m["md5OfBody"], md5.as_str());
        let sqs: SqsEvent = serde_json::from_value(e.clone()).unwrap();
        let event: store::DomainEvent = serde_json::from_str(sqs.records[0].body.as_deref().unwrap()).unwrap();
        assert_eq!(event.kind, store::EventKind::FileProcessed);
        assert_eq!(event.file_id.map(|f| f.to_string()).as_deref(), Some(p.document.as_ref().unwrap().file_id.as_str()));
        assert_ne!(t.build(s, &f, 1, &p).unwrap()["Records"][0]["messageId"], m["messageId"], "each delivery is its own message");
        assert!(t.build(s, &f, 1, &Prepared::default()).is_err(), "needs its document");
        // The sample itself is such a message.
        let sample: SqsEvent = serde_json::from_value(t.sqs["domain-event"].clone()).unwrap();
        let event: store::DomainEvent = serde_json::from_str(sample.records[0].body.as_deref().unwrap()).unwrap();
        assert_eq!((event.kind, event.file_status), (store::EventKind::FileProcessed, Some(domain::work::FileStatus::Ready)));
    }
}
