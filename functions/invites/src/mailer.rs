//! Invitation mail through SES v2, dressed in the org's branding.

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use mail::{Brand, Value as V};
use store::{Invite, Org};

/// Mail settings, from the environment.
#[derive(Debug, Clone)]
pub struct MailerConfig {
    /// `SES_FROM_ADDRESS`: a verified SES identity.
    pub from: String,
    /// `APP_URL`: the front end; links point at `{APP_URL}/invites/accept#token=…` (the token in the fragment).
    pub app_url: String,
    /// `PRODUCT_NAME`, default Tenantry.
    pub product: String,
    /// `INVITE_TTL_DAYS`, default 7.
    pub invite_ttl_secs: i64,
    /// `SES_CONFIGURATION_SET`: the configuration set that reports bounces and complaints.
    pub configuration_set: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set")]
pub struct MissingEnv(&'static str);

impl MailerConfig {
    pub fn from_env() -> Result<MailerConfig, MissingEnv> {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// The configuration from `var` (unset and blank are alike).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<MailerConfig, MissingEnv> {
        Ok(MailerConfig {
            from: var("SES_FROM_ADDRESS").ok_or(MissingEnv("SES_FROM_ADDRESS"))?,
            app_url: var("APP_URL").ok_or(MissingEnv("APP_URL"))?,
            product: var("PRODUCT_NAME").unwrap_or_else(|| "Tenantry".into()),
            invite_ttl_secs: var("INVITE_TTL_DAYS").and_then(|d| d.parse::<i64>().ok()).filter(|d| (1..=90).contains(d)).unwrap_or(7) * 86_400,
            configuration_set: var("SES_CONFIGURATION_SET"),
        })
    }
}

const INVITATION: mail::Message = mail::Message {
    subject: "{{inviter}} invited you to {{sender}}",
    heading: "Join {{sender}}",
    html: "<p>{{inviter}} invited you to join <strong>{{sender}}</strong> on {{product}} as {{role}}.</p>\
           <p><a href=\"{{link}}\" style=\"display:inline-block;padding:10px 18px;background:#2f54eb;color:#ffffff;border-radius:6px;text-decoration:none\">Accept the invitation</a></p>\
           <p style=\"font-size:13px;color:#6b7280\">The invitation expires on {{expires}}. If you did not expect it, ignore this email.</p>",
    text: "{{inviter}} invited you to join {{sender}} on {{product}} as {{role}}.\n\nAccept: {{link}}\n\nThe invitation expires on {{expires}}. If you did not expect it, ignore this email.\n",
};

/// Sends invitation mail.
#[derive(Clone, Debug)]
pub struct Mailer {
    client: Client,
    pub config: MailerConfig,
}

impl Mailer {
    pub fn new(client: Client, config: MailerConfig) -> Mailer {
        Mailer { client, config }
    }

    /// The accept link for a token.
    pub fn accept_link(&self, token: &str) -> String {
        // In the fragment, which browsers never send to a server nor put in `Referer`: the
        // token stays out of access logs and third-party requests.
        format!("{}/invites/accept#token={token}", self.config.app_url.trim_end_matches('/'))
    }

    /// Sends the invitation; `false` when SES refused or failed (logged, without the token).
    pub async fn send_invitation(&self, org: &Org, invite: &Invite, inviter: &str, token: &str) -> bool {
        let brand = Brand {
            product: self.config.product.clone(),
            org_name: Some(org.settings.display_name.clone().unwrap_or_else(|| org.name.clone())),
            logo_url: org.settings.logo_url.clone(),
        };
        let link = self.accept_link(token);
        let rendered = INVITATION.render(
            &brand,
            &[("inviter", V::Text(inviter)), ("role", V::Text(invite.role.as_str())), ("link", V::Text(&link)), ("expires", V::Text(&invite.expires_at))],
        );
        let content = |data: &str| Content::builder().data(data).charset("UTF-8").build();
        let (subject, html, text) = match (content(&rendered.subject), content(&rendered.html), content(&rendered.text)) {
            (Ok(s), Ok(h), Ok(t)) => (s, h, t),
            _ => return false,
        };
        let result = self
            .client
            .send_email()
            .from_email_address(&self.config.from)
            .destination(Destination::builder().to_addresses(invite.email.as_str()).build())
            .content(EmailContent::builder().simple(Message::builder().subject(subject).body(Body::builder().html(html).text(text).build()).build()).build())
            .set_configuration_set_name(self.config.configuration_set.clone())
            .send()
            .await;
        match result {
            Ok(_) => true,
            Err(e) => {
                let code = aws_sdk_sesv2::error::ProvideErrorMetadata::code(&e).map(str::to_owned);
                tracing::error!(invite_id = %invite.id, ?code, "invitation mail not sent");
                false
            }
        }
    }
}
