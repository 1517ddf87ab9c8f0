//! The table definition, shared with the infrastructure (`table.json`), and creation of
//! a table from it for tests and the local stack.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType, StreamSpecification,
    StreamViewType, TimeToLiveSpecification,
};
use serde::Deserialize;

/// The JSON the infrastructure reads too.
pub const TABLE_JSON: &str = include_str!("../table.json");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableDefinition {
    pub partition_key: String,
    pub sort_key: String,
    pub global_secondary_indexes: Vec<IndexDefinition>,
    pub time_to_live_attribute: String,
    pub stream_view_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexDefinition {
    pub index_name: String,
    pub partition_key: String,
    pub sort_key: String,
}

impl TableDefinition {
    pub fn load() -> TableDefinition {
        serde_json::from_str(TABLE_JSON).expect("table.json is valid (checked by a unit test)")
    }

    /// Creates the table on the local endpoint (on-demand, with its keys, GSIs and TTL),
    /// without a stream: what a test that consumes no stream needs.
    pub async fn create(&self, client: &Client, name: &str) -> Result<(), aws_sdk_dynamodb::Error> {
        self.create_table(client, name, false).await
    }

    /// [`TableDefinition::create`] with the stream the infrastructure enables
    /// (`stream_view_type`): the local stack, and tests of stream consumers.
    pub async fn create_with_stream(&self, client: &Client, name: &str) -> Result<(), aws_sdk_dynamodb::Error> {
        self.create_table(client, name, true).await
    }

    async fn create_table(&self, client: &Client, name: &str, stream: bool) -> Result<(), aws_sdk_dynamodb::Error> {
        let key = |attr: &str, kt: KeyType| KeySchemaElement::builder().attribute_name(attr).key_type(kt).build().expect("complete");
        let string_attr = |attr: &str| AttributeDefinition::builder().attribute_name(attr).attribute_type(ScalarAttributeType::S).build().expect("complete");
        let mut req = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(&self.partition_key, KeyType::Hash))
            .key_schema(key(&self.sort_key, KeyType::Range))
            .attribute_definitions(string_attr(&self.partition_key))
            .attribute_definitions(string_attr(&self.sort_key));
        for gsi in &self.global_secondary_indexes {
            req = req.attribute_definitions(string_attr(&gsi.partition_key)).attribute_definitions(string_attr(&gsi.sort_key)).global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(&gsi.index_name)
                    .key_schema(key(&gsi.partition_key, KeyType::Hash))
                    .key_schema(key(&gsi.sort_key, KeyType::Range))
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
                    .build()
                    .expect("complete"),
            );
        }
        if stream {
            req = req.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(self.stream_view_type.as_str()))
                    .build()
                    .expect("complete"),
            );
        }
        req.send().await?;
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder().enabled(true).attribute_name(&self.time_to_live_attribute).build().expect("complete"),
            )
            .send()
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn definition_parses() {
        let def = super::TableDefinition::load();
        assert_eq!(def.partition_key, "PK");
        assert_eq!(def.global_secondary_indexes.len(), 4);
        assert_eq!(def.stream_view_type, "NEW_AND_OLD_IMAGES");
    }
}
