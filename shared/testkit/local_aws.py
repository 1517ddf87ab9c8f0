"""The local AWS endpoint: moto in server mode, on a loopback port.

What it guarantees:

* Each request is atomic and isolated. Requests are handled one at a time behind a lock.
  DynamoDB guarantees that each request (a transaction above all) is atomic; moto's in-memory
  backends do not when requests run on parallel threads, so serialising them is what keeps the
  local endpoint faithful. Connections are still accepted concurrently, so clients see the same
  concurrency as against AWS. Only Bedrock Runtime's requests, which no moto backend answers
  (see below), run beside the lock.

* TransactWriteItems is all-or-nothing, at a cost that does not grow with the table. moto makes
  a transaction atomic by deep-copying every table it names (all items, and the whole stream
  history when the table has a stream) once per action, and putting the copies back if the
  transaction is cancelled: milliseconds on an empty table, over half a second at 20,000
  items. This wrapper keeps moto's transaction code (its checks, its order, its
  CancellationReasons, and its handling of ClientRequestToken, which it ignores) and replaces
  only that copy with a journal of what the transaction touches: each item as it was before
  the transaction first read or wrote it, and the length of each stream shard. If moto's
  transaction raises (cancelled or invalid), the journal puts those items and shards back in
  place; if it returns, the journal is dropped. Every change moto makes to a table's items
  goes through Table.put_item, Table.delete_item or an item returned by Table.get_item, and
  all three record the item first, so nothing a transaction changes escapes the journal.
  moto keeps nothing else per item (secondary indexes are read from the items, ItemCount
  counts them, TableSizeBytes is always 0), so restoring the items restores the table.
  Because of the lock, no other request ever sees a transaction half-applied. Tables and
  stream shards keep their identity, so a stream iterator opened before a cancelled
  transaction sees none of its records (with moto's copies, it went on reading the discarded
  shard), and a transaction naming its table by ARN is rolled back too (moto copies only the
  tables it names by name). PartiQL's ExecuteTransaction is left as moto has it: not atomic.

* S3 event notifications carry every field AWS sends. moto's notification records lack
  userIdentity, requestParameters, responseElements, the bucket's ownerIdentity and the
  object's sequencer, which AWS always includes and which Lambda's S3 event type requires,
  and encode the slashes of the object key, which AWS keeps; the wrapper completes each
  record moto builds.

* SES v2 SendEmail with Simple content keeps what the message carries. moto stores the subject
  and one body (the HTML part when there is one) and drops the custom headers (such as
  List-Unsubscribe and List-Unsubscribe-Post, which SES adds to the message it sends), the
  configuration set and the text part; the wrapper records them on the stored message, which
  /moto-api/data.json shows under ses.Message as `headers` ([{"Name", "Value"}], in order),
  `configuration_set_name` (or null) and `text_body` (or null). Every message has the three
  fields (empty or null when not sent through SES v2 with them). The headers are checked
  against the limits of the SES v2 API reference (MessageHeader, MessageHeaderList), as AWS
  checks them, with a BadRequestException; nothing else about them is checked.

* ConsumedCapacity is reported as DynamoDB reports it (install_consumed_capacity). moto reports
  none for UpdateItem and TransactWriteItems, a constant for the rest, and never an index's
  units. Here item sizes are counted as DynamoDB counts them (aws_item_size), writes by the
  larger image, transactions doubled, and each global secondary index's writes added
  (index_write_units); with INDEXES, the table's and each index's parts are reported beside
  the total. With LOCAL_AWS_BILL_LOG set, every billable request (the items written and read,
  S3 requests, SES v2 mails) is written to that file as a JSON line (BillLog), for `make
  cost-check`'s bill priced by hand.

* Presigned S3 requests are verified as S3 verifies them. moto accepts any presigned URL and
  any browser-based POST upload: a forged or tampered signature, an expired URL, a body longer
  than the Content-Length signed, a form its policy does not allow. The wrapper checks them
  before moto sees them and answers a refused one with S3's status and XML error document
  (<Error><Code>, <Message> and S3's further elements); one it accepts reaches moto with its
  body as sent. The endpoint has no IAM: the secret access key of every access key id is the
  id itself (local clients use local/local, the bench bench/bench), and a request signed
  with another secret is refused with SignatureDoesNotMatch.

  A request whose query carries X-Amz-Algorithm, X-Amz-Credential or X-Amz-Signature (moto
  sends every request without an Authorization header to S3) is checked as
  https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html describes:
  the six X-Amz-* parameters, a credential AKID/date/region/s3/aws4_request of the date of
  X-Amz-Date, X-Amz-Expires at most a week (400 AuthorizationQueryParametersError), the
  expiry (403 AccessDenied "Request has expired"), host and every x-amz-* header sent but
  x-amz-content-sha256 among the signed headers (403 AccessDenied, HeadersNotSigned), and
  the signature recomputed over S3's canonical request (403 SignatureDoesNotMatch): the path
  as sent (neither normalised nor encoded again), the query but X-Amz-Signature, RFC
  3986-encoded and sorted, the signed headers' values as received (trimmed), and the
  X-Amz-Content-Sha256 of the query or the headers as payload hash, or UNSIGNED-PAYLOAD. A
  Content-Length that was signed is therefore the body's length. A body shorter than its
  Content-Length is refused (400 IncompleteBody), and so is one whose SHA-256 is not the
  payload hash signed, when that is a hash (400 XAmzContentSHA256Mismatch). CORS preflights
  (OPTIONS) are not authenticated, as S3 does not authenticate them.

  A multipart/form-data POST without an Authorization header whose fields include a policy or
  x-amz-* signing fields is checked as
  https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html
  describes: the signing fields (400 InvalidArgument), x-amz-signature as the policy's HMAC
  (403 SignatureDoesNotMatch), the policy's expiration (403 AccessDenied "Invalid according
  to Policy: Policy expired."), each of its conditions ({"field": value}, ["eq", "$field",
  value], ["starts-with", "$field", prefix], on Content-Type for each type of a list;
  "bucket" is the request's bucket, field names are case-insensitive; 403 "Policy Condition
  failed"), every field but x-amz-signature, file, policy and x-ignore-* under a condition,
  x-amz-security-token included (403 "Extra input fields"), and the file's size within each
  ["content-length-range", min, max] (400 EntityTooLarge, EntityTooSmall). Conditions apply
  to the fields as sent, before moto puts the file's name in place of ${filename} in the key.

  Signature Version 2 (AWSAccessKeyId and Signature, in the query or the form) is refused
  (400 InvalidRequest), as S3 refuses it for every bucket created since June 2020. Not
  checked: requests signed in the Authorization header (SDK clients; left as moto has them),
  the chunk signatures of an aws-chunked body (STREAMING-* payload hashes), the credential's
  region against the bucket's, an X-Amz-Date in the future, which condition types a policy
  may use for which field, the POST's success_action_redirect and success_action_status and
  the fields after the file (moto's handling, unchanged), and POST uploads with no signing
  field at all (anonymous: moto's).

* S3 Vectors answers QueryVectors, which moto lacks. POST /QueryVectors (the index by
  vectorBucketName and indexName, or by indexArn) is an exact search over the vectors moto holds
  for that index and no other: the distance of each to queryVector (finite float32 numbers, as
  many as the index's dimension, else ValidationException) by the index's distanceMetric,
  cosine (1 - cosine similarity; a zero vector is at distance 1 from everything) or euclidean
  (the L2 distance), computed in float32; then the topK (1 to 100, else ValidationException)
  nearest of the vectors whose metadata satisfies the filter, by distance then key, answered
  {"vectors": [{"key", "distance" (with returnDistance), "metadata" (with returnMetadata)}],
  "distanceMetric"}. An unknown bucket or index is moto's NotFoundException (404), as for the
  other operations. Full-text search (queryTexts) is refused with a ValidationException;
  queryMode and nextToken change nothing (every answer is one page). The query runs behind the
  lock like every moto request. It keeps each index's vectors as a float32 matrix (numpy),
  rebuilt after a PutVectors or DeleteVectors on the index, converting only the vectors written
  since: at 10,000 vectors of 512 dimensions a query is answered in about 12 ms (boto3's round
  trip included), a filtered one in about 40 ms, the first after a write in about 60 ms, the
  first after 10,000 new vectors in about 0.4 s. (PutVectors itself is moto's: about a second
  for 500 vectors of 512 dimensions, spent parsing the request.)

  The filter language is S3 Vectors' (S3 user guide, "Metadata filtering"): {"key": value} is
  {"key": {"$eq": value}}; the keys of one object, and the operators given for one key, must
  all hold; $and and $or take a non-empty array of filters, $eq and $ne a string, a number or a
  boolean, $gt, $gte, $lt and $lte a number, $in and $nin a non-empty array of strings, numbers
  or booleans, $exists a boolean. A boolean equals only a boolean, a number only a number (1
  equals 1.0), a string only a string. An array metadata value satisfies $eq, $in and the
  comparisons when one of its elements does. $ne and $nin are the negations of $eq and $in, so
  a vector without the key satisfies them (the guide does not say; it is the rule of MongoDB's
  language, which S3 Vectors' follows). Another operator, an operand of another type, an empty
  set of operators, an array given as a key's value, and a filter on a key the index declared
  non-filterable are refused with a ValidationException. An empty filter ({}) keeps every
  vector.

* S3 Vectors' other operations answer as AWS where moto differs in a way a client sees.
  CreateIndex of a name the bucket already has is a ConflictException (409): moto replaced the
  index and lost its vectors. An index name outside S3 Vectors' rules (3 to 63 characters of
  a-z, 0-9, - and ., beginning and ending with a letter or digit) and more than 10
  nonFilterableMetadataKeys are ValidationExceptions. The index keeps its metadataConfiguration
  (moto dropped it), which GetIndex returns and which filters and metadata limits apply. Buckets
  and indexes have a creationTime, which the model requires (GetVectorBucket, ListVectorBuckets,
  GetIndex, ListIndexes; moto had none). PutVectors takes 1 to 500 vectors (moto took any
  number), keys of 1 to 1,024 characters, float32 data of finite numbers (NaN, infinities and
  numbers beyond float32's range are ValidationExceptions; moto stored them) and stores it
  rounded to float32, as S3 Vectors stores it (moto kept the numbers as sent): GetVectors and
  ListVectors return 0.1 as 0.10000000149011612, the float32 nearest to 0.1 printed at float64
  precision (a client reading float32, as the SDKs' types do, gets 0.1). Its metadata is an
  object whose values are strings, numbers, booleans or arrays of them, of at most 50 keys, 40
  KB in all and 2 KB for the filterable keys, as compact UTF-8 JSON (an approximation of how AWS
  counts), else a ValidationException. A PutVectors of a key already there replaces its vector
  and metadata, as on AWS (moto does too). GetVectors takes at most 100 keys and DeleteVectors
  500. ListVectors pages as AWS does (moto returned every vector whatever maxResults):
  maxResults from 1 to 1,000 (500 when absent), nextToken, and segmentCount with segmentIndex to
  split the keys into disjoint segments (by CRC-32 of the key); keys come in key order. Left as
  moto has them: the pages of ListIndexes and ListVectorBuckets, ListIndexes' prefix, encryption
  settings, and metadata returned as {} for a vector put without any.

* Amazon Bedrock Runtime is answered by a fake: fake_bedrock.py, beside this script, whose
  docstring is its contract (a deterministic model driven by [[fake:...]] directives, Titan
  text embeddings, real event streams, Bedrock's errors). A request under /model/ signed for
  the service bedrock (or carrying a Bedrock API key), as the Bedrock Runtime SDK clients send
  Converse, ConverseStream and InvokeModel to this endpoint, goes to it, and so do GET and
  DELETE /_fake/bedrock/transcript (unsigned). They run beside the lock, concurrently (they
  touch no moto backend, and a stream lasts as long as its answer); the fake is thread-safe.
  Other requests signed for bedrock (its control plane) are moto's. With LOCAL_LLM_URL set (an
  OpenAI-compatible server such as Ollama or LM Studio), Converse and ConverseStream are
  answered by that server instead.

Faults on demand (Faults): POST /_local_aws/faults makes chosen requests fail the way AWS
fails them (DynamoDB's throttling, transaction conflicts and 5xx, S3's SlowDown, SES's
throttling, a connection reset mid-response), for tests of retries and of what a client answers
when they run out; DELETE /_local_aws/faults removes them.

GET /_local_aws/transactions returns counters about the transactions so far (how many, how
many failed, how many items were journaled and deep-copied), for the wrapper's tests and
benchmark.

Usage: python local_aws.py PORT [--exit-with-parent] [--stock-transactions]
       (environment: LOCAL_AWS_BILL_LOG; LOCAL_LLM_URL, LOCAL_LLM_MODEL, see fake_bedrock.py)

--exit-with-parent     stop when the process that started this one exits.
--stock-transactions   keep moto's whole-table copies (to compare with, in tests and benchmarks).
"""

import base64
import bisect
import copy
import functools
import hashlib
import hmac
import io
import json
import math
import os
import re
import sys
import threading
import time
import zlib
from array import array
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable
from urllib.parse import quote, quote_plus, unquote_to_bytes

import fake_bedrock  # beside this script
import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

STATS_PATH = "/_local_aws/transactions"


class _Transaction:
    """One TransactWriteItems call: what it touched (when journaling) and what it cost."""

    def __init__(self, journaling: bool):
        self.journaling = journaling
        # (id(table), hash key, range key) -> (table, hash key, range key, item copy or None)
        self.items: dict[tuple[int, Any, Any], tuple[Table, Any, Any, Item | None]] = {}
        # (id(table), hash key) of the partitions seen, and those that did not exist before
        self.partitions: set[tuple[int, Any]] = set()
        self.new_partitions: list[tuple[Table, Any]] = []
        # id(table) -> (shard, its record list, its length before the transaction)
        self.shards: dict[int, tuple[Any, list[Any], int]] = {}
        self.tables: set[int] = set()
        self.deep_copies = 0

    def touch(self, table: Table, hash_key: Any, range_key: Any) -> None:
        """Records an item as it is before the transaction first reads or writes it."""
        if table.range_key_attr is None:
            range_key = None
        elif range_key is None:
            return  # moto rejects a lookup without the sort key before touching anything
        key = (id(table), hash_key, range_key)
        if key in self.items:
            return
        if id(table) not in self.tables:
            self.tables.add(id(table))
            shard = table.stream_shard
            if shard is not None:
                self.shards[id(table)] = (shard, shard.items, len(shard.items))
        if range_key is None:
            current = table.items.get(hash_key)
        else:
            # A table with a sort key keeps a dict per partition key, and moto's lookups create
            # it (defaultdict) even when they find nothing: remember which ones are new.
            partition = table.items.get(hash_key)
            if (id(table), hash_key) not in self.partitions:
                self.partitions.add((id(table), hash_key))
                if partition is None:
                    self.new_partitions.append((table, hash_key))
            current = partition.get(range_key) if partition is not None else None
        # An update changes the stored item in place, so keep a copy, not a reference.
        saved = copy.deepcopy(current) if current is not None else None
        self.items[key] = (table, hash_key, range_key, saved)

    def rollback(self) -> None:
        """Puts every touched item, partition and stream shard back as it was."""
        for table, hash_key, range_key, saved in self.items.values():
            if range_key is None:
                if saved is None:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = saved
            elif saved is None:
                partition = table.items.get(hash_key)
                if partition is not None:
                    partition.pop(range_key, None)
            else:
                table.items[hash_key][range_key] = saved
        # A restored item that had been deleted goes back at the end of its dict rather than
        # where it was; nothing observes that order (moto sorts every scan and query).
        for table, hash_key in self.new_partitions:
            if hash_key in table.items and not table.items[hash_key]:
                del table.items[hash_key]
        for shard, records, length in self.shards.values():
            # moto may have handed the records to a Lambda event source mapping and started a
            # new list meanwhile; the shard goes back to its own list, as it was.
            del records[length:]
            shard.items = records


# The transaction in progress, if any. Requests are serialised, so there is at most one, and
# nothing else runs while it does.
_current: _Transaction | None = None

_stats: dict[str, Any] = {
    "journaling": True,
    "transactions": 0,
    "failed": 0,
    "items_journaled": 0,
    "items_deep_copied": 0,
    "last": None,
}


def _journaling() -> _Transaction | None:
    return _current if _current is not None and _current.journaling else None


class _TablesSharedInTransactions:
    """Stands in for the `copy` module inside moto's DynamoDB backend module.

    moto's transact_write_items starts with `copy.deepcopy(table)` for each action and, if the
    transaction fails, assigns those copies back to the backend's tables. While a journaled
    transaction runs, the "copy" of a Table is the Table itself, so that assignment changes
    nothing and the journal does the rollback. Everything else goes to the real module.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(obj: Any, memo: dict[int, Any] | None = None) -> Any:
        if isinstance(obj, Table) and _journaling() is not None:
            return obj
        return copy.deepcopy(obj, memo)


def install_transaction_journal(journaling: bool = True) -> None:
    """Patches moto's DynamoDB backend (see the module docstring). Call it once, at startup.

    With journaling=False moto keeps its whole-table copies; only the counters are added.
    """
    if journaling and dynamodb_models.copy is not copy:
        # A moto upgrade changed how it copies tables: stay correct (and slow) rather than
        # journal alongside copies the journal does not know about.
        print("local_aws: transactions not journaled (unexpected moto internals)", file=sys.stderr)
        journaling = False
    _stats["journaling"] = journaling

    original_transact = DynamoDBBackend.transact_write_items

    @functools.wraps(original_transact)
    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        global _current
        transaction = _current = _Transaction(journaling)
        failed = False
        try:
            return original_transact(self, transact_items)
        except BaseException:
            # moto raises for a cancelled transaction and for an invalid one, possibly after
            # having applied some of its actions: either way none of it may remain.
            failed = True
            _current = None
            if journaling:
                transaction.rollback()
            raise
        finally:
            _current = None
            last = {
                "failed": failed,
                "items_journaled": len(transaction.items),
                "items_deep_copied": transaction.deep_copies,
            }
            _stats["transactions"] += 1
            _stats["failed"] += failed
            _stats["items_journaled"] += last["items_journaled"]
            _stats["items_deep_copied"] += last["items_deep_copied"]
            _stats["last"] = last

    DynamoDBBackend.transact_write_items = transact_write_items

    # Counts every item deep-copied during a transaction, by the journal or by moto.
    original_item_deepcopy = Item.__deepcopy__

    @functools.wraps(original_item_deepcopy)
    def item_deepcopy(self: Item, memo: dict[int, Any]) -> Item:
        if _current is not None:
            _current.deep_copies += 1
        return original_item_deepcopy(self, memo)

    Item.__deepcopy__ = item_deepcopy

    if not journaling:
        return

    dynamodb_models.copy = _TablesSharedInTransactions()

    original_get = Table.get_item

    @functools.wraps(original_get)
    def get_item(self: Table, hash_key: DynamoType, range_key: Any = None, *args: Any, **kwargs: Any) -> Any:
        if (transaction := _journaling()) is not None:
            transaction.touch(self, hash_key, range_key)
        return original_get(self, hash_key, range_key, *args, **kwargs)

    original_put = Table.put_item

    @functools.wraps(original_put)
    def put_item(self: Table, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Item:
        if (transaction := _journaling()) is not None:
            try:
                hash_key = DynamoType(item_attrs[self.hash_key_attr])
                range_attr = self.range_key_attr
                range_key = DynamoType(item_attrs[range_attr]) if range_attr is not None else None
            except Exception:
                pass  # no valid key: moto rejects the item before writing anything
            else:
                transaction.touch(self, hash_key, range_key)
        return original_put(self, item_attrs, *args, **kwargs)

    original_delete = Table.delete_item

    @functools.wraps(original_delete)
    def delete_item(self: Table, hash_key: DynamoType, range_key: Any, *args: Any, **kwargs: Any) -> Any:
        if (transaction := _journaling()) is not None:
            transaction.touch(self, hash_key, range_key)
        return original_delete(self, hash_key, range_key, *args, **kwargs)

    Table.get_item = get_item
    Table.put_item = put_item
    Table.delete_item = delete_item


def _write_units(size: int) -> float:
    """Write request units of one item write: 1 per KB (rounded up) of the larger of the
    item's sizes before and after, at least 1."""
    return float(max(1, math.ceil(size / 1024)))


def _read_units(size: int, consistent: bool) -> float:
    """Read request units of one item read: 1 per 4 KB (rounded up), half for an eventually
    consistent read, at least one unit's worth."""
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


def _number_size(text: str) -> int:
    """A number's size: 1 byte per two significant digits (leading and trailing zeroes
    trimmed), plus 1."""
    mantissa = text.lstrip("+-").lower().split("e", 1)[0]
    digits = mantissa.replace(".", "").strip("0")
    return (max(1, len(digits)) + 1) // 2 + 1


def _value_size(value: dict[str, Any]) -> int:
    """The size of one attribute value (DynamoDB JSON) as DynamoDB counts it (Developer Guide,
    "Item sizes and formats"): strings by their UTF-8 bytes, binaries by their raw bytes,
    numbers by their significant digits, booleans and nulls 1 byte, sets by their elements,
    lists and maps 3 bytes plus each element's size and 1 byte per element (a map's keys too)."""
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return _number_size(v)
    if kind == "B":
        return len(base64.b64decode(v)) if isinstance(v, str) else len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(e.encode()) for e in v)
    if kind == "NS":
        return sum(_number_size(e) for e in v)
    if kind == "BS":
        return sum(len(base64.b64decode(e)) if isinstance(e, str) else len(e) for e in v)
    if kind == "L":
        return 3 + sum(_value_size(e) + 1 for e in v)
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(e) + 1 for k, e in v.items())
    raise ValueError(f"unknown attribute type {kind}")


def aws_item_size(attrs: dict[str, Any] | None) -> int:
    """An item's size (DynamoDB JSON attributes): each attribute's name in UTF-8 bytes plus its
    value's size."""
    return sum(len(name.encode()) + _value_size(value) for name, value in (attrs or {}).items())


def _image(backend: Any, table_name: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """An item as it is now (DynamoDB JSON, copied), or None where there is none."""
    try:
        found = backend.get_item(table_name, key)
    except Exception:
        return None
    return json.loads(json.dumps(found.to_json()["Attributes"])) if found is not None else None


def _projected(index: Any, table: Any, image: dict[str, Any]) -> dict[str, Any]:
    """What an index holds of an item: all of it (ALL), or the table's and the index's keys
    (KEYS_ONLY) and the named attributes (INCLUDE)."""
    projection = (index.projection or {}).get("ProjectionType", "ALL")
    if projection == "ALL":
        return image
    names = [table.hash_key_attr, table.range_key_attr, *index.schema_key_attrs]
    if projection == "INCLUDE":
        names += index.projection.get("NonKeyAttributes", [])
    return {n: image[n] for n in names if n and n in image}


def index_write_units(table: Any, before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, float]:
    """The write units an item write costs each global secondary index (Developer Guide, "Global
    secondary indexes: provisioned throughput considerations"): an item that enters or leaves
    the index is one index write of its projected size; one whose index key changes is two
    (the old entry deleted, the new put); one that stays with other projected attributes
    changed is one, of the larger projection; one whose projection does not change, none."""
    out: dict[str, float] = {}
    for index in getattr(table, "global_indexes", None) or []:
        keys = index.schema_key_attrs

        def entry(image: dict[str, Any] | None) -> tuple[list[Any], dict[str, Any]] | None:
            if image is None or any(k not in image for k in keys):
                return None
            return [image[k] for k in keys], _projected(index, table, image)

        old, new = entry(before), entry(after)
        if old is None and new is None:
            continue
        if old is not None and new is not None and old[0] == new[0]:
            if old[1] == new[1]:
                continue
            units = _write_units(max(aws_item_size(old[1]), aws_item_size(new[1])))
        else:
            units = sum(_write_units(aws_item_size(e[1])) for e in (old, new) if e is not None)
        out[index.name] = units
    return out


class BillLog:
    """With LOCAL_AWS_BILL_LOG set to a file: one JSON line per billable request the endpoint
    received, with what AWS bills it by, for a bill priced independently of the clients'
    own metering (shared/local-runner/cost_bill.py). DynamoDB: each item written with its
    images before and after (and whether in a transaction), each item read (or returned by a
    query or scan) with the read's consistency and index; S3: the method, path, query and
    whether the request was presigned (sent by a browser, not an SDK client); SES v2:
    SendEmail's recipients. Bedrock's calls are in the fake's transcript."""

    def __init__(self, path: str | None):
        self.path = path
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> "BillLog":
        return cls(os.environ.get("LOCAL_AWS_BILL_LOG") or None)

    def __bool__(self) -> bool:
        return self.path is not None

    def write(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        record = {"at": time.time(), **record}
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)


_bill = BillLog(None)


def install_consumed_capacity(bill: BillLog | None = None) -> None:
    """Reports `ConsumedCapacity` as DynamoDB computes it (moto reports none for UpdateItem and
    TransactWriteItems, a constant for the others, and never an index's units): item sizes as
    DynamoDB counts them (aws_item_size); writes by the item's size before and after (1 unit
    per KB), transactional writes twice that, and each global secondary index's writes
    (index_write_units, doubled in a transaction); batches per item; reads by size (1 unit per
    4 KB, half when eventually consistent; a query's or scan's items summed, a batch's each
    rounded). With INDEXES the table's and each index's part are reported beside the total, as
    DynamoDB does. A request that fails reports nothing (DynamoDB's error answers carry no
    capacity). With a bill log, each request's items are written to it (BillLog)."""
    from moto.dynamodb.responses import DynamoHandler

    global _bill
    if bill is not None:
        _bill = bill

    def table_of(handler: Any, table_name: str) -> Any:
        try:
            return handler.dynamodb_backend.get_table(table_name)
        except Exception:
            return None

    def key_of(handler: Any, table_name: str, item: dict[str, Any]) -> dict[str, Any]:
        table = handler.dynamodb_backend.get_table(table_name)
        names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        return {n: item[n] for n in names if n in item}

    def capacity(wanted: str, table_name: str, table_units: float, indexes: dict[str, float], field: str) -> dict[str, Any] | None:
        if wanted == "NONE":
            return None
        total = table_units + sum(indexes.values())
        out: dict[str, Any] = {"TableName": table_name, "CapacityUnits": total, field: total}
        if wanted == "INDEXES":
            out["Table"] = {"CapacityUnits": table_units, field: table_units}
            if indexes:
                out["GlobalSecondaryIndexes"] = {name: {"CapacityUnits": u, field: u} for name, u in indexes.items()}
        return out

    def report(body: dict[str, Any], wanted: str, table_name: str, table_units: float, indexes: dict[str, float], field: str) -> None:
        reported = capacity(wanted, table_name, table_units, indexes, field)
        if reported is None:
            body.pop("ConsumedCapacity", None)
        else:
            body["ConsumedCapacity"] = reported

    class Writes:
        """The items one request writes, each with its image before; their units once done."""

        def __init__(self, handler: Any, transactional: bool):
            self.handler = handler
            self.factor = 2.0 if transactional else 1.0
            self.transactional = transactional
            self.targets: list[tuple[str, dict[str, Any], dict[str, Any] | None, str]] = []
            self.done: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None, str]] = []

        def add(self, table_name: str, key: dict[str, Any], kind: str = "write") -> None:
            self.targets.append((table_name, key, _image(self.handler.dynamodb_backend, table_name, key), kind))

        def finish(self) -> None:
            for name, key, before, kind in self.targets:
                after = _image(self.handler.dynamodb_backend, name, key)
                self.done.append((name, before, after, kind))

        def units(self) -> dict[str, tuple[float, dict[str, float]]]:
            """Per table: its units and each index's."""
            out: dict[str, tuple[float, dict[str, float]]] = {}
            for name, before, after, _ in self.done:
                table_units, indexes = out.get(name, (0.0, {}))
                table_units += self.factor * _write_units(max(aws_item_size(before), aws_item_size(after)))
                for index, u in index_write_units(table_of(self.handler, name), before, after).items():
                    indexes[index] = indexes.get(index, 0.0) + self.factor * u
                out[name] = (table_units, indexes)
            return out

        def log(self, operation: str, error: str | None = None) -> None:
            if not _bill:
                return
            items = self.done or [(name, before, before, kind) for name, _, before, kind in self.targets]
            _bill.write({
                "service": "dynamodb", "operation": operation, "transaction": self.transactional, "error": error,
                "writes": [{"table": n, "kind": k, "before": b, "after": a} for n, b, a, k in items],
            })

    def run(writes: Writes, operation: str, original: Callable[..., Any], handler: Any) -> Any:
        try:
            result = original(handler)
        except Exception as e:
            writes.log(operation, str(getattr(e, "error_type", type(e).__name__)).rsplit("#", 1)[-1])
            raise
        writes.finish()
        writes.log(operation)
        return result

    def single_write(operation: str, original: Callable[..., Any], key_from_item: bool) -> Callable[..., Any]:
        @functools.wraps(original)
        def handler(self: Any) -> Any:
            name = self.body.get("TableName", "")
            writes = Writes(self, transactional=False)
            writes.add(name, key_of(self, name, self.body["Item"]) if key_from_item else self.body["Key"])
            result = run(writes, operation, original, self)
            table_units, indexes = writes.units().get(name, (0.0, {}))
            report(result.result, self.body.get("ReturnConsumedCapacity", "NONE"), name, table_units, indexes, "WriteCapacityUnits")
            return result

        return handler

    def log_reads(operation: str, table_name: str, consistent: bool, index: str | None, items: list[dict[str, Any] | None]) -> None:
        if _bill:
            _bill.write({"service": "dynamodb", "operation": operation, "table": table_name, "consistent": consistent, "index": index, "items": items})

    original_get = DynamoHandler.get_item

    @functools.wraps(original_get)
    def get_item(self: Any) -> Any:
        result = original_get(self)
        name = self.body.get("TableName", "")
        consistent = bool(self.body.get("ConsistentRead"))
        found = _image(self.dynamodb_backend, name, self.body["Key"])
        log_reads("GetItem", name, consistent, None, [found])
        units = _read_units(aws_item_size(found), consistent)
        report(result.result, self.body.get("ReturnConsumedCapacity", "NONE"), name, units, {}, "ReadCapacityUnits")
        return result

    original_transact = DynamoHandler.transact_write_items

    @functools.wraps(original_transact)
    def transact_write_items(self: Any) -> Any:
        writes = Writes(self, transactional=True)
        for entry in self.body.get("TransactItems", []):
            for kind, action in entry.items():
                name = action.get("TableName", "")
                key = key_of(self, name, action["Item"]) if kind == "Put" else action.get("Key", {})
                writes.add(name, key, "check" if kind == "ConditionCheck" else "write")
        result = run(writes, "TransactWriteItems", original_transact, self)
        wanted = self.body.get("ReturnConsumedCapacity", "NONE")
        if wanted != "NONE":
            per_table = writes.units()
            result.result["ConsumedCapacity"] = [capacity(wanted, n, u, i, "WriteCapacityUnits") for n, (u, i) in per_table.items()]
        return result

    original_batch_write = DynamoHandler.batch_write_item

    @functools.wraps(original_batch_write)
    def batch_write_item(self: Any) -> Any:
        writes = Writes(self, transactional=False)
        for name, requests in self.body.get("RequestItems", {}).items():
            for request in requests:
                if "PutRequest" in request:
                    writes.add(name, key_of(self, name, request["PutRequest"]["Item"]))
                elif "DeleteRequest" in request:
                    writes.add(name, request["DeleteRequest"]["Key"])
        result = run(writes, "BatchWriteItem", original_batch_write, self)
        wanted = self.body.get("ReturnConsumedCapacity", "NONE")
        if wanted != "NONE":
            result.result["ConsumedCapacity"] = [capacity(wanted, n, u, i, "WriteCapacityUnits") for n, (u, i) in writes.units().items()]
        return result

    original_batch_get = DynamoHandler.batch_get_item

    @functools.wraps(original_batch_get)
    def batch_get_item(self: Any) -> Any:
        result = original_batch_get(self)
        body = result.result if hasattr(result, "result") else None
        if body is None:
            return result
        wanted = self.body.get("ReturnConsumedCapacity", "NONE")
        reported = []
        for name, items in body.get("Responses", {}).items():
            consistent = bool(self.body.get("RequestItems", {}).get(name, {}).get("ConsistentRead"))
            log_reads("BatchGetItem", name, consistent, None, items)
            units = sum(_read_units(aws_item_size(i), consistent) for i in items)
            if (c := capacity(wanted, name, units, {}, "ReadCapacityUnits")) is not None:
                reported.append(c)
        if wanted == "NONE":
            body.pop("ConsumedCapacity", None)
        else:
            body["ConsumedCapacity"] = reported
        return result

    def paged_read(operation: str, original: Callable[..., Any]) -> Callable[..., Any]:
        """Query and Scan: the sizes of the items returned, summed, 1 unit per 4 KB (rounded
        up), half when eventually consistent; reported as the index's when it reads one.
        (DynamoDB counts the items read before a filter; the store filters little.)"""

        @functools.wraps(original)
        def handler(self: Any) -> Any:
            result = original(self)
            body = result.result
            items = body.get("Items", [])
            name = self.body.get("TableName", "")
            index = self.body.get("IndexName")
            consistent = bool(self.body.get("ConsistentRead"))
            log_reads(operation, name, consistent, index, items)
            units = _read_units(sum(aws_item_size(i) for i in items), consistent)
            wanted = self.body.get("ReturnConsumedCapacity", "NONE")
            if index:
                report(body, wanted, name, 0.0, {index: units}, "ReadCapacityUnits")
            else:
                report(body, wanted, name, units, {}, "ReadCapacityUnits")
            return result

        return handler

    DynamoHandler.query = paged_read("Query", DynamoHandler.query)
    DynamoHandler.scan = paged_read("Scan", DynamoHandler.scan)
    DynamoHandler.put_item = single_write("PutItem", DynamoHandler.put_item, key_from_item=True)
    DynamoHandler.update_item = single_write("UpdateItem", DynamoHandler.update_item, key_from_item=False)
    DynamoHandler.delete_item = single_write("DeleteItem", DynamoHandler.delete_item, key_from_item=False)
    DynamoHandler.get_item = get_item
    DynamoHandler.transact_write_items = transact_write_items
    DynamoHandler.batch_write_item = batch_write_item
    DynamoHandler.batch_get_item = batch_get_item


def install_complete_s3_events() -> None:
    """Adds the fields AWS puts in every S3 event record and moto leaves out
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html)."""
    import moto.s3.notifications as notifications

    original = notifications._get_s3_event
    sequence = iter(range(1, 1 << 62))

    @functools.wraps(original)
    def complete(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = original(event_name, bucket, key, notification_id)
        for record in event.get("Records", []):
            record.setdefault("userIdentity", {"principalId": "AWS:LOCAL"})
            record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
            record.setdefault("responseElements", {"x-amz-request-id": f"{next(sequence):016X}", "x-amz-id-2": "local"})
            s3 = record.get("s3", {})
            s3.get("bucket", {}).setdefault("ownerIdentity", {"principalId": "LOCAL"})
            s3.get("object", {}).setdefault("sequencer", f"{next(sequence):018X}")
            # AWS form-encodes the key but keeps its slashes ("a/b c" arrives as "a/b+c");
            # moto encodes the slashes too.
            if "object" in s3:
                s3["object"]["key"] = quote_plus(key.name, safe="/")
        return event

    notifications._get_s3_event = complete


# SES v2's limits on a Simple message's headers (API reference: MessageHeader, MessageHeaderList).
_MAX_HEADERS = 15
_HEADER_NAME = re.compile(r"[!-9;-~]{1,126}")  # printable ASCII (33-126) but the colon
_MAX_HEADER_VALUE = 995
_MAX_HEADER_LINE = 996  # name and value together


def _check_simple_headers(headers: Any) -> list[dict[str, str]]:
    """The custom headers of a Simple message as SES v2 accepts them, or a BadRequestException."""
    from moto.core.exceptions import JsonRESTError

    def invalid(message: str) -> JsonRESTError:
        return JsonRESTError("BadRequestException", message)

    if headers is None:
        return []
    if not isinstance(headers, list):
        raise invalid("Headers must be a list of message headers.")
    if len(headers) > _MAX_HEADERS:
        raise invalid(f"A message can't have more than {_MAX_HEADERS} headers.")
    checked = []
    for header in headers:
        name = header.get("Name") if isinstance(header, dict) else None
        value = header.get("Value") if isinstance(header, dict) else None
        if not isinstance(name, str) or not isinstance(value, str):
            raise invalid("A message header needs a Name and a Value.")
        if not _HEADER_NAME.fullmatch(name):
            raise invalid(
                f"Invalid header name '{name}': 1 to 126 printable ASCII characters, no colon."
            )
        if not 1 <= len(value) <= _MAX_HEADER_VALUE:
            raise invalid(f"The value of header '{name}' must be 1 to {_MAX_HEADER_VALUE} characters long.")
        if len(name) + len(value) > _MAX_HEADER_LINE:
            raise invalid(f"Header '{name}': name and value together exceed {_MAX_HEADER_LINE} characters.")
        checked.append({"Name": name, "Value": value})
    return checked


def install_complete_ses_v2_mail() -> None:
    """Keeps a SES v2 Simple message's custom headers, configuration set and text part on the
    message moto stores (see the module docstring)."""
    from moto.ses.models import Message
    from moto.sesv2.responses import SESV2Response

    # Class defaults: every stored message shows the fields, mail sent another way included.
    Message.headers = ()
    Message.configuration_set_name = None
    Message.text_body = None

    original = SESV2Response.send_email

    @functools.wraps(original)
    def send_email(self: SESV2Response) -> str:
        params = json.loads(self.body)
        simple = (params.get("Content") or {}).get("Simple")
        if simple is None:
            return original(self)
        headers = _check_simple_headers(simple.get("Headers"))
        response = original(self)
        message_id = json.loads(response)["MessageId"]
        # Requests are serialised: the message is the last one stored, but look it up by id.
        for message in reversed(self.sesv2_backend.core_backend.sent_messages):
            if getattr(message, "id", None) == message_id:
                message.headers = headers
                message.configuration_set_name = params.get("ConfigurationSetName")
                message.text_body = ((simple.get("Body") or {}).get("Text") or {}).get("Data")
                break
        return response

    SESV2Response.send_email = send_email


# S3 Vectors as AWS answers it (see the module docstring). Limits from the S3 Vectors user
# guide ("Limitations and restrictions") and the API reference.
_TOP_K_MAX = 100
_PUT_VECTORS_MAX = 500
_DELETE_VECTORS_MAX = 500
_GET_VECTORS_MAX = 100
_LIST_VECTORS_DEFAULT = 500
_LIST_VECTORS_MAX = 1000
_SEGMENTS_MAX = 16
_VECTOR_KEY_MAX = 1024
_NON_FILTERABLE_KEYS_MAX = 10
_METADATA_KEYS_MAX = 50
_METADATA_BYTES_MAX = 40 * 1024
_FILTERABLE_METADATA_BYTES_MAX = 2 * 1024
_INDEX_NAME = re.compile(r"[a-z0-9](?:[a-z0-9.-]{1,61})[a-z0-9]")
_COMPARISONS = {"$gt": "greater than", "$gte": "greater than or equal", "$lt": "less than", "$lte": "less than or equal"}
_FILTER_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")


def _vectors_error(message: str) -> Exception:
    from moto.s3vectors.exceptions import ValidationError

    return ValidationError(message)


def _numpy() -> Any:
    """numpy, imported when a query first needs it: a venv made before it was required still
    serves every other request (`make venv` installs it)."""
    try:
        import numpy
    except ImportError:
        from moto.core.exceptions import ServiceException

        raise ServiceException(
            "InternalServerException", "QueryVectors needs numpy in the endpoint's virtualenv: run `make venv`."
        ) from None
    return numpy


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_primitive(value: Any) -> bool:
    return isinstance(value, (str, bool)) or _is_number(value)


def _same(a: Any, b: Any) -> bool:
    """Equality of metadata values as S3 Vectors compares them: a boolean equals only a
    boolean, a number only a number (1 equals 1.0), a string only a string."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return isinstance(a, str) and isinstance(b, str) and a == b


def _elements(value: Any) -> list[Any]:
    """A metadata value as the values a condition looks at: each element of an array."""
    return value if isinstance(value, list) else [value]


_Predicate = Callable[[dict[str, Any]], bool]


def _field_condition(field: str, operator: str, operand: Any) -> _Predicate:
    """One operator applied to one metadata key, its operand checked as S3 Vectors checks it."""
    if operator in ("$eq", "$ne"):
        if not _is_primitive(operand):
            raise _vectors_error(f"Invalid filter: {operator} on '{field}' takes a string, a number or a boolean.")

        def equal(metadata: dict[str, Any]) -> bool:
            return field in metadata and any(_same(v, operand) for v in _elements(metadata[field]))

        return equal if operator == "$eq" else (lambda metadata: not equal(metadata))
    if operator in _COMPARISONS:
        if not _is_number(operand):
            raise _vectors_error(f"Invalid filter: {operator} on '{field}' takes a number.")
        compare: Callable[[Any], bool] = {
            "$gt": lambda v: v > operand,
            "$gte": lambda v: v >= operand,
            "$lt": lambda v: v < operand,
            "$lte": lambda v: v <= operand,
        }[operator]
        return lambda metadata: field in metadata and any(
            _is_number(v) and compare(v) for v in _elements(metadata[field])
        )
    if operator in ("$in", "$nin"):
        if not isinstance(operand, list) or not operand or not all(_is_primitive(o) for o in operand):
            raise _vectors_error(f"Invalid filter: {operator} on '{field}' takes a non-empty array of strings, numbers or booleans.")

        def member(metadata: dict[str, Any]) -> bool:
            return field in metadata and any(_same(v, o) for v in _elements(metadata[field]) for o in operand)

        return member if operator == "$in" else (lambda metadata: not member(metadata))
    if operator == "$exists":
        if not isinstance(operand, bool):
            raise _vectors_error(f"Invalid filter: $exists on '{field}' takes a boolean.")
        return lambda metadata: (field in metadata) == operand
    raise _vectors_error(f"Invalid filter: unknown operator '{operator}' (valid: {', '.join(_FILTER_OPERATORS)}, $and, $or).")


def _combined(quantifier: Callable[[Iterable[bool]], bool], parts: list[_Predicate]) -> _Predicate:
    """$and (quantifier all) or $or (any) of the filters `parts`."""
    return lambda metadata: quantifier(p(metadata) for p in parts)


def compile_vector_filter(document: Any, non_filterable: frozenset[str] = frozenset()) -> _Predicate:
    """A QueryVectors filter as a predicate over a vector's metadata; a filter S3 Vectors would
    refuse raises its ValidationException (before any vector is looked at)."""
    if not isinstance(document, dict):
        raise _vectors_error("Invalid filter: a filter is a JSON object.")
    conditions: list[_Predicate] = []
    for name, value in document.items():
        if name in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise _vectors_error(f"Invalid filter: {name} takes a non-empty array of filters.")
            conditions.append(_combined(all if name == "$and" else any, [compile_vector_filter(part, non_filterable) for part in value]))
            continue
        if name.startswith("$"):
            raise _vectors_error(f"Invalid filter: unknown operator '{name}' where a metadata key or $and, $or was expected.")
        if name in non_filterable:
            raise _vectors_error(f"Invalid filter: metadata key '{name}' is non-filterable in this index.")
        if isinstance(value, dict):
            if not value:
                raise _vectors_error(f"Invalid filter: no operator for metadata key '{name}'.")
            conditions += [_field_condition(name, operator, operand) for operator, operand in value.items()]
        elif _is_primitive(value):
            conditions.append(_field_condition(name, "$eq", value))
        else:
            raise _vectors_error(f"Invalid filter: the value for metadata key '{name}' is a string, a number, a boolean or an object of operators.")
    return _combined(all, conditions)


def _non_filterable(index: Any) -> frozenset[str]:
    configuration = getattr(index, "metadata_configuration", None) or {}
    return frozenset(configuration.get("nonFilterableMetadataKeys") or ())


def _check_metadata(key: str, metadata: Any, non_filterable: frozenset[str]) -> None:
    """A vector's metadata within the types and limits S3 Vectors accepts. Sizes are those of
    the metadata as compact JSON (UTF-8), an approximation of how S3 Vectors counts them."""
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise _vectors_error(f"Invalid record for key '{key}': metadata must be a JSON object.")
    if len(metadata) > _METADATA_KEYS_MAX:
        raise _vectors_error(f"Invalid record for key '{key}': metadata has {len(metadata)} keys, at most {_METADATA_KEYS_MAX} are allowed.")
    for name, value in metadata.items():
        valid = _is_primitive(value) or (isinstance(value, list) and all(_is_primitive(v) for v in value))
        if not valid:
            raise _vectors_error(
                f"Invalid record for key '{key}': the value of metadata key '{name}' must be a string, "
                "a number, a boolean or an array of them."
            )

    def size(document: dict[str, Any]) -> int:
        return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())

    if size(metadata) > _METADATA_BYTES_MAX:
        raise _vectors_error(f"Invalid record for key '{key}': metadata exceeds {_METADATA_BYTES_MAX} bytes.")
    filterable = {name: value for name, value in metadata.items() if name not in non_filterable}
    if size(filterable) > _FILTERABLE_METADATA_BYTES_MAX:
        raise _vectors_error(
            f"Invalid record for key '{key}': filterable metadata exceeds {_FILTERABLE_METADATA_BYTES_MAX} bytes "
            "(declare large keys in the index's nonFilterableMetadataKeys)."
        )


def _float32(values: Any) -> list[float] | None:
    """Numbers as the float32 numbers S3 Vectors stores and compares (float32 data is the only
    kind), or None if they are not all numbers within float32's range."""
    if not isinstance(values, list) or not all(_is_number(v) for v in values):
        return None
    stored = array("f", values).tolist()  # rounded to float32; beyond its range: infinite
    return stored if all(math.isfinite(v) for v in stored) else None


def _vector_data(key: str, data: Any) -> list[float]:
    values = _float32(data.get("float32") if isinstance(data, dict) else None)
    if values is None:
        raise _vectors_error(
            f"Invalid record for key '{key}': data must be {{\"float32\": [...]}} of finite float32 numbers."
        )
    return values


def _changed(index: Any) -> None:
    """Marks an index's vectors as changed: the next query rebuilds its matrix."""
    index.local_version = getattr(index, "local_version", 0) + 1


def _index_matrix(index: Any) -> tuple[list[str], Any, Any]:
    """The index's keys, its vectors as a float32 matrix (a row per key) and the rows' norms,
    kept until the index changes. Each vector's row is kept with it, so a rebuild after a
    write converts only the vectors written since."""
    np = _numpy()
    version = getattr(index, "local_version", 0)
    cached = getattr(index, "local_matrix", None)
    if cached is not None and cached[0] == version:
        return cached[1], cached[2], cached[3]
    keys = list(index.vectors)
    rows = []
    for vector in index.vectors.values():
        row = getattr(vector, "local_row", None)
        if row is None:
            row = vector.local_row = np.asarray(vector.data["float32"], dtype=np.float32)
        rows.append(row)
    matrix = np.stack(rows) if rows else np.empty((0, index.dimension), dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1)
    index.local_matrix = (version, keys, matrix, norms)
    return keys, matrix, norms


def nearest_vectors(index: Any, query: list[float], top_k: int, predicate: _Predicate | None) -> list[tuple[str, float]]:
    """The top_k (key, distance) of the index nearest to `query` among the vectors whose
    metadata satisfies `predicate`: an exact search, by distance then key."""
    np = _numpy()
    keys, matrix, norms = _index_matrix(index)
    if not keys:
        return []
    q = np.asarray(query, dtype=np.float32)
    if index.distance_metric == "cosine":
        # 1 - cosine similarity; a zero vector is at distance 1 from everything (similarity 0).
        denominators = norms * np.float32(np.linalg.norm(q))
        dots = matrix @ q
        similarity = np.divide(dots, denominators, out=np.zeros_like(dots), where=denominators > 0)
        distances = np.clip(1 - similarity, 0, 2)
    else:
        differences = matrix - q
        distances = np.sqrt(np.einsum("ij,ij->i", differences, differences))
    if predicate is None:
        candidates = np.arange(len(keys))
    else:
        vectors = index.vectors
        mask = np.fromiter((predicate(vectors[k].metadata or {}) for k in keys), dtype=bool, count=len(keys))
        candidates = np.flatnonzero(mask)
    if len(candidates) > top_k:
        # Every candidate as near as the k-th one stays, so that ties are broken by key.
        kth = np.partition(distances[candidates], top_k - 1)[top_k - 1]
        candidates = candidates[distances[candidates] <= kth]
    ranked = sorted((float(distances[i]), keys[i]) for i in candidates)[:top_k]
    return [(key, distance) for distance, key in ranked]


def _page_token(after: str, segment: tuple[int, int] | None) -> str:
    document = {"after": after, "segment": list(segment) if segment else None}
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode()


def _read_page_token(token: str, segment: tuple[int, int] | None) -> str:
    try:
        document = json.loads(base64.urlsafe_b64decode(token.encode()))
        after = document["after"]
        same_segment = document["segment"] == (list(segment) if segment else None)
    except (ValueError, KeyError, TypeError):
        raise _vectors_error("Invalid nextToken.") from None
    if not isinstance(after, str) or not same_segment:
        raise _vectors_error("Invalid nextToken.")
    return after


def _in_segment(key: str, segment: tuple[int, int] | None) -> bool:
    return segment is None or zlib.crc32(key.encode()) % segment[1] == segment[0]


def install_s3_vectors() -> None:
    """QueryVectors, and S3 Vectors' other operations as AWS answers them where moto does not
    (see the module docstring)."""
    from moto.core.exceptions import ServiceException
    from moto.core.responses import ActionResult
    from moto.s3vectors import urls
    from moto.s3vectors.exceptions import VectorWrongDimension
    from moto.s3vectors.models import Index, S3VectorsBackend, VectorBucket
    from moto.s3vectors.responses import S3VectorsResponse

    class ConflictException(ServiceException):
        code = "ConflictException"

    # creationTime, which every bucket and index has (moto leaves it out), and the index's
    # metadata configuration (moto drops it).
    def stamped(original_init: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(original_init)
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            original_init(self, *args, **kwargs)
            self.creation_time = datetime.now(timezone.utc)

        return init

    VectorBucket.__init__ = stamped(VectorBucket.__init__)  # type: ignore[method-assign]
    Index.__init__ = stamped(Index.__init__)  # type: ignore[method-assign]
    Index.metadata_configuration = None

    original_create_index = S3VectorsResponse.create_index

    @functools.wraps(original_create_index)
    def create_index(self: S3VectorsResponse) -> Any:
        name = self._get_param("indexName")
        if not isinstance(name, str) or not _INDEX_NAME.fullmatch(name) or ".." in name:
            raise _vectors_error(
                "Invalid index name: 3 to 63 lowercase letters, numbers, hyphens and dots, "
                "beginning and ending with a letter or number."
            )
        configuration = self._get_param("metadataConfiguration") or {}
        keys = configuration.get("nonFilterableMetadataKeys") or []
        if len(keys) > _NON_FILTERABLE_KEYS_MAX:
            raise _vectors_error(f"An index can have at most {_NON_FILTERABLE_KEYS_MAX} non-filterable metadata keys.")
        bucket = self.s3vectors_backend.get_vector_bucket(
            vector_bucket_name=self._get_param("vectorBucketName"),
            vector_bucket_arn=self._get_param("vectorBucketArn"),
        )
        if any(index.index_name == name for index in bucket.indexes.values()):
            raise ConflictException("An index with the specified name already exists")
        result = original_create_index(self)
        index = next(index for index in bucket.indexes.values() if index.index_name == name)
        if configuration:
            index.metadata_configuration = {"nonFilterableMetadataKeys": list(keys)}
        return result

    S3VectorsResponse.create_index = create_index

    original_put = S3VectorsBackend.put_vectors

    @functools.wraps(original_put)
    def put_vectors(self: S3VectorsBackend, vector_bucket_name: str, index_name: str, index_arn: str, vectors: list[Any]) -> None:
        index = self.get_index(vector_bucket_name, index_name=index_name, index_arn=index_arn)
        if not 1 <= len(vectors) <= _PUT_VECTORS_MAX:
            raise _vectors_error(f"A PutVectors request carries 1 to {_PUT_VECTORS_MAX} vectors, not {len(vectors)}.")
        non_filterable = _non_filterable(index)
        for vector in vectors:
            key = vector.get("key")
            if not isinstance(key, str) or not 1 <= len(key) <= _VECTOR_KEY_MAX:
                raise _vectors_error(f"A vector key is 1 to {_VECTOR_KEY_MAX} characters long.")
            data = _vector_data(key, vector.get("data"))
            if len(data) != index.dimension:
                raise VectorWrongDimension(key=key, actual=index.dimension, provided=len(data))
            _check_metadata(key, vector.get("metadata"), non_filterable)
            vector["data"] = {"float32": data}
        original_put(self, vector_bucket_name, index_name, index_arn, vectors)
        _changed(index)

    S3VectorsBackend.put_vectors = put_vectors

    original_delete = S3VectorsBackend.delete_vectors

    @functools.wraps(original_delete)
    def delete_vectors(self: S3VectorsBackend, vector_bucket_name: str, index_name: str, index_arn: str, keys: list[str]) -> None:
        index = self.get_index(vector_bucket_name, index_name=index_name, index_arn=index_arn)
        if len(keys) > _DELETE_VECTORS_MAX:
            raise _vectors_error(f"A DeleteVectors request names at most {_DELETE_VECTORS_MAX} keys, not {len(keys)}.")
        original_delete(self, vector_bucket_name, index_name, index_arn, keys)
        _changed(index)

    S3VectorsBackend.delete_vectors = delete_vectors

    original_get = S3VectorsBackend.get_vectors

    @functools.wraps(original_get)
    def get_vectors(self: S3VectorsBackend, vector_bucket_name: str, index_name: str, index_arn: str, keys: list[str]) -> Any:
        if len(keys) > _GET_VECTORS_MAX:
            raise _vectors_error(f"A GetVectors request names at most {_GET_VECTORS_MAX} keys, not {len(keys)}.")
        return original_get(self, vector_bucket_name, index_name, index_arn, keys)

    S3VectorsBackend.get_vectors = get_vectors

    def output_vector(vector: Any, return_data: bool, return_metadata: bool) -> dict[str, Any]:
        result: dict[str, Any] = {"key": vector.key}
        if return_data:
            result["data"] = vector.data
        if return_metadata:
            result["metadata"] = vector.metadata
        return result

    def list_vectors(self: S3VectorsResponse) -> ActionResult:
        bucket_name = self._get_param("vectorBucketName")
        index_arn = self._get_param("indexArn")
        index_name = self._get_param("indexName")
        self._validate_index_params(index_arn, index_name, bucket_name)
        max_results = self._get_param("maxResults")
        if max_results is None:
            max_results = _LIST_VECTORS_DEFAULT
        if not isinstance(max_results, int) or not 1 <= max_results <= _LIST_VECTORS_MAX:
            raise _vectors_error(f"maxResults must be between 1 and {_LIST_VECTORS_MAX}.")
        count, which = self._get_param("segmentCount"), self._get_param("segmentIndex")
        segment = None
        if count is not None or which is not None:
            if count is None or which is None:
                raise _vectors_error("segmentCount and segmentIndex must be given together.")
            if not 1 <= count <= _SEGMENTS_MAX or not 0 <= which < count:
                raise _vectors_error(f"segmentCount must be 1 to {_SEGMENTS_MAX} and segmentIndex below it.")
            segment = (which, count)
        token = self._get_param("nextToken")
        index = self.s3vectors_backend.get_index(bucket_name, index_name, index_arn)
        keys = sorted(key for key in index.vectors if _in_segment(key, segment))
        start = bisect.bisect_right(keys, _read_page_token(token, segment)) if token else 0
        page = keys[start : start + max_results]
        return_data = self._get_bool_param("returnData", False)
        return_metadata = self._get_bool_param("returnMetadata", False)
        result: dict[str, Any] = {
            "vectors": [output_vector(index.vectors[key], return_data, return_metadata) for key in page]
        }
        if start + max_results < len(keys):
            result["nextToken"] = _page_token(page[-1], segment)
        return ActionResult(result)

    S3VectorsResponse.list_vectors = list_vectors

    def query_vectors(self: S3VectorsResponse) -> ActionResult:
        bucket_name = self._get_param("vectorBucketName")
        index_arn = self._get_param("indexArn")
        index_name = self._get_param("indexName")
        self._validate_index_params(index_arn, index_name, bucket_name)
        top_k = self._get_param("topK")
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= _TOP_K_MAX:
            raise _vectors_error(
                f"1 validation error detected. Value at '/topK' failed to satisfy constraint: "
                f"Member must be between 1 and {_TOP_K_MAX}, inclusive"
            )
        if self._get_param("queryTexts"):
            raise _vectors_error("Full-text search (queryTexts) is not supported by the local endpoint: query by queryVector.")
        query = self._get_param("queryVector")
        values = _float32(query.get("float32") if isinstance(query, dict) else None)
        if values is None:
            raise _vectors_error("queryVector must be {\"float32\": [...]} of finite float32 numbers.")
        index = self.s3vectors_backend.get_index(bucket_name, index_name, index_arn)
        if len(values) != index.dimension:
            raise _vectors_error(
                f"Invalid query vector: it must have length {index.dimension}, but has length {len(values)}"
            )
        document = self._get_param("filter")
        predicate = compile_vector_filter(document, _non_filterable(index)) if document is not None else None
        return_metadata = self._get_bool_param("returnMetadata", False)
        return_distance = self._get_bool_param("returnDistance", False)
        vectors = []
        for key, distance in nearest_vectors(index, values, top_k, predicate):
            found: dict[str, Any] = {"key": key}
            if return_distance:
                found["distance"] = distance
            if return_metadata:
                found["metadata"] = index.vectors[key].metadata
            vectors.append(found)
        return ActionResult({"vectors": vectors, "distanceMetric": index.distance_metric})

    S3VectorsResponse.query_vectors = query_vectors
    urls.url_paths["{0}/QueryVectors$"] = S3VectorsResponse.dispatch


# Query-string and POST authentication of S3, as S3 checks it (see the module docstring).
_SIGV4 = "AWS4-HMAC-SHA256"
_SIGV4_QUERY = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature")
_SIGV4_QUERY_ALL = (*_SIGV4_QUERY, "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Expires")
_MAX_EXPIRES = 7 * 24 * 3600
_UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_POLICY_EXPIRATION = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?Z")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Every printable ASCII character but the space: what a request line carries as it is.
_AS_SENT = "".join(chr(c) for c in range(0x21, 0x7F))
# Form fields S3 signs nothing about (sigv4-HTTPPOSTConstructPolicy: "Conditions").
_POST_UNCONDITIONED = ("x-amz-signature", "file", "policy")
_POST_AUTH_FIELDS = ("policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature")
_UNSUPPORTED_AUTH = "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."


class S3Error(Exception):
    """An S3 error answer: its status, Code, Message and further elements, as S3 sends them."""

    def __init__(self, status: int, code: str, message: str, **details: str):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def answer(self, head: bool) -> tuple[str, list[tuple[str, str]], bytes]:
        """The WSGI status line, headers and body (none for a HEAD request, as S3 answers)."""
        from http import HTTPStatus
        from xml.sax.saxutils import escape

        elements = {"Code": self.code, "Message": self.message, **self.details}
        elements["RequestId"] = f"{next(_request_ids):016X}"
        elements["HostId"] = "local"
        document = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in elements.items())
        body = b"" if head else f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{document}</Error>'.encode()
        headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
        return f"{self.status} {HTTPStatus(self.status).phrase}", headers, body


_request_ids = iter(range(1, 1 << 62))


def _secret_access_key(access_key_id: str) -> str:
    """The local endpoint has no IAM: every access key id is its own secret (local/local, bench/bench)."""
    return access_key_id


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _same_signature(expected: str, provided: str) -> bool:
    return hmac.compare_digest(expected.encode(), provided.encode())


def _check_signature(access_key_id: str, date: str, region: str, string_to_sign: str, provided: str, **details: str) -> None:
    """Raises SignatureDoesNotMatch unless `provided` signs `string_to_sign` with the key's
    secret, as S3 answers it (with the string to sign and `details`)."""
    key = _signing_key(_secret_access_key(access_key_id), date, region, "s3")
    if not _same_signature(_sign(key, string_to_sign), provided):
        raise S3Error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
            AWSAccessKeyId=access_key_id,
            StringToSign=string_to_sign,
            SignatureProvided=provided,
            **details,
        )


def _amz_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _request_headers(environ: dict[str, Any]) -> dict[str, str]:
    """The request's headers by lower-case name (repeated ones joined with commas)."""
    from moto.core.request import PRESERVED_HEADER_NAMES_ENVIRON_KEY

    preserved = environ.get(PRESERVED_HEADER_NAMES_ENVIRON_KEY) or {}
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = preserved.get(key, key[5:].replace("_", "-"))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key.replace("_", "-")
        else:
            continue
        headers[name.lower()] = value
    return headers


def _as_sent(value: str) -> bytes:
    """The bytes of the request line behind a WSGI string of werkzeug's (which encodes them
    in UTF-8 once more, then decodes them as Latin-1)."""
    data = value.encode("latin-1", "replace")
    try:
        return data.decode("utf-8").encode("latin-1")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return data


def _query_pairs(environ: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """The query's name/value pairs, percent-decoded ("+" is a plus sign, as S3 reads it)."""
    raw = _as_sent(environ.get("QUERY_STRING", ""))
    pairs = []
    for pair in raw.split(b"&"):
        if pair:
            name, _, value = pair.partition(b"=")
            pairs.append((unquote_to_bytes(name), unquote_to_bytes(value)))
    return pairs


def _query_params(pairs: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The first value of each query parameter, by its name (case-sensitive, as S3 reads them)."""
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name.decode("utf-8", "replace"), value.decode("utf-8", "replace"))
    return params


def _canonical_query(pairs: list[tuple[bytes, bytes]]) -> str:
    """Every parameter but X-Amz-Signature, RFC 3986-encoded, sorted by name then value."""
    encoded = sorted(
        (quote(name, safe="-_.~"), quote(value, safe="-_.~")) for name, value in pairs if name != b"X-Amz-Signature"
    )
    return "&".join(f"{name}={value}" for name, value in encoded)


def _canonical_uri(environ: dict[str, Any]) -> str:
    """The path as the client sent it: S3 neither normalises it nor encodes it again."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", "/"))
    path = target.split("?", 1)[0]
    if "://" in path:  # absolute-form request target
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    return quote(_as_sent(path), safe=_AS_SENT) or "/"


def _read_body(environ: dict[str, Any]) -> bytes:
    """Reads the whole body and puts it back as wsgi.input, unchanged, for moto to read."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        chunks, remaining = [], length
        while remaining > 0:
            chunk = stream.read(remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        body = b"".join(chunks)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _check_body_length(headers: dict[str, str], body: bytes) -> None:
    declared = headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) != len(body):
        raise S3Error(
            400,
            "IncompleteBody",
            "You did not provide the number of bytes specified by the Content-Length HTTP header",
            NumberBytesExpected=declared.strip(),
            NumberBytesProvided=str(len(body)),
        )


def _parse_credential(
    credential: str, malformed: S3Error, error: Callable[[str], S3Error]
) -> tuple[str, str, str]:
    """(access key id, date, region) of a credential "AKID/YYYYMMDD/REGION/s3/aws4_request"."""
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts) or not re.fullmatch(r"\d{8}", parts[1]):
        raise malformed
    access_key_id, date, region, service, terminal = parts
    if service != "s3":
        raise error(f'Error parsing the X-Amz-Credential parameter; incorrect service "{service}". This endpoint belongs to "s3".')
    if terminal != "aws4_request":
        raise error(f'Error parsing the X-Amz-Credential parameter; incorrect terminal "{terminal}". This endpoint uses "aws4_request".')
    return access_key_id, date, region


def _query_auth_error(message: str) -> S3Error:
    return S3Error(400, "AuthorizationQueryParametersError", message)


def _check_query_parameters(params: dict[str, str], now: datetime) -> tuple[str, str, str, list[str]]:
    """The form of the X-Amz-* parameters and the expiry; (access key id, date, region, signed headers)."""
    if any(name not in params for name in _SIGV4_QUERY_ALL):
        raise _query_auth_error(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
            "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
        )
    if params["X-Amz-Algorithm"] != _SIGV4:
        raise _query_auth_error(f'X-Amz-Algorithm only supports "{_SIGV4}"')
    malformed = _query_auth_error(
        'Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; '
        'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
    )
    access_key_id, date, region = _parse_credential(params["X-Amz-Credential"], malformed, _query_auth_error)
    amz_date = params["X-Amz-Date"]
    if not _AMZ_DATE.fullmatch(amz_date):
        raise _query_auth_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    try:
        signed_at = _amz_time(amz_date)
    except ValueError:
        raise _query_auth_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"") from None
    if date != amz_date[:8]:
        raise _query_auth_error(f'Invalid credential date "{date}". This date is not the same as X-Amz-Date: "{amz_date[:8]}".')
    expires = params["X-Amz-Expires"]
    if not re.fullmatch(r"-?\d+", expires):
        raise _query_auth_error("X-Amz-Expires should be a number")
    if int(expires) < 0:
        raise _query_auth_error("X-Amz-Expires must be non-negative")
    if int(expires) > _MAX_EXPIRES:
        raise _query_auth_error(f"X-Amz-Expires must be less than a week (in seconds) that is; {_MAX_EXPIRES}")
    expiry = signed_at + timedelta(seconds=int(expires))
    if now >= expiry:
        raise S3Error(403, "AccessDenied", "Request has expired", **{
            "X-Amz-Expires": expires, "Expires": _iso(expiry), "ServerTime": _iso(now),
        })
    return access_key_id, date, region, params["X-Amz-SignedHeaders"].split(";")


def _check_headers_signed(headers: dict[str, str], signed: list[str]) -> None:
    """host and every x-amz-* header sent (x-amz-content-sha256 apart) must be signed."""
    names = {name.lower() for name in signed}
    unsigned = ["host"] if "host" not in names else []
    unsigned += sorted(
        name for name in headers
        if name.startswith("x-amz-") and name != "x-amz-content-sha256" and name not in names
    )
    if unsigned:
        raise S3Error(
            403,
            "AccessDenied",
            "There were headers present in the request which were not signed",
            HeadersNotSigned=", ".join(unsigned),
        )


def _check_payload_hash(payload_hash: str, body: bytes) -> None:
    """A payload hash given as a SHA-256 must be the body's (the other values name no hash)."""
    if _SHA256_HEX.fullmatch(payload_hash) and hashlib.sha256(body).hexdigest() != payload_hash:
        raise S3Error(
            400,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ClientComputedContentSHA256=payload_hash,
            S3ComputedContentSHA256=hashlib.sha256(body).hexdigest(),
        )


def _verify_query_signature(environ: dict[str, Any], body: bytes, now: datetime) -> None:
    """A request authenticated by SigV4 query parameters (a presigned URL), as S3 verifies it
    (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html)."""
    headers = _request_headers(environ)
    pairs = _query_pairs(environ)
    params = _query_params(pairs)
    access_key_id, date, region, signed = _check_query_parameters(params, now)
    _check_headers_signed(headers, signed)
    payload_hash = params.get("X-Amz-Content-Sha256") or headers.get("x-amz-content-sha256") or _UNSIGNED_PAYLOAD
    canonical_headers = "".join(
        f"{name.lower()}:{' '.join(headers.get(name.lower(), '').split())}\n" for name in signed
    )
    canonical_request = "\n".join(
        [
            environ["REQUEST_METHOD"],
            _canonical_uri(environ),
            _canonical_query(pairs),
            canonical_headers,
            params["X-Amz-SignedHeaders"],
            payload_hash,
        ]
    )
    scope = f"{date}/{region}/s3/aws4_request"
    string_to_sign = "\n".join(
        [_SIGV4, params["X-Amz-Date"], scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    _check_signature(access_key_id, date, region, string_to_sign, params["X-Amz-Signature"], CanonicalRequest=canonical_request)
    _check_body_length(headers, body)
    _check_payload_hash(payload_hash, body)


def _policy_failure(message: str) -> S3Error:
    return S3Error(403, "AccessDenied", f"Invalid according to Policy: {message}")


def _invalid_policy(message: str) -> S3Error:
    return S3Error(400, "InvalidPolicyDocument", f"Invalid Policy: {message}")


def _post_form(environ: dict[str, Any], body: bytes) -> tuple[dict[str, str], bytes | None]:
    """The form's fields by lower-case name (the first of each), and the file's content, if any."""
    from werkzeug.wrappers import Request

    request = Request(dict(environ, **{"wsgi.input": io.BytesIO(body)}))
    try:
        form, files = request.form, request.files
    except Exception:
        form = files = None
    if form is None or files is None:
        raise S3Error(400, "MalformedPOSTRequest", "The body of your POST request is not well-formed multipart/form-data.")
    fields: dict[str, str] = {}
    for name, value in form.items(multi=True):
        fields.setdefault(name.lower(), value)
    content = None
    if "file" in files:
        content = files["file"].read()
    elif "file" in fields:
        content = fields["file"].encode()
    fields.pop("file", None)
    return fields, content


def _policy_conditions(policy: str, now: datetime) -> list[tuple[str, str, Any]]:
    """The policy's conditions as (operator, field, value), once the policy is known unexpired."""
    try:
        document = json.loads(base64.b64decode(policy, validate=True))
    except ValueError:
        raise _invalid_policy("Invalid JSON.") from None
    if not isinstance(document, dict) or "expiration" not in document:
        raise _invalid_policy("Policy missing expiration.")
    expiration = _POLICY_EXPIRATION.fullmatch(str(document["expiration"]))
    if expiration is None:
        raise _invalid_policy(f"Invalid 'expiration' value: '{document['expiration']}'")
    try:
        expires = datetime(*map(int, expiration.groups()), tzinfo=timezone.utc)
    except ValueError:
        raise _invalid_policy(f"Invalid 'expiration' value: '{document['expiration']}'") from None
    if now >= expires:
        raise _policy_failure("Policy expired.")
    if not isinstance(document.get("conditions"), list):
        raise _invalid_policy("Policy missing conditions.")
    return [_condition(c) for c in document["conditions"]]


def _condition(condition: Any) -> tuple[str, str, Any]:
    """A condition as (operator, field, value): ("eq" | "starts-with", the field's name as the
    policy spells it, a string) or ("content-length-range", "", (minimum, maximum))."""
    invalid = _invalid_policy(f"Invalid Condition: {json.dumps(condition)}")
    if isinstance(condition, dict) and len(condition) == 1:
        [(field, value)] = condition.items()
        if isinstance(value, str):
            return "eq", field, value
    elif isinstance(condition, list) and len(condition) == 3:
        operator, field, value = condition
        operator = operator.lower() if isinstance(operator, str) else operator
        if operator == "content-length-range":
            try:
                return operator, "", (int(field), int(value))
            except (TypeError, ValueError):
                raise invalid from None
        if operator in ("eq", "starts-with") and isinstance(field, str) and field.startswith("$") and isinstance(value, str):
            return operator, field[1:], value
    raise invalid


def _condition_met(operator: str, field: str, expected: str, actual: str) -> bool:
    if operator == "eq":
        return actual == expected
    if field.lower() == "content-type":  # each of a comma-separated list of types
        return all(part.strip().startswith(expected) for part in actual.split(","))
    return actual.startswith(expected)


def _check_post_conditions(conditions: list[tuple[str, str, Any]], fields: dict[str, str], bucket: str, size: int) -> None:
    """Every condition holds, every field is covered by one, and the file's size is in range."""
    covered = set()
    for operator, field, value in conditions:
        if operator == "content-length-range":
            continue
        covered.add(field.lower())
        actual = bucket if field.lower() == "bucket" else fields.get(field.lower(), "")
        if not _condition_met(operator, field, value, actual):
            raise _policy_failure(f"Policy Condition failed: {json.dumps([operator, '$' + field, value])}")
    extra = [
        name for name in fields
        if name not in covered and name not in _POST_UNCONDITIONED and not name.startswith("x-ignore-")
    ]
    if extra:
        raise _policy_failure(f"Extra input fields: {', '.join(extra)}")
    for operator, _, (minimum, maximum) in (c for c in conditions if c[0] == "content-length-range"):
        if size > maximum:
            raise S3Error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size",
                          ProposedSize=str(size), MaxSizeAllowed=str(maximum))
        if size < minimum:
            raise S3Error(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size",
                          ProposedSize=str(size), MinSizeAllowed=str(minimum))


def _bucket_name(environ: dict[str, Any]) -> str:
    """The bucket of a path-style request (/bucket), or of a virtual-hosted one (bucket.host)."""
    segment = environ.get("PATH_INFO", "").lstrip("/").split("/", 1)[0]
    return segment or environ.get("HTTP_HOST", "").split(".", 1)[0]


def _verify_post_upload(environ: dict[str, Any], body: bytes, now: datetime) -> None:
    """A browser-based POST upload signed with SigV4, as S3 verifies it
    (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-authentication-HTTPPOST.html)."""
    _check_body_length(_request_headers(environ), body)
    fields, content = _post_form(environ, body)
    if "awsaccesskeyid" in fields or "signature" in fields:
        raise S3Error(400, "InvalidRequest", _UNSUPPORTED_AUTH)
    if not any(name in fields for name in _POST_AUTH_FIELDS):
        return  # an anonymous upload: not presigned, left to moto
    for name in ("key", *_POST_AUTH_FIELDS):
        if name not in fields:
            raise S3Error(400, "InvalidArgument", f"Bucket POST must contain a field named '{name}'.  "
                          "If it is specified, please check the order of the fields.")
    if content is None:
        raise S3Error(400, "InvalidArgument", "POST requires exactly one file upload per request.")
    if fields["x-amz-algorithm"] != _SIGV4:
        raise S3Error(400, "InvalidArgument", f'X-Amz-Algorithm only supports "{_SIGV4}"')
    malformed = S3Error(400, "InvalidArgument", 'Error parsing the X-Amz-Credential parameter; the Credential is '
                        'mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".')
    access_key_id, date, region = _parse_credential(
        fields["x-amz-credential"], malformed, lambda message: S3Error(400, "InvalidArgument", message)
    )
    if not _AMZ_DATE.fullmatch(fields["x-amz-date"]):
        raise S3Error(400, "InvalidArgument", "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    _check_signature(access_key_id, date, region, fields["policy"], fields["x-amz-signature"])
    conditions = _policy_conditions(fields["policy"], now)
    _check_post_conditions(conditions, fields, _bucket_name(environ), len(content))


def _is_post_upload(environ: dict[str, Any]) -> bool:
    return (
        environ.get("REQUEST_METHOD") == "POST"
        and environ.get("CONTENT_TYPE", "").lower().startswith("multipart/form-data")
        and "HTTP_AUTHORIZATION" not in environ
    )


def check_presigned_s3(environ: dict[str, Any], now: datetime | None = None) -> None:
    """Raises the S3Error S3 would answer a presigned request (query string or POST form) with;
    returns if the request is not presigned or passes. The body, if read, is put back."""
    path = environ.get("PATH_INFO", "")
    if path.startswith(("/moto-api", STATS_PATH)) or environ.get("REQUEST_METHOD") == "OPTIONS":
        return  # moto's own API, the wrapper's, and CORS preflights (which S3 never authenticates)
    now = now or datetime.now(timezone.utc)
    params = _query_params(_query_pairs(environ))
    if any(name in params for name in _SIGV4_QUERY):
        body = _read_body(environ)
        if "HTTP_AUTHORIZATION" in environ:
            raise S3Error(400, "InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query "
                          "parameter, Signature query string parameter or the Authorization header should be specified")
        _verify_query_signature(environ, body, now)
    elif "AWSAccessKeyId" in params and "Signature" in params and "HTTP_AUTHORIZATION" not in environ:
        _read_body(environ)
        raise S3Error(400, "InvalidRequest", _UNSUPPORTED_AUTH)
    elif _is_post_upload(environ):
        _verify_post_upload(environ, _read_body(environ), now)


def verify_presigned_s3(app: Any) -> Any:
    """A WSGI layer answering a presigned S3 request that S3 would refuse with S3's error, and
    passing every other request on, its body unchanged."""

    def verified(environ: dict[str, Any], start_response: Any) -> Any:
        try:
            check_presigned_s3(environ)
        except S3Error as error:
            status, headers, body = error.answer(head=environ.get("REQUEST_METHOD") == "HEAD")
            start_response(status, headers)
            return [body]
        return app(environ, start_response)

    return verified


def _request_service(environ: dict[str, Any]) -> tuple[str | None, bool]:
    """The service a request is signed for (its SigV4 credential scope, in the Authorization
    header or the query), and whether it was presigned (signed in the query, or a browser's
    form upload): (None, False) when it names none."""
    signed = fake_bedrock.signing_service(environ.get("HTTP_AUTHORIZATION", ""))
    if signed:
        return signed, False
    params = _query_params(_query_pairs(environ))
    scope = params.get("X-Amz-Credential", "").split("/")
    if len(scope) == 5:
        return scope[3], True
    if _is_post_upload(environ):
        return "s3", True
    return None, False


def bill_requests(app: Any, bill: BillLog) -> Any:
    """A WSGI layer writing S3's requests and SES v2's SendEmail to the bill log (DynamoDB's are
    written where their items are known, install_consumed_capacity)."""

    def logged(environ: dict[str, Any], start_response: Any) -> Any:
        if not bill:
            return app(environ, start_response)
        service, presigned = _request_service(environ)
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        recipients = None
        if service == "ses" and method == "POST" and path.endswith("/v2/email/outbound-emails"):
            try:
                destination = json.loads(_read_body(environ) or b"{}").get("Destination") or {}
                recipients = sum(len(destination.get(k) or []) for k in ("ToAddresses", "CcAddresses", "BccAddresses"))
            except ValueError:
                recipients = 0
        if service not in ("s3", "ses"):
            return app(environ, start_response)
        status: list[str] = []

        def start(code: str, headers: Any, *rest: Any) -> Any:
            status.append(code)
            return start_response(code, headers, *rest)

        answer = app(environ, start)
        code = int(status[0].split(" ", 1)[0]) if status else 0
        if service == "s3" and method != "OPTIONS":
            bill.write({
                "service": "s3", "method": method, "path": path, "query": environ.get("QUERY_STRING", ""),
                "copy": "HTTP_X_AMZ_COPY_SOURCE" in environ, "presigned": presigned, "status": code,
            })
        elif recipients is not None:
            bill.write({"service": "ses", "operation": "SendEmail", "recipients": recipients, "status": code})
        return answer

    return logged


FAULTS_PATH = "/_local_aws/faults"

# How AWS answers each fault: (status, body, headers) by service protocol.
_DYNAMODB_FAULTS = {
    "ThrottlingException": (400, "com.amazonaws.dynamodb.v20120810#ThrottlingException", "Rate of requests exceeds the allowed throughput."),
    "ProvisionedThroughputExceededException": (
        400,
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
    ),
    "RequestLimitExceeded": (400, "com.amazonaws.dynamodb.v20120810#RequestLimitExceeded", "Throughput exceeds the current throughput limit for your account."),
    "InternalServerError": (500, "com.amazonaws.dynamodb.v20120810#InternalServerError", "Internal server error"),
    "ServiceUnavailable": (503, "com.amazonaws.dynamodb.v20120810#ServiceUnavailable", "Service unavailable"),
}


class Faults:
    """Chosen requests failing the way AWS fails them, for tests of what the clients do then.

    POST /_local_aws/faults {"service", "operation"?, "code", "times"?, "skip"?, "contains"?}
    adds a fault: the next `times` (default 1) requests to `service` (dynamodb, s3, ses,
    sqs, any other signing name) whose operation is `operation` (DynamoDB's X-Amz-Target
    operation such as PutItem or TransactWriteItems, SES v2's SendEmail, S3's HTTP method;
    any when absent) and whose path, query or body contain `contains` (a table's name, a key,
    an address; any when absent) fail, after `skip` (default 0) such requests went through.
    `code` is how they fail:

    - DynamoDB: ThrottlingException, ProvisionedThroughputExceededException,
      RequestLimitExceeded (400), InternalServerError (500), ServiceUnavailable (503), in
      DynamoDB's JSON error shape; TransactionConflict: TransactWriteItems cancelled (400
      TransactionCanceledException, the first item's reason TransactionConflict, the others
      None);
    - S3: SlowDown (503), InternalError (500), in S3's XML error shape;
    - SES v2: TooManyRequestsException (429), InternalFailure (500), restJson1's shape
      (x-amzn-ErrorType);
    - any service: Reset: the answer's headers promise a body that never comes, and the
      connection is closed mid-response.

    A faulted request never reaches moto: it changes nothing. GET lists the faults with how
    many times each fired (`fired`); DELETE removes them all, DELETE ?contains=X those with that
    `contains`. Faults are kept until they have fired `times` times. `operation` may be a list
    of operations."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[dict[str, Any]] = []
        self._next_id = 1

    def control(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        method = environ.get("REQUEST_METHOD")
        status = "200 OK"
        with self._lock:
            if method == "POST":
                try:
                    fault = json.loads(_read_body(environ) or b"{}")
                    if not isinstance(fault, dict) or not isinstance(fault.get("service"), str) or not isinstance(fault.get("code"), str):
                        raise ValueError("a fault needs a service and a code")
                except ValueError as e:
                    body = json.dumps({"message": str(e)}).encode()
                    start_response("400 Bad Request", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
                    return [body]
                fault = {"times": 1, "skip": 0, **fault, "id": self._next_id, "fired": 0, "seen": 0}
                self._next_id += 1
                self._faults.append(fault)
                status = "201 Created"
            elif method == "DELETE":
                only = _query_params(_query_pairs(environ)).get("contains")
                self._faults[:] = [f for f in self._faults if only is not None and f.get("contains") != only]
            body = json.dumps({"faults": self._faults}).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def match(self, environ: dict[str, Any]) -> dict[str, Any] | None:
        """The fault this request is to fail with, if any (counted as fired)."""
        with self._lock:
            if not self._faults:
                return None
        service, _ = _request_service(environ)
        if service is None:
            return None
        service = {"email": "ses"}.get(service, service)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        path = environ.get("PATH_INFO", "")
        if target:
            operation = target.rsplit(".", 1)[-1]
        elif service == "ses" and path.endswith("/outbound-emails"):
            operation = "SendEmail"
        else:
            operation = environ.get("REQUEST_METHOD", "")
        text: str | None = None
        with self._lock:
            for fault in self._faults:
                if fault["fired"] >= fault["times"] or fault["service"] != service:
                    continue
                wanted = fault.get("operation")
                if wanted is not None and operation not in (wanted if isinstance(wanted, list) else [wanted]):
                    continue
                if fault.get("contains"):
                    if text is None:
                        text = path + "?" + environ.get("QUERY_STRING", "") + _read_body(environ).decode("utf-8", "replace")
                    if fault["contains"] not in text:
                        continue
                fault["seen"] += 1
                if fault["seen"] <= fault["skip"]:
                    continue
                fault["fired"] += 1
                return {**fault, "operation": operation}
        return None


def fault_answer(fault: dict[str, Any], environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """The answer AWS gives when it fails as `fault` says."""
    code, service = fault["code"], fault["service"]
    request_id = f"{time.time_ns():x}"
    if code == "Reset":
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", "1048576")])

        def cut() -> Iterable[bytes]:
            yield b"{"
            raise ConnectionResetError("the endpoint resets the connection mid-response (a fault)")

        return cut()
    headers = [("x-amzn-RequestId", request_id)]
    if service == "dynamodb" and code == "TransactionConflict":
        try:
            items = json.loads(_read_body(environ) or b"{}").get("TransactItems", [])
        except ValueError:
            items = []
        reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}] + [{"Code": "None"} for _ in items[1:]]
        reason_text = ", ".join(r["Code"] for r in reasons)
        payload = {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{reason_text}]",
            "CancellationReasons": reasons,
        }
        status, body, kind = 400, json.dumps(payload).encode(), "application/x-amz-json-1.0"
    elif service == "dynamodb":
        status, kind_name, message = _DYNAMODB_FAULTS.get(code, (500, f"com.amazonaws.dynamodb.v20120810#{code}", code))
        status, body, kind = status, json.dumps({"__type": kind_name, "message": message}).encode(), "application/x-amz-json-1.0"
    elif service == "s3":
        status = {"SlowDown": 503, "InternalError": 500, "ServiceUnavailable": 503}.get(code, 500)
        message = {"SlowDown": "Please reduce your request rate."}.get(code, "We encountered an internal error. Please try again.")
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>'.encode()
        kind = "application/xml"
        headers.append(("x-amz-request-id", request_id))
    else:
        status = {"TooManyRequestsException": 429, "ThrottlingException": 400, "InternalFailure": 500, "ServiceUnavailable": 503}.get(code, 500)
        body, kind = json.dumps({"message": f"{code} (a fault of the local endpoint)"}).encode(), "application/json"
        headers.append(("x-amzn-ErrorType", f"{code}:http://internal.amazon.com/coral/com.amazonaws.services/"))
    reason = {400: "Bad Request", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
    start_response(f"{status} {reason}", [("Content-Type", kind), ("Content-Length", str(len(body))), *headers])
    return [body]


def main() -> None:
    port = int(sys.argv[1])
    os.environ.setdefault("MOTO_PORT", str(port))
    if "--exit-with-parent" in sys.argv:
        parent = os.getppid()

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()

    install_transaction_journal(journaling="--stock-transactions" not in sys.argv)
    install_complete_s3_events()
    bill = BillLog.from_environment()
    install_consumed_capacity(bill)
    install_complete_ses_v2_mail()
    install_s3_vectors()

    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()
    bedrock = fake_bedrock.FakeBedrock.from_environment()

    def serialised(environ, start_response):
        with lock:
            if environ.get("PATH_INFO") == STATS_PATH:
                body = json.dumps(_stats).encode()
                headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
                start_response("200 OK", headers)
                return [body]
            return list(app(environ, start_response))

    verified = bill_requests(verify_presigned_s3(serialised), bill)

    faults = Faults()

    def routed(environ, start_response):
        if environ.get("PATH_INFO") == FAULTS_PATH:
            return faults.control(environ, start_response)
        if (fault := faults.match(environ)) is not None:
            return fault_answer(fault, environ, start_response)
        # Bedrock Runtime calls touch no moto backend: they run outside the lock, at once.
        if fake_bedrock.handles(environ):
            return bedrock(environ, start_response)
        return verified(environ, start_response)

    run_simple(
        "127.0.0.1",
        port,
        routed,
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
