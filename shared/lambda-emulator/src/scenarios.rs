//! The functions, from the registry, and the benchmark scenarios, in one table. Events are
//! built from the sample events in `events/` with the seeded ids, users and tokens put in.

use std::collections::HashMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::runtime_api::request_id;
use crate::seed::{Fixture, User};

/// An event kind Lambda delivers to a function, one per kind of source the registry declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// API Gateway REST proxy events; answers carry a `statusCode`.
    Http,
    /// Cognito user-pool trigger events.
    CognitoTrigger,
    /// DynamoDB stream batches; answers carry `batchItemFailures`.
    Stream,
    /// SQS message batches; answers carry `batchItemFailures`.
    Queue,
    /// S3 object notifications.
    S3,
    /// EventBridge Scheduler invocations.
    Schedule,
}

/// A deployed function as the registry (`registry::all()`) declares it: its binary (named as
/// the function), its sizing, the event kinds its sources send and its environment.
#[derive(Clone)]
pub struct FunctionDef {
    pub binary: &'static str,
    pub memory_mb: u32,
    pub timeout_secs: u64,
    pub kinds: Vec<Kind>,
    /// The ids of its schedules.
    pub schedules: Vec<&'static str>,
    /// Which variables the infrastructure sets besides the table and the cursor secret.
    pub environment: registry::Environment,
}

impl FunctionDef {
    pub fn of(f: &registry::Function) -> FunctionDef {
        let s = &f.sources;
        let kinds = [
            (s.http, Kind::Http),
            (!s.cognito_triggers.is_empty(), Kind::CognitoTrigger),
            (s.dynamodb_stream.is_some(), Kind::Stream),
            (!s.queues.is_empty(), Kind::Queue),
            (s.s3.is_some(), Kind::S3),
            (!s.schedules.is_empty(), Kind::Schedule),
        ];
        FunctionDef {
            binary: f.name,
            memory_mb: f.memory_mb,
            timeout_secs: u64::from(f.timeout_seconds),
            kinds: kinds.into_iter().filter_map(|(has, kind)| has.then_some(kind)).collect(),
            schedules: s.schedules.iter().map(|sch| sch.id).collect(),
            environment: f.environment.clone(),
        }
    }
}

/// Every function of the registry, in its order.
pub fn functions() -> Vec<FunctionDef> {
    registry::all().iter().map(FunctionDef::of).collect()
}

/// The registry's function `name`.
pub fn function(name: &str) -> Option<FunctionDef> {
    registry::function(name).as_ref().map(FunctionDef::of)
}

/// Who the event comes from, for invocation `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The seeded org's owner.
    Owner,
    /// A user who creates orgs.
    Creator,
    /// The `i`th invitee (its own invitation and token).
    Invitee,
    /// Someone signing up: a fresh sub and email each invocation.
    NewUser,
    /// Has an open invitation to the seeded org that nobody accepts.
    Branded,
}

/// An event to send. In paths and bodies `{orgId}`, `{i}` and `{token}` are replaced.
#[derive(Debug, Clone, Copy)]
pub enum EventSpec {
    Http { method: &'static str, resource: &'static str, query: &'static [(&'static str, &'static str)], body: Option<&'static str>, who: Who },
    /// `events/cognito/<source>.json`; `org_metadata` puts the seeded org into `clientMetadata.orgId`.
    Trigger { source: &'static str, who: Who, org_metadata: bool },
}

#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub function: &'static str,
    pub name: &'static str,
    pub event: EventSpec,
}

const fn http(function: &'static str, name: &'static str, method: &'static str, resource: &'static str, body: Option<&'static str>, who: Who) -> Scenario {
    Scenario { function, name, event: EventSpec::Http { method, resource, query: &[], body, who } }
}

const fn trigger(name: &'static str, source: &'static str, who: Who, org_metadata: bool) -> Scenario {
    Scenario { function: "cognito-triggers", name, event: EventSpec::Trigger { source, who, org_metadata } }
}

/// Every scenario, in the order they run.
pub const SCENARIOS: &[Scenario] = &[
    http("organizations", "create org", "POST", "/orgs", Some(r#"{"name":"Bench Org {i}"}"#), Who::Creator),
    http("organizations", "list members", "GET", "/orgs/{orgId}/members", None, Who::Owner),
    http("organizations", "get org", "GET", "/orgs/{orgId}", None, Who::Owner),
    http("organizations", "get me", "GET", "/me", None, Who::Owner),
    http("invites", "create invite", "POST", "/orgs/{orgId}/invites", Some(r#"{"email":"new-{i}@bench.example.com","role":"member"}"#), Who::Owner),
    http("invites", "list invites", "GET", "/orgs/{orgId}/invites", None, Who::Owner),
    http("invites", "accept invite", "POST", "/invites/accept", Some(r#"{"token":"{token}"}"#), Who::Invitee),
    trigger("PreSignUp_SignUp", "PreSignUp_SignUp", Who::NewUser, false),
    trigger("PostConfirmation_ConfirmSignUp", "PostConfirmation_ConfirmSignUp", Who::NewUser, false),
    trigger("TokenGeneration_Authentication", "TokenGeneration_Authentication", Who::Owner, false),
    trigger("PostAuthentication_Authentication", "PostAuthentication_Authentication", Who::Owner, false),
    trigger("CustomMessage_SignUp", "CustomMessage_SignUp", Who::Branded, true),
];

impl Scenario {
    pub fn who(&self) -> Who {
        match self.event {
            EventSpec::Http { who, .. } | EventSpec::Trigger { who, .. } => who,
        }
    }

    /// The event kind this scenario sends.
    pub fn kind(&self) -> Kind {
        match self.event {
            EventSpec::Http { .. } => Kind::Http,
            EventSpec::Trigger { .. } => Kind::CognitoTrigger,
        }
    }

    /// The scenario's function, from the registry.
    pub fn def(&self) -> FunctionDef {
        function(self.function).unwrap_or_else(|| panic!("scenario {:?} names {:?}, which the registry does not have", self.name, self.function))
    }
}

/// The sample events the scenarios' events are made from.
#[derive(Debug, Clone)]
pub struct Templates {
    apigw: Value,
    cognito: HashMap<String, Value>,
}

impl Templates {
    /// Reads `events/apigw/get-me.json` and `events/cognito/*.json`.
    pub fn load(events: &Path) -> Result<Templates, String> {
        let read = |p: &Path| -> Result<Value, String> {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
        };
        let apigw = read(&events.join("apigw/get-me.json"))?;
        let mut cognito = HashMap::new();
        let dir = events.join("cognito");
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.extension().is_some_and(|x| x == "json") {
                let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
                cognito.insert(name, read(&path)?);
            }
        }
        Ok(Templates { apigw, cognito })
    }

    /// The event of invocation `i` (0 is the cold one) of `scenario`.
    pub fn build(&self, scenario: &Scenario, fixture: &Fixture, i: usize) -> Result<Value, String> {
        let user = user(scenario.who(), fixture, i)?;
        let token = match scenario.who() {
            Who::Invitee => fixture.invitees[i].token.as_str(),
            _ => "",
        };
        let fill = |s: &str| s.replace("{orgId}", &fixture.org_id).replace("{i}", &i.to_string()).replace("{token}", token);
        match scenario.event {
            EventSpec::Http { method, resource, query, body, .. } => {
                Ok(self.http_event(method, resource, query, body.map(fill), &user, &fixture.org_id))
            }
            EventSpec::Trigger { source, org_metadata, .. } => {
                let mut event = self.cognito.get(source).cloned().ok_or_else(|| format!("no events/cognito/{source}.json"))?;
                put_user(&mut event, &user);
                if org_metadata {
                    event["request"]["clientMetadata"] = json!({ "orgId": fixture.org_id });
                }
                Ok(event)
            }
        }
    }

    fn http_event(&self, method: &str, resource: &str, query: &[(&str, &str)], body: Option<String>, user: &User, org_id: &str) -> Value {
        let path = &resource.replace("{orgId}", org_id);
        let mut e = self.apigw.clone();
        e["resource"] = json!(resource);
        e["path"] = json!(path);
        e["httpMethod"] = json!(method);
        e["pathParameters"] = if resource.contains("{orgId}") { json!({ "orgId": org_id }) } else { Value::Null };
        if query.is_empty() {
            e["queryStringParameters"] = Value::Null;
            e["multiValueQueryStringParameters"] = Value::Null;
        } else {
            e["queryStringParameters"] = query.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>().into();
            e["multiValueQueryStringParameters"] = query.iter().map(|(k, v)| ((*k).to_owned(), json!([v]))).collect::<serde_json::Map<_, _>>().into();
        }
        if body.is_some() {
            e["headers"]["Content-Type"] = json!("application/json");
            e["multiValueHeaders"]["Content-Type"] = json!(["application/json"]);
        }
        e["body"] = body.map(Value::String).unwrap_or(Value::Null);
        e["isBase64Encoded"] = json!(false);
        let ctx = &mut e["requestContext"];
        ctx["resourcePath"] = json!(resource);
        ctx["httpMethod"] = json!(method);
        ctx["path"] = json!(format!("/prod{path}"));
        ctx["requestId"] = json!(request_id());
        ctx["requestTimeEpoch"] = json!(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64);
        ctx["authorizer"] = json!({ "claims": user.claims() });
        e
    }
}

fn user(who: Who, fixture: &Fixture, i: usize) -> Result<User, String> {
    Ok(match who {
        Who::Owner => fixture.owner.clone(),
        Who::Creator => fixture.creator.clone(),
        Who::Branded => fixture.branded.clone(),
        Who::Invitee => fixture
            .invitees
            .get(i)
            .map(|v| v.user.clone())
            .ok_or_else(|| format!("invocation {i} has no seeded invitation ({} seeded)", fixture.invitees.len()))?,
        Who::NewUser => {
            let u = User::new("", format!("New User {i}"));
            User { email: format!("signup-{i}-{}@bench.example.com", &u.sub[..8]), ..u }
        }
    })
}

/// Puts `user` into a Cognito event: `userName` (email-style or sub-style, as the sample has
/// it) and the `sub`, `email` and `name` attributes the sample carries.
fn put_user(event: &mut Value, user: &User) {
    let by_email = event["userName"].as_str().is_some_and(|u| u.contains('@'));
    event["userName"] = json!(if by_email { &user.email } else { &user.sub });
    if let Some(attrs) = event["request"]["userAttributes"].as_object_mut() {
        for (key, value) in [("sub", &user.sub), ("email", &user.email), ("name", &user.name)] {
            if attrs.contains_key(key) {
                attrs.insert(key.to_owned(), json!(value));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::Invitee;

    fn events_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
    }

    fn fixture() -> Fixture {
        Fixture {
            org_id: "01JBENCHORG0000000000000000".into(),
            owner: User::new("owner@bench.example.com", "Owner"),
            creator: User::new("creator@bench.example.com", "Creator"),
            members: 3,
            invitees: (0..2).map(|k| Invitee { user: User::new(format!("i{k}@bench.example.com"), "I"), token: format!("tok{k}") }).collect(),
            branded: User::new("branded@bench.example.com", "Branded"),
        }
    }

    #[test]
    fn every_scenario_builds_from_the_sample_events() {
        let t = Templates::load(&events_dir()).unwrap();
        let f = fixture();
        for s in SCENARIOS {
            let _ = s.def();
            let e = t.build(s, &f, 1).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            match s.event {
                EventSpec::Http { method, .. } => {
                    assert_eq!(e["httpMethod"], method);
                    assert!(!e["path"].as_str().unwrap().contains('{'), "{}", e["path"]);
                    assert!(e["requestContext"]["path"].as_str().unwrap().starts_with("/prod/"));
                }
                EventSpec::Trigger { source, .. } => assert_eq!(e["triggerSource"], source),
            }
        }
    }

    #[test]
    fn http_events_carry_ids_claims_and_bodies() {
        let t = Templates::load(&events_dir()).unwrap();
        let f = fixture();
        let accept = SCENARIOS.iter().find(|s| s.name == "accept invite").unwrap();
        let e = t.build(accept, &f, 1).unwrap();
        assert_eq!(e["body"], r#"{"token":"tok1"}"#);
        assert_eq!(e["requestContext"]["authorizer"]["claims"]["sub"], f.invitees[1].user.sub.as_str());
        assert_eq!(e["headers"]["Content-Type"], "application/json");
        let members = SCENARIOS.iter().find(|s| s.name == "list members").unwrap();
        let e = t.build(members, &f, 0).unwrap();
        assert_eq!(e["path"], format!("/orgs/{}/members", f.org_id));
        assert_eq!(e["resource"], "/orgs/{orgId}/members");
        assert_eq!(e["pathParameters"]["orgId"], f.org_id.as_str());
        assert_eq!(e["body"], Value::Null);
        assert!(t.build(accept, &f, 2).is_err(), "only two invitations are seeded");
    }

    #[test]
    fn trigger_events_get_fresh_or_seeded_users() {
        let t = Templates::load(&events_dir()).unwrap();
        let f = fixture();
        let confirm = SCENARIOS.iter().find(|s| s.name == "PostConfirmation_ConfirmSignUp").unwrap();
        let a = t.build(confirm, &f, 1).unwrap();
        let b = t.build(confirm, &f, 2).unwrap();
        let sub = |e: &Value| e["request"]["userAttributes"]["sub"].as_str().unwrap().to_owned();
        assert_ne!(sub(&a), sub(&b));
        assert_eq!(a["userName"], sub(&a).as_str());
        let token = SCENARIOS.iter().find(|s| s.name == "TokenGeneration_Authentication").unwrap();
        assert_eq!(sub(&t.build(token, &f, 5).unwrap()), f.owner.sub);
        let message = SCENARIOS.iter().find(|s| s.name == "CustomMessage_SignUp").unwrap();
        let e = t.build(message, &f, 0).unwrap();
        assert_eq!(e["request"]["clientMetadata"]["orgId"], f.org_id.as_str());
        assert_eq!(e["request"]["userAttributes"]["email"], "branded@bench.example.com");
        let signup = SCENARIOS.iter().find(|s| s.name == "PreSignUp_SignUp").unwrap();
        let e = t.build(signup, &f, 3).unwrap();
        assert!(e["userName"].as_str().unwrap().starts_with("signup-3-"));
        assert!(e["request"]["userAttributes"].get("sub").is_none());
    }
}
