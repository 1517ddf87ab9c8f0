//! Conversion between entities and table items: serde_dynamo for the attributes, plus the
//! key and type attributes that only this crate writes.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::DomainError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::keys::{IndexKey, Key, PK, SK, TYPE};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// An entity stored in the table.
pub(crate) trait Entity: Serialize + DeserializeOwned {
    /// The `_type` attribute of its items.
    const TYPE: &'static str;
}

pub(crate) fn to_item<E: Entity>(entity: &E, key: &Key, indexes: &[IndexKey]) -> Result<Item, DomainError> {
    let mut item: Item = serde_dynamo::to_item(entity).map_err(|e| {
        tracing::error!(error = %e, entity = E::TYPE, "could not serialise entity");
        DomainError::Unavailable
    })?;
    item.insert(PK.into(), AttributeValue::S(key.pk.clone()));
    item.insert(SK.into(), AttributeValue::S(key.sk.clone()));
    item.insert(TYPE.into(), AttributeValue::S(E::TYPE.into()));
    for index in indexes {
        let (pk, sk) = index.index.attributes();
        item.insert(pk.into(), AttributeValue::S(index.pk.clone()));
        item.insert(sk.into(), AttributeValue::S(index.sk.clone()));
    }
    Ok(item)
}

pub(crate) fn from_item<E: Entity>(item: Item) -> Result<E, DomainError> {
    match item.get(TYPE) {
        Some(AttributeValue::S(t)) if t == E::TYPE => {}
        other => {
            tracing::error!(expected = E::TYPE, found = ?other, "item of unexpected type");
            return Err(DomainError::Unavailable);
        }
    }
    serde_dynamo::from_item(item).map_err(|e| {
        tracing::error!(error = %e, entity = E::TYPE, "could not deserialise item");
        DomainError::Unavailable
    })
}

pub(crate) fn av<T: Serialize>(value: &T) -> AttributeValue {
    serde_dynamo::to_attribute_value(value).expect("plain values always serialise")
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}
