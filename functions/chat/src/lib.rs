//! The chat function (skeleton; filled in below).

use api::RouteTable;

/// The queue through which the function receives its domain events.
pub const INGEST_QUEUE: &str = "ingest";
/// The domain events the function subscribes to: processed files are ingested, deleted
/// files' chunks removed.
pub const EVENT_KINDS: [&str; 2] = ["file.processed", "file.deleted"];

/// Every Bedrock model the function may invoke: the price table's and the embedding model.
pub fn bedrock_models() -> Vec<&'static str> {
    domain::chat::MODELS.iter().map(|m| m.model_id).chain([domain::chat::EMBEDDING_MODEL]).collect()
}

#[derive(Clone)]
pub struct AppState {}

pub fn routes() -> RouteTable<AppState> {
    RouteTable::default()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
}

pub fn handlers(_platform: &api::Platform) -> Result<api::Handlers, ConfigError> {
    Ok(api::Handlers::default())
}
mod chunk;
