//! The price table the cost ledger is priced with at read time: a versioned file in the
//! repository (`prices/us-east-1.json`: us-east-1 on-demand list prices with their sources),
//! which a deployment overrides entry by entry (`COST_PRICES`, the same shape). Bedrock's
//! token prices are the chat's model table ([`crate::chat::MODELS`]).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::Plan;

/// The table in the repository.
pub const PRICES_JSON: &str = include_str!("../prices/us-east-1.json");
/// The variable a deployment overrides prices with (JSON, entries of the table's shape).
pub const PRICES_ENV: &str = "COST_PRICES";

/// The price of one ledger unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitPrice {
    /// The service the unit is billed by (`dynamodb`, `lambda`, `apiGateway`, `ses`, `s3`,
    /// `metering`).
    pub service: String,
    /// USD per `per` units.
    pub usd: f64,
    pub per: f64,
    #[serde(default)]
    pub what: String,
    #[serde(default)]
    pub source: String,
}

/// A flat price (S3 storage).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlatPrice {
    pub usd: f64,
    #[serde(default)]
    pub what: String,
    #[serde(default)]
    pub source: String,
}

/// The price table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prices {
    pub version: String,
    pub region: String,
    #[serde(default)]
    pub note: String,
    pub units: BTreeMap<String, UnitPrice>,
    pub s3_storage_gb_month: FlatPrice,
    /// What each plan's subscription brings in a month (USD); a plan without a price has no
    /// revenue figure.
    #[serde(default)]
    pub plans: HashMap<Plan, f64>,
}

/// A deployment's changes to the table: any entry, by name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Overrides {
    version: Option<String>,
    #[serde(default)]
    units: BTreeMap<String, UnitOverride>,
    s3_storage_gb_month: Option<f64>,
    #[serde(default)]
    plans: HashMap<Plan, f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitOverride {
    usd: Option<f64>,
    per: Option<f64>,
}

impl Prices {
    /// The table in the repository.
    pub fn builtin() -> Prices {
        #[allow(clippy::expect_used)] // a fixed file, checked by a test
        serde_json::from_str(PRICES_JSON).expect("the price table parses")
    }

    /// The table with a deployment's overrides (`COST_PRICES`). An override that does not
    /// parse, or names a unit the table does not have, is refused.
    pub fn with_overrides(mut self, json: &str) -> Result<Prices, String> {
        let o: Overrides = serde_json::from_str(json).map_err(|e| format!("{PRICES_ENV}: {e}"))?;
        let changed = o.version.is_some() || !o.units.is_empty() || o.s3_storage_gb_month.is_some() || !o.plans.is_empty();
        for (name, u) in o.units {
            let price = self.units.get_mut(&name).ok_or_else(|| format!("{PRICES_ENV}: no unit {name}"))?;
            if let Some(usd) = u.usd {
                price.usd = usd;
            }
            if let Some(per) = u.per.filter(|p| *p > 0.0) {
                price.per = per;
            }
        }
        if let Some(usd) = o.s3_storage_gb_month {
            self.s3_storage_gb_month.usd = usd;
        }
        self.plans.extend(o.plans);
        if changed {
            self.version = o.version.unwrap_or_else(|| format!("{}+{PRICES_ENV}", self.version));
        }
        Ok(self)
    }

    /// The service a unit is billed by, and the USD of `amount` of it (`None` for a unit the
    /// table does not price).
    pub fn cost(&self, unit: &str, amount: f64) -> Option<(&str, f64)> {
        self.units.get(unit).map(|p| (p.service.as_str(), amount * p.usd / p.per))
    }

    /// USD of keeping `bytes` in S3 Standard for a month.
    pub fn storage_month_usd(&self, bytes: u64) -> f64 {
        let (high, low) = (u32::try_from(bytes >> 32).unwrap_or(u32::MAX), u32::try_from(bytes & 0xFFFF_FFFF).unwrap_or(0));
        (f64::from(high) * 4_294_967_296.0 + f64::from(low)) / 1_073_741_824.0 * self.s3_storage_gb_month.usd
    }

    /// A plan's monthly price, if it has one.
    pub fn plan_usd(&self, plan: Plan) -> Option<f64> {
        self.plans.get(&plan).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_prices_every_unit_it_lists_with_a_source() {
        let p = Prices::builtin();
        assert_eq!(p.region, "us-east-1");
        for (name, u) in &p.units {
            assert!(u.per > 0.0 && u.usd > 0.0 && u.source.starts_with("https://aws.amazon.com/"), "{name}");
        }
        // A million write units: 0.625 USD; a GB-second of arm64: 1,024,000 MB-ms.
        assert_eq!(p.cost("dynamodbWriteUnits", 1_000_000.0), Some(("dynamodb", 0.625)));
        let (service, usd) = p.cost("lambdaMbMs", 1_024_000.0).unwrap_or_default();
        assert_eq!(service, "lambda");
        assert!((usd - 0.0000133334).abs() < 1e-12);
        assert_eq!(p.cost("nothing", 1.0), None);
        assert_eq!(p.plan_usd(Plan::Free), Some(0.0));
        assert_eq!(p.plan_usd(Plan::Starter), None);
    }

    #[test]
    fn a_deployment_overrides_entries_and_nothing_else() {
        let p = Prices::builtin().with_overrides(r#"{"units": {"apiRequests": {"usd": 1.0}}, "plans": {"STARTER": 29}}"#).unwrap();
        assert_eq!(p.cost("apiRequests", 1_000_000.0), Some(("apiGateway", 1.0)));
        assert_eq!(p.cost("dynamodbWriteUnits", 1_000_000.0), Some(("dynamodb", 0.625)));
        assert_eq!(p.plan_usd(Plan::Starter), Some(29.0));
        assert!(p.version.ends_with("+COST_PRICES"));
        assert!(Prices::builtin().with_overrides(r#"{"units": {"made-up": {"usd": 1}}}"#).is_err());
        assert!(Prices::builtin().with_overrides("not json").is_err());
        assert!(Prices::builtin().with_overrides(r#"{"bogus": 1}"#).is_err());
    }
}
