//! Branded mail. Templates hold placeholders `{{name}}`; [`Message::render`] fills them, and
//! every value that comes from a user (names, org names, emails) is HTML-escaped in HTML
//! bodies and stripped of line breaks in subjects. Cognito's code placeholder (`{####}`) and
//! username placeholder are passed as [`Value::Raw`], never escaped, so Cognito finds them.

const LAYOUT: &str = include_str!("../templates/layout.html");

/// A value for a placeholder.
#[derive(Debug, Clone)]
pub enum Value<'a> {
    /// User-controlled or otherwise untrusted text: escaped.
    Text(&'a str),
    /// Trusted markup or a placeholder for Cognito: inserted as is.
    Raw(&'a str),
}

/// How the product and, when known, the org present themselves.
#[derive(Debug, Clone, Default)]
pub struct Brand {
    /// The product's name ("Tenantry", or the SaaS team's own).
    pub product: String,
    /// The org's display name, when the mail is on an org's behalf.
    pub org_name: Option<String>,
    /// An https logo URL.
    pub logo_url: Option<String>,
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// One kind of message: subject, heading, HTML paragraphs and a text body, with placeholders.
#[derive(Debug, Clone, Copy)]
pub struct Message {
    pub subject: &'static str,
    pub heading: &'static str,
    pub html: &'static str,
    pub text: &'static str,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// One line of plain text: control characters (line breaks included) become spaces, so a
/// value cannot add headers or lines to a subject.
pub fn single_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn fill(template: &str, vars: &[(&str, Value<'_>)], escape: fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = &after[..end];
                match vars.iter().find(|(k, _)| *k == name) {
                    Some((_, Value::Text(v))) => out.push_str(&escape(v)),
                    Some((_, Value::Raw(v))) => out.push_str(v),
                    None => {}
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

impl Message {
    /// Renders subject, HTML (in the branded layout) and text.
    pub fn render(&self, brand: &Brand, vars: &[(&str, Value<'_>)]) -> Rendered {
        let sender = brand.org_name.as_deref().unwrap_or(&brand.product);
        let mut all: Vec<(&str, Value<'_>)> = vec![("product", Value::Text(&brand.product)), ("sender", Value::Text(sender))];
        all.extend(vars.iter().cloned());
        let subject = single_line(&fill(self.subject, &all, str::to_owned));
        let heading = fill(self.heading, &all, escape_html);
        let body = fill(self.html, &all, escape_html);
        let logo = match &brand.logo_url {
            Some(url) if url.starts_with("https://") => {
                format!("<img src=\"{}\" alt=\"{}\" height=\"40\" style=\"display:block;margin-bottom:16px\">", escape_html(url), escape_html(sender))
            }
            _ => String::new(),
        };
        let footer = format!("Sent by {} on behalf of {}.", escape_html(&brand.product), escape_html(sender));
        let html = fill(
            LAYOUT,
            &[
                ("subject", Value::Text(&subject)),
                ("logo", Value::Raw(&logo)),
                ("heading", Value::Raw(&heading)),
                ("body", Value::Raw(&body)),
                ("footer", Value::Raw(&footer)),
            ],
            escape_html,
        );
        let text = fill(self.text, &all, str::to_owned);
        Rendered { subject, html, text }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Message = Message {
        subject: "Join {{sender}}",
        heading: "{{sender}} invited you",
        html: "<p>Hello {{name}}, code {{code}}</p>",
        text: "Hello {{name}}, code {{code}}",
    };

    #[test]
    fn user_values_are_escaped_and_placeholders_kept() {
        let brand = Brand {
            product: "Tenantry".into(),
            org_name: Some("<script>alert('x')</script> & Co".into()),
            logo_url: Some("https://x.test/l.png\"onerror=\"x".into()),
        };
        let r = M.render(&brand, &[("name", Value::Text("<b>Eve</b>")), ("code", Value::Raw("{####}"))]);
        assert!(!r.html.contains("<script>") && !r.html.contains("<b>Eve"));
        assert!(r.html.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; Co"));
        assert!(r.html.contains("{####}") && r.text.contains("{####}"));
        assert!(!r.html.contains("\"onerror=\""));
        assert_eq!(r.subject, "Join <script>alert('x')</script> & Co");
    }

    #[test]
    fn subjects_stay_on_one_line() {
        let brand = Brand { product: "P".into(), org_name: Some("Evil\r\nBcc: all@example.com".into()), logo_url: None };
        let r = M.render(&brand, &[]);
        assert!(!r.subject.contains('\n') && !r.subject.contains('\r'));
    }

    #[test]
    fn non_https_logos_are_dropped() {
        let brand = Brand { product: "P".into(), org_name: None, logo_url: Some("javascript:alert(1)".into()) };
        assert!(!M.render(&brand, &[]).html.contains("javascript:"));
    }
}
