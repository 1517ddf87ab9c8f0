//! The local stack's resources beyond the table and the user pool: the vector buckets exist where
//! the platform tells the functions they are, as the infrastructure's do.

#![allow(clippy::unwrap_used)] // a test fails by panicking

use std::collections::HashMap;

use store::VectorBuckets;

#[tokio::test]
async fn provisioning_creates_the_vector_buckets_the_functions_are_told_of() {
    let endpoint = testkit::local_aws().endpoint.clone();
    let config = testkit::sdk_config().await;
    let table = format!("runner-{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
    let resources = local_runner::provision::provision(&config, &endpoint, &table).await.unwrap();
    assert_eq!(resources.vector_buckets, local_runner::provision::vector_buckets(&table));

    let store = store::Store::new(store::dynamodb_client(&config), table.clone(), store::CursorKey::new("runner"));
    let platform = local_runner::provision::platform(&config, store, "https://app.example.com", HashMap::new());
    let told = VectorBuckets::from_vars(|name| platform.var(name)).expect("the functions are told the vector buckets");
    assert_eq!(told, resources.vector_buckets);
    assert_eq!(told.bucket_names(), [format!("{table}-vectors-0")]);

    let s3vectors = aws_sdk_s3vectors::Client::new(&config);
    for name in told.bucket_names() {
        s3vectors.get_vector_bucket().vector_bucket_name(&name).send().await.unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
}
