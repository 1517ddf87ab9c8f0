//! The chat function: each org chats with Bedrock models its admins chose, under its own
//! system prompt and monthly token budget, answering from the org's documents and tasks.
//!
//! - Routes: the org's chat settings (admins), each member's conversations (create, list,
//!   get with messages, rename, delete: a member reaches only their own), and a message:
//!   Bedrock `Converse` answered as JSON, or `ConverseStream` streamed as server-sent events
//!   when the request accepts `text/event-stream` (Lambda response streaming).
//! - Queue `ingest`: the domain events `file.processed` (a ready document's text is chunked,
//!   embedded with Titan Text Embeddings V2 and stored in the org's S3 Vectors index) and
//!   `file.deleted` (its chunks are removed), fanned out from the table's stream.

mod chunk;
mod convert;
mod retrieval;
mod routes;
mod tools;
mod turn;

use std::sync::Arc;

use api::RouteTable;
use http::Method;
use store::{Store, VectorBuckets};

pub use chunk::{CHUNK_TOKENS, Chunk, OVERLAP_TOKENS, chunks};
pub use retrieval::{ingest_event, on_queue};
pub use routes::{ConversationWithMessages, CreateConversation, PostMessage, RenameConversation};
pub use turn::{RULES, TurnAnswer};

/// The queue through which the function receives its domain events.
pub const INGEST_QUEUE: &str = "ingest";
/// The domain events the function subscribes to: processed files are ingested, deleted
/// files' chunks removed.
pub const EVENT_KINDS: [&str; 2] = ["file.processed", "file.deleted"];
/// The environment variable naming the upload bucket (where the extracted text is).
pub const UPLOAD_BUCKET_ENV: &str = "UPLOAD_BUCKET";

/// Every Bedrock model the function may invoke: the price table's and the embedding model.
pub fn bedrock_models() -> Vec<&'static str> {
    domain::chat::MODELS.iter().map(|m| m.model_id).chain([domain::chat::EMBEDDING_MODEL]).collect()
}

/// Why the function could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
}

/// The org's vector indexes: the client and the deployment's buckets.
#[derive(Clone)]
pub struct Vectors {
    pub client: aws_sdk_s3vectors::Client,
    pub buckets: VectorBuckets,
}

/// What every handler shares: built once at init.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub bedrock: aws_sdk_bedrockruntime::Client,
    /// Retrieval's index (none: answers draw on tasks only).
    pub vectors: Option<Vectors>,
    pub s3: aws_sdk_s3::Client,
    pub bucket: Arc<str>,
}

impl api::RouteState for AppState {
    fn rate_store(&self) -> Option<&Store> {
        Some(&self.store)
    }
}

impl AppState {
    pub fn from_platform(platform: &api::Platform) -> Result<AppState, ConfigError> {
        let aws = &platform.aws;
        let bucket = platform.var(UPLOAD_BUCKET_ENV).ok_or(ConfigError::Missing(UPLOAD_BUCKET_ENV))?;
        let bedrock = aws_sdk_bedrockruntime::Client::from_conf(aws_sdk_bedrockruntime::config::Builder::from(aws).interceptor(telemetry::CallCounter).build());
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(aws).force_path_style(aws.endpoint_url().is_some()).interceptor(telemetry::CallCounter).build(),
        );
        let vectors = VectorBuckets::from_vars(|name| platform.var(name)).map(|buckets| Vectors {
            client: aws_sdk_s3vectors::Client::from_conf(aws_sdk_s3vectors::config::Builder::from(aws).interceptor(telemetry::CallCounter).build()),
            buckets,
        });
        if vectors.is_none() {
            tracing::warn!("{} is not set: chat answers without the org's documents", store::vectors::VECTOR_BUCKET_PREFIX_ENV);
        }
        Ok(AppState { store: platform.store.clone(), bedrock, vectors, s3, bucket: bucket.into() })
    }
}

/// The function's route table.
pub fn routes() -> RouteTable<AppState> {
    use store::Page;
    use store::chat::{Conversation, StoredChatSettings};
    RouteTable::default()
        .tag("chat", "Chat on Amazon Bedrock under the org's prompt, models and token budget, with answers drawn from its documents and tasks")
        .route(
            Method::GET,
            "/orgs/{orgId}/chat/settings",
            "getChatSettings",
            "The org's chat settings (the system prompt to admins only)",
            routes::get_settings,
        )
        .returns::<StoredChatSettings>(200)
        .header("ETag", "the settings' version")
        .route(
            Method::PUT,
            "/orgs/{orgId}/chat/settings",
            "putChatSettings",
            "Set the org's chat settings (admins), within the plan's models and bounds",
            routes::put_settings,
        )
        .takes::<domain::chat::ChatSettings>()
        .returns::<StoredChatSettings>(200)
        .header("ETag", "the settings' version")
        .route(Method::POST, "/orgs/{orgId}/conversations", "createConversation", "Start a conversation (the body may be empty)", routes::create)
        .takes::<CreateConversation>()
        .returns::<Conversation>(201)
        .header("Location", "the new conversation")
        .route(Method::GET, "/orgs/{orgId}/conversations", "listConversations", "The caller's conversations, newest first", routes::list)
        .returns::<Page<Conversation>>(200)
        .paginated(&[])
        .route(
            Method::GET,
            "/orgs/{orgId}/conversations/{conversationId}",
            "getConversation",
            "One of the caller's conversations with its latest 100 messages, oldest first",
            routes::get,
        )
        .returns::<ConversationWithMessages>(200)
        .header("ETag", "the conversation's version")
        .route(Method::PATCH, "/orgs/{orgId}/conversations/{conversationId}", "renameConversation", "Rename one of the caller's conversations", routes::rename)
        .takes::<RenameConversation>()
        .returns::<Conversation>(200)
        .header("ETag", "the conversation's version")
        .route(
            Method::DELETE,
            "/orgs/{orgId}/conversations/{conversationId}",
            "deleteConversation",
            "Delete one of the caller's conversations and its messages",
            routes::delete,
        )
        .no_content()
        .route(
            Method::POST,
            "/orgs/{orgId}/conversations/{conversationId}/messages",
            "postMessage",
            "Ask: the model answers under the org's prompt from the conversation so far, the org's documents and its tasks, within the token budget",
            routes::post_message,
        )
        .takes::<PostMessage>()
        .returns::<TurnAnswer>(201)
        .streams(
            "Server-sent events: `delta` ({\"text\"}) as the answer streams, `tool` ({\"name\"}) when the model reads the org's tasks, \
then `done` (the turn: both messages, usage, citations) or `error` (a problem, recorded on the message)",
        )
        .errors(&[409, 429, 503])
        .rate_class(domain::RateClass::ChatMessages)
}

/// Every way this function is invoked: its routes and its queue of domain events.
pub fn handlers(platform: &api::Platform) -> Result<api::Handlers, ConfigError> {
    let app = AppState::from_platform(platform)?;
    let queue_app = app.clone();
    Ok(api::Handlers {
        http: Some(routes().with_state(app).0),
        queue: Some(api::handler(move |event| {
            let app = queue_app.clone();
            async move { on_queue(&app, event).await }
        })),
        ..Default::default()
    })
}
