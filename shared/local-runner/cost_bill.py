"""A bill priced by hand: what AWS would charge for what the local AWS endpoint received, from
first principles, independently of Tenantry's own metering.

Input is what the providers saw, never what Tenantry reported: the endpoint's bill log
(LOCAL_AWS_BILL_LOG, see shared/testkit/local_aws.py: every item written with its images
before and after, every item read, every S3 request, every mail), the fake Bedrock runtime's
transcript (tokens per call), and the platform's view of each invocation (the client's time
for an HTTP request, the runner's delivery report for an event). Units follow AWS's
published rules:

- DynamoDB (on-demand): a write is 1 unit per KB (rounded up) of the larger of the item's
  images; a transactional one, and a condition check in a transaction, 2; each global
  secondary index the write changes costs its own units (an entry put or deleted is one write
  of its size, an entry whose index key changes two, one whose attributes change one, one that
  does not change none); a read is 1 unit per 4 KB, half when eventually consistent, a query's
  or scan's items summed before rounding, a batch's rounded each. Sizes: each attribute's name
  in UTF-8 bytes plus its value (strings in UTF-8 bytes, numbers 1 byte per two significant
  digits plus 1, binaries their bytes, booleans and nulls 1, lists and maps 3 plus each
  element and 1 byte per element). Writes of the cost ledger's own items (`COSTS#`) are the
  service `metering`. A write DynamoDB refused (a failed condition) still costs its units; the
  bill counts them apart, since DynamoDB reports no capacity for it.
- Lambda: one request per invocation; duration rounded up to the millisecond, times the
  function's memory.
- API Gateway: one REST request per HTTP request.
- S3: class A for PUT, POST, COPY and LIST, class B for GET and HEAD, DELETE free; requests a
  browser sent with a presigned URL or form are counted apart (the client's, not the
  functions').
- SES: one message per recipient.
- Bedrock: input and output tokens per model, as the model reported them.

Prices are the repository's price table (shared/domain/prices/us-east-1.json); units are
what this script computes.
"""

from __future__ import annotations

import base64
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

LEDGER_PREFIX = "COSTS#"


# --- item sizes --------------------------------------------------------------------------


def number_bytes(text: str) -> int:
    digits = text.strip().lstrip("-+").lower().partition("e")[0].replace(".", "").lstrip("0").rstrip("0")
    return math.ceil(max(len(digits), 1) / 2) + 1


def value_bytes(typed: dict[str, Any]) -> int:
    [(tag, value)] = typed.items()
    match tag:
        case "S":
            return len(value.encode("utf-8"))
        case "N":
            return number_bytes(value)
        case "B":
            return len(base64.b64decode(value))
        case "BOOL" | "NULL":
            return 1
        case "SS":
            return sum(len(v.encode("utf-8")) for v in value)
        case "NS":
            return sum(number_bytes(v) for v in value)
        case "BS":
            return sum(len(base64.b64decode(v)) for v in value)
        case "L":
            return 3 + sum(1 + value_bytes(v) for v in value)
        case "M":
            return 3 + sum(1 + len(k.encode("utf-8")) + value_bytes(v) for k, v in value.items())
    raise ValueError(f"attribute type {tag!r}")


def item_bytes(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_bytes(v) for name, v in item.items())


def write_units(size: int) -> int:
    return max(1, -(-size // 1024))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, -(-size // 4096))
    return float(units) if consistent else units / 2


# --- DynamoDB ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]


def indexes_of(table_definition: dict[str, Any]) -> list[Index]:
    """The global secondary indexes of shared/store/table.json (every one projects ALL)."""
    return [Index(g["indexName"], (g["partitionKey"], g["sortKey"])) for g in table_definition["globalSecondaryIndexes"]]


def index_units(indexes: list[Index], before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
    total = 0
    for index in indexes:
        def keyed(image: dict[str, Any] | None) -> dict[str, Any] | None:
            return image if image is not None and all(k in image for k in index.keys) else None

        old, new = keyed(before), keyed(after)
        if old is None and new is None:
            continue
        if old is not None and new is not None:
            if all(old[k] == new[k] for k in index.keys):
                total += 0 if old == new else write_units(max(item_bytes(old), item_bytes(new)))
            else:
                total += write_units(item_bytes(old)) + write_units(item_bytes(new))
        else:
            total += write_units(item_bytes(old or new))
    return total


def is_ledger(write: dict[str, Any]) -> bool:
    image = write.get("after") or write.get("before") or {}
    return str(image.get("PK", {}).get("S", "")).startswith(LEDGER_PREFIX)


@dataclass
class Bill:
    """One payer's bill, in units."""

    units: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    # Not metered by design, shown beside the bill: writes DynamoDB refused, presigned S3 requests.
    apart: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, unit: str, n: float) -> None:
        self.units[unit] += n


def price_dynamodb(bill: Bill, record: dict[str, Any], indexes: list[Index]) -> None:
    if "writes" in record:
        factor = 2 if record.get("transaction") else 1
        for w in record["writes"]:
            before, after = w.get("before"), w.get("after")
            units = factor * (write_units(max(item_bytes(before), item_bytes(after))) + index_units(indexes, before, after))
            if record.get("error"):
                bill.apart["dynamodbRefusedWriteUnits"] += units
            elif is_ledger(w):
                bill.add("meteringWriteUnits", units)
            else:
                bill.add("dynamodbWriteUnits", units)
        return
    items = [i for i in record.get("items", []) if i is not None]
    consistent = bool(record.get("consistent"))
    if record["operation"] == "BatchGetItem":
        units = sum(read_units(item_bytes(i), consistent) for i in items)
    else:
        units = read_units(sum(item_bytes(i) for i in items), consistent)
    bill.add("dynamodbReadUnits", units)


# --- the other services --------------------------------------------------------------------


def s3_class(record: dict[str, Any]) -> str | None:
    method, path, query = record["method"], record["path"], record.get("query", "")
    object_key = "/" in path.strip("/")
    if method in ("PUT", "POST"):
        return "s3ClassA"
    if method == "GET" and not object_key and ("list-type" in query or "prefix" in query or query == ""):
        return "s3ClassA"
    if method in ("GET", "HEAD"):
        return "s3ClassB"
    return None  # DELETE, OPTIONS: free


def price_log(bill: Bill, records: Iterable[dict[str, Any]], indexes: list[Index]) -> None:
    for r in records:
        if r["service"] == "dynamodb":
            price_dynamodb(bill, r, indexes)
        elif r["service"] == "s3":
            unit = s3_class(r)
            if unit is None:
                continue
            if r.get("presigned"):
                bill.apart[f"presigned:{unit}"] += 1
            else:
                bill.add(unit, 1)
        elif r["service"] == "ses" and 200 <= r.get("status", 0) < 300:
            bill.add("sesMessages", r.get("recipients", 0))


def price_invocations(bill: Bill, http_ms: Iterable[float], event_ms: Iterable[float], memory_mb: int) -> None:
    """HTTP requests (the client's time of each) and event deliveries (the runner's report)."""
    for ms in http_ms:
        bill.add("apiRequests", 1)
        bill.add("lambdaRequests", 1)
        bill.add("lambdaMbMs", math.ceil(ms) * memory_mb)
    for ms in event_ms:
        bill.add("lambdaRequests", 1)
        bill.add("lambdaMbMs", math.ceil(ms) * memory_mb)


def price_bedrock(bill: Bill, calls: Iterable[dict[str, Any]]) -> None:
    for call in calls:
        usage = call.get("usage") or {}
        model = call.get("modelId", "?")
        bill.add(f"{model}:inputTokens", usage.get("inputTokens", usage.get("inputTextTokenCount", 0)))
        bill.add(f"{model}:outputTokens", usage.get("outputTokens", 0))


# --- prices --------------------------------------------------------------------------------

# The services compared, and the units of each (Lambda's duration includes the time the
# function spent writing its cost ledger: the platform bills it as one invocation).
SERVICES: dict[str, tuple[str, ...]] = {
    "dynamodb": ("dynamodbReadUnits", "dynamodbWriteUnits"),
    "lambda": ("lambdaRequests", "lambdaMbMs", "lambdaInitMbMs", "meteringMbMs"),
    "apiGateway": ("apiRequests",),
    "s3": ("s3ClassA", "s3ClassB"),
    "ses": ("sesMessages",),
    "metering": ("meteringWriteUnits",),
}


def usd(prices: dict[str, Any], unit: str, n: float) -> float:
    entry = prices["units"][unit]
    return n * entry["usd"] / entry["per"]


def by_service(prices: dict[str, Any], units: dict[str, float]) -> dict[str, float]:
    """USD per compared service, and Bedrock's tokens (priced by the chat's model table, in
    Rust: compared in tokens)."""
    out = {s: sum(usd(prices, u, units.get(u, 0.0)) for u in us) for s, us in SERVICES.items()}
    out["bedrockTokens"] = sum(n for u, n in units.items() if u.endswith("Tokens"))
    return out


def compare(billed: dict[str, float], metered: dict[str, float], tolerance: float) -> list[tuple[str, float, float, float | None, bool]]:
    """(service, billed, metered, relative difference, within tolerance) for every service
    either side has."""
    rows = []
    for service in sorted(set(billed) | set(metered)):
        b, m = billed.get(service, 0.0), metered.get(service, 0.0)
        if b == 0 and m == 0:
            continue
        diff = None if b == 0 else (m - b) / b
        rows.append((service, b, m, diff, diff is not None and abs(diff) <= tolerance))
    return rows
