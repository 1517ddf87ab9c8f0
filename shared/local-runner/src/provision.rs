//! Creates on the local endpoint what the infrastructure creates on AWS: the table (from the
//! same definition), the user pool with its app client and the platform-admin group, the upload
//! bucket and the vector buckets.

use aws_config::SdkConfig;
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, ExplicitAuthFlowsType, PasswordPolicyType, UserPoolPolicyType, UsernameAttributeType, VerifiedAttributeType,
};
use domain::Identity;
use std::collections::HashMap;

use store::{TableDefinition, VectorBuckets};

/// The local SES identity invitations are sent from.
pub const MAIL_DOMAIN: &str = "tenantry.local";
pub const MAIL_FROM: &str = "invites@tenantry.local";

/// What was created, and where.
#[derive(Debug, Clone)]
pub struct LocalResources {
    pub endpoint: String,
    pub table: String,
    pub user_pool_id: String,
    pub client_id: String,
    /// The private upload bucket (`files` will use it).
    pub upload_bucket: String,
    /// The S3 Vectors buckets of the orgs' vector indexes.
    pub vector_buckets: VectorBuckets,
    /// The private exports bucket.
    pub export_bucket: String,
}

impl LocalResources {
    pub fn issuer(&self) -> String {
        format!("https://cognito-idp.{}.amazonaws.com/{}", testkit::endpoint::REGION, self.user_pool_id)
    }
}

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub async fn provision(config: &SdkConfig, endpoint: &str, table: &str) -> Result<LocalResources, Error> {
    let dynamo = aws_sdk_dynamodb::Client::new(config);
    // With the stream the infrastructure enables: the local stack delivers it to consumers.
    TableDefinition::load().create_with_stream(&dynamo, table).await?;

    let cognito = aws_sdk_cognitoidentityprovider::Client::new(config);
    let pool = cognito
        .create_user_pool()
        .pool_name("tenantry-local")
        .username_attributes(UsernameAttributeType::Email)
        .auto_verified_attributes(VerifiedAttributeType::Email)
        .policies(
            UserPoolPolicyType::builder()
                .password_policy(
                    PasswordPolicyType::builder()
                        .minimum_length(12)
                        .require_lowercase(true)
                        .require_uppercase(true)
                        .require_numbers(true)
                        .require_symbols(false)
                        .build(),
                )
                .build(),
        )
        .send()
        .await?;
    let user_pool_id = pool.user_pool.and_then(|p| p.id).ok_or("no user pool id")?;
    let client = cognito
        .create_user_pool_client()
        .user_pool_id(&user_pool_id)
        .client_name("tenantry-web")
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        // moto puts an attribute into ID tokens only when the client may read it.
        .read_attributes("email")
        .read_attributes("email_verified")
        .read_attributes("name")
        // Nothing that names a tenant or a role is writable by users.
        .write_attributes("email")
        .write_attributes("name")
        .send()
        .await?;
    let client_id = client.user_pool_client.and_then(|c| c.client_id).ok_or("no client id")?;
    cognito.create_group().user_pool_id(&user_pool_id).group_name(Identity::PLATFORM_ADMIN_GROUP).send().await?;
    mail_identity(config).await;
    let upload_bucket = upload_bucket(table);
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(true).build());
    private_bucket(&s3, &upload_bucket).await?;
    let export_bucket = export_bucket(table);
    private_bucket(&s3, &export_bucket).await?;
    let vector_buckets = vector_buckets(table);
    let s3vectors = aws_sdk_s3vectors::Client::new(config);
    for name in vector_buckets.bucket_names() {
        s3vectors.create_vector_bucket().vector_bucket_name(name).send().await?;
    }
    Ok(LocalResources { endpoint: endpoint.to_owned(), table: table.to_owned(), user_pool_id, client_id, upload_bucket, vector_buckets, export_bucket })
}

/// Marks an email verified, as Cognito does when a sign-up is confirmed with an emailed code.
pub fn verified_email() -> AttributeType {
    AttributeType::builder().name("email_verified").value("true").build().expect("name is set")
}

/// The variables the infrastructure sets on a function besides the table, the cursor secret
/// and the user pool, with the local stack's values: the front end's address, and for a
/// function that sends mail (the registry's `ses_from_address`) the SES identity it sends from.
pub fn function_vars(app_url: &str, sends_mail: bool) -> HashMap<String, String> {
    let mut vars = HashMap::from([("APP_URL".to_owned(), app_url.to_owned())]);
    if sends_mail {
        vars.insert("SES_FROM_ADDRESS".to_owned(), MAIL_FROM.to_owned());
    }
    vars
}

/// Creates a private bucket (public access blocked), as the stack's buckets are.
pub async fn private_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), Error> {
    s3.create_bucket().bucket(bucket).send().await?;
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .block_public_policy(true)
                .ignore_public_acls(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

/// The local exports bucket of the stack on `table`.
pub fn export_bucket(table: &str) -> String {
    format!("{table}-exports")
}

/// The local upload bucket of the stack on `table`.
pub fn upload_bucket(table: &str) -> String {
    format!("{table}-uploads")
}

/// How many vector buckets the local stack has: one holds 10,000 orgs' indexes, more than a
/// machine's worth (the infrastructure's count is CDK context `vectorBuckets`).
pub const VECTOR_BUCKETS: u32 = 1;

/// The local vector buckets of the stack on `table`: `{table}-vectors-{n}`.
pub fn vector_buckets(table: &str) -> VectorBuckets {
    VectorBuckets { prefix: format!("{table}-vectors"), count: VECTOR_BUCKETS }
}

/// What the local functions are built from: the process's one AWS configuration, the store,
/// and the environment the infrastructure gives them on AWS ([`function_vars`], `extra`),
/// falling back to this process's environment.
pub fn platform(config: &SdkConfig, store: store::Store, app_url: &str, extra: HashMap<String, String>) -> api::Platform {
    // One platform serves every function here, so it has what any of them is given.
    let mut vars = function_vars(app_url, true);
    vars.insert("UPLOAD_BUCKET".to_owned(), upload_bucket(store.table_name()));
    vars.insert("EXPORT_BUCKET".to_owned(), export_bucket(store.table_name()));
    let vectors = vector_buckets(store.table_name());
    vars.insert(store::vectors::VECTOR_BUCKET_PREFIX_ENV.to_owned(), vectors.prefix);
    vars.insert(store::vectors::VECTOR_BUCKETS_ENV.to_owned(), vectors.count.to_string());
    vars.extend(extra);
    api::Platform::new(config.clone(), store, move |name| vars.get(name).cloned().or_else(|| std::env::var(name).ok()))
}

/// The SES identity invitations are sent from (already there when several stacks share one
/// endpoint, as tests do).
pub async fn mail_identity(config: &SdkConfig) {
    let ses = aws_sdk_sesv2::Client::new(config);
    if let Err(e) = ses.create_email_identity().email_identity(MAIL_DOMAIN).send().await {
        tracing::debug!(error = %aws_sdk_sesv2::error::DisplayErrorContext(&e), "mail identity");
    }
}
