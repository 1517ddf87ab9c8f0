//! The cost ledger: what each payer (an org, or the `platform` and `unattributed` buckets)
//! used, in billed units, summed into one item per payer per day and per month with atomic
//! `ADD`s. Written once per invocation, after its answer (see `api::metering`); priced when
//! read (`domain::prices`).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::{DomainError, OrgId};
use telemetry::{Consumed, Units};

use crate::item::{Item, s};
use crate::keys;
use crate::scope::{OrgPartition, ReadScope};
use crate::{Store, tx};

/// The `_type` of ledger items.
const LEDGER_TYPE: &str = "cost";

/// One period's units (a day or a month).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LedgerPeriod {
    /// `yyyy-mm` or `yyyy-mm-dd`.
    pub period: String,
    pub units: BTreeMap<String, f64>,
}

/// An org's month: its total and its days, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LedgerMonth {
    pub month: LedgerPeriod,
    pub days: Vec<LedgerPeriod>,
}

fn number(n: f64) -> AttributeValue {
    AttributeValue::N(if n.fract() == 0.0 && n.abs() < 1e15 { format!("{n:.0}") } else { format!("{n}") })
}

fn units_of(item: &Item) -> BTreeMap<String, f64> {
    telemetry::unit::ALL
        .iter()
        .filter_map(|u| match item.get(*u) {
            Some(AttributeValue::N(n)) => n.parse::<f64>().ok().map(|n| ((*u).to_owned(), n)),
            _ => None,
        })
        .collect()
}

fn period_of(item: &Item) -> Option<String> {
    match item.get(keys::SK) {
        Some(AttributeValue::S(sk)) => sk.strip_prefix(keys::LEDGER_PREFIX).map(str::to_owned),
        _ => None,
    }
}

impl Store {
    /// Adds `usage` (by payer) to the ledger of `day` (`yyyy-mm-dd`) and its month: two
    /// `UpdateItem`s with `ADD` per payer, all issued at once (one round trip). Returns the
    /// capacity the writes consumed (the cost of metering), by payer.
    pub async fn add_to_ledger(&self, day: &str, usage: &BTreeMap<String, Units>) -> Result<BTreeMap<String, Consumed>, DomainError> {
        let month = day.get(..7).ok_or_else(|| DomainError::invalid("day", "must be yyyy-mm-dd"))?;
        let mut writes = Vec::new();
        for (payer, units) in usage {
            if units.is_empty() {
                continue;
            }
            let org: Option<OrgId> = payer.parse().ok();
            if org.is_none() && !telemetry::is_bucket(payer) {
                tracing::warn!(%payer, "usage of an unknown payer goes to unattributed");
            }
            let bucket = if org.is_some() || telemetry::is_bucket(payer) { payer.as_str() } else { telemetry::UNATTRIBUTED };
            let pk = keys::ledger_pk(org, bucket);
            for (period, indexed) in [(day, false), (month, true)] {
                writes.push(self.add_units(payer.clone(), keys::ledger(&pk, period), indexed.then(|| keys::ledger_month_index(month, bucket)), units));
            }
        }
        let mut consumed: BTreeMap<String, Consumed> = BTreeMap::new();
        for result in futures::future::join_all(writes).await {
            let (payer, c) = result?;
            let sum = consumed.entry(payer).or_default();
            sum.write += c.write;
            sum.read += c.read;
        }
        Ok(consumed)
    }

    async fn add_units(&self, payer: String, key: keys::Key, index: Option<keys::IndexKey>, units: &Units) -> Result<(String, Consumed), DomainError> {
        let mut adds = Vec::new();
        let mut update = self.client.update_item().table_name(&*self.table).set_key(Some(key.to_map()));
        for (i, (unit, n)) in units.iter().enumerate() {
            adds.push(format!("#u{i} :u{i}"));
            update = update.expression_attribute_names(format!("#u{i}"), *unit).expression_attribute_values(format!(":u{i}"), number(*n));
        }
        let mut set = vec!["#type = :type".to_owned()];
        update = update.expression_attribute_names("#type", keys::TYPE).expression_attribute_values(":type", s(LEDGER_TYPE));
        if let Some(index) = index {
            let (pk, sk) = index.index.attributes();
            set.push("#gpk = :gpk, #gsk = :gsk".to_owned());
            update = update
                .expression_attribute_names("#gpk", pk)
                .expression_attribute_names("#gsk", sk)
                .expression_attribute_values(":gpk", s(index.pk))
                .expression_attribute_values(":gsk", s(index.sk));
        }
        let out = update.update_expression(format!("ADD {} SET {}", adds.join(", "), set.join(", "))).send().await.map_err(tx::unexpected)?;
        let write = out.consumed_capacity.and_then(|c| c.write_capacity_units.or(c.capacity_units)).unwrap_or(0.0);
        Ok((payer, Consumed { read: 0.0, write }))
    }

    /// An org's ledger for `month` (`yyyy-mm`): the month's item and its days (one query).
    pub async fn org_ledger(&self, scope: &impl ReadScope, month: &str) -> Result<LedgerMonth, DomainError> {
        let pk = keys::ledger_pk(Some(scope.partition().org_id()), "");
        self.ledger_of(&pk, month).await
    }

    /// A bucket's ledger (`platform` or `unattributed`) for `month`.
    pub async fn bucket_ledger(&self, bucket: &str, month: &str) -> Result<LedgerMonth, DomainError> {
        self.ledger_of(&keys::ledger_pk(None, bucket), month).await
    }

    async fn ledger_of(&self, pk: &str, month: &str) -> Result<LedgerMonth, DomainError> {
        let prefix = keys::ledger(pk, month).sk;
        let mut out = LedgerMonth { month: LedgerPeriod { period: month.to_owned(), ..Default::default() }, days: Vec::new() };
        for item in self.query_all(None, pk, Some(&prefix)).await? {
            let Some(period) = period_of(&item) else { continue };
            let units = units_of(&item);
            if period == month {
                out.month.units = units;
            } else {
                out.days.push(LedgerPeriod { period, units });
            }
        }
        out.days.sort_by(|a, b| a.period.cmp(&b.period));
        Ok(out)
    }

    /// Every payer's month (`yyyy-mm`) with the org it is (the buckets have none), for
    /// platform operators: the operator check and the month's index partition in one round
    /// trip, then the orgs by key. Anyone else: `Forbidden`.
    pub async fn ledger_month_all(&self, who: &domain::Identity, month: &str) -> Result<Vec<PayerMonth>, DomainError> {
        if !who.platform_admin {
            return Err(DomainError::Forbidden("platform operators only"));
        }
        let (operator, months) = futures::join!(self.is_platform_operator(who), self.ledger_months(month));
        if !operator? {
            return Err(DomainError::Forbidden("platform operators only"));
        }
        let months = months?;
        let partitions: Vec<OrgPartition> = months.iter().filter_map(|(payer, _)| payer.parse::<OrgId>().ok()).map(OrgPartition::new).collect();
        let mut orgs = self.batch_get_orgs(&partitions).await?;
        Ok(months
            .into_iter()
            .map(|(payer, units)| {
                let org = payer.parse::<OrgId>().ok().and_then(|id| orgs.remove(&id));
                PayerMonth { payer, units, org }
            })
            .collect())
    }

    async fn ledger_months(&self, month: &str) -> Result<Vec<(String, BTreeMap<String, f64>)>, DomainError> {
        let (_, index_sk) = keys::Gsi::One.attributes();
        let items = self.query_all(Some(keys::Gsi::One), &keys::ledger_month_index_pk(month), None).await?;
        Ok(items
            .into_iter()
            .filter_map(|item| match item.get(index_sk) {
                Some(AttributeValue::S(payer)) => Some((payer.clone(), units_of(&item))),
                _ => None,
            })
            .collect())
    }

    /// Every item of a partition of the table or of an index (its sort keys beginning with
    /// `prefix`, when given), page after page.
    async fn query_all(&self, index: Option<keys::Gsi>, pk: &str, prefix: Option<&str>) -> Result<Vec<Item>, DomainError> {
        let (pk_attr, sk_attr) = index.map_or((keys::PK, keys::SK), keys::Gsi::attributes);
        let condition = if prefix.is_some() { "#pk = :pk AND begins_with(#sk, :prefix)" } else { "#pk = :pk" };
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&*self.table)
                .set_index_name(index.map(|i| i.name().to_owned()))
                .key_condition_expression(condition)
                .expression_attribute_names("#pk", pk_attr)
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start);
            if let Some(prefix) = prefix {
                query = query.expression_attribute_names("#sk", sk_attr).expression_attribute_values(":prefix", s(prefix));
            }
            let page = query.send().await.map_err(tx::unexpected)?;
            out.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }
}

/// One payer's month in the ledger, with its org when the payer is one (and still exists).
#[derive(Debug, Clone, PartialEq)]
pub struct PayerMonth {
    pub payer: String,
    pub units: BTreeMap<String, f64>,
    pub org: Option<crate::entities::Org>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_dynamodb_reads_them() {
        assert_eq!(number(1280.0), AttributeValue::N("1280".into()));
        assert_eq!(number(0.5), AttributeValue::N("0.5".into()));
    }
}
