"""How long a TransactWriteItems takes on the local AWS endpoint, empty table vs large table.

Starts local_aws.py, creates two tables shaped like the Tenantry table (PK, SK, a GSI), seeds
one of them with BatchWriteItem, then times the same 3-item transaction (put a new item,
increment a counter, delete the item put the round before) on each: the median of --repeat
rounds after a few warm-up rounds, in milliseconds, as the client sees it (HTTP included).
Prints a JSON object on stdout; progress goes to stderr.

  python local_aws_bench.py [--items 50000] [--repeat 50] [--stream] [--compare [--stock-repeat 10]]

--stream    the tables have a stream (NEW_AND_OLD_IMAGES), as on AWS.
--compare   also measures moto's own transactions (--stock-transactions), under "stock";
            each of those copies whole tables, so it runs fewer rounds.
"""

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from local_aws_test import Wrapper, increment, item, key

WARM_UP = 3
SEED_THREADS = 4


def seed(wrapper: Wrapper, table: str, count: int) -> None:
    """BatchWriteItem of `count` items from a few clients at once, so that building and
    parsing requests on this side overlaps with the endpoint's work."""
    items = [
        item(f"TENANT#{i // 100:05}", i, sk=f"ITEM#{i:06}", GSI1PK=f"OWNER#{i % 97}", GSI1SK=f"{i:06}")
        for i in range(count)
    ]
    batches = [items[start : start + 25] for start in range(0, count, 25)]
    clients = [wrapper.client() for _ in range(SEED_THREADS)]

    def write(n: int) -> None:
        client = clients[n % SEED_THREADS]
        for batch in batches[n::SEED_THREADS]:
            response = client.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": i}} for i in batch]})
            assert not response["UnprocessedItems"]

    with ThreadPoolExecutor(SEED_THREADS) as pool:
        list(pool.map(write, range(SEED_THREADS)))


def time_transactions(wrapper: Wrapper, tables: list[str], repeat: int) -> dict[str, float]:
    """The median duration of the 3-item transaction on each table, in milliseconds.

    Rounds alternate between the tables, so that whatever else the machine is doing weighs
    on both alike."""
    ddb = wrapper.ddb
    durations: dict[str, list[float]] = {table: [] for table in tables}
    for table in tables:
        ddb.put_item(TableName=table, Item=item("COUNTER", 0))
    for round in range(WARM_UP + repeat):
        for table in tables if round % 2 else reversed(tables):
            started = time.perf_counter()
            ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": table, "Item": item("BENCH", round, sk=f"ROUND#{round}")}},
                    increment(table, key("COUNTER")),
                    {"Delete": {"TableName": table, "Key": key("BENCH", sk=f"ROUND#{round - 1}")}},
                ]
            )
            if round >= WARM_UP:
                durations[table].append((time.perf_counter() - started) * 1000)
    return {table: statistics.median(d) for table, d in durations.items()}


def measure(items: int, repeat: int, stream: bool, *flags: str) -> dict[str, Any]:
    wrapper = Wrapper(*flags)
    try:
        for table in ("empty", "seeded"):
            wrapper.create_table(table, stream=stream)
        started = time.perf_counter()
        seed(wrapper, "seeded", items)
        mode = "stock" if flags else "journaled"
        print(f"{mode}: seeded {items} items in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        medians = time_transactions(wrapper, ["empty", "seeded"], repeat)
        empty_ms, seeded_ms = medians["empty"], medians["seeded"]
        print(f"{mode}: {empty_ms:.2f} ms empty, {seeded_ms:.2f} ms seeded", file=sys.stderr)
        return {
            "empty_ms": round(empty_ms, 2),
            "seeded_ms": round(seeded_ms, 2),
            "items": items,
            "ratio": round(seeded_ms / empty_ms, 2),
        }
    finally:
        wrapper.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--stock-repeat", type=int, default=10)
    args = parser.parse_args()

    result = measure(args.items, args.repeat, args.stream) | {"stream": args.stream}
    if args.compare:
        stock = measure(args.items, args.stock_repeat, args.stream, "--stock-transactions")
        result["stock"] = {k: stock[k] for k in ("empty_ms", "seeded_ms", "ratio")}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
