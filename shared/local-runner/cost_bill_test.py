"""Tests of the bill priced by hand (cost_bill.py): AWS's rules, one by one.

Run from the repository root:  .venv/bin/python -m unittest shared/local-runner/cost_bill_test.py
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cost_bill as bill  # noqa: E402

INDEXES = [bill.Index("GSI1", ("GSI1PK", "GSI1SK")), bill.Index("GSI2", ("GSI2PK", "GSI2SK"))]


def item(pk: str, **attrs: str) -> dict:
    return {"PK": {"S": pk}, "SK": {"S": "A"}} | {k: {"S": v} for k, v in attrs.items()}


def write(before: dict | None, after: dict | None, transaction: bool = False, error: str | None = None) -> dict:
    return {"service": "dynamodb", "operation": "PutItem", "transaction": transaction, "error": error, "writes": [{"before": before, "after": after}]}


def priced(*records: dict) -> bill.Bill:
    b = bill.Bill()
    bill.price_log(b, records, INDEXES)
    return b


class ItemSizeTest(unittest.TestCase):
    def test_sizes_follow_the_developer_guide(self) -> None:
        self.assertEqual(bill.item_bytes({"a": {"S": "ü"}}), 1 + 2)
        self.assertEqual(bill.item_bytes({"a": {"N": "123"}}), 1 + 3)  # ceil(3 / 2) + 1
        self.assertEqual(bill.item_bytes({"a": {"N": "0.0100"}}), 1 + 2)  # one significant digit
        self.assertEqual(bill.item_bytes({"a": {"B": "AAAA"}}), 1 + 3)
        self.assertEqual(bill.item_bytes({"a": {"NULL": True}, "b": {"BOOL": False}}), 4)
        self.assertEqual(bill.item_bytes({"a": {"L": [{"S": "x"}, {"M": {}}]}}), 1 + 3 + (1 + 1) + (1 + 3))
        self.assertEqual(bill.item_bytes({"a": {"M": {"kk": {"N": "5"}}}}), 1 + 3 + (1 + 2 + 2))
        self.assertEqual(bill.item_bytes(None), 0)

    def test_units_round_up(self) -> None:
        self.assertEqual([bill.write_units(n) for n in (0, 1, 1024, 1025)], [1, 1, 1, 2])
        self.assertEqual([bill.read_units(n, True) for n in (0, 4096, 4097)], [1.0, 1.0, 2.0])
        self.assertEqual(bill.read_units(4097, False), 1.0)


class DynamoDBTest(unittest.TestCase):
    def test_a_write_costs_its_larger_image_and_each_index_it_changes(self) -> None:
        small, big = item("a"), item("a", pad="x" * 1500)
        self.assertEqual(priced(write(None, small)).units["dynamodbWriteUnits"], 1)
        self.assertEqual(priced(write(big, small)).units["dynamodbWriteUnits"], 2)
        indexed = item("a", GSI1PK="g", GSI1SK="1")
        self.assertEqual(priced(write(None, indexed)).units["dynamodbWriteUnits"], 2)  # table + GSI1
        moved = item("a", GSI1PK="g", GSI1SK="2")
        self.assertEqual(priced(write(indexed, moved)).units["dynamodbWriteUnits"], 3)  # + delete and put
        changed = indexed | {"n": {"N": "1"}}
        self.assertEqual(priced(write(indexed, changed)).units["dynamodbWriteUnits"], 2)
        self.assertEqual(priced(write(indexed, indexed)).units["dynamodbWriteUnits"], 1)  # index unchanged
        both = indexed | {"GSI2PK": {"S": "h"}, "GSI2SK": {"S": "1"}}
        self.assertEqual(priced(write(None, both)).units["dynamodbWriteUnits"], 3)
        self.assertEqual(priced(write(both, None)).units["dynamodbWriteUnits"], 3)

    def test_transactions_double_and_refusals_are_counted_apart(self) -> None:
        indexed = item("a", GSI1PK="g", GSI1SK="1")
        self.assertEqual(priced(write(None, indexed, transaction=True)).units["dynamodbWriteUnits"], 4)
        refused = priced(write(indexed, indexed, error="ConditionalCheckFailedException"))
        self.assertEqual(refused.units["dynamodbWriteUnits"], 0)
        self.assertEqual(refused.apart["dynamodbRefusedWriteUnits"], 1)

    def test_the_ledgers_own_writes_are_metering(self) -> None:
        b = priced(write(None, {"PK": {"S": "COSTS#ORG#1"}, "SK": {"S": "COST#2026-11"}, "GSI1PK": {"S": "x"}, "GSI1SK": {"S": "y"}}))
        self.assertEqual((b.units["meteringWriteUnits"], b.units["dynamodbWriteUnits"]), (2, 0))

    def test_reads_by_size_consistency_and_kind(self) -> None:
        big = item("a", pad="x" * 5000)
        get = {"service": "dynamodb", "operation": "GetItem", "consistent": True, "items": [big]}
        query = {"service": "dynamodb", "operation": "Query", "consistent": False, "items": [item("a"), item("b")]}
        empty = {"service": "dynamodb", "operation": "GetItem", "consistent": False, "items": [None]}
        batch = {"service": "dynamodb", "operation": "BatchGetItem", "consistent": True, "items": [item("a"), item("b")]}
        self.assertEqual(priced(get).units["dynamodbReadUnits"], 2.0)
        self.assertEqual(priced(query).units["dynamodbReadUnits"], 0.5)  # summed, then rounded
        self.assertEqual(priced(empty).units["dynamodbReadUnits"], 0.5)
        self.assertEqual(priced(batch).units["dynamodbReadUnits"], 2.0)  # each rounded


class OtherServicesTest(unittest.TestCase):
    def test_s3_classes_presigned_apart_and_mail_per_recipient(self) -> None:
        s3 = lambda method, path, query="", presigned=False: {"service": "s3", "method": method, "path": path, "query": query, "presigned": presigned}  # noqa: E731
        b = priced(
            s3("PUT", "/bucket/key"), s3("POST", "/bucket"), s3("GET", "/bucket", "list-type=2"), s3("GET", "/bucket/key"),
            s3("HEAD", "/bucket/key"), s3("DELETE", "/bucket/key"), s3("POST", "/bucket", presigned=True),
            {"service": "ses", "recipients": 3, "status": 200}, {"service": "ses", "recipients": 1, "status": 400},
        )
        self.assertEqual((b.units["s3ClassA"], b.units["s3ClassB"], b.units["sesMessages"]), (3, 2, 3))
        self.assertEqual(b.apart["presigned:s3ClassA"], 1)

    def test_invocations_round_each_up_to_the_millisecond(self) -> None:
        b = bill.Bill()
        bill.price_invocations(b, [1.2, 3.0], [0.1], 128)
        self.assertEqual((b.units["apiRequests"], b.units["lambdaRequests"], b.units["lambdaMbMs"]), (2, 3, (2 + 3 + 1) * 128))

    def test_compare_flags_a_difference_beyond_the_tolerance(self) -> None:
        rows = bill.compare({"dynamodb": 1.0, "ses": 1.0}, {"dynamodb": 1.05, "ses": 0.8, "s3": 0.1}, 0.10)
        self.assertEqual([(s, ok) for s, _, _, _, ok in rows], [("dynamodb", True), ("s3", False), ("ses", False)])


if __name__ == "__main__":
    unittest.main()
