//! Fuzz targets: one function per target, each feeding untrusted bytes to the project's real
//! parsers and asserting only what must hold (no panic; where cheap, a round trip or a bound).
//! `fuzz/` (cargo-fuzz, nightly) drives them; `tests/corpus.rs` replays the corpus and the
//! regressions on stable.

use std::future::Future;
use std::str::FromStr;

use aws_lambda_events::event::{cognito, dynamodb, eventbridge, s3, sqs};
use domain::chat::ChatSettings;
use domain::{Email, OrgId, Plan, Slug, UserId};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A fuzz target: it takes any bytes and panics only on a bug.
pub type Target = fn(&[u8]);

/// The targets by name, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/` name them.
pub const TARGETS: [(&str, Target); 8] = [
    ("json_bodies", json_bodies),
    ("cursors", cursors),
    ("ids_and_slugs", ids_and_slugs),
    ("csv_import", csv_import),
    ("cognito_events", cognito_events),
    ("lambda_events", lambda_events),
    ("mail_templates", mail_templates),
    ("text_extraction", text_extraction),
];

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

fn body<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    api::parse_json::<T>(data).ok()
}

/// JSON bodies into each public request type, then the validation they go through.
pub fn json_bodies(data: &[u8]) {
    if let Some(settings) = body::<ChatSettings>(data) {
        for plan in Plan::ALL {
            let _ = settings.validate(plan);
        }
    }
    if let Some(patch) = body::<domain::OrgSettingsPatch>(data) {
        let mut settings = domain::OrgSettings::default();
        let _ = patch.apply(&mut settings, "settings");
    }
    let _ = body::<chat::PostMessage>(data);
    let _ = body::<chat::CreateConversation>(data);
    let _ = body::<chat::RenameConversation>(data);
    let _ = body::<files::CreateFile>(data);
    let _ = body::<files::RenameFile>(data);
    let _ = body::<store::DomainEvent>(data);
}

/// Pagination parameters from a query string, as every listing reads them. (The store's cursor
/// decoding is not public; the listings' tests cover forged and foreign cursors.)
pub fn cursors(data: &[u8]) {
    use axum::extract::FromRequestParts;
    let query = text(data);
    let Ok(uri) = format!("/x?{query}").parse::<http::Uri>() else { return };
    let Ok(request) = http::Request::builder().uri(uri).body(()) else { return };
    let (mut parts, ()) = request.into_parts();
    // The extractor never awaits anything: one poll finishes it.
    let mut future = std::pin::pin!(api::PageQuery::from_request_parts(&mut parts, &()));
    let std::task::Poll::Ready(result) = future.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) else {
        panic!("PageQuery's extractor did not finish in one poll");
    };
    if let Ok(page) = result {
        assert!(page.page.limit.is_none_or(|n| n >= 1), "a limit of 0 accepted");
        assert!(page.page.cursor.as_deref().is_none_or(|c| !c.is_empty()), "an empty cursor kept");
        let _ = page.only(&["status"]);
    }
}

/// Ids, slugs, emails, due dates and the text validators, on lossy UTF-8.
pub fn ids_and_slugs(data: &[u8]) {
    let s = text(data);
    if let Ok(id) = OrgId::from_str(&s) {
        assert_eq!(OrgId::from_str(&id.to_string()).ok(), Some(id), "OrgId round trip");
    }
    if let Ok(id) = UserId::from_str(&s) {
        assert_eq!(UserId::from_str(id.as_str()).ok(), Some(id), "UserId round trip");
    }
    if let Ok(slug) = Slug::from_str(&s) {
        assert_eq!(Slug::from_str(slug.as_str()).ok(), Some(slug), "Slug round trip");
    }
    if let Some(slug) = Slug::derive(&s) {
        assert!(Slug::from_str(slug.as_str()).is_ok(), "a derived slug parses: {:?}", slug.as_str());
    }
    if let Ok(email) = Email::from_str(&s) {
        let _ = (email.folded(), email.domain());
        assert!(Email::from_str(email.as_str()).is_ok(), "Email round trip");
    }
    let _ = domain::work::ProjectId::from_str(&s);
    let _ = domain::work::TaskId::from_str(&s);
    let _ = domain::work::CommentId::from_str(&s);
    let _ = domain::work::FileId::from_str(&s);
    let _ = domain::chat::ConversationId::from_str(&s);
    let _ = domain::chat::MessageId::from_str(&s);
    if let Ok(due) = domain::work::Due::parse("due", &s) {
        let _ = due.key();
        assert!(domain::work::Due::parse("due", due.as_str()).is_ok(), "Due round trip");
    }
    let _ = domain::work::due_bound("due", &s);
    let _ = domain::work::ProjectName::parse("name", &s);
    let _ = domain::work::TaskTitle::parse("title", &s);
    let _ = domain::work::Label::parse("label", &s);
    let _ = domain::work::comment_text("text", &s);
    let _ = domain::work::mentioned_handles(&s);
    let _ = domain::OrgName::parse("name", &s);
    let _ = domain::chat::title(&s, "title");
    let _ = domain::chat::message_content(&s, "content");
}

/// The task CSV import.
pub fn csv_import(data: &[u8]) {
    const MAX_ROWS: usize = 1_000;
    if let Ok(rows) = domain::task_csv::parse_tasks_csv(data, MAX_ROWS) {
        assert!(rows.len() <= MAX_ROWS, "{} rows past the bound", rows.len());
    }
}

/// Cognito trigger events, as the Lambda runtime hands them to the triggers.
pub fn cognito_events(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let _ = serde_json::from_value::<cognito::CognitoEventUserPoolsPreSignup>(value.clone());
    let _ = serde_json::from_value::<cognito::CognitoEventUserPoolsPostConfirmation>(value.clone());
    let _ = serde_json::from_value::<cognito::CognitoEventUserPoolsPostAuthentication>(value.clone());
    let _ = serde_json::from_value::<cognito::CognitoEventUserPoolsCustomMessage>(value.clone());
    let _ = serde_json::from_value::<cognito::CognitoEventUserPoolsPreTokenGenV2>(value);
}

/// Stream, queue, S3 and EventBridge records, the event classification and upload keys.
pub fn lambda_events(data: &[u8]) {
    let s = text(data);
    if let Some(key) = files::decode_key(&s) {
        let _ = store::parse_upload_key(&key);
    }
    let _ = store::parse_upload_key(&s);
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let _ = api::event_kind(&value);
    let _ = serde_json::from_value::<dynamodb::Event>(value.clone());
    let _ = serde_json::from_value::<s3::S3Event>(value.clone());
    let _ = serde_json::from_value::<eventbridge::EventBridgeEvent<Value>>(value.clone());
    if let Ok(event) = serde_json::from_value::<sqs::SqsEvent>(value.clone()) {
        for record in event.records {
            if let Some(body) = record.body {
                let _ = serde_json::from_str::<store::DomainEvent>(&body);
                let _ = serde_json::from_str::<s3::S3Event>(&body);
            }
        }
    }
    let _ = serde_json::from_value::<store::DomainEvent>(value);
}

/// Mail rendering with hostile values: the bytes split into brand, org name, logo and values.
pub fn mail_templates(data: &[u8]) {
    const MESSAGE: mail::Message = mail::Message {
        subject: "{{sender}} invited you: {{name}}",
        heading: "Hello {{name}}",
        html: "<p>{{name}} ({{email}}) {{raw}}</p><a href=\"{{link}}\">{{link}}</a>",
        text: "{{name}} <{{email}}> {{link}} {{raw}}",
    };
    let s = text(data);
    let mut parts = s.split('\u{0}');
    let mut next = || parts.next().unwrap_or("").to_owned();
    let brand = mail::Brand { product: next(), org_name: Some(next()).filter(|s| !s.is_empty()), logo_url: Some(next()) };
    let (name, email, link) = (next(), next(), next());
    let rendered = MESSAGE.render(
        &brand,
        &[("name", mail::Value::Text(&name)), ("email", mail::Value::Text(&email)), ("link", mail::Value::Text(&link)), ("raw", mail::Value::Raw("{####}"))],
    );
    assert!(!rendered.subject.contains(['\r', '\n']), "a line break in the subject: {:?}", rendered.subject);
    for hostile in [&name, &email, &link] {
        if hostile.contains('<') {
            assert!(!rendered.html.contains(hostile.as_str()), "unescaped value in the HTML: {hostile:?}");
        }
    }
    let escaped = mail::escape_html(&s);
    assert!(!escaped.contains(['<', '>', '"']), "escape_html left markup: {escaped:?}");
    assert!(!mail::single_line(&s).contains(['\r', '\n']), "single_line left a line break");
}

/// Sniffing and processing an upload within the default limits, and chunking its text.
pub fn text_extraction(data: &[u8]) {
    let limits = media::Limits::default();
    let kind = media::sniff(data);
    let _ = media::process(data, kind, &limits);
    let s = text(data);
    for chunk in chat::chunks(&s) {
        let tokens = domain::chat::estimate_tokens(&chunk.text);
        assert!(tokens <= chat::CHUNK_TOKENS, "a chunk of {tokens} tokens past {}", chat::CHUNK_TOKENS);
        assert!(chunk.start <= chunk.end, "chunk offsets out of order");
    }
}
