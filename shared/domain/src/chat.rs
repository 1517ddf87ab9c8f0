//! Chat: the models an org may use by plan and what they cost, the org's chat settings and
//! their bounds, conversation ids, and the token estimate budgets are reserved by.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::Ulid;

use crate::{FieldError, IdError, Plan};

crate::work::ulid_id! {
    /// A conversation id: a ULID.
    ConversationId;
    /// A chat message id: a ULID.
    MessageId;
}

impl MessageId {
    /// The id of the answer to this question: the next ULID, so that a question and its answer
    /// sort next to each other whatever other turns of the conversation run at the same time.
    pub fn answer(self) -> MessageId {
        MessageId(self.0.increment().unwrap_or(self.0))
    }
}

/// One Bedrock model (a foundation model id or a cross-region inference profile id) and its
/// on-demand price.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelPrice {
    pub model_id: &'static str,
    /// USD per million input tokens.
    pub input_per_million: f64,
    /// USD per million output tokens.
    pub output_per_million: f64,
    /// The lowest plan that may use it.
    #[serde(skip)]
    pub from_plan: Plan,
}

/// The price table: Amazon Bedrock on-demand prices in us-east-1 (USD per 1M tokens), as the
/// Bedrock pricing page lists them (https://aws.amazon.com/bedrock/pricing/, checked 2025).
/// Cross-region inference profiles (`us.…`) cost what their model costs. A deployment that
/// negotiated other prices changes this table.
pub const MODELS: &[ModelPrice] = &[
    ModelPrice { model_id: "us.amazon.nova-micro-v1:0", input_per_million: 0.035, output_per_million: 0.14, from_plan: Plan::Free },
    ModelPrice { model_id: "us.amazon.nova-lite-v1:0", input_per_million: 0.06, output_per_million: 0.24, from_plan: Plan::Free },
    ModelPrice { model_id: "us.anthropic.claude-3-5-haiku-20241022-v1:0", input_per_million: 0.80, output_per_million: 4.00, from_plan: Plan::Starter },
    ModelPrice { model_id: "us.amazon.nova-pro-v1:0", input_per_million: 0.80, output_per_million: 3.20, from_plan: Plan::Professional },
    ModelPrice { model_id: "us.anthropic.claude-sonnet-4-20250514-v1:0", input_per_million: 3.00, output_per_million: 15.00, from_plan: Plan::Professional },
];

/// The embedding model of retrieval: Titan Text Embeddings V2, USD 0.02 per 1M input tokens.
pub const EMBEDDING_MODEL: &str = "amazon.titan-embed-text-v2:0";
pub const EMBEDDING_PRICE_PER_MILLION: f64 = 0.02;
/// Dimensions of the stored vectors (Titan V2 offers 256, 512 or 1024; 512 keeps ~99 % of
/// 1024's retrieval quality at half the storage, by Amazon's own evaluation).
pub const EMBEDDING_DIMENSIONS: u32 = 512;

/// The default model of a new org's chat.
pub const DEFAULT_MODEL: &str = "us.amazon.nova-lite-v1:0";

/// The price of `model` (`None` for a model outside the table).
pub fn price_of(model: &str) -> Option<&'static ModelPrice> {
    MODELS.iter().find(|m| m.model_id == model)
}

/// USD for this usage of `model` (0 for a model outside the table).
pub fn cost_usd(model: &str, input_tokens: u64, output_tokens: u64) -> f64 {
    let Some(p) = price_of(model) else { return 0.0 };
    (as_f64(input_tokens) * p.input_per_million + as_f64(output_tokens) * p.output_per_million) / 1_000_000.0
}

fn as_f64(n: u64) -> f64 {
    // token counts stay far below 2^52
    f64::from(u32::try_from(n.min(u64::from(u32::MAX))).unwrap_or(u32::MAX))
}

/// The chat bounds of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatBounds {
    /// The models the plan may use.
    pub models: Vec<&'static str>,
    /// The most output tokens one answer may take.
    pub max_output_tokens: u32,
    /// Tokens per month, all members together.
    pub tokens_per_month: u64,
}

impl ChatBounds {
    pub fn of(plan: Plan) -> ChatBounds {
        let rank = |p: Plan| Plan::ALL.iter().position(|x| *x == p).unwrap_or(0);
        let models = MODELS.iter().filter(|m| rank(m.from_plan) <= rank(plan)).map(|m| m.model_id).collect();
        let max_output_tokens = match plan {
            Plan::Free => 1_024,
            Plan::Starter => 2_048,
            Plan::Professional => 4_096,
            Plan::Enterprise => 8_192,
        };
        ChatBounds { models, max_output_tokens, tokens_per_month: plan.limits().chat_tokens_per_month }
    }
}

/// The longest system prompt, in characters.
pub const MAX_SYSTEM_PROMPT_CHARS: usize = 8_000;
/// The longest user message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 16_000;
/// The longest conversation title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// An org's chat settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatSettings {
    /// Instructions every conversation of the org starts with.
    pub system_prompt: String,
    /// The models members may pick (a subset of the plan's).
    pub allowed_models: Vec<String>,
    pub default_model: String,
    /// 0 to 1.
    pub temperature: f32,
    /// Output tokens per answer, within the plan's bound.
    pub max_output_tokens: u32,
    /// Answers draw on the org's documents and tasks.
    pub retrieval: bool,
    /// Tokens per month one member may use (none: only the org's budget applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_tokens_per_month: Option<u64>,
}

impl ChatSettings {
    /// What an org has before an admin changes anything.
    pub fn default_for(plan: Plan) -> ChatSettings {
        let bounds = ChatBounds::of(plan);
        ChatSettings {
            system_prompt: "You are the assistant of this organization's workspace. Answer briefly and accurately.".into(),
            allowed_models: vec![DEFAULT_MODEL.into()],
            default_model: DEFAULT_MODEL.into(),
            temperature: 0.2,
            max_output_tokens: bounds.max_output_tokens.min(1_024),
            retrieval: true,
            user_tokens_per_month: None,
        }
    }

    /// Checks the settings against the plan's bounds: every field error at once.
    pub fn validate(&self, plan: Plan) -> Result<(), Vec<FieldError>> {
        let bounds = ChatBounds::of(plan);
        let mut errors = Vec::new();
        let prompt_chars = self.system_prompt.chars().count();
        if prompt_chars > MAX_SYSTEM_PROMPT_CHARS {
            errors.push(FieldError::new("systemPrompt", format!("at most {MAX_SYSTEM_PROMPT_CHARS} characters")));
        }
        if self.system_prompt.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            errors.push(FieldError::new("systemPrompt", "no control characters"));
        }
        if self.allowed_models.is_empty() {
            errors.push(FieldError::new("allowedModels", "at least one model"));
        }
        for m in &self.allowed_models {
            if !bounds.models.contains(&m.as_str()) {
                errors.push(FieldError::new("allowedModels", format!("{m} is not a model of this plan (its models: {})", bounds.models.join(", "))));
            }
        }
        if !self.allowed_models.contains(&self.default_model) {
            errors.push(FieldError::new("defaultModel", "must be one of allowedModels"));
        }
        if !(0.0..=1.0).contains(&self.temperature) || self.temperature.is_nan() {
            errors.push(FieldError::new("temperature", "between 0 and 1"));
        }
        if self.max_output_tokens == 0 || self.max_output_tokens > bounds.max_output_tokens {
            errors.push(FieldError::new("maxOutputTokens", format!("between 1 and {} on this plan", bounds.max_output_tokens)));
        }
        if self.user_tokens_per_month == Some(0) {
            errors.push(FieldError::new("userTokensPerMonth", "at least 1 (or leave it out)"));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

/// A conservative token estimate of `text`, by which budgets are reserved before a call
/// (Bedrock reports the real count after it): a token per 4 bytes of UTF-8, or per word and
/// punctuation mark, whichever is more, as BPE tokenizers of English text land within both.
pub fn estimate_tokens(text: &str) -> u64 {
    let by_bytes = text.len().div_ceil(4);
    let words = text.split_whitespace().count();
    let marks = text.chars().filter(|c| c.is_ascii_punctuation()).count();
    u64::try_from(by_bytes.max(words + marks)).unwrap_or(u64::MAX)
}

/// A conversation title (trimmed, 1 to [`MAX_TITLE_CHARS`] characters, no control characters).
pub fn title(value: &str, field: &str) -> Result<String, FieldError> {
    let t = value.trim();
    if t.is_empty() || t.chars().count() > MAX_TITLE_CHARS || t.chars().any(char::is_control) {
        return Err(FieldError::new(field, format!("1 to {MAX_TITLE_CHARS} characters, no control characters")));
    }
    Ok(t.to_owned())
}

/// A user message's content (1 to [`MAX_MESSAGE_CHARS`] characters, not only spaces).
pub fn message_content(value: &str, field: &str) -> Result<String, FieldError> {
    if value.trim().is_empty() || value.chars().count() > MAX_MESSAGE_CHARS {
        return Err(FieldError::new(field, format!("1 to {MAX_MESSAGE_CHARS} characters")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
        return Err(FieldError::new(field, "no control characters"));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_plans_get_every_model_of_lower_ones() {
        for pair in Plan::ALL.windows(2) {
            let (lo, hi) = (ChatBounds::of(pair[0]), ChatBounds::of(pair[1]));
            assert!(lo.models.iter().all(|m| hi.models.contains(m)));
            assert!(hi.max_output_tokens > lo.max_output_tokens);
        }
        assert!(ChatBounds::of(Plan::Free).models.contains(&DEFAULT_MODEL));
    }

    #[test]
    fn default_settings_are_valid_on_every_plan() {
        for plan in Plan::ALL {
            assert_eq!(ChatSettings::default_for(plan).validate(plan), Ok(()), "{plan}");
        }
    }

    #[test]
    fn settings_outside_the_plan_are_refused_field_by_field() {
        let mut s = ChatSettings::default_for(Plan::Free);
        s.allowed_models = vec!["us.anthropic.claude-sonnet-4-20250514-v1:0".into()];
        s.temperature = 1.5;
        s.max_output_tokens = 5_000;
        s.system_prompt = "x".repeat(MAX_SYSTEM_PROMPT_CHARS + 1);
        let fields: Vec<String> = s.validate(Plan::Free).unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["systemPrompt", "allowedModels", "defaultModel", "temperature", "maxOutputTokens"]);
        s.temperature = f32::NAN;
        assert!(s.validate(Plan::Enterprise).unwrap_err().iter().any(|e| e.field == "temperature"));
    }

    #[test]
    fn an_answer_sorts_right_after_its_question() {
        let (q1, q2) = (MessageId::new(), MessageId::new());
        let mut ids = [q1, q2, q1.answer(), q2.answer()];
        ids.sort();
        let pos = |m: MessageId| ids.iter().position(|x| *x == m).unwrap();
        assert_eq!(pos(q1.answer()), pos(q1) + 1);
        assert_eq!(pos(q2.answer()), pos(q2) + 1);
    }

    #[test]
    fn costs_follow_the_price_table() {
        let c = cost_usd("us.amazon.nova-lite-v1:0", 1_000_000, 1_000_000);
        assert!((c - 0.30).abs() < 1e-9, "{c}");
        assert!(cost_usd("unknown", 10, 10).abs() < f64::EPSILON);
    }

    #[test]
    fn the_estimate_is_never_below_a_token_per_four_bytes_or_per_word() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcdefgh"), 2);
        assert_eq!(estimate_tokens("a b c d e f"), 6);
        assert_eq!(estimate_tokens("Hi, you!"), 4);
    }
}
