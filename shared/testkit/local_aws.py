"""The local AWS endpoint: moto in server mode, on a loopback port.

What it guarantees:

* Each request is atomic and isolated. Requests are handled one at a time behind a lock.
  DynamoDB guarantees that each request (a transaction above all) is atomic; moto's in-memory
  backends do not when requests run on parallel threads, so serialising them is what keeps the
  local endpoint faithful. Connections are still accepted concurrently, so clients see the same
  concurrency as against AWS.

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

GET /_local_aws/transactions returns counters about the transactions so far (how many, how
many failed, how many items were journaled and deep-copied), for the wrapper's tests and
benchmark.

Usage: python local_aws.py PORT [--exit-with-parent] [--stock-transactions]

--exit-with-parent     stop when the process that started this one exits.
--stock-transactions   keep moto's whole-table copies (to compare with, in tests and benchmarks).
"""

import copy
import functools
import json
import os
import re
import sys
import threading
import time
from typing import Any
from urllib.parse import quote_plus

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
    install_complete_ses_v2_mail()

    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            if environ.get("PATH_INFO") == STATS_PATH:
                body = json.dumps(_stats).encode()
                headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
                start_response("200 OK", headers)
                return [body]
            return list(app(environ, start_response))

    run_simple(
        "127.0.0.1",
        port,
        serialised,
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
