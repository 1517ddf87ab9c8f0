//! An organization's name and settings, with the validation applied on the way in.

use serde::{Deserialize, Deserializer, Serialize};

use crate::FieldError;

/// A display name for an organization: 1 to 100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct OrgName(String);

impl OrgName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(field: &str, raw: &str) -> Result<OrgName, FieldError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(field, "must be at most 100 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(FieldError::new(field, "must not contain control characters"));
        }
        Ok(OrgName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The settings an org admin edits. Stored on the org item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_system_prompt: Option<String>,
    #[serde(default)]
    pub allowed_chat_models: Vec<String>,
}

fn default_time_zone() -> String {
    "UTC".to_owned()
}

impl OrgSettings {
    pub fn new() -> Self {
        OrgSettings { time_zone: default_time_zone(), ..Default::default() }
    }

    /// Whether the org takes members with this address: any, when `allowedEmailDomains` is
    /// empty; else only those whose domain is one of them exactly (a subdomain is another
    /// domain).
    pub fn admits(&self, email: &crate::Email) -> bool {
        self.allowed_email_domains.is_empty() || self.allowed_email_domains.iter().any(|d| d == email.domain())
    }
}

/// A partial update of [`OrgSettings`]. An absent field is left alone; `null` clears an
/// optional field.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrgSettingsPatch {
    #[serde(default, deserialize_with = "present")]
    pub display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub logo_url: Option<Option<String>>,
    pub allowed_email_domains: Option<Vec<String>>,
    pub time_zone: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub chat_system_prompt: Option<Option<String>>,
    pub allowed_chat_models: Option<Vec<String>>,
}

/// Distinguishes `"field": null` (Some(None)) from an absent field (None).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

pub const MAX_URL: usize = 2048;
pub const MAX_DOMAINS: usize = 50;
pub const MAX_PROMPT: usize = 8000;
pub const MAX_MODELS: usize = 20;
pub const MAX_MODEL_ID: usize = 128;

impl OrgSettingsPatch {
    /// Applies the patch to `settings`, or names every invalid field (under `prefix`).
    pub fn apply(self, settings: &mut OrgSettings, prefix: &str) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let field = |name: &str| format!("{prefix}{name}");

        if let Some(v) = self.display_name {
            match v.map(|s| OrgName::parse(&field("displayName"), &s)).transpose() {
                Ok(name) => settings.display_name = name.map(|n| n.as_str().to_owned()),
                Err(e) => errors.push(e),
            }
        }
        if let Some(v) = self.logo_url {
            match v {
                Some(url) if !valid_https_url(&url) => errors.push(FieldError::new(field("logoUrl"), "must be an https URL of at most 2048 characters")),
                url => settings.logo_url = url,
            }
        }
        if let Some(domains) = self.allowed_email_domains {
            let mut normalised = Vec::with_capacity(domains.len());
            if domains.len() > MAX_DOMAINS {
                errors.push(FieldError::new(field("allowedEmailDomains"), "at most 50 domains"));
            }
            for (i, d) in domains.iter().enumerate() {
                let d = d.trim().to_ascii_lowercase();
                if valid_domain(&d) {
                    if !normalised.contains(&d) {
                        normalised.push(d);
                    }
                } else {
                    errors.push(FieldError::new(format!("{}[{i}]", field("allowedEmailDomains")), "must be a domain name such as example.com"));
                }
            }
            settings.allowed_email_domains = normalised;
        }
        if let Some(tz) = self.time_zone {
            if valid_time_zone(&tz) {
                settings.time_zone = tz;
            } else {
                errors.push(FieldError::new(field("timeZone"), "must be an IANA time zone name such as Europe/Paris or UTC"));
            }
        }
        if let Some(v) = self.chat_system_prompt {
            match v {
                Some(p) if p.chars().count() > MAX_PROMPT => errors.push(FieldError::new(field("chatSystemPrompt"), "must be at most 8000 characters")),
                p => settings.chat_system_prompt = p.filter(|p| !p.trim().is_empty()),
            }
        }
        if let Some(models) = self.allowed_chat_models {
            if models.len() > MAX_MODELS {
                errors.push(FieldError::new(field("allowedChatModels"), "at most 20 models"));
            }
            for (i, m) in models.iter().enumerate() {
                if !valid_model_id(m) {
                    errors.push(FieldError::new(format!("{}[{i}]", field("allowedChatModels")), "must be a model id of letters, digits and . : _ - /"));
                }
            }
            settings.allowed_chat_models = models;
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

fn valid_https_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else { return false };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    url.len() <= MAX_URL && !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '<' || c == '>')
}

fn valid_domain(d: &str) -> bool {
    d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn valid_time_zone(tz: &str) -> bool {
    if tz == "UTC" {
        return true;
    }
    let parts: Vec<&str> = tz.split('/').collect();
    tz.len() <= 64
        && parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.starts_with(|c: char| c.is_ascii_uppercase())
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'+')
        })
}

fn valid_model_id(m: &str) -> bool {
    !m.is_empty() && m.len() <= MAX_MODEL_ID && m.bytes().all(|b| b.is_ascii_alphanumeric() || b".:_-/".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(json: &str) -> OrgSettingsPatch {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn allowed_domains_admit_exactly_their_addresses() {
        let mut s = OrgSettings::new();
        let email = |e: &str| e.parse::<crate::Email>().unwrap();
        assert!(s.admits(&email("a@anything.org")), "no list: anyone");
        s.allowed_email_domains = vec!["example.com".into()];
        assert!(s.admits(&email("A@Example.COM")));
        assert!(!s.admits(&email("a@sub.example.com")));
        assert!(!s.admits(&email("a@example.org")));
    }

    #[test]
    fn valid_patch_applies_and_null_clears() {
        let mut s = OrgSettings::new();
        patch(
            r#"{"displayName":" Acme ","logoUrl":"https://cdn.example.com/l.png",
                  "allowedEmailDomains":["Example.com","example.com"],"timeZone":"Europe/Paris",
                  "chatSystemPrompt":"Be brief.","allowedChatModels":["anthropic.claude-3-haiku-20240307-v1:0"]}"#,
        )
        .apply(&mut s, "settings.")
        .unwrap();
        assert_eq!(s.display_name.as_deref(), Some("Acme"));
        assert_eq!(s.allowed_email_domains, vec!["example.com"]);
        assert_eq!(s.time_zone, "Europe/Paris");
        patch(r#"{"logoUrl":null}"#).apply(&mut s, "").unwrap();
        assert_eq!(s.logo_url, None);
        assert_eq!(s.display_name.as_deref(), Some("Acme"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut s = OrgSettings::new();
        let errs = patch(
            r#"{"displayName":"","logoUrl":"http://x.com","allowedEmailDomains":["ok.com","bad"],
                             "timeZone":"Mars/Olympus Mons","allowedChatModels":["a b"]}"#,
        )
        .apply(&mut s, "settings.")
        .unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["settings.displayName", "settings.logoUrl", "settings.allowedEmailDomains[1]", "settings.timeZone", "settings.allowedChatModels[0]"]
        );
    }
}
