//! Notification mail through SES v2: branded, escaped templates from the mail crate, a
//! configuration set (bounce and complaint events), and RFC 8058 one-click unsubscribe
//! headers pointing at the unauthenticated unsubscribe route.

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageHeader};
use domain::Email;
use mail::{Brand, Value as V};

/// Mail settings, from the environment.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `SES_FROM_ADDRESS`: a verified SES identity.
    pub from: String,
    /// `APP_URL`: the front end; a notification links to `{APP_URL}/orgs/{org}/…`.
    pub app_url: String,
    /// `API_URL`: the API's base URL (the unsubscribe route); `APP_URL` when unset.
    pub api_url: String,
    /// `SES_CONFIGURATION_SET`: the configuration set that publishes bounces and complaints.
    pub configuration_set: Option<String>,
    /// `PRODUCT_NAME`, default Tenantry.
    pub product: String,
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set")]
pub struct MissingEnv(&'static str);

impl MailConfig {
    /// The configuration from `var` (unset and blank are alike).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<MailConfig, MissingEnv> {
        let app_url = var("APP_URL").ok_or(MissingEnv("APP_URL"))?;
        Ok(MailConfig {
            from: var("SES_FROM_ADDRESS").ok_or(MissingEnv("SES_FROM_ADDRESS"))?,
            api_url: var("API_URL").unwrap_or_else(|| app_url.clone()),
            app_url,
            configuration_set: var("SES_CONFIGURATION_SET"),
            product: var("PRODUCT_NAME").unwrap_or_else(|| "Tenantry".into()),
        })
    }
}

/// One notification mail: what it says and where it links.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub to: &'a Email,
    pub org_name: &'a str,
    pub subject: &'a str,
    /// Plain paragraphs (escaped on the way into HTML).
    pub lines: &'a [String],
    /// The front end's page for it.
    pub link: String,
    pub link_label: &'a str,
    /// The signed unsubscribe token.
    pub unsubscribe_token: &'a str,
    /// What unsubscribing stops, for the footer ("mentions in Acme").
    pub unsubscribe_what: &'a str,
}

const NOTIFICATION: mail::Message = mail::Message {
    subject: "{{subject}}",
    heading: "{{subject}}",
    html: "{{paragraphs}}\
           <p><a href=\"{{link}}\" style=\"display:inline-block;padding:10px 18px;background:#2f54eb;color:#ffffff;border-radius:6px;text-decoration:none\">{{linkLabel}}</a></p>\
           <p style=\"font-size:12px;color:#6b7280\">You receive this because of your notification settings in {{sender}}. \
           <a href=\"{{unsubscribe}}\" style=\"color:#6b7280\">Stop emails about {{what}}</a>.</p>",
    text: "{{subject}}\n\n{{text}}\n{{linkLabel}}: {{link}}\n\nStop emails about {{what}}: {{unsubscribe}}\n",
};

/// Sends notification mail.
#[derive(Clone, Debug)]
pub struct Mailer {
    client: Client,
    pub config: MailConfig,
}

impl Mailer {
    pub fn new(client: Client, config: MailConfig) -> Mailer {
        Mailer { client, config }
    }

    /// The unsubscribe URL of a token (the `List-Unsubscribe` target).
    pub fn unsubscribe_url(&self, token: &str) -> String {
        format!("{}/unsubscribe?token={token}", self.config.api_url.trim_end_matches('/'))
    }

    /// A link into the front end.
    pub fn app_link(&self, path: &str) -> String {
        format!("{}{path}", self.config.app_url.trim_end_matches('/'))
    }

    /// Sends one mail. An error (SES refused, or its retries with backoff ran out) is the
    /// caller's to retry.
    pub async fn send(&self, m: &Outgoing<'_>) -> Result<(), String> {
        let brand = Brand { product: self.config.product.clone(), org_name: Some(m.org_name.to_owned()), logo_url: None };
        let unsubscribe = self.unsubscribe_url(m.unsubscribe_token);
        let paragraphs: String = m.lines.iter().filter(|l| !l.is_empty()).map(|l| format!("<p>{}</p>", mail::escape_html(l))).collect();
        let text = m.lines.iter().filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect::<String>();
        let rendered = NOTIFICATION.render(
            &brand,
            &[
                ("subject", V::Text(m.subject)),
                ("paragraphs", V::Raw(&paragraphs)),
                ("text", V::Text(&text)),
                ("link", V::Text(&m.link)),
                ("linkLabel", V::Text(m.link_label)),
                ("unsubscribe", V::Text(&unsubscribe)),
                ("what", V::Text(m.unsubscribe_what)),
            ],
        );
        let content = |data: &str| Content::builder().data(data).charset("UTF-8").build().map_err(|e| e.to_string());
        let header = |name: &str, value: &str| MessageHeader::builder().name(name).value(value).build().map_err(|e| e.to_string());
        let message = Message::builder()
            .subject(content(&rendered.subject)?)
            .body(Body::builder().html(content(&rendered.html)?).text(content(&rendered.text)?).build())
            .headers(header("List-Unsubscribe", &format!("<{unsubscribe}>"))?)
            .headers(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")?)
            .build();
        self.client
            .send_email()
            .from_email_address(&self.config.from)
            .destination(Destination::builder().to_addresses(m.to.as_str()).build())
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(self.config.configuration_set.clone())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                let code = aws_sdk_sesv2::error::ProvideErrorMetadata::code(&e).map(str::to_owned);
                tracing::warn!(?code, "notification mail not sent");
                format!("SES refused the mail: {}", code.unwrap_or_else(|| "no code".into()))
            })
    }
}
