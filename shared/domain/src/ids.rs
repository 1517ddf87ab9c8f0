//! Validated identifiers. A value of these types can be used in a key: it is
//! never empty, never over-long and never contains `#`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::Ulid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IdError(pub &'static str);

/// An organization id: a ULID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgId(Ulid);

impl OrgId {
    pub fn new() -> Self {
        OrgId(Ulid::new())
    }
}

impl Default for OrgId {
    fn default() -> Self {
        Self::new()
    }
}

impl FromStr for OrgId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.len() != 26 {
            return Err(IdError("must be a 26-character ULID"));
        }
        Ulid::from_string(s).map(OrgId).map_err(|_| IdError("must be a ULID"))
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A user id: the Cognito `sub` (a UUID on AWS, but treated as opaque).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    pub const MAX_LEN: usize = 128;
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UserId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.is_empty() {
            return Err(IdError("must not be empty"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(IdError("is too long"));
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(IdError("may contain only letters, digits, '-' and '_'"));
        }
        Ok(UserId(s.to_owned()))
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A platform-unique organization slug: 3 to 48 of `[a-z0-9-]`, no hyphen at either end.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 48;

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Derives a slug from a display name: lower-case ASCII letters and digits, runs of
    /// anything else collapsed into one hyphen. Returns `None` when too little is left.
    pub fn derive(name: &str) -> Option<Slug> {
        let mut out = String::new();
        for c in name.chars() {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
            if out.len() >= Self::MAX_LEN {
                break;
            }
        }
        let trimmed = out.trim_matches('-').to_owned();
        trimmed.parse().ok()
    }

    /// The same slug with a short suffix, for when the plain one is taken.
    pub fn with_suffix(&self, suffix: &str) -> Option<Slug> {
        let room = Self::MAX_LEN.saturating_sub(suffix.len() + 1);
        let base: String = self.0.chars().take(room).collect();
        format!("{}-{}", base.trim_end_matches('-'), suffix).parse().ok()
    }
}

impl FromStr for Slug {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.len() < Self::MIN_LEN || s.len() > Self::MAX_LEN {
            return Err(IdError("must be 3 to 48 characters"));
        }
        if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(IdError("may contain only a-z, 0-9 and '-'"));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(IdError("must not start or end with '-'"));
        }
        Ok(Slug(s.to_owned()))
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address as it was entered (trimmed, domain lower-cased), compared case-folded:
/// `Mixed.Case@example.com` and `mixed.case@example.com` are one address. Mail providers
/// treat local parts case-insensitively, and so does every match and key here.
#[derive(Debug, Clone)]
pub struct Email(String);

impl PartialEq for Email {
    fn eq(&self, other: &Email) -> bool {
        self.folded() == other.folded()
    }
}

impl Eq for Email {}

impl std::hash::Hash for Email {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.folded().hash(state);
    }
}

impl Email {
    pub const MAX_LEN: usize = 254;
    /// The address as entered, to show and to mail.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The form every comparison and key uses: the whole address lower-cased.
    pub fn folded(&self) -> String {
        self.0.to_lowercase()
    }
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl FromStr for Email {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let s = s.trim();
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(IdError("must be a valid email address"));
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(IdError("must be a valid email address"));
        };
        let ok_local = !local.is_empty() && local.len() <= 64 && !local.contains(['#', '@', ' ', '<', '>', '"', '\\', ',', ';']);
        let ok_domain = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !(ok_local && ok_domain) || local.chars().any(char::is_control) {
            return Err(IdError("must be a valid email address"));
        }
        Ok(Email(format!("{local}@{}", domain.to_ascii_lowercase())))
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! string_serde {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
string_serde!(OrgId, UserId, Slug, Email);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_keep_their_case_and_compare_folded() {
        let a: Email = " Mixed.Case@Example.COM ".parse().unwrap();
        let b: Email = "mixed.case@example.com".parse().unwrap();
        assert_eq!(a.as_str(), "Mixed.Case@example.com", "shown as entered, domain lower-cased");
        assert_eq!(a, b);
        assert_eq!(a.folded(), b.folded());
        let set: std::collections::HashSet<Email> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert_ne!("other@example.com".parse::<Email>().unwrap(), "mixed.case@example.com".parse::<Email>().unwrap());
    }

    #[test]
    fn ids_reject_what_cannot_be_in_a_key() {
        assert!("".parse::<UserId>().is_err());
        assert!("a#b".parse::<UserId>().is_err());
        assert!("x".repeat(129).parse::<UserId>().is_err());
        assert!("abc-123_X".parse::<UserId>().is_ok());
        assert!("01HZZZZZZZZZZZZZZZZZZZZZZ#".parse::<OrgId>().is_err());
        assert!("not-a-ulid".parse::<OrgId>().is_err());
        assert!("ab".parse::<Slug>().is_err());
        assert!("a#bc".parse::<Slug>().is_err());
        assert!("-abc".parse::<Slug>().is_err());
        assert!("x".repeat(49).parse::<Slug>().is_err());
    }

    #[test]
    fn slugs_derive_from_names() {
        assert_eq!(Slug::derive("Acme, Inc.").unwrap().as_str(), "acme-inc");
        assert_eq!(Slug::derive("  Über  Co ").unwrap().as_str(), "ber-co");
        assert!(Slug::derive("!!").is_none());
        let long = Slug::derive(&"a".repeat(100)).unwrap();
        assert_eq!(long.as_str().len(), 48);
        assert_eq!(long.with_suffix("k3x9").unwrap().as_str().len(), 48);
    }

    #[test]
    fn emails_are_normalised() {
        let e: Email = "  Alice.Smith@Example.COM ".parse().unwrap();
        assert_eq!(e.as_str(), "Alice.Smith@example.com");
        assert_eq!(e.domain(), "example.com");
        for bad in ["", "no-at", "a@b", "a#x@b.com", "a@b..com.", "@b.com"] {
            assert!(bad.parse::<Email>().is_err(), "{bad}");
        }
    }
}

macro_rules! string_schema {
    ($($t:ty => $name:literal, $schema:tt;)*) => {$(
        impl schemars::JsonSchema for $t {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!($schema)
            }
        }
    )*};
}
string_schema! {
    OrgId => "OrgId", { "type": "string", "pattern": "^[0-9A-HJKMNP-TV-Z]{26}$", "description": "A ULID" };
    UserId => "UserId", { "type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$", "description": "The Cognito sub" };
    Slug => "Slug", { "type": "string", "pattern": "^[a-z0-9][a-z0-9-]{1,46}[a-z0-9]$", "minLength": 3, "maxLength": 48 };
    Email => "Email", { "type": "string", "format": "email", "maxLength": 254 };
}
