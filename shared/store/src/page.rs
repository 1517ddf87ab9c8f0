//! Pagination with opaque, signed cursors bound to one query over one partition.
//!
//! A cursor is `base64url(payload).base64url(mac)`, where the payload names the query, the
//! partition it was issued for and DynamoDB's `LastEvaluatedKey`, and the MAC is an
//! HMAC-SHA256 over the payload. A cursor edited by hand fails the MAC; a cursor replayed
//! against another org or another query fails the binding check. Either way: `InvalidCursor`.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::DomainError;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const DEFAULT_LIMIT: u32 = 25;
pub const MAX_LIMIT: u32 = 100;
const MAC_LEN: usize = 16;
const MAX_CURSOR_LEN: usize = 2048;

/// A page request: `limit` is clamped to `1..=100` and defaults to 25.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl PageRequest {
    pub fn first(limit: u32) -> Self {
        PageRequest { limit: Some(limit), cursor: None }
    }
    pub fn effective_limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The secret cursors are signed with.
#[derive(Clone)]
pub struct CursorKey(Vec<u8>);

impl CursorKey {
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        CursorKey(secret.as_ref().to_vec())
    }

    /// A key for another purpose derived from this secret (HMAC of `label`): one secret to
    /// manage, and a key that signs one kind of token cannot sign another.
    pub fn derive(&self, label: &str) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(b"tenantry-derived-key:");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

#[derive(Serialize, Deserialize)]
struct Payload {
    /// The query the cursor belongs to.
    q: String,
    /// The partition value the query ran on.
    p: String,
    /// `LastEvaluatedKey`, all of whose attributes are strings in this table.
    k: BTreeMap<String, String>,
}

/// Identifies one paginated query over one partition.
pub(crate) struct QueryBinding<'a> {
    pub query: &'static str,
    pub partition: &'a str,
    /// The attribute of `LastEvaluatedKey` that must equal `partition`.
    pub partition_attribute: &'static str,
}

impl CursorKey {
    pub(crate) fn encode(&self, binding: &QueryBinding<'_>, last_key: &HashMap<String, AttributeValue>) -> Option<String> {
        let mut k = BTreeMap::new();
        for (name, value) in last_key {
            match value {
                AttributeValue::S(s) => {
                    k.insert(name.clone(), s.clone());
                }
                _ => {
                    tracing::error!(attribute = %name, "non-string key attribute; cannot paginate");
                    return None;
                }
            }
        }
        let payload = Payload { q: binding.query.to_owned(), p: binding.partition.to_owned(), k };
        let json = serde_json::to_vec(&payload).ok()?;
        let mut mac = self.mac();
        mac.update(&json);
        let tag = mac.finalize().into_bytes();
        Some(format!("{}.{}", URL_SAFE_NO_PAD.encode(&json), URL_SAFE_NO_PAD.encode(&tag[..MAC_LEN])))
    }

    pub(crate) fn decode(&self, binding: &QueryBinding<'_>, cursor: &str) -> Result<HashMap<String, AttributeValue>, DomainError> {
        let bad = || DomainError::InvalidCursor;
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(bad());
        }
        let (body, tag) = cursor.split_once('.').ok_or_else(bad)?;
        let json = URL_SAFE_NO_PAD.decode(body).map_err(|_| bad())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| bad())?;
        let mut mac = self.mac();
        mac.update(&json);
        mac.verify_truncated_left(&tag).map_err(|_| bad())?;
        if tag.len() != MAC_LEN {
            return Err(bad());
        }
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| bad())?;
        let bound = payload.q == binding.query
            && payload.p == binding.partition
            && payload.k.get(binding.partition_attribute).map(String::as_str) == Some(binding.partition);
        if !bound {
            return Err(bad());
        }
        Ok(payload.k.into_iter().map(|(k, v)| (k, AttributeValue::S(v))).collect())
    }
}

/// One paginated query: a partition (of the table or of an index) and a sort-key prefix.
pub(crate) struct PagedQuery<'a> {
    pub name: &'static str,
    pub index: Option<&'static str>,
    pub partition_attribute: &'static str,
    pub partition: &'a str,
    pub sort_attribute: &'static str,
    /// Which sort keys of the partition.
    pub sort: Sort<'a>,
    /// Newest first.
    pub descending: bool,
    /// A filter on the items the key condition reads (a page may then hold fewer items than
    /// its limit, and still have a next one).
    pub filter: Option<Filter>,
}

/// A `FilterExpression` with its placeholders (`#f…` names, `:f…` values).
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    pub expression: String,
    pub names: Vec<(String, String)>,
    pub values: Vec<(String, AttributeValue)>,
}

impl<'a> PagedQuery<'a> {
    /// A query of the table's partition `partition`, oldest (lowest sort key) first.
    pub fn on_table(name: &'static str, partition: &'a str, sort: Sort<'a>) -> Self {
        PagedQuery {
            name,
            index: None,
            partition_attribute: crate::keys::PK,
            partition,
            sort_attribute: crate::keys::SK,
            sort,
            descending: false,
            filter: None,
        }
    }

    /// A query of partition `partition` of the index `gsi`, lowest sort key first.
    pub fn on_index(name: &'static str, gsi: crate::keys::Gsi, partition: &'a str, sort: Sort<'a>) -> Self {
        let (partition_attribute, sort_attribute) = gsi.attributes();
        PagedQuery { name, index: Some(gsi.name()), partition_attribute, partition, sort_attribute, sort, descending: false, filter: None }
    }

    /// The same query, highest sort key first.
    pub fn newest_first(self) -> Self {
        PagedQuery { descending: true, ..self }
    }

    /// The same query, keeping only the items that pass `filter`.
    pub fn filtered(self, filter: Option<Filter>) -> Self {
        PagedQuery { filter, ..self }
    }
}

impl Sort<'_> {
    /// Whether a sort key satisfies the condition: a cursor's start key must, or it was issued
    /// for another range of the partition (another org's entries in a shared index partition).
    fn admits(&self, key: &str) -> bool {
        match *self {
            Sort::Prefix(prefix) => key.starts_with(prefix),
            Sort::Between(from, below) => from <= key && key <= below,
            Sort::From(from) => from <= key,
            Sort::Below(below) => key < below,
        }
    }
}

/// The sort-key condition of a [`PagedQuery`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sort<'a> {
    /// Keys that begin with this (all keys for "").
    Prefix(&'a str),
    /// Keys from the first (inclusive) below the second (exclusive, given that keys continue
    /// with `#…` past a bound they equal).
    Between(&'a str, &'a str),
    /// Keys from this one on.
    From(&'a str),
    /// Keys below this one.
    Below(&'a str),
}

impl crate::Store {
    pub(crate) async fn query_page<E: crate::item::Entity>(&self, q: &PagedQuery<'_>, page: &PageRequest) -> Result<Page<E>, DomainError> {
        let binding = QueryBinding { query: q.name, partition: q.partition, partition_attribute: q.partition_attribute };
        let start = page.cursor.as_deref().map(|c| self.cursor_key.decode(&binding, c)).transpose()?;
        if let Some(start) = &start
            && !start.get(q.sort_attribute).and_then(|v| v.as_s().ok()).is_some_and(|k| q.sort.admits(k))
        {
            return Err(DomainError::InvalidCursor);
        }
        let mut request = self
            .client
            .query()
            .table_name(&*self.table)
            .set_index_name(q.index.map(str::to_owned))
            .expression_attribute_names("#pk", q.partition_attribute)
            .expression_attribute_values(":pk", AttributeValue::S(q.partition.to_owned()));
        let bound = |r: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder, condition: &str, values: &[&str]| {
            let mut r = r.key_condition_expression(format!("#pk = :pk AND {condition}")).expression_attribute_names("#sk", q.sort_attribute);
            for (i, v) in values.iter().enumerate() {
                r = r.expression_attribute_values(format!(":s{i}"), AttributeValue::S((*v).to_owned()));
            }
            r
        };
        request = match q.sort {
            Sort::Prefix("") => request.key_condition_expression("#pk = :pk"),
            Sort::Prefix(prefix) => bound(request, "begins_with(#sk, :s0)", &[prefix]),
            Sort::Between(from, below) => bound(request, "#sk BETWEEN :s0 AND :s1", &[from, below]),
            Sort::From(from) => bound(request, "#sk >= :s0", &[from]),
            Sort::Below(below) => bound(request, "#sk < :s0", &[below]),
        };
        if let Some(filter) = &q.filter {
            request = request.filter_expression(&filter.expression);
            for (placeholder, name) in &filter.names {
                request = request.expression_attribute_names(placeholder, name);
            }
            for (placeholder, value) in &filter.values {
                request = request.expression_attribute_values(placeholder, value.clone());
            }
        }
        let out = request
            .set_consistent_read(q.index.is_none().then_some(true))
            .scan_index_forward(!q.descending)
            .limit(i32::try_from(page.effective_limit()).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(crate::tx::unexpected)?;
        let items = out.items.unwrap_or_default().into_iter().map(crate::item::from_item).collect::<Result<Vec<E>, _>>()?;
        let next_cursor = out.last_evaluated_key.as_ref().and_then(|k| self.cursor_key.encode(&binding, k));
        Ok(Page { items, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(p: &str) -> QueryBinding<'_> {
        QueryBinding { query: "members", partition: p, partition_attribute: "PK" }
    }

    fn last_key(pk: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([("PK".to_owned(), AttributeValue::S(pk.to_owned())), ("SK".to_owned(), AttributeValue::S("MEMBER#u1".to_owned()))])
    }

    #[test]
    fn cursor_round_trips_and_rejects_tampering() {
        let key = CursorKey::new("k");
        let c = key.encode(&binding("ORG#A"), &last_key("ORG#A")).unwrap();
        assert_eq!(key.decode(&binding("ORG#A"), &c).unwrap(), last_key("ORG#A"));
        // another partition, another query, another key
        assert_eq!(key.decode(&binding("ORG#B"), &c), Err(DomainError::InvalidCursor));
        let other_query = QueryBinding { query: "orgs", ..binding("ORG#A") };
        assert_eq!(key.decode(&other_query, &c), Err(DomainError::InvalidCursor));
        assert_eq!(CursorKey::new("other").decode(&binding("ORG#A"), &c), Err(DomainError::InvalidCursor));
        // every single-character edit is refused
        for i in 0..c.len() {
            let mut bytes = c.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let edited = String::from_utf8(bytes).unwrap();
            if edited != c {
                assert!(key.decode(&binding("ORG#A"), &edited).is_err(), "edit at {i} accepted");
            }
        }
        for junk in ["", ".", "abc", "abc.def", &"x".repeat(5000)] {
            assert_eq!(key.decode(&binding("ORG#A"), junk), Err(DomainError::InvalidCursor));
        }
    }

    #[test]
    fn limits_are_defaulted_and_capped() {
        assert_eq!(PageRequest::default().effective_limit(), 25);
        assert_eq!(PageRequest::first(1000).effective_limit(), 100);
        assert_eq!(PageRequest::first(0).effective_limit(), 1);
    }
}
