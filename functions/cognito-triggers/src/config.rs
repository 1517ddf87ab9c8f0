//! Trigger configuration, from the Lambda environment.

/// What the triggers are configured to do.
#[derive(Debug, Clone)]
pub struct TriggerConfig {
    /// Email domains that may not sign up (`BLOCKED_EMAIL_DOMAINS`, comma-separated); a
    /// domain blocks its subdomains too.
    pub blocked_domains: Vec<String>,
    /// Only addresses with an open invitation may sign up (`SIGNUP_INVITE_ONLY=true`).
    pub invite_only: bool,
    /// Create a personal org for each new user (`PERSONAL_ORG=true`).
    pub personal_org: bool,
    /// The product's name in mail (`PRODUCT_NAME`, default Tenantry).
    pub product_name: String,
    /// The product's logo in mail (`PRODUCT_LOGO_URL`, https only).
    pub product_logo_url: Option<String>,
    /// The front end (`APP_URL`), linked from mail.
    pub app_url: String,
}

impl Default for TriggerConfig {
    fn default() -> Self {
        TriggerConfig {
            blocked_domains: Vec::new(),
            invite_only: false,
            personal_org: false,
            product_name: "Tenantry".into(),
            product_logo_url: None,
            app_url: "http://localhost:3000".into(),
        }
    }
}

impl TriggerConfig {
    pub fn from_env() -> TriggerConfig {
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let flag = |name: &str| var(name).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        let defaults = TriggerConfig::default();
        TriggerConfig {
            blocked_domains: var("BLOCKED_EMAIL_DOMAINS")
                .map(|v| v.split(',').map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase()).filter(|d| !d.is_empty()).collect())
                .unwrap_or_default(),
            invite_only: flag("SIGNUP_INVITE_ONLY"),
            personal_org: flag("PERSONAL_ORG"),
            product_name: var("PRODUCT_NAME").unwrap_or(defaults.product_name),
            product_logo_url: var("PRODUCT_LOGO_URL").filter(|u| u.starts_with("https://")),
            app_url: var("APP_URL").unwrap_or(defaults.app_url),
        }
    }

    /// Whether `domain` (lower-case) is blocked, directly or as a subdomain of a blocked one.
    pub fn is_blocked(&self, domain: &str) -> bool {
        self.blocked_domains.iter().any(|b| domain == b || domain.ends_with(&format!(".{b}")))
    }
}
