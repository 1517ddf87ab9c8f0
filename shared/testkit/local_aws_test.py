"""Tests of the local AWS endpoint (local_aws.py), above all of its journaled transactions.

Each test class talks to a wrapper started as a subprocess on a free port, as the Rust code
starts it. The equivalence test also starts one with --stock-transactions (moto's own
whole-table copies) and checks that both answer and end up alike.

Run from the repository root:  .venv/bin/python -m unittest shared/testkit/local_aws_test.py
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

WRAPPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "local_aws.py")
REGION = "us-east-1"
# No retries: every call must be answered by the wrapper exactly once.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 1}, max_pool_connections=32)


class Wrapper:
    """local_aws.py running as a subprocess, with clients for it."""

    def __init__(self, *flags: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, WRAPPER, str(self.port), "--exit-with-parent", *flags],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.log.seek(0)
                    output = self.log.read().decode()
                    self.stop()
                    raise RuntimeError(f"the wrapper did not start:\n{output}")
                time.sleep(0.05)
        self.session = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=REGION
        )
        self.ddb = self.client()
        self.streams = self.session.client("dynamodbstreams", endpoint_url=self.endpoint, config=CLIENT_CONFIG)

    def client(self) -> Any:
        """A DynamoDB client (clients are thread-safe, sessions are not: make them here)."""
        return self.session.client("dynamodb", endpoint_url=self.endpoint, config=CLIENT_CONFIG)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.log.close()

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.endpoint}/_local_aws/transactions") as response:
            return json.load(response)

    def create_table(self, name: str, stream: bool = False, sort_key: bool = True) -> None:
        """A table shaped like the Tenantry table (PK, SK, a GSI), or one with PK only."""
        keys = [("PK", "HASH")] + ([("SK", "RANGE")] if sort_key else [])
        attributes = [k for k, _ in keys] + ["GSI1PK", "GSI1SK"]
        params: dict[str, Any] = {
            "TableName": name,
            "KeySchema": [{"AttributeName": a, "KeyType": t} for a, t in keys],
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in attributes],
            "BillingMode": "PAY_PER_REQUEST",
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "GSI1",
                    "KeySchema": [
                        {"AttributeName": "GSI1PK", "KeyType": "HASH"},
                        {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        }
        if stream:
            params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        self.ddb.create_table(**params)

    def seed(self, table: str, items: list[dict[str, Any]]) -> None:
        for start in range(0, len(items), 25):
            batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            response = self.ddb.batch_write_item(RequestItems={table: batch})
            assert not response["UnprocessedItems"], response["UnprocessedItems"]

    def scan(self, table: str) -> list[dict[str, Any]]:
        items, params = [], {"TableName": table}
        while True:
            page = self.ddb.scan(**params)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return items
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def item_count(self, table: str) -> int:
        return self.ddb.describe_table(TableName=table)["Table"]["ItemCount"]

    def gsi1(self, table: str, partition: str) -> list[dict[str, Any]]:
        return self.ddb.query(
            TableName=table,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :p",
            ExpressionAttributeValues={":p": {"S": partition}},
        )["Items"]

    def state(self, table: str) -> tuple[Any, ...]:
        """Everything a client can see of a table's items."""
        return self.scan(table), self.item_count(table), self.gsi1(table, "tenant")

    def shard_iterator(self, table: str, kind: str = "TRIM_HORIZON") -> str:
        arn = self.ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        shard = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        return self.streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType=kind)["ShardIterator"]

    def records(self, iterator: str) -> tuple[list[dict[str, Any]], str]:
        """The records after `iterator`, and the iterator to read the next ones from."""
        records = []
        while True:
            page = self.streams.get_records(ShardIterator=iterator)
            iterator = page["NextShardIterator"]
            if not page["Records"]:
                return records, iterator
            records += page["Records"]


def key(pk: str, sk: str | None = "A") -> dict[str, Any]:
    return {"PK": {"S": pk}} | ({"SK": {"S": sk}} if sk is not None else {})


def item(pk: str, n: int, sk: str | None = "A", **more: str) -> dict[str, Any]:
    """An item with a number `n`; GSI1 keys given as more=... appear in the index."""
    return key(pk, sk) | {"n": {"N": str(n)}} | {k: {"S": v} for k, v in more.items()}


def n_is(value: int) -> dict[str, Any]:
    return {"ConditionExpression": "n = :v", "ExpressionAttributeValues": {":v": {"N": str(value)}}}


def increment(table: str, k: dict[str, Any], **condition: Any) -> dict[str, Any]:
    """An Update adding 1 to n (creating the item, with n = 1, if there is none)."""
    update = {
        "TableName": table,
        "Key": k,
        "UpdateExpression": "SET n = if_not_exists(n, :zero) + :one",
        "ExpressionAttributeValues": {":zero": {"N": "0"}, ":one": {"N": "1"}},
    }
    if condition:
        update["ConditionExpression"] = condition["ConditionExpression"]
        update["ExpressionAttributeValues"] |= condition.get("ExpressionAttributeValues", {})
    return {"Update": update}


def outcome(call: Any) -> Any:
    """What a client sees of a call: "ok", or the error's code, message and cancellation reasons."""
    try:
        call()
        return "ok"
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"]["Message"], e.response.get("CancellationReasons")


def seeded_items(count: int) -> list[dict[str, Any]]:
    return [item(f"seed#{i}", i, GSI1PK="seeded", GSI1SK=f"{i:06}") for i in range(count)]


class WrapperTestCase(unittest.TestCase):
    """One wrapper for the whole class; each test makes its own table."""

    wrapper: Wrapper

    @classmethod
    def setUpClass(cls) -> None:
        cls.wrapper = Wrapper()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.wrapper.stop()


class TransactionTest(WrapperTestCase):
    def setUp(self) -> None:
        self.table = self.id().rsplit(".", 1)[-1]
        self.wrapper.create_table(self.table)
        self.wrapper.seed(
            self.table,
            [
                item("update-me", 1, GSI1PK="tenant", GSI1SK="1"),
                item("delete-me", 2, GSI1PK="tenant", GSI1SK="2"),
                item("check-me", 3),
                item("limit", 5),
            ],
        )

    def test_journal_is_on(self) -> None:
        self.assertTrue(self.wrapper.stats()["journaling"])

    def test_successful_transaction_applies_every_action(self) -> None:
        t = self.table
        self.wrapper.ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": t, "Item": item("new", 0, GSI1PK="tenant", GSI1SK="0")}},
                increment(t, key("update-me")),
                {"Delete": {"TableName": t, "Key": key("delete-me")}},
                {"ConditionCheck": {"TableName": t, "Key": key("check-me"), **n_is(3)}},
            ]
        )
        self.assertEqual(
            sorted(self.wrapper.scan(t), key=lambda i: i["PK"]["S"]),
            [
                item("check-me", 3),
                item("limit", 5),
                item("new", 0, GSI1PK="tenant", GSI1SK="0"),
                item("update-me", 2, GSI1PK="tenant", GSI1SK="1"),
            ],
        )
        self.assertEqual(self.wrapper.item_count(t), 4)
        self.assertEqual([i["PK"]["S"] for i in self.wrapper.gsi1(t, "tenant")], ["new", "update-me"])

    def test_cancelled_transaction_changes_nothing(self) -> None:
        t = self.table
        before = self.wrapper.state(t)
        result = outcome(
            lambda: self.wrapper.ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": t, "Item": item("new", 0, GSI1PK="tenant", GSI1SK="0")}},
                    increment(t, key("update-me")),
                    {"Delete": {"TableName": t, "Key": key("delete-me")}},
                    # An update that creates its item, then a put replacing an existing one.
                    increment(t, key("created-by-update"), ConditionExpression="attribute_not_exists(PK)"),
                    {"Put": {"TableName": t, "Item": item("check-me", 30)}},
                    {"ConditionCheck": {"TableName": t, "Key": key("limit"), **n_is(4),
                                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
                    {"ConditionCheck": {"TableName": t, "Key": key("missing"),
                                        "ConditionExpression": "attribute_exists(PK)"}},
                ]
            )
        )
        failed = {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}
        self.assertEqual(
            result,
            (
                "TransactionCanceledException",
                "Transaction cancelled, please refer cancellation reasons for specific reasons "
                "[None, None, None, None, None, ConditionalCheckFailed, ConditionalCheckFailed]",
                [{"Code": "None"}] * 5 + [failed | {"Item": item("limit", 5)}, failed],
            ),
        )
        self.assertEqual(self.wrapper.state(t), before)
        last = self.wrapper.stats()["last"]
        self.assertEqual((last["failed"], last["items_journaled"]), (True, 7))

    def test_cancelled_transaction_over_two_tables_changes_neither(self) -> None:
        other = self.table + "-pk-only"
        self.wrapper.create_table(other, sort_key=False)
        self.wrapper.seed(other, [item("x", 1, sk=None), item("y", 2, sk=None)])
        before = self.wrapper.state(self.table), self.wrapper.state(other)
        result = outcome(
            lambda: self.wrapper.ddb.transact_write_items(
                TransactItems=[
                    {"Delete": {"TableName": other, "Key": key("x", sk=None)}},
                    {"Put": {"TableName": other, "Item": item("z", 3, sk=None)}},
                    increment(other, key("y", sk=None)),
                    {"Delete": {"TableName": self.table, "Key": key("delete-me")}},
                    increment(self.table, key("limit"), **n_is(4)),
                ]
            )
        )
        self.assertEqual(result[0], "TransactionCanceledException")
        self.assertEqual([r["Code"] for r in result[2]], ["None"] * 4 + ["ConditionalCheckFailed"])
        self.assertEqual((self.wrapper.state(self.table), self.wrapper.state(other)), before)

    def test_cancelled_transaction_naming_the_table_by_arn_changes_nothing(self) -> None:
        # moto only copies the tables it finds by name, so on its own it leaves these writes.
        arn = self.wrapper.ddb.describe_table(TableName=self.table)["Table"]["TableArn"]
        before = self.wrapper.state(self.table)
        result = outcome(
            lambda: self.wrapper.ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": arn, "Item": item("new", 0, GSI1PK="tenant", GSI1SK="0")}},
                    increment(arn, key("update-me")),
                    {"Delete": {"TableName": arn, "Key": key("delete-me")}},
                    {"ConditionCheck": {"TableName": arn, "Key": key("limit"), **n_is(4)}},
                ]
            )
        )
        self.assertEqual(result[0], "TransactionCanceledException")
        self.assertEqual(self.wrapper.state(self.table), before)

    def test_invalid_transaction_applied_in_part_is_undone(self) -> None:
        # moto applies the put, then finds the second action on the same item and fails the
        # whole request with a ValidationException: the put must not remain.
        t = self.table
        before = self.wrapper.state(t)
        result = outcome(
            lambda: self.wrapper.ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": t, "Item": item("new", 0, GSI1PK="tenant", GSI1SK="0")}},
                    increment(t, key("update-me")),
                    {"Delete": {"TableName": t, "Key": key("new")}},
                ]
            )
        )
        self.assertEqual(
            result,
            ("ValidationException", "Transaction request cannot include multiple operations on one item", None),
        )
        self.assertEqual(self.wrapper.state(t), before)


class StreamTest(WrapperTestCase):
    """A table with a stream (NEW_AND_OLD_IMAGES): one record per item written, none if cancelled."""

    def setUp(self) -> None:
        self.table = self.id().rsplit(".", 1)[-1]
        self.wrapper.create_table(self.table, stream=True)
        self.wrapper.seed(self.table, [item("a", 1), item("b", 2), item("c", 3)])
        _, self.iterator = self.wrapper.records(self.wrapper.shard_iterator(self.table))

    def new_records(self) -> list[tuple[str, str, Any, Any]]:
        """(event, PK, old image, new image) of the records written since the last call."""
        records, self.iterator = self.wrapper.records(self.iterator)
        return [
            (r["eventName"], d["Keys"]["PK"]["S"], d.get("OldImage"), d.get("NewImage"))
            for r in records
            for d in [r["dynamodb"]]
        ]

    def test_successful_transaction_emits_one_record_per_item_written(self) -> None:
        t = self.table
        self.wrapper.ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": t, "Item": item("new", 0)}},
                increment(t, key("a")),
                {"Delete": {"TableName": t, "Key": key("b")}},
                {"ConditionCheck": {"TableName": t, "Key": key("c"), **n_is(3)}},
            ]
        )
        self.assertEqual(
            self.new_records(),
            [
                ("INSERT", "new", None, item("new", 0)),
                ("MODIFY", "a", item("a", 1), item("a", 2)),
                ("REMOVE", "b", item("b", 2), None),
            ],
        )

    def test_cancelled_transaction_emits_nothing(self) -> None:
        t = self.table
        result = outcome(
            lambda: self.wrapper.ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": t, "Item": item("new", 0)}},
                    increment(t, key("a")),
                    {"Delete": {"TableName": t, "Key": key("b")}},
                    {"ConditionCheck": {"TableName": t, "Key": key("c"), **n_is(4)}},
                ]
            )
        )
        self.assertEqual(result[0], "TransactionCanceledException")
        # The iterator opened before the transaction reads on from the same shard: it sees
        # nothing of the cancelled transaction, then the next write.
        self.assertEqual(self.new_records(), [])
        self.wrapper.ddb.put_item(TableName=t, Item=item("after", 9))
        self.assertEqual(self.new_records(), [("INSERT", "after", None, item("after", 9))])
        records, _ = self.wrapper.records(self.wrapper.shard_iterator(t))
        self.assertEqual([r["eventName"] for r in records], ["INSERT"] * 4)


class ConcurrencyTest(unittest.TestCase):
    def test_conflicting_transactions_never_exceed_the_limit(self) -> None:
        wrapper = Wrapper()
        self.addCleanup(wrapper.stop)
        t = "seats"
        wrapper.create_table(t)
        wrapper.seed(t, [item("event", 0)])
        clients = [wrapper.client() for _ in range(20)]
        start = threading.Barrier(len(clients))
        results: list[Any] = [None] * len(clients)

        def reserve(i: int) -> None:
            reservation = [
                increment(t, key("event"), ConditionExpression="n < :limit",
                          ExpressionAttributeValues={":limit": {"N": "5"}}),
                {"Put": {"TableName": t, "Item": item("event", i, sk=f"seat#{i}"),
                         "ConditionExpression": "attribute_not_exists(PK)"}},
            ]
            start.wait()
            results[i] = outcome(lambda: clients[i].transact_write_items(TransactItems=reservation))

        threads = [threading.Thread(target=reserve, args=(i,)) for i in range(len(clients))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        self.assertEqual(results.count("ok"), 5)
        refused = [r for r in results if r != "ok"]
        self.assertEqual(len(refused), 15)
        for code, _, reasons in refused:
            self.assertEqual(code, "TransactionCanceledException")
            self.assertEqual([r["Code"] for r in reasons], ["ConditionalCheckFailed", "None"])
        items = wrapper.scan(t)
        self.assertEqual([i["n"]["N"] for i in items if i["SK"]["S"] == "A"], ["5"])
        self.assertEqual(len([i for i in items if i["SK"]["S"].startswith("seat#")]), 5)


class ScalingTest(unittest.TestCase):
    """What a transaction copies is what it touches, whatever the table's size (not timed)."""

    def test_items_copied_do_not_depend_on_table_size(self) -> None:
        wrapper = Wrapper()
        self.addCleanup(wrapper.stop)
        t = "big"
        wrapper.create_table(t, stream=True)  # the stream history grows with the seeding too

        def transaction(round: str, fail: bool) -> dict[str, Any]:
            wrapper.seed(t, [item(f"{round}-update", 1), item(f"{round}-delete", 2), item(f"{round}-check", 3)])
            before = wrapper.stats()["transactions"]
            outcome(
                lambda: wrapper.ddb.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": t, "Item": item(f"{round}-new", 0)}},
                        increment(t, key(f"{round}-update")),
                        {"Delete": {"TableName": t, "Key": key(f"{round}-delete")}},
                        {"ConditionCheck": {"TableName": t, "Key": key(f"{round}-check"), **n_is(4 if fail else 3)}},
                    ]
                )
            )
            stats = wrapper.stats()
            self.assertEqual(stats["transactions"], before + 1)
            self.assertEqual(stats["last"]["failed"], fail)
            return stats["last"]

        small = [transaction("small-ok", False), transaction("small-cancelled", True)]
        wrapper.seed(t, seeded_items(5000))
        self.assertGreaterEqual(wrapper.item_count(t), 5000)
        large = [transaction("large-ok", False), transaction("large-cancelled", True)]

        for last in small + large:
            # Four items touched (the new one is journaled as absent, and not copied); the
            # update's old image is the one copy moto makes itself.
            self.assertEqual(last["items_journaled"], 4)
            self.assertEqual(last["items_deep_copied"], 3 + 1)


class StockEquivalenceTest(unittest.TestCase):
    """The same requests against moto's own transactions and the journaled ones: the same
    answers, items, counts and stream records."""

    def test_same_outcomes_as_moto(self) -> None:
        stock, journaled = Wrapper("--stock-transactions"), Wrapper()
        self.addCleanup(stock.stop)
        self.addCleanup(journaled.stop)
        self.assertFalse(stock.stats()["journaling"])
        expected, actual = self.run_scenario(stock), self.run_scenario(journaled)
        self.assertEqual(actual, expected)
        outcomes, _, (pk_only_items, _, _), _ = actual
        self.assertEqual(
            [o if o == "ok" else o[0] for o in outcomes],
            ["ok", "TransactionCanceledException", "ValidationException", "TransactionCanceledException", "ok", "ok"],
        )
        self.assertIn(item("i3", 5, sk=None), pk_only_items)  # 3, plus 1 for each use of the token

    def run_scenario(self, wrapper: Wrapper) -> Any:
        s, p = "streamed", "pk-only"
        wrapper.create_table(s, stream=True)
        wrapper.create_table(p, sort_key=False)
        wrapper.seed(s, [item(f"i{i}", i, GSI1PK="tenant", GSI1SK=str(i)) for i in range(5)])
        wrapper.seed(p, [item(f"i{i}", i, sk=None) for i in range(5)])
        ddb = wrapper.ddb

        def transact(*actions: dict[str, Any], **params: Any) -> Any:
            return outcome(lambda: ddb.transact_write_items(TransactItems=list(actions), **params))

        outcomes = [
            transact(
                {"Put": {"TableName": s, "Item": item("new", 0, GSI1PK="tenant", GSI1SK="0")}},
                increment(s, key("i1")),
                {"Delete": {"TableName": s, "Key": key("i2")}},
                {"Delete": {"TableName": s, "Key": key("never-existed")}},
                increment(s, key("created-by-update")),
                {"ConditionCheck": {"TableName": p, "Key": key("i1", sk=None), **n_is(1)}},
            ),
            transact(
                {"Put": {"TableName": s, "Item": item("new2", 0)}},
                increment(s, key("i3")),
                {"Delete": {"TableName": p, "Key": key("i4", sk=None)}},
                increment(p, key("i0", sk=None), **n_is(7)),
                {"ConditionCheck": {"TableName": s, "Key": key("i4"), **n_is(9),
                                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            ),
            transact(
                {"Put": {"TableName": s, "Item": item("new3", 0)}},
                {"Put": {"TableName": s, "Item": item("new3", 1)}},
            ),
            transact({"Delete": {"TableName": "no-such-table", "Key": key("x")}}),
            # moto ignores ClientRequestToken: the same token twice applies the increment twice.
            transact(increment(p, key("i3", sk=None)), ClientRequestToken="same"),
            transact(increment(p, key("i3", sk=None)), ClientRequestToken="same"),
        ]
        records, _ = wrapper.records(wrapper.shard_iterator(s))
        for r in records:
            # Random, or the time of the write (which SizeBytes counts, in moto).
            del r["eventID"], r["dynamodb"]["ApproximateCreationDateTime"], r["dynamodb"]["SizeBytes"]
        return outcomes, wrapper.state(s), wrapper.state(p), records


class S3EventTest(WrapperTestCase):
    def test_notifications_carry_every_field_aws_sends(self) -> None:
        s3 = self.wrapper.session.client("s3", endpoint_url=self.wrapper.endpoint, config=CLIENT_CONFIG)
        sqs = self.wrapper.session.client("sqs", endpoint_url=self.wrapper.endpoint, config=CLIENT_CONFIG)
        url = sqs.create_queue(QueueName="uploads-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3.create_bucket(Bucket="uploads")
        s3.put_bucket_notification_configuration(
            Bucket="uploads",
            NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
        )
        s3.put_object(Bucket="uploads", Key="a/b c.txt", Body=b"hello")
        records = []
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            records.extend(json.loads(message["Body"]).get("Records", []))
        self.assertEqual(len(records), 1, records)
        record = records[0]
        self.assertEqual(record["eventName"], "ObjectCreated:Put")
        self.assertEqual(record["s3"]["object"]["key"], "a/b+c.txt")
        for field in ("userIdentity", "requestParameters", "responseElements"):
            self.assertIn(field, record)
        self.assertIn("principalId", record["s3"]["bucket"]["ownerIdentity"])
        self.assertRegex(record["s3"]["object"]["sequencer"], "^[0-9A-F]+$")


class SesV2MailTest(WrapperTestCase):
    """A SES v2 Simple message keeps its custom headers, configuration set and text part."""

    SENDER = "no-reply@mail.example.test"

    def setUp(self) -> None:
        self.ses = self.wrapper.session.client("sesv2", endpoint_url=self.wrapper.endpoint, config=CLIENT_CONFIG)
        try:
            self.ses.create_email_identity(EmailIdentity="mail.example.test")
        except ClientError as e:
            if e.response["Error"]["Code"] != "AlreadyExistsException":
                raise

    def send(self, to: str, body: dict[str, Any], headers: list[dict[str, str]] | None = None, **params: Any) -> str:
        simple: dict[str, Any] = {"Subject": {"Data": f"Hello {to}"}, "Body": body}
        if headers is not None:
            simple["Headers"] = headers
        return self.ses.send_email(
            FromEmailAddress=self.SENDER,
            Destination={"ToAddresses": [to]},
            Content={"Simple": simple},
            **params,
        )["MessageId"]

    def stored(self) -> dict[str, dict[str, Any]]:
        """The messages in the endpoint's state API, by id."""
        with urllib.request.urlopen(f"{self.wrapper.endpoint}/moto-api/data.json") as response:
            return {m["id"]: m for m in json.load(response)["ses"]["Message"]}

    def test_headers_configuration_set_and_text_are_kept(self) -> None:
        headers = [
            {"Name": "List-Unsubscribe", "Value": "<https://app.example.test/unsubscribe?t=abc>"},
            {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"},
            {"Name": "X-Entity-Ref-ID", "Value": "n-1"},
        ]
        message_id = self.send(
            "both@example.test",
            {"Html": {"Data": "<p>Hi</p>"}, "Text": {"Data": "Hi"}},
            headers,
            ConfigurationSetName="notifications",
        )
        message = self.stored()[message_id]
        self.assertEqual(message["headers"], headers)
        self.assertEqual(message["configuration_set_name"], "notifications")
        self.assertEqual(message["text_body"], "Hi")
        self.assertEqual(message["body"], "<p>Hi</p>")  # moto's own field: the HTML part
        self.assertEqual(message["subject"], "Hello both@example.test")
        self.assertEqual(message["destinations"], {"ToAddresses": ["both@example.test"]})

    def test_a_message_without_them_has_empty_fields(self) -> None:
        html_only = self.send("html@example.test", {"Html": {"Data": "<p>Hi</p>"}})
        text_only = self.send("text@example.test", {"Text": {"Data": "Hi"}})
        messages = self.stored()
        for message_id in (html_only, text_only):
            self.assertEqual(messages[message_id]["headers"], [])
            self.assertIsNone(messages[message_id]["configuration_set_name"])
        self.assertIsNone(messages[html_only]["text_body"])
        self.assertEqual(messages[text_only]["text_body"], "Hi")
        self.assertEqual(messages[text_only]["body"], "Hi")

    def test_mail_sent_through_ses_v1_shows_the_fields_too(self) -> None:
        ses = self.wrapper.session.client("ses", endpoint_url=self.wrapper.endpoint, config=CLIENT_CONFIG)
        message_id = ses.send_email(
            Source=self.SENDER,
            Destination={"ToAddresses": ["v1@example.test"]},
            Message={"Subject": {"Data": "v1"}, "Body": {"Text": {"Data": "Hi"}}},
        )["MessageId"]
        message = self.stored()[message_id]
        self.assertEqual((message["headers"], message["configuration_set_name"], message["text_body"]), ([], None, None))

    def test_headers_outside_the_api_limits_are_rejected(self) -> None:
        before = len(self.stored())
        invalid = [
            [{"Name": "Bad:Name", "Value": "x"}],
            [{"Name": "Bad Name", "Value": "x"}],
            [{"Name": "N" * 127, "Value": "x"}],
            [{"Name": "X-Long", "Value": "v" * 996}],
            [{"Name": "X-" + "n" * 100, "Value": "v" * 900}],  # 1,002 together
            [{"Name": f"X-H{i}", "Value": "x"} for i in range(16)],
        ]
        for headers in invalid:
            with self.subTest(headers=headers[0]["Name"][:10], count=len(headers)):
                with self.assertRaises(ClientError) as caught:
                    self.send("rejected@example.test", {"Text": {"Data": "Hi"}}, headers)
                self.assertEqual(caught.exception.response["Error"]["Code"], "BadRequestException")
                self.assertEqual(caught.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        self.assertEqual(len(self.stored()), before)
        # At the limits: accepted.
        at_limits = [{"Name": "N" * 126, "Value": "v" * 870}] + [{"Name": f"X-H{i}", "Value": "x"} for i in range(14)]
        message_id = self.send("limits@example.test", {"Text": {"Data": "Hi"}}, at_limits)
        self.assertEqual(self.stored()[message_id]["headers"], at_limits)


if __name__ == "__main__":
    unittest.main()
