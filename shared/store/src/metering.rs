//! DynamoDB metering at the source: every call the store's client makes asks for
//! `ReturnConsumedCapacity: INDEXES`, and the capacity DynamoDB reports is handed to the
//! call counter ([`telemetry::CallCounter`]), which sums it per request and payer.

use aws_sdk_dynamodb::operation::{
    batch_get_item::{BatchGetItemInput, BatchGetItemOutput},
    batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput},
    delete_item::{DeleteItemInput, DeleteItemOutput},
    get_item::{GetItemInput, GetItemOutput},
    put_item::{PutItemInput, PutItemOutput},
    query::{QueryInput, QueryOutput},
    scan::{ScanInput, ScanOutput},
    transact_get_items::{TransactGetItemsInput, TransactGetItemsOutput},
    transact_write_items::{TransactWriteItemsInput, TransactWriteItemsOutput},
    update_item::{UpdateItemInput, UpdateItemOutput},
};
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use telemetry::Consumed;

/// The interceptor: on the store's DynamoDB client (see [`crate::dynamodb_client`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct CapacityMeter;

/// Sets `ReturnConsumedCapacity: INDEXES` on `$input` when it is one of `$types`.
macro_rules! ask_capacity {
    ($input:expr, $($t:ty),+) => {{
        let input = $input;
        $(
            if let Some(i) = input.downcast_mut::<$t>() {
                i.return_consumed_capacity = Some(ReturnConsumedCapacity::Indexes);
            }
        )+
    }};
}

/// Units of one reported capacity: reads and writes as DynamoDB split them, or, when it
/// reported only the total, by the operation's kind.
fn units(c: &ConsumedCapacity, writes: bool) -> Consumed {
    let (read, write) = (c.read_capacity_units, c.write_capacity_units);
    if read.is_some() || write.is_some() {
        return Consumed { read: read.unwrap_or(0.0), write: write.unwrap_or(0.0) };
    }
    let total = c.capacity_units.unwrap_or(0.0);
    if writes { Consumed { read: 0.0, write: total } } else { Consumed { read: total, write: 0.0 } }
}

fn sum<'a>(all: impl IntoIterator<Item = &'a ConsumedCapacity>, writes: bool) -> Consumed {
    all.into_iter().map(|c| units(c, writes)).fold(Consumed::default(), |a, b| Consumed { read: a.read + b.read, write: a.write + b.write })
}

/// The capacity an operation's output reports, if it is one the store issues.
fn reported(output: &aws_smithy_runtime_api::client::interceptors::context::Output) -> Option<Consumed> {
    let one = |c: Option<&ConsumedCapacity>, writes: bool| Some(sum(c, writes));
    if let Some(o) = output.downcast_ref::<GetItemOutput>() {
        return one(o.consumed_capacity.as_ref(), false);
    }
    if let Some(o) = output.downcast_ref::<QueryOutput>() {
        return one(o.consumed_capacity.as_ref(), false);
    }
    if let Some(o) = output.downcast_ref::<ScanOutput>() {
        return one(o.consumed_capacity.as_ref(), false);
    }
    if let Some(o) = output.downcast_ref::<PutItemOutput>() {
        return one(o.consumed_capacity.as_ref(), true);
    }
    if let Some(o) = output.downcast_ref::<UpdateItemOutput>() {
        return one(o.consumed_capacity.as_ref(), true);
    }
    if let Some(o) = output.downcast_ref::<DeleteItemOutput>() {
        return one(o.consumed_capacity.as_ref(), true);
    }
    if let Some(o) = output.downcast_ref::<BatchGetItemOutput>() {
        return Some(sum(o.consumed_capacity.iter().flatten(), false));
    }
    if let Some(o) = output.downcast_ref::<BatchWriteItemOutput>() {
        return Some(sum(o.consumed_capacity.iter().flatten(), true));
    }
    if let Some(o) = output.downcast_ref::<TransactGetItemsOutput>() {
        return Some(sum(o.consumed_capacity.iter().flatten(), false));
    }
    if let Some(o) = output.downcast_ref::<TransactWriteItemsOutput>() {
        return Some(sum(o.consumed_capacity.iter().flatten(), true));
    }
    None
}

impl Intercept for CapacityMeter {
    fn name(&self) -> &'static str {
        "CapacityMeter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        ask_capacity!(
            context.input_mut(),
            GetItemInput,
            PutItemInput,
            UpdateItemInput,
            DeleteItemInput,
            QueryInput,
            ScanInput,
            BatchGetItemInput,
            BatchWriteItemInput,
            TransactGetItemsInput,
            TransactWriteItemsInput
        );
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // A retried call reports the capacity of its last attempt; the attempts before it
        // (throttled, or failed) reported none.
        if let Ok(output) = context.output_or_error()
            && let Some(consumed) = reported(output)
        {
            let before = cfg.load::<Consumed>().copied().unwrap_or_default();
            cfg.interceptor_state().store_put(Consumed { read: before.read + consumed.read, write: before.write + consumed.write });
        }
        Ok(())
    }
}
