//! What serving an org cost: the cost ledger (units as metered, see `api::metering`) priced
//! at read time with the price table (`domain::prices`), Bedrock's tokens from the chat's
//! usage records, and S3 storage estimated from the org's stored bytes.

use std::collections::BTreeMap;

use api::{ApiError, ApiResult, Caller, PageQuery, Params};
use axum::Json;
use axum::extract::State;
use domain::prices::Prices;
use domain::{Action, FieldError, OrgId, Plan};
use serde::Serialize;
use store::{LedgerPeriod, PayerMonth};

use crate::AppState;

/// One service's part of a period's cost.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCost {
    /// `dynamodb`, `lambda`, `apiGateway`, `ses`, `s3`, `bedrock`, `s3Storage`, `metering`.
    pub service: String,
    pub usd: f64,
    /// The metered units behind the figure (ledger units, or tokens, or bytes), by name.
    pub units: BTreeMap<String, f64>,
    /// Estimated rather than metered (S3 storage: the bytes stored now for the whole month).
    pub estimated: bool,
}

/// One day's cost (metered services only).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DayCost {
    /// `yyyy-mm-dd` (UTC).
    pub day: String,
    pub usd: f64,
    pub services: Vec<ServiceCost>,
}

/// An org's cost for a month.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgCosts {
    pub org_id: OrgId,
    /// `yyyy-mm`.
    pub month: String,
    pub currency: String,
    /// The price table's version (with `+COST_PRICES` when the deployment overrides it).
    pub prices: String,
    pub total_usd: f64,
    /// The month by service, costliest first.
    pub services: Vec<ServiceCost>,
    /// The month by day, oldest first (days with no usage are absent).
    pub days: Vec<DayCost>,
}

/// One payer of a month, for platform operators.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayerCost {
    /// An org id, or `platform` / `unattributed`.
    pub payer: String,
    /// The org's name (absent for the buckets, and for an org purged since).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// Metered cost of the month (S3 storage and Bedrock are in the org's own report).
    pub cost_usd: f64,
    /// The plan's monthly price, when the price table gives it one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revenue_usd: Option<f64>,
    /// Revenue minus cost, when there is a revenue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub margin_usd: Option<f64>,
    pub services: Vec<ServiceCost>,
}

/// Revenue, cost and margin of one plan's orgs.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanRevenue {
    pub plan: Plan,
    pub orgs: u64,
    pub cost_usd: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revenue_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub margin_usd: Option<f64>,
}

/// Every payer's cost of a month, for platform operators.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformCosts {
    pub month: String,
    pub currency: String,
    pub prices: String,
    pub total_usd: f64,
    /// Orgs (and the buckets) ranked by cost, costliest first.
    pub payers: Vec<PayerCost>,
    pub plans: Vec<PlanRevenue>,
}

/// `?month=yyyy-mm`, this month (UTC) by default.
fn month_of(q: PageQuery, store: &store::Store) -> ApiResult<String> {
    let q = q.only(&["month"])?;
    if q.page.limit.is_some() || q.page.cursor.is_some() {
        return Err(ApiError::malformed("unknown query parameter(s): limit, cursor"));
    }
    match q.param("month") {
        None => Ok(store.clock().month_key()),
        Some(m) => {
            let valid = m.len() == 7
                && m.as_bytes()[4] == b'-'
                && m[..4].bytes().all(|b| b.is_ascii_digit())
                && matches!(m[5..].parse::<u8>(), Ok(1..=12))
                && m[5..].bytes().all(|b| b.is_ascii_digit());
            if valid { Ok(m.to_owned()) } else { Err(ApiError::invalid(vec![FieldError::new("month", "must be yyyy-mm")])) }
        }
    }
}

fn round(usd: f64) -> f64 {
    (usd * 1e9).round() / 1e9
}

/// Ledger units priced, by service, costliest first.
fn services_of(units: &BTreeMap<String, f64>, prices: &Prices) -> Vec<ServiceCost> {
    let mut by: BTreeMap<String, ServiceCost> = BTreeMap::new();
    for (unit, n) in units {
        let (service, usd) = prices.cost(unit, *n).map_or(("unpriced".to_owned(), 0.0), |(s, u)| (s.to_owned(), u));
        let entry = by.entry(service.clone()).or_insert_with(|| ServiceCost { service, usd: 0.0, units: BTreeMap::new(), estimated: false });
        entry.usd += usd;
        entry.units.insert(unit.clone(), *n);
    }
    let mut out: Vec<ServiceCost> = by.into_values().map(|s| ServiceCost { usd: round(s.usd), ..s }).collect();
    sort(&mut out);
    out
}

fn sort(services: &mut [ServiceCost]) {
    services.sort_by(|a, b| b.usd.total_cmp(&a.usd).then_with(|| a.service.cmp(&b.service)));
}

fn total(services: &[ServiceCost]) -> f64 {
    round(services.iter().map(|s| s.usd).sum())
}

fn day_cost(d: &LedgerPeriod, prices: &Prices) -> DayCost {
    let services = services_of(&d.units, prices);
    DayCost { day: d.period.clone(), usd: total(&services), services }
}

/// `GET /orgs/{orgId}/costs?month=`: the owner's view (the ledger and the chat's usage are
/// read with the authorization, one round trip).
pub async fn org(State(app): State<AppState>, Caller(who): Caller, p: Params, q: PageQuery) -> ApiResult<Json<OrgCosts>> {
    let org_id: OrgId = p.get("orgId")?;
    let month = month_of(q, &app.store)?;
    let store = &app.store;
    let m = month.clone();
    let (scope, (ledger, chat)) = store
        .authorize_with(&who, org_id, Action::ReadCosts, |pending| async move {
            let (ledger, chat) = futures::join!(store.org_ledger(&pending, &m), store.chat_usage(&pending, &m));
            Ok((ledger?, chat?))
        })
        .await?;
    let prices = &app.prices;
    let mut services = services_of(&ledger.month.units, prices);
    let tokens: Vec<_> = chat.models.iter().filter(|m| m.input_tokens + m.output_tokens > 0).collect();
    if !tokens.is_empty() {
        let mut units = BTreeMap::new();
        let mut usd = 0.0;
        for m in tokens {
            units.insert(format!("{}:inputTokens", m.model_id), telemetry::as_f64(m.input_tokens));
            units.insert(format!("{}:outputTokens", m.model_id), telemetry::as_f64(m.output_tokens));
            usd += domain::chat::cost_usd(&m.model_id, m.input_tokens, m.output_tokens);
        }
        // Beside the embeddings' tokens, which the ledger holds under the same service.
        match services.iter_mut().find(|s| s.service == "bedrock") {
            Some(bedrock) => {
                bedrock.usd = round(bedrock.usd + usd);
                bedrock.units.extend(units);
            }
            None => services.push(ServiceCost { service: "bedrock".into(), usd: round(usd), units, estimated: false }),
        }
    }
    let bytes = scope.org().storage_bytes;
    if bytes > 0 {
        let units = BTreeMap::from([("storageBytes".to_owned(), telemetry::as_f64(bytes))]);
        services.push(ServiceCost { service: "s3Storage".into(), usd: round(prices.storage_month_usd(bytes)), units, estimated: true });
    }
    sort(&mut services);
    let days = ledger.days.iter().map(|d| day_cost(d, prices)).collect();
    Ok(Json(OrgCosts { org_id, month, currency: "USD".into(), prices: prices.version.clone(), total_usd: total(&services), services, days }))
}

/// `GET /admin/costs?month=`: every payer ranked by cost, revenue and margin per plan.
pub async fn platform(State(app): State<AppState>, Caller(who): Caller, q: PageQuery) -> ApiResult<Json<PlatformCosts>> {
    let month = month_of(q, &app.store)?;
    let months = app.store.ledger_month_all(&who, &month).await?;
    let prices = &app.prices;
    let mut payers: Vec<PayerCost> = months.into_iter().map(|m| payer_cost(m, prices)).collect();
    payers.sort_by(|a, b| b.cost_usd.total_cmp(&a.cost_usd).then_with(|| a.payer.cmp(&b.payer)));
    let mut plans: BTreeMap<&str, PlanRevenue> = BTreeMap::new();
    for p in &payers {
        let Some(plan) = p.plan else { continue };
        let key = match plan {
            Plan::Free => "0",
            Plan::Starter => "1",
            Plan::Professional => "2",
            Plan::Enterprise => "3",
        };
        let e = plans.entry(key).or_insert(PlanRevenue { plan, orgs: 0, cost_usd: 0.0, revenue_usd: prices.plan_usd(plan).map(|_| 0.0), margin_usd: None });
        e.orgs += 1;
        e.cost_usd = round(e.cost_usd + p.cost_usd);
        if let (Some(r), Some(add)) = (e.revenue_usd, p.revenue_usd) {
            e.revenue_usd = Some(round(r + add));
        }
    }
    let plans = plans.into_values().map(|p| PlanRevenue { margin_usd: p.revenue_usd.map(|r| round(r - p.cost_usd)), ..p }).collect();
    Ok(Json(PlatformCosts {
        month,
        currency: "USD".into(),
        prices: prices.version.clone(),
        total_usd: round(payers.iter().map(|p| p.cost_usd).sum()),
        payers,
        plans,
    }))
}

fn payer_cost(m: PayerMonth, prices: &Prices) -> PayerCost {
    let services = services_of(&m.units, prices);
    let cost_usd = total(&services);
    let plan = m.org.as_ref().map(|o| o.plan);
    let revenue_usd = plan.and_then(|p| prices.plan_usd(p));
    PayerCost {
        name: m.org.as_ref().map(|o| o.name.clone()),
        plan,
        cost_usd,
        revenue_usd,
        margin_usd: revenue_usd.map(|r| round(r - cost_usd)),
        payer: m.payer,
        services,
    }
}

/// The price table of a deployment: the repository's, with `COST_PRICES` applied. An
/// override that does not parse is logged and ignored (the repository's prices apply).
pub fn prices(overrides: Option<String>) -> Prices {
    let builtin = Prices::builtin();
    match overrides {
        None => builtin,
        Some(json) => builtin.clone().with_overrides(&json).unwrap_or_else(|e| {
            tracing::error!(error = %e, "price overrides ignored");
            builtin
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_priced_by_service() {
        let prices = Prices::builtin();
        let units = BTreeMap::from([
            ("dynamodbWriteUnits".to_owned(), 2_000_000.0),
            ("dynamodbReadUnits".to_owned(), 4_000_000.0),
            ("apiRequests".to_owned(), 1_000_000.0),
        ]);
        let s = services_of(&units, &prices);
        assert_eq!(s.iter().map(|s| (s.service.as_str(), s.usd)).collect::<Vec<_>>(), vec![("apiGateway", 3.5), ("dynamodb", 1.75)]);
        assert_eq!(total(&s), 5.25);
    }
}
