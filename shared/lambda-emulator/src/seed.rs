//! Realistic data for the scenarios, written through the store as the functions would: an org
//! on the Enterprise plan (so the scenarios' own writes stay inside its limits) with an owner,
//! members, and one pending invitation per accept-invite invocation, whose tokens are kept;
//! and, for each invocation of a purge scenario, an org of its own that its owner deletes.
//!
//! Each scenario gets its own table, made from `table.json` without the stream: the local
//! endpoint (moto) deep-copies a table with its whole stream history for every item of every
//! transaction, so a streamed table makes each write slower than the last (quadratic). On
//! AWS a stream adds nothing to a write's latency, so leaving it out keeps the numbers honest.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::{Action, Identity, OrgName, Plan, Role};
use serde_json::{Value, json};
use store::{InviteContext, InviteToken, NewInvite, NewOrg, Store, TableDefinition};

use crate::runtime_api::request_id;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// How long seeded invitations stay valid.
const INVITE_TTL_SECS: i64 = 7 * 24 * 3600;

/// A Cognito user: a UUID `sub` and a verified email.
#[derive(Debug, Clone)]
pub struct User {
    pub sub: String,
    pub email: String,
    pub name: String,
    /// In the platform-admin group.
    pub platform_admin: bool,
}

impl User {
    pub fn new(email: impl Into<String>, name: impl Into<String>) -> User {
        User { sub: request_id(), email: email.into(), name: name.into(), platform_admin: false }
    }

    /// A platform operator.
    pub fn operator(email: impl Into<String>, name: impl Into<String>) -> User {
        User { platform_admin: true, ..User::new(email, name) }
    }

    pub fn identity(&self) -> Result<Identity, Error> {
        Ok(Identity {
            user_id: self.sub.parse().map_err(|e| format!("sub {}: {e:?}", self.sub))?,
            email: Some(self.email.parse().map_err(|e| format!("email {}: {e:?}", self.email))?),
            email_verified: true,
            platform_admin: self.platform_admin,
        })
    }

    /// The Cognito authorizer's claims as API Gateway REST passes them (all strings; groups
    /// as one string).
    pub fn claims(&self) -> Value {
        let mut claims = json!({
            "sub": self.sub,
            "email": self.email,
            "email_verified": "true",
            "cognito:username": self.sub,
            "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_bench",
            "aud": "benchclient",
            "token_use": "id",
            "auth_time": "1764165000",
        });
        if self.platform_admin {
            claims["cognito:groups"] = json!(Identity::PLATFORM_ADMIN_GROUP);
        }
        claims
    }
}

/// An invited person and the token of their invitation.
#[derive(Debug, Clone)]
pub struct Invitee {
    pub user: User,
    pub token: String,
}

/// What the scenarios refer to.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The scenario's table.
    pub table: String,
    pub org_id: String,
    pub owner: User,
    /// Creates orgs (kept apart from the owner so the owner's org list stays as seeded).
    pub creator: User,
    /// Seeded members besides the owner.
    pub members: usize,
    /// One per accept-invite invocation, in order.
    pub invitees: Vec<Invitee>,
    /// Has an open invitation that accept-invite never consumes (CustomMessage branding).
    pub branded: User,
    /// A platform operator (the operators' routes).
    pub operator: User,
}

/// An item as the table holds it.
pub type Item = HashMap<String, AttributeValue>;

/// An org seeded for one invocation and deleted by its owner (`Store::delete_org`): marked
/// `deleting`, awaiting its purge. Its item before and after the deletion are the images of
/// the stream record the deletion makes.
#[derive(Debug, Clone)]
pub struct DeletedOrg {
    pub org_id: String,
    pub members: usize,
    pub before: Item,
    pub after: Item,
}

/// Creates `name` from `table.json`, as the tests and the local stack do (no stream locally,
/// see above).
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), Error> {
    TableDefinition::load().create(client, name).await?;
    Ok(())
}

/// Seeds the org and `invitations` invitations to accept.
pub async fn seed(store: &Store, members: usize, invitations: usize) -> Result<Fixture, Error> {
    let owner = User::new("owner@bench.example.com", "Bench Owner");
    let creator = User::new("creator@bench.example.com", "Bench Creator");
    let who = owner.identity()?;
    store.ensure_user(&who).await?;
    store.ensure_user(&creator.identity()?).await?;
    let name = OrgName::parse("name", "Bench Org").map_err(|e| format!("{e:?}"))?;
    let scope = store.create_org(&who, Some(owner.name.clone()), NewOrg { name, slug: None }).await?;
    let org_id = scope.org_id();

    // An operator has the group claim and the profile flag the store re-checks.
    let operator = User::operator("operator@bench.example.com", "Bench Operator");
    store.ensure_user(&operator.identity()?).await?;
    store.set_platform_operator(&operator.identity()?.user_id, true).await?;
    let admin = store.admin_scope(&operator.identity()?, org_id).await?;
    store.set_org_plan(&admin, Plan::Enterprise).await?;
    let scope = store.authorize(&who, org_id, Action::ManageMembers).await?;

    for k in 0..members {
        let m = User::new(format!("member-{k}@bench.example.com"), format!("Member {k}"));
        let role = if k % 5 == 0 { Role::Admin } else { Role::Member };
        store.add_member(&scope, &m.identity()?.user_id, role, m.identity()?.email, Some(m.name.clone())).await?;
    }

    let invite = |email: String| {
        let scope = &scope;
        async move {
            let token = InviteToken::generate()?;
            let email_parsed = email.parse().map_err(|e| format!("email {email}: {e:?}"))?;
            let new = NewInvite { email: email_parsed, role: Role::Member, token: &token, ttl_secs: INVITE_TTL_SECS };
            store.create_invite(scope, &InviteContext::default(), new).await?;
            Ok::<String, Error>(token.token.clone())
        }
    };
    let mut invitees = Vec::with_capacity(invitations);
    for k in 0..invitations {
        let user = User::new(format!("invitee-{k}@bench.example.com"), format!("Invitee {k}"));
        let token = invite(user.email.clone()).await?;
        invitees.push(Invitee { user, token });
    }
    let branded = User::new("branded@bench.example.com", "Branded");
    invite(branded.email.clone()).await?;

    Ok(Fixture { table: store.table_name().to_owned(), org_id: org_id.to_string(), owner, creator, members, invitees, branded, operator })
}

/// Seeds the org of invocation `k` of a purge scenario, with `members` members besides its
/// owner, and has the owner delete it.
pub async fn deleted_org(store: &Store, operator: &User, members: usize, k: usize) -> Result<DeletedOrg, Error> {
    let owner = User::new(format!("purge-owner-{k}@bench.example.com"), format!("Purge Owner {k}"));
    let who = owner.identity()?;
    store.ensure_user(&who).await?;
    let name = OrgName::parse("name", &format!("Purged Org {k}")).map_err(|e| format!("{e:?}"))?;
    let scope = store.create_org(&who, Some(owner.name.clone()), NewOrg { name, slug: None }).await?;
    let org_id = scope.org_id();
    let admin = store.admin_scope(&operator.identity()?, org_id).await?;
    store.set_org_plan(&admin, Plan::Enterprise).await?;
    let scope = store.authorize(&who, org_id, Action::ManageMembers).await?;
    for m in 0..members {
        let user = User::new(format!("purge-member-{k}-{m}@bench.example.com"), format!("Purge Member {k}.{m}"));
        let id = user.identity()?;
        store.add_member(&scope, &id.user_id, Role::Member, id.email, Some(user.name.clone())).await?;
    }
    let before = store.org_item(org_id).await?.ok_or("the seeded org has no item")?;
    let scope = store.authorize(&who, org_id, Action::DeleteOrg).await?;
    store.delete_org(&scope).await?;
    let after = store.org_item(org_id).await?.ok_or("the deleted org has no item")?;
    Ok(DeletedOrg { org_id: org_id.to_string(), members, before, after })
}

/// Whether the org of `deleted` is gone (the purge deletes the org item last).
pub async fn purged(store: &Store, deleted: &DeletedOrg) -> Result<bool, Error> {
    let org = deleted.org_id.parse().map_err(|e| format!("org id {}: {e:?}", deleted.org_id))?;
    Ok(store.org_item(org).await?.is_none())
}
