//! The one list of Tenantry's functions.
//!
//! Each entry says what a function is (its crate and Lambda binary share its name), what
//! invokes it (HTTP routes, Cognito triggers, the table's stream with its filter, S3 upload
//! events, schedules, queues), how big it is and what it may do. Everything that needs the
//! list of functions derives it from here:
//! - `make build` and `make bench` read the binaries from `infra/functions.json`;
//! - the CDK stack builds each function, its role and its event sources from
//!   `infra/functions.json` and integrates the routes of `infra/routes.json`;
//! - the local runner serves every function's routes and delivers every event source;
//! - the authorization matrix, the round-trip budgets and the OpenAPI document cover every
//!   route of [`routes`].
//!
//! Both JSON files are rendered from this crate (`make manifest`); a test fails when they are
//! stale, and another when a crate under `functions/` has no entry here (or the reverse).
//! Adding a function is its crate plus one entry in [`all`].

use api::{Handlers, Platform, RouteInfo};
use serde::Serialize;
use serde_json::{Value, json};

/// How a function builds its handlers from the platform.
pub type BuildHandlers = fn(&Platform) -> Result<Handlers, String>;

/// One Lambda function.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Function {
    /// The crate under `functions/`, its Lambda binary and the function's name.
    pub name: &'static str,
    pub description: &'static str,
    pub memory_mb: u32,
    pub timeout_seconds: u32,
    /// Why these numbers.
    pub sizing_reason: &'static str,
    pub environment: Environment,
    pub permissions: Permissions,
    pub sources: Sources,
    /// The function's route table (HTTP functions).
    #[serde(skip)]
    pub routes: Option<fn() -> Vec<RouteInfo>>,
    /// Builds the handlers, as the function's `main` does on Lambda.
    #[serde(skip)]
    pub handlers: Option<BuildHandlers>,
}

/// What the function is told beyond `TABLE_NAME` and the cursor secret.
#[derive(Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    /// `USER_POOL_ID`.
    pub user_pool_id: bool,
    /// `SES_FROM_ADDRESS`.
    pub ses_from_address: bool,
    /// `API_URL`: the REST API's own base URL (links that call the API, such as unsubscribe).
    pub api_url: bool,
    /// `SES_CONFIGURATION_SET`: the stack's configuration set, which publishes bounces and
    /// complaints (mail that must honour the suppression list).
    pub ses_configuration_set: bool,
    /// `UPLOAD_BUCKET`: the upload bucket's name.
    pub upload_bucket: bool,
    /// `VECTOR_BUCKET_PREFIX` and `VECTOR_BUCKETS`: the S3 Vectors buckets that hold the
    /// orgs' vector indexes (`{prefix}-{n}` for n below the count; the store's rule spreads the
    /// orgs over them).
    pub vector_buckets: bool,
    /// `EVENT_QUEUES`: the queues of the domain events' subscribers (a JSON array of
    /// `{"kinds": [...], "queueUrl": "..."}`), for the function that fans the events out.
    pub event_queues: bool,
    /// `EXPORT_BUCKET`: the private exports bucket's name.
    pub export_bucket: bool,
    /// Optional variables taken from CDK context when given: variable → context key.
    pub from_context: serde_json::Map<String, Value>,
}

/// What the function may do; its role gets these actions and nothing else.
#[derive(Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Permissions {
    /// DynamoDB actions on the table (Query also on its indexes). A transaction is authorised
    /// part by part, so a function that transacts lists the item actions it contains.
    pub dynamodb: Vec<&'static str>,
    /// Reads the cursor-signing secret.
    pub read_cursor_secret: bool,
    /// Sends mail from the stack's SES identity.
    pub ses_send_email: bool,
    /// S3 actions on the objects of the upload bucket (`s3:ListBucket` on the bucket itself).
    pub s3: Vec<&'static str>,
    /// S3 Vectors actions on the vector buckets and their indexes.
    pub s3vectors: Vec<&'static str>,
    /// Bedrock runtime actions, on the foundation models and inference profiles of
    /// `bedrock_models` only.
    pub bedrock: Vec<&'static str>,
    /// The Bedrock model ids (or inference profile ids) the function may invoke.
    pub bedrock_models: Vec<&'static str>,
    /// Sends messages to the queues of the domain events' subscribers (the fan-out).
    pub send_to_event_queues: bool,
    /// S3 actions on the objects of the exports bucket (`s3:ListBucketMultipartUploads` on the
    /// bucket itself).
    pub export_bucket_s3: Vec<&'static str>,
    /// Sends messages to its own declared queues (a job that hands over to its next pass).
    pub send_to_own_queues: bool,
    /// Cognito user pool actions, on the stack's user pool only.
    pub cognito: Vec<&'static str>,
}

/// What invokes the function.
#[derive(Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sources {
    /// Serves routes behind the REST API (those of its route table).
    pub http: bool,
    /// Its HTTP answers are streamed (Lambda response streaming): API Gateway integrates every
    /// route of it with `responseTransferMode: STREAM` (InvokeWithResponseStream).
    pub streaming: bool,
    /// Cognito user pool triggers.
    pub cognito_triggers: Vec<&'static str>,
    /// The table's stream, through an event source mapping with these filters.
    pub dynamodb_stream: Option<StreamSource>,
    /// Object events of the upload bucket, through an SQS queue.
    pub s3: Option<S3Source>,
    /// EventBridge Scheduler schedules.
    pub schedules: Vec<Schedule>,
    /// SQS queues (each with a dead-letter queue).
    pub queues: Vec<Queue>,
    /// SES bounces and complaints of the stack's configuration set, through an EventBridge
    /// rule (with a dead-letter queue).
    pub mail_feedback: bool,
    /// GuardDuty Malware Protection for S3 scan results of the upload bucket, through an
    /// EventBridge rule (with a dead-letter queue), when the stack enables the protection plan.
    pub malware_scan_results: bool,
    /// Domain events of these kinds, through the function's own queue: the stream has two
    /// readers already, so the one with `fan_out` forwards them (each message's body is one
    /// event, as the store writes it).
    pub domain_events: Option<EventSubscription>,
    /// This function's stream mapping also takes every subscribed event kind and forwards each
    /// event to its subscribers' queues.
    pub fan_out: bool,
}

/// The domain events a function subscribes to.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSubscription {
    pub kinds: Vec<&'static str>,
    pub queue: Queue,
}

/// A DynamoDB stream event source mapping.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamSource {
    /// Lambda event filter patterns (any one matching lets a record through).
    pub filters: Vec<Value>,
    pub batch_size: u32,
    pub maximum_retry_attempts: u32,
    pub bisect_batch_on_error: bool,
}

/// Object events of the upload bucket. The bucket notifies an SQS queue (with a dead-letter
/// queue) that the function consumes with `ReportBatchItemFailures`: each message's body is
/// one S3 event.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Source {
    pub events: Vec<&'static str>,
    pub prefix: &'static str,
    /// The queue between the bucket and the function.
    pub queue: Queue,
}

/// A schedule: `rate(…)` or `cron(…)`.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub id: &'static str,
    pub expression: &'static str,
    pub description: &'static str,
}

/// An SQS queue the function consumes.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Queue {
    pub id: &'static str,
    pub batch_size: u32,
    /// Receives before a message moves to the dead-letter queue.
    pub max_receive_count: u32,
    pub visibility_timeout_seconds: u32,
}

/// What the HTTP functions do with the single table: reads, conditional writes, transactions
/// (whose parts are authorised as the item actions). Batch actions are granted only to the
/// function that calls them; the round-trip test checks both ways against the calls made.
const HTTP_TABLE_ACTIONS: [&str; 7] = ["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "TransactWriteItems", "ConditionCheckItem"];

/// Why the HTTP functions get 256 MB and 10 s (a macro, so that a function can add to it with
/// `concat!`).
macro_rules! http_sizing {
    () => {
        "256 MB / 10 s: a Rust handler needs ~30 MB, but Lambda CPU scales with memory and 256 MB keeps \
cold starts and the SDK TLS handshakes fast; 10 s covers a transaction retried under contention \
and stays well inside API Gateway\u{2019}s 29 s integration timeout."
    };
}

const HTTP_SIZING: &str = http_sizing!();

fn http_function(name: &'static str, description: &'static str) -> Function {
    Function {
        name,
        description,
        memory_mb: 256,
        timeout_seconds: 10,
        sizing_reason: HTTP_SIZING,
        environment: Environment { user_pool_id: true, ..Default::default() },
        permissions: Permissions {
            dynamodb: HTTP_TABLE_ACTIONS.to_vec(),
            read_cursor_secret: true,
            ses_send_email: false,
            s3: Vec::new(),
            ..Default::default()
        },
        sources: Sources { http: true, ..Default::default() },
        routes: None,
        handlers: None,
    }
}

fn context_vars(pairs: &[(&str, &str)]) -> serde_json::Map<String, Value> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect()
}

/// Every function, in a stable order, the fan-out's stream taking every subscribed event kind.
pub fn all() -> Vec<Function> {
    let mut functions = declared();
    if let Some(filter) = fan_out_filter(&functions) {
        for f in functions.iter_mut().filter(|f| f.sources.fan_out) {
            if let Some(stream) = &mut f.sources.dynamodb_stream {
                stream.filters.push(filter.clone());
            }
        }
    }
    functions
}

/// The stream filter that lets through the domain events of every subscribed kind (sorted, each
/// once), for the fan-out's mapping; `None` without subscribers. One filter whatever the number
/// of subscribers: a mapping takes at most 5, and the fan-out's own purposes use 3 of them.
pub fn fan_out_filter(functions: &[Function]) -> Option<Value> {
    let kinds = subscribed_kinds(functions);
    (!kinds.is_empty()).then(|| {
        json!({
            "eventName": ["INSERT"],
            "dynamodb": { "NewImage": { "_type": { "S": ["event"] }, "kind": { "S": kinds } } }
        })
    })
}

/// Every event kind some function subscribes to (`domain_events`), sorted, each once.
pub fn subscribed_kinds(functions: &[Function]) -> Vec<&'static str> {
    let kinds: std::collections::BTreeSet<&'static str> =
        functions.iter().filter_map(|f| f.sources.domain_events.as_ref()).flat_map(|s| s.kinds.iter().copied()).collect();
    kinds.into_iter().collect()
}

/// The functions as declared, before [`all`] completes the fan-out's filters.
fn declared() -> Vec<Function> {
    vec![
        Function {
            // `GET /orgs` reads the caller's orgs with one BatchGetItem.
            permissions: Permissions {
                dynamodb: [HTTP_TABLE_ACTIONS.as_slice(), &["BatchGetItem"]].concat(),
                read_cursor_secret: true,
                ses_send_email: false,
                s3: Vec::new(),
                ..Default::default()
            },
            // The platform's limit on orgs one user creates per day (domain::PlatformLimits).
            environment: Environment {
                user_pool_id: true,
                from_context: context_vars(&[("ORGS_PER_USER_PER_DAY", "orgsPerUserPerDay")]),
                ..Default::default()
            },
            routes: Some(|| organizations::routes().routes().to_vec()),
            handlers: Some(|p| Ok(organizations::handlers(p))),
            ..http_function("organizations", "Tenantry HTTP API: organizations, members, roles, plans, /me and platform admin")
        },
        Function {
            sizing_reason: concat!(http_sizing!(), " The SES SendEmail call adds well under a second."),
            // The platform's cap on invitation mails per recipient per day (domain::PlatformLimits).
            environment: Environment {
                user_pool_id: true,
                ses_from_address: true,
                // Invitations' bounces and complaints reach the suppression list too.
                ses_configuration_set: true,
                from_context: context_vars(&[("INVITES_PER_RECIPIENT_PER_DAY", "invitesPerRecipientPerDay")]),
                ..Default::default()
            },
            permissions: Permissions {
                dynamodb: HTTP_TABLE_ACTIONS.to_vec(),
                read_cursor_secret: true,
                ses_send_email: true,
                s3: Vec::new(),
                ..Default::default()
            },
            sources: Sources {
                http: true,
                schedules: vec![Schedule {
                    id: invites::EXPIRE_SCHEDULE,
                    expression: "rate(15 minutes)",
                    description: "Expires overdue invitations, freeing their seats",
                }],
                ..Default::default()
            },
            routes: Some(|| invites::routes().routes().to_vec()),
            handlers: Some(|p| invites::handlers(p).map_err(|e| e.to_string())),
            ..http_function("invites", "Tenantry HTTP API: invitations by email")
        },
        Function {
            timeout_seconds: 25,
            sizing_reason: concat!(
                http_sizing!(),
                " 25 s rather than 10: a CSV import writes up to 20,000 rows (24 per transaction, 4 in flight) within \
API Gateway\u{2019}s 29 s; every other route answers in well under a second."
            ),
            // Deleting a task deletes its comments and history in batches.
            permissions: Permissions {
                dynamodb: [HTTP_TABLE_ACTIONS.as_slice(), &["BatchWriteItem"]].concat(),
                read_cursor_secret: true,
                ses_send_email: false,
                s3: Vec::new(),
                ..Default::default()
            },
            routes: Some(|| projects::routes().routes().to_vec()),
            handlers: Some(|p| Ok(projects::handlers(p))),
            ..http_function("projects", "Tenantry HTTP API: projects, tasks, comments, history and CSV import")
        },
        Function {
            name: "notifications",
            description: "Tenantry notifications: domain events into in-app notifications and mail, due-date reminders, quiet hours, digests, one-click unsubscribe",
            memory_mb: 256,
            timeout_seconds: 120,
            sizing_reason: "256 MB / 120 s: a stream batch of 25 events reads preferences and sends a few mails each (SES \
retries throttling with backoff); the 15-minute sweep sends the reminders, deferred mail and digests that came due. Its routes \
answer in well under a second (API Gateway stops waiting at 29 s whatever the timeout).",
            environment: Environment {
                user_pool_id: true,
                ses_from_address: true,
                api_url: true,
                ses_configuration_set: true,
                from_context: context_vars(&[("PRODUCT_NAME", "productName")]),
                ..Default::default()
            },
            // Deleting a former member's inbox is a batch write.
            permissions: Permissions {
                dynamodb: [HTTP_TABLE_ACTIONS.as_slice(), &["BatchWriteItem"]].concat(),
                read_cursor_secret: true,
                ses_send_email: true,
                s3: Vec::new(),
                ..Default::default()
            },
            sources: Sources {
                http: true,
                // The domain events that notify someone (compose.rs), kinds ORed; and unread
                // notifications that DynamoDB's TTL deleted (they leave the unread count).
                dynamodb_stream: Some(StreamSource {
                    filters: vec![
                        json!({
                            "eventName": ["INSERT"],
                            "dynamodb": { "NewImage": {
                                "_type": { "S": ["event"] },
                                "kind": { "S": ["task.created", "task.updated", "task.moved", "comment.created",
                                                "invitation.accepted", "member.role_changed", "member.removed"] }
                            } }
                        }),
                        json!({
                            "eventName": ["REMOVE"],
                            "userIdentity": { "type": ["Service"], "principalId": ["dynamodb.amazonaws.com"] },
                            "dynamodb": { "OldImage": { "_type": { "S": ["notification"] }, "read": { "BOOL": [false] } } }
                        }),
                    ],
                    batch_size: 25,
                    maximum_retry_attempts: 5,
                    bisect_batch_on_error: true,
                }),
                mail_feedback: true,
                schedules: vec![Schedule {
                    id: notifications::SWEEP_SCHEDULE,
                    expression: "rate(15 minutes)",
                    description: "Due-date reminders, mail held back by quiet hours, and digests at each user's local hour",
                }],
                ..Default::default()
            },
            routes: Some(|| notifications::routes().routes().to_vec()),
            handlers: Some(|p| notifications::handlers(p).map_err(|e| e.to_string())),
        },
        Function {
            name: "files",
            description: "Tenantry files: presigned uploads against the storage quota, processing on upload (type sniffing, thumbnails, text extraction, malware gate), downloads",
            memory_mb: 1024,
            timeout_seconds: 60,
            sizing_reason: "1024 MB / 60 s: processing holds up to 64 MiB of an upload and the image decoder may allocate up to \
512 MiB (its limits), ~610 MB at worst; make bench measured 30 MB peak for a 2 MB JPEG and 13 MB for a 20-page PDF, and \
Lambda's CPU grows with memory. One upload per invocation, given up after 40 s, well inside 60 s; the queue's visibility \
timeout is 6 times the timeout, as Lambda advises. Its routes answer in well under a second (API Gateway stops waiting at 29 s).",
            environment: Environment {
                user_pool_id: true,
                upload_bucket: true,
                // On when the stack enables GuardDuty Malware Protection for the upload bucket:
                // a file becomes ready only after a clean scan.
                from_context: context_vars(&[("MALWARE_PROTECTION", "malwareProtection")]),
                ..Default::default()
            },
            permissions: Permissions {
                dynamodb: HTTP_TABLE_ACTIONS.to_vec(),
                read_cursor_secret: true,
                ses_send_email: false,
                // Presigned uploads (PutObject) and downloads (GetObject) are signed with the
                // function's credentials; processing reads originals and writes derived objects;
                // deletion removes both.
                s3: vec!["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                ..Default::default()
            },
            sources: Sources {
                http: true,
                s3: Some(S3Source {
                    events: vec!["s3:ObjectCreated:*"],
                    prefix: files::UPLOAD_PREFIX,
                    // One upload per invocation: a slow file (processing gives up after 40 s)
                    // can then never take others past the timeout with it.
                    queue: Queue { id: "uploads", batch_size: 1, max_receive_count: 5, visibility_timeout_seconds: 360 },
                }),
                schedules: vec![Schedule {
                    id: files::SWEEP_SCHEDULE,
                    expression: "rate(15 minutes)",
                    description: "Frees the storage reserved for uploads that never arrived",
                }],
                malware_scan_results: true,
                ..Default::default()
            },
            routes: Some(|| files::routes().routes().to_vec()),
            handlers: Some(|p| files::handlers(p).map_err(|e| e.to_string())),
        },
        Function {
            name: "chat",
            description: "Tenantry chat: conversations with Bedrock models under the org's prompt, models and token budget, streamed answers, retrieval over the org's documents and tasks; ingests processed files into the org's vector index",
            memory_mb: 256,
            timeout_seconds: 120,
            sizing_reason: "256 MB / 120 s: make bench measured 13 to 14 MB peak for a turn, an ingestion of 20 pages and a retrieval \
over 10,000 chunks, and 17 ms (a turn) to 50 ms (20 pages) of the function's own CPU; a turn's time on AWS is mostly waiting for \
Bedrock, billed per GB-second, so more memory would buy little. 120 s: a streamed answer of the largest plan's 8,192 output \
tokens takes about a minute on the slower models (a turn makes at most 3 calls), and API Gateway's streaming integration waits \
up to the function's timeout. One document per ingestion; the queue's visibility timeout is 6 times the timeout.",
            environment: Environment { user_pool_id: true, upload_bucket: true, vector_buckets: true, ..Default::default() },
            permissions: Permissions {
                // Deleting a conversation deletes its messages in batches.
                dynamodb: [HTTP_TABLE_ACTIONS.as_slice(), &["BatchWriteItem"]].concat(),
                read_cursor_secret: true,
                // Ingestion reads the extracted text of processed files.
                s3: vec!["s3:GetObject"],
                // QueryVectors with a filter or metadata needs GetVectors too.
                s3vectors: vec![
                    "s3vectors:CreateIndex",
                    "s3vectors:GetIndex",
                    "s3vectors:PutVectors",
                    "s3vectors:GetVectors",
                    "s3vectors:QueryVectors",
                    "s3vectors:DeleteVectors",
                ],
                // Converse is authorised as InvokeModel, ConverseStream as
                // InvokeModelWithResponseStream.
                bedrock: vec!["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
                bedrock_models: chat::bedrock_models(),
                ..Default::default()
            },
            sources: Sources {
                http: true,
                streaming: true,
                domain_events: Some(EventSubscription {
                    kinds: chat::EVENT_KINDS.to_vec(),
                    // One document per invocation: a large one (hundreds of embeddings) never takes
                    // others past the timeout with it.
                    queue: Queue { id: chat::INGEST_QUEUE, batch_size: 1, max_receive_count: 5, visibility_timeout_seconds: 720 },
                }),
                ..Default::default()
            },
            routes: Some(|| chat::routes().routes().to_vec()),
            handlers: Some(|p| chat::handlers(p).map_err(|e| e.to_string())),
        },
        Function {
            name: "audit",
            description: "Tenantry audit log: records every security-relevant domain event of an org in a tamper-evident hash chain; lists and verifies it",
            sizing_reason: concat!(
                http_sizing!(),
                " A batch of 10 events appends each with one read round and one transaction (a contended chain retries a few \
times with jitter); an erasure removes the user's email from their entries page by page. The queue's visibility timeout is 6 \
times the timeout."
            ),
            // No DeleteItem, and no route edits an entry: the function that keeps the log cannot
            // delete it. Appends are transactions (the head's update, the entry's and the marker's
            // puts); an erasure updates entries; listings and verification query.
            permissions: Permissions {
                dynamodb: vec!["GetItem", "PutItem", "UpdateItem", "Query", "TransactWriteItems"],
                read_cursor_secret: true,
                ..Default::default()
            },
            sources: Sources {
                http: true,
                domain_events: Some(EventSubscription {
                    kinds: audit::EVENT_KINDS.to_vec(),
                    queue: Queue { id: audit::AUDIT_QUEUE, batch_size: 10, max_receive_count: 5, visibility_timeout_seconds: 60 },
                }),
                ..Default::default()
            },
            routes: Some(|| audit::routes().routes().to_vec()),
            handlers: Some(|p| Ok(audit::handlers(p))),
            ..http_function("audit", "")
        },
        Function {
            name: "exports",
            description: "Tenantry exports and erasure: an org's data or a user's own data as one zip in S3 (resumable), presigned downloads, account erasure",
            memory_mb: 256,
            timeout_seconds: 900,
            sizing_reason: "256 MB / 900 s: a pass holds one 5 MiB part, one 1 MiB range of a file and a page of 500 records \
(well under 64 MB), and checkpoints after every part; it hands over to the next pass after 600 s (EXPORT_SLICE_SECONDS), \
so any export finishes over several invocations. The queue's visibility timeout is 6 times the timeout. Its routes answer in \
well under a second; DELETE /me erases in one request (an account with a few orgs takes seconds).",
            environment: Environment { user_pool_id: true, upload_bucket: true, export_bucket: true, ..Default::default() },
            permissions: Permissions {
                // Erasure deletes conversations, inboxes and exports in batches; a user's
                // export and erasure read the caller's orgs with one BatchGetItem.
                dynamodb: [HTTP_TABLE_ACTIONS.as_slice(), &["BatchGetItem", "BatchWriteItem"]].concat(),
                read_cursor_secret: true,
                // Org exports copy ready files' checked copies.
                s3: vec!["s3:GetObject"],
                // Multipart upload of the zip, presigned downloads, deletion when withdrawn or
                // erased, listing a withdrawn export's unfinished uploads to abort them.
                export_bucket_s3: vec!["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListBucketMultipartUploads"],
                send_to_own_queues: true,
                cognito: vec!["cognito-idp:AdminDeleteUser"],
                ..Default::default()
            },
            sources: Sources {
                http: true,
                // One job per invocation; a pass re-sends its message when it hands over.
                queues: vec![Queue { id: exports::WORK_QUEUE, batch_size: 1, max_receive_count: 5, visibility_timeout_seconds: 5400 }],
                ..Default::default()
            },
            routes: Some(|| exports::routes().routes().to_vec()),
            handlers: Some(|p| exports::handlers(p).map_err(|e| e.to_string())),
        },
        Function {
            name: "cognito-triggers",
            description: "Tenantry Cognito triggers: PreSignUp, PostConfirmation, PreTokenGeneration (V2), PostAuthentication, CustomMessage",
            memory_mb: 128,
            timeout_seconds: 5,
            sizing_reason: "128 MB / 5 s: Cognito waits at most 5 s for a trigger (and retries up to 3 times), so a longer \
timeout buys nothing; each trigger does one or two small DynamoDB calls.",
            environment: Environment {
                user_pool_id: false,
                ses_from_address: false,
                // Sign-up policy and mail branding (functions/cognito-triggers/src/config.rs).
                from_context: context_vars(&[
                    ("BLOCKED_EMAIL_DOMAINS", "blockedEmailDomains"),
                    ("SIGNUP_INVITE_ONLY", "signupInviteOnly"),
                    ("PERSONAL_ORG", "personalOrg"),
                    ("PRODUCT_NAME", "productName"),
                    ("PRODUCT_LOGO_URL", "productLogoUrl"),
                ]),
                ..Default::default()
            },
            permissions: Permissions {
                dynamodb: vec!["GetItem", "PutItem", "UpdateItem", "Query", "TransactWriteItems"],
                read_cursor_secret: false,
                ses_send_email: false,
                s3: Vec::new(),
                ..Default::default()
            },
            sources: Sources {
                cognito_triggers: vec!["PreSignUp", "PostConfirmation", "PreTokenGeneration", "PostAuthentication", "CustomMessage"],
                ..Default::default()
            },
            // The local runner calls the triggers from its auth routes, with the events Cognito
            // sends; the function links no web framework.
            routes: None,
            handlers: None,
        },
        Function {
            name: "org-purge",
            description: "Tenantry cleanup: deletes the items of deleted organizations and projects, resumably; unassigns the open tasks of members who leave",
            memory_mb: 256,
            timeout_seconds: 300,
            sizing_reason: "256 MB / 300 s: a purge deletes page by page (25-item batch writes) and records progress, so a large \
org finishes over several invocations; 5 minutes keeps one invocation well inside the stream's retry window.",
            // A purge deletes the org's objects in the upload bucket and its vector index too;
            // the domain events it fans out go to the subscribers' queues.
            environment: Environment { upload_bucket: true, vector_buckets: true, event_queues: true, ..Default::default() },
            // Unassigning a task is a transaction: the task, its history entry and its event.
            permissions: Permissions {
                dynamodb: vec!["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "BatchWriteItem", "TransactWriteItems", "ConditionCheckItem"],
                read_cursor_secret: true,
                ses_send_email: false,
                s3: vec!["s3:ListBucket", "s3:DeleteObject"],
                s3vectors: vec!["s3vectors:DeleteIndex"],
                // SendMessageBatch is authorised as SendMessage.
                send_to_event_queues: true,
                ..Default::default()
            },
            sources: Sources {
                http: true,
                dynamodb_stream: Some(StreamSource {
                    filters: vec![
                        json!({
                            "eventName": ["INSERT", "MODIFY"],
                            "dynamodb": { "NewImage": { "_type": { "S": ["org"] }, "status": { "S": ["deleting"] } } }
                        }),
                        json!({
                            "eventName": ["INSERT", "MODIFY"],
                            "dynamodb": { "NewImage": { "_type": { "S": [store::PROJECT_PURGE_TYPE] } } }
                        }),
                        // Memberships that ended: their open tasks are unassigned.
                        json!({
                            "eventName": ["REMOVE"],
                            "dynamodb": { "OldImage": { "_type": { "S": ["member"] } } }
                        }),
                    ],
                    batch_size: 10,
                    maximum_retry_attempts: 5,
                    bisect_batch_on_error: true,
                }),
                schedules: vec![Schedule {
                    id: org_purge::RESUME_SCHEDULE,
                    expression: "rate(1 hour)",
                    description: "Resumes purges of deleted organizations that stopped part-way",
                }],
                // The stream's second reader forwards the domain events others subscribe to
                // (`all` adds the filter that lets them through).
                fan_out: true,
                ..Default::default()
            },
            routes: Some(|| org_purge::routes().routes().to_vec()),
            handlers: Some(|p| org_purge::handlers(p).map_err(|e| e.to_string())),
        },
    ]
}

/// The function named `name`.
pub fn function(name: &str) -> Option<Function> {
    all().into_iter().find(|f| f.name == name)
}

/// Every route of every HTTP function, each with its function's name.
pub fn routes() -> Vec<(&'static str, RouteInfo)> {
    all().into_iter().flat_map(|f| f.routes.map(|r| r()).unwrap_or_default().into_iter().map(move |r| (f.name, r))).collect()
}

/// `infra/functions.json`: every function's declaration.
pub fn render_functions() -> String {
    render(&json!({ "functions": all() }))
}

/// `infra/routes.json`: every route with the function that serves it (stable order).
pub fn render_routes() -> String {
    let mut routes: Vec<Value> = routes()
        .into_iter()
        .map(|(function, r)| {
            let mut route = json!({
                "function": function,
                "method": r.method.as_str(),
                "path": r.path,
                "operationId": r.operation_id,
                "summary": r.summary,
            });
            // Only when set, so that the manifest of a table without public routes is unchanged.
            if r.public {
                route["public"] = json!(true);
            }
            route
        })
        .collect();
    let key = |r: &Value| (r["path"].as_str().unwrap_or("").to_owned(), r["method"].as_str().unwrap_or("").to_owned());
    routes.sort_by_key(key);
    render(&json!({ "routes": routes }))
}

fn render(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    s
}
