//! Retrieval over the org's documents: ingestion of processed files into the org's S3
//! Vectors index (chunks embedded with Titan Text Embeddings V2), removal of deleted files'
//! chunks, and the query a question makes.
//!
//! Each org has its own index ([`store::VectorBuckets::index_of`]): a query names the
//! caller's org's index, so no filter stands between one org and another's chunks. Vector
//! keys are `{file}#{n}`: ingesting a file again overwrites its chunks (and deletes those
//! past the new count), so a repeated event never duplicates them.

use api::RecordFailures;
use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_s3vectors::types::{DataType, DistanceMetric, MetadataConfiguration, PutInputVector, VectorData};
use domain::OrgId;
use domain::chat::{EMBEDDING_DIMENSIONS, EMBEDDING_MODEL};
use domain::work::{FileId, FileStatus};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use store::chat::{Citation, IndexedFile};
use store::{DomainEvent, EventKind, OrgScope, StoredFile, VectorIndex};

use crate::convert::{to_document, to_json};
use crate::{AppState, Vectors};

/// Chunks a question retrieves.
pub const TOP_K: i32 = 5;
/// Embedding calls in flight while ingesting.
const EMBED_CONCURRENCY: usize = 8;
/// Vectors per PutVectors or DeleteVectors call (S3 Vectors takes up to 500).
const VECTOR_BATCH: usize = 500;
/// The metadata that is stored but not filtered on (it does not count against the 2 KB of
/// filterable metadata).
const NON_FILTERABLE: [&str; 2] = ["text", "name"];

/// A retrieved chunk, as the prompt quotes it and the answer cites it.
#[derive(Debug, Clone)]
pub struct Source {
    pub text: String,
    pub citation: Citation,
}

/// What a retrieval looks at: all the org's documents, or those of a project, or some files.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub project: Option<String>,
    pub files: Vec<String>,
}

impl Filter {
    fn document(&self) -> Option<aws_smithy_types::Document> {
        let mut parts = Vec::new();
        if let Some(p) = &self.project {
            parts.push(json!({"projectId": {"$eq": p}}));
        }
        if !self.files.is_empty() {
            parts.push(json!({"fileId": {"$in": self.files}}));
        }
        match parts.len() {
            0 => None,
            1 => parts.pop().map(|p| to_document(&p)),
            _ => Some(to_document(&json!({"$and": parts}))),
        }
    }
}

/// The embedding of `text` (normalized, [`EMBEDDING_DIMENSIONS`] dimensions).
pub async fn embed(app: &AppState, text: &str) -> Result<Vec<f32>, String> {
    let body = json!({"inputText": text, "dimensions": EMBEDDING_DIMENSIONS, "normalize": true}).to_string();
    let out = app
        .bedrock
        .invoke_model()
        .model_id(EMBEDDING_MODEL)
        .content_type("application/json")
        .accept("application/json")
        .body(Blob::new(body))
        .send()
        .await
        .map_err(|e| aws_sdk_bedrockruntime::error::DisplayErrorContext(e).to_string())?;
    // Titan's answer: {"embedding": [...], "inputTextTokenCount": n}; serde reads the numbers as f32.
    #[derive(serde::Deserialize)]
    struct Embedding {
        embedding: Vec<f32>,
        #[serde(rename = "inputTextTokenCount", default)]
        tokens: f64,
    }
    let answer = serde_json::from_slice::<Embedding>(out.body().as_ref()).map_err(|e| format!("the embedding answer is not one: {e}"))?;
    // Billed per input token: metered as the model counted them.
    telemetry::note(telemetry::unit::BEDROCK_EMBEDDING_TOKENS, answer.tokens);
    let vector = answer.embedding;
    if vector.len() != usize::try_from(EMBEDDING_DIMENSIONS).unwrap_or(0) {
        return Err(format!("the embedding has {} dimensions, not {EMBEDDING_DIMENSIONS}", vector.len()));
    }
    Ok(vector)
}

/// The chunks of the org's documents nearest to `question`: none when retrieval is not
/// configured, the org has no index yet, or the query fails (the answer then draws on the
/// conversation and the tasks alone). Chunks of files that are gone or no longer ready are
/// dropped, so a deleted file stops being cited at once, before its vectors are removed.
pub async fn retrieve(app: &AppState, scope: &OrgScope, question: &str, filter: &Filter) -> Vec<Source> {
    let Some(vectors) = &app.vectors else { return Vec::new() };
    let index = vectors.buckets.index_of(scope.org_id());
    let vector = match embed(app, question).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = e, "embedding the question failed: answering without the org's documents");
            return Vec::new();
        }
    };
    let out = vectors
        .client
        .query_vectors()
        .vector_bucket_name(&index.bucket)
        .index_name(&index.index)
        .top_k(TOP_K)
        .query_vector(VectorData::Float32(vector))
        .set_filter(filter.document())
        .return_metadata(true)
        .return_distance(true)
        .send()
        .await;
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            let missing = e.as_service_error().is_some_and(aws_sdk_s3vectors::operation::query_vectors::QueryVectorsError::is_not_found_exception);
            if !missing {
                tracing::warn!(error = %aws_sdk_s3vectors::error::DisplayErrorContext(&e), "querying the vector index failed");
            }
            return Vec::new();
        }
    };
    let mut found = Vec::new();
    for v in out.vectors() {
        let Some(meta) = v.metadata().map(to_json) else { continue };
        let text = meta.get("text").and_then(Value::as_str).unwrap_or("").to_owned();
        let Some(file_id) = meta.get("fileId").and_then(Value::as_str).and_then(|f| f.parse::<FileId>().ok()) else { continue };
        let name = meta.get("name").and_then(Value::as_str).unwrap_or("document").to_owned();
        // S3 Vectors may give a number back as a float.
        let page = meta
            .get("page")
            .and_then(|p| p.as_u64().or_else(|| p.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| format!("{f:.0}").parse().unwrap_or(0))))
            .and_then(|p| u32::try_from(p).ok());
        found.push((file_id, name, page, text));
    }
    // Only files that are still there and ready.
    let mut ids: Vec<FileId> = found.iter().map(|f| f.0).collect();
    ids.sort();
    ids.dedup();
    let checks = futures::future::join_all(ids.iter().map(|id| app.store.get_file(scope, *id))).await;
    let live: Vec<FileId> = ids.iter().zip(checks).filter(|(_, f)| matches!(f, Ok(Some(f)) if f.status == FileStatus::Ready)).map(|(id, _)| *id).collect();
    found
        .into_iter()
        .filter(|f| live.contains(&f.0))
        .zip(1u32..)
        .map(|((file_id, name, page, text), number)| Source {
            text,
            citation: Citation {
                number,
                kind: "file".into(),
                file_id: Some(file_id.to_string()),
                task_id: None,
                project_id: None,
                title: name,
                page,
                link: format!("/orgs/{}/files/{file_id}/download", scope.org_id()),
            },
        })
        .collect()
}

/// The queue of domain events: each message's body is one event. A message that fails is
/// reported (and comes back after its visibility timeout); one that can never succeed (not
/// an event) is dropped with a log line.
pub async fn on_queue(app: &AppState, event: SqsEvent) -> RecordFailures {
    let mut failed = Vec::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let Some(body) = message.body.as_deref() else { continue };
        let event: DomainEvent = match serde_json::from_str(body) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, message_id = id, "a message that is not a domain event: dropped");
                continue;
            }
        };
        if let Err(e) = ingest_event(app, &event).await {
            tracing::warn!(error = e, event_id = event.id, kind = event.kind.as_str(), "ingesting an event failed; it will be retried");
            failed.push(id);
        }
    }
    failed
}

/// Applies one event to the org's index: a processed file's chunks are (re)written, a deleted
/// file's removed. Safe to repeat.
pub async fn ingest_event(app: &AppState, event: &DomainEvent) -> Result<(), String> {
    let Some(vectors) = &app.vectors else { return Ok(()) };
    let Some(file_id) = event.file_id else { return Ok(()) };
    let index = vectors.buckets.index_of(event.org_id);
    match event.kind {
        EventKind::FileProcessed => {
            // An org being deleted gets no index: its purge may have deleted it already.
            if app.store.plan_of(event.org_id).await.map_err(|e| e.to_string())?.is_none() {
                return Ok(());
            }
            let key = format!("{}{}/{file_id}", store::UPLOAD_PREFIX, event.org_id);
            match app.store.file_of_object(&key).await.map_err(|e| e.to_string())? {
                Some(file) if file.status == FileStatus::Ready && file.has_text => ingest_file(app, vectors, &index, &file).await,
                // Not (or no longer) a ready document: whatever the index holds of it goes.
                _ => remove_file(app, vectors, &index, event.org_id, file_id).await,
            }
        }
        EventKind::FileDeleted => remove_file(app, vectors, &index, event.org_id, file_id).await,
        _ => Ok(()),
    }
}

fn vector_key(file: FileId, n: usize) -> String {
    format!("{file}#{n:05}")
}

/// Creates the org's index unless it exists.
async fn ensure_index(vectors: &Vectors, index: &VectorIndex) -> Result<(), String> {
    let metadata = MetadataConfiguration::builder()
        .set_non_filterable_metadata_keys(Some(NON_FILTERABLE.iter().map(|k| (*k).to_owned()).collect()))
        .build()
        .map_err(|e| e.to_string())?;
    let created = vectors
        .client
        .create_index()
        .vector_bucket_name(&index.bucket)
        .index_name(&index.index)
        .data_type(DataType::Float32)
        .dimension(i32::try_from(EMBEDDING_DIMENSIONS).unwrap_or(512))
        .distance_metric(DistanceMetric::Cosine)
        .metadata_configuration(metadata)
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(aws_sdk_s3vectors::operation::create_index::CreateIndexError::is_conflict_exception) => Ok(()),
        Err(e) => Err(aws_sdk_s3vectors::error::DisplayErrorContext(e).to_string()),
    }
}

async fn ingest_file(app: &AppState, vectors: &Vectors, index: &VectorIndex, file: &StoredFile) -> Result<(), String> {
    let object =
        app.s3.get_object().bucket(&*app.bucket).key(file.text_key()).send().await.map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())?;
    let etag = object.e_tag().unwrap_or("").to_owned();
    let before = app.store.indexed_file(file.org_id, file.id).await.map_err(|e| e.to_string())?;
    if before.as_ref().is_some_and(|b| b.etag == etag && !etag.is_empty()) {
        return Ok(());
    }
    let bytes = object.body.collect().await.map_err(|e| e.to_string())?.into_bytes();
    let text = String::from_utf8_lossy(&bytes);
    let chunks = crate::chunk::chunks(&text);
    ensure_index(vectors, index).await?;
    let texts: Vec<(usize, String)> = chunks.iter().map(|c| c.text.clone()).enumerate().collect();
    let embedded: Vec<(usize, Vec<f32>)> = futures::stream::iter(texts.into_iter().map(|(n, text)| {
        let app = app.clone();
        async move { embed(&app, &text).await.map(|v| (n, v)) }
    }))
    .buffered(EMBED_CONCURRENCY)
    .try_collect()
    .await?;
    // The record covers every key written before any is: a crash between the writes leaves a
    // record that still names every chunk, so a deletion finds them all.
    let previous = before.as_ref().map_or(0, |b| b.chunks);
    let covering = IndexedFile { file_id: file.id, chunks: previous.max(u64::try_from(chunks.len()).unwrap_or(0)), etag: String::new() };
    app.store.set_indexed_file(file.org_id, &covering).await.map_err(|e| e.to_string())?;
    let attached = file.attached_to.as_ref();
    let mut batch = Vec::with_capacity(VECTOR_BATCH);
    for (n, vector) in embedded {
        let c = &chunks[n];
        let mut meta = json!({"fileId": file.id.to_string(), "name": file.name, "page": c.page, "start": c.start, "end": c.end, "text": c.text});
        if let Some(a) = attached {
            meta["projectId"] = json!(a.project_id.to_string());
            if let Some(t) = a.task_id {
                meta["taskId"] = json!(t.to_string());
            }
        }
        let v = PutInputVector::builder()
            .key(vector_key(file.id, n))
            .data(VectorData::Float32(vector))
            .metadata(to_document(&meta))
            .build()
            .map_err(|e| e.to_string())?;
        batch.push(v);
        if batch.len() == VECTOR_BATCH {
            put(vectors, index, std::mem::take(&mut batch)).await?;
        }
    }
    if !batch.is_empty() {
        put(vectors, index, batch).await?;
    }
    // Chunks of an earlier, longer text.
    let previous = before.map_or(0, |b| usize::try_from(b.chunks).unwrap_or(0));
    delete_keys(vectors, index, (chunks.len()..previous).map(|n| vector_key(file.id, n)).collect()).await?;
    let record = IndexedFile { file_id: file.id, chunks: u64::try_from(chunks.len()).unwrap_or(0), etag };
    app.store.set_indexed_file(file.org_id, &record).await.map_err(|e| e.to_string())?;
    // Deleted meanwhile: take the chunks back out.
    let key = file.object_key();
    if app.store.file_of_object(&key).await.map_err(|e| e.to_string())?.is_none() {
        return remove_file(app, vectors, index, file.org_id, file.id).await;
    }
    tracing::info!(file_id = %file.id, chunks = chunks.len(), "file ingested");
    Ok(())
}

async fn put(vectors: &Vectors, index: &VectorIndex, batch: Vec<PutInputVector>) -> Result<(), String> {
    vectors
        .client
        .put_vectors()
        .vector_bucket_name(&index.bucket)
        .index_name(&index.index)
        .set_vectors(Some(batch))
        .send()
        .await
        .map_err(|e| aws_sdk_s3vectors::error::DisplayErrorContext(e).to_string())?;
    Ok(())
}

async fn delete_keys(vectors: &Vectors, index: &VectorIndex, keys: Vec<String>) -> Result<(), String> {
    for chunk in keys.chunks(VECTOR_BATCH) {
        let deleted = vectors.client.delete_vectors().vector_bucket_name(&index.bucket).index_name(&index.index).set_keys(Some(chunk.to_vec())).send().await;
        match deleted {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(aws_sdk_s3vectors::operation::delete_vectors::DeleteVectorsError::is_not_found_exception) => {
                return Ok(());
            }
            Err(e) => return Err(aws_sdk_s3vectors::error::DisplayErrorContext(e).to_string()),
        }
    }
    Ok(())
}

async fn remove_file(app: &AppState, vectors: &Vectors, index: &VectorIndex, org: OrgId, file: FileId) -> Result<(), String> {
    let Some(record) = app.store.indexed_file(org, file).await.map_err(|e| e.to_string())? else { return Ok(()) };
    let count = usize::try_from(record.chunks).unwrap_or(0);
    delete_keys(vectors, index, (0..count).map(|n| vector_key(file, n)).collect()).await?;
    app.store.forget_indexed_file(org, file).await.map_err(|e| e.to_string())?;
    tracing::info!(file_id = %file, chunks = count, "file's chunks removed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_s3_vectors_filter_documents() {
        assert!(Filter::default().document().is_none());
        let f = Filter { project: Some("P".into()), files: vec!["A".into(), "B".into()] };
        assert_eq!(to_json(&f.document().unwrap()), json!({"$and": [{"projectId": {"$eq": "P"}}, {"fileId": {"$in": ["A", "B"]}}]}));
    }

    #[test]
    fn vector_keys_sort_by_chunk() {
        let f = FileId::new();
        assert!(vector_key(f, 2) < vector_key(f, 10));
    }
}
