#!/usr/bin/env python3
"""`make cost-check`: Tenantry's cost ledger against a bill priced by hand.

Against a running local stack whose local AWS endpoint writes a bill log (LOCAL_AWS_BILL_LOG),
a scripted workload runs for a few orgs, one org at a time, each a known mix:

- `board`: projects, tasks created, edited, moved and read, comments;
- `mail`: invitations (each a mail), resends, a revocation, members and usage read;
- `files`: uploads straight to S3 (a PNG, a PDF, a text file) and their processing (type
  sniffing, thumbnails, text extraction), files listed;
- `chat`: a document uploaded, then chat turns on Bedrock (streamed), conversations read.

Each org's phase begins once the stack is quiet and ends once it is quiet again (no request
reaches the endpoint for a few seconds: every event delivery and ledger write done), so
everything the endpoint received in the phase is that org's. Then, per org and service:

- metered: what the org's ledger month item (read straight from the table, so the reading
  costs nobody) gained during its phase, and its Bedrock tokens from `GET /orgs/{orgId}/costs`;
- billed: cost_bill.py's prices of what the providers saw in the phase: the endpoint's bill log,
  the fake Bedrock's transcript, the client's time of each HTTP request and the runner's report
  of each event delivery (`/local/events`, `durationMs`).

Both sides are priced with the repository's price table. Exits non-zero when a service of an
org differs by more than the tolerance (10 %). Prints a table per org, and what the bill counts
that the ledger cannot (writes DynamoDB refused, requests browsers sent to S3 with presigned
URLs).

    .venv/bin/python shared/local-runner/cost_check.py --url URL --stack-log .cost-stack.log --bill-log .cost-bill.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime
from typing import Any, Callable

import boto3
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cost_bill  # noqa: E402  (beside this file)
import demo_files  # noqa: E402
from soak import PASSWORD, REGION, from_stack_log, loopback  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MEMORY_MB = 128  # the local runner's functions (api::metering::DEFAULT_MEMORY_MB)
QUIET_SECS = 4.0


def ts(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


class Client:
    """HTTP calls to the stack, each timed from its send to its body's last byte."""

    def __init__(self, api: str):
        self.api = api
        self.http = requests.Session()
        self.timings: list[float] = []

    def call(self, method: str, path: str, body: Any = None, token: str | None = None, expect: int | tuple[int, ...] = (200, 201, 202, 204), **kw: Any) -> Any:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        headers.update(kw.pop("headers", {}))
        started = time.perf_counter()
        r = self.http.request(method, self.api + path, json=body, headers=headers, timeout=120, **kw)
        content = r.content
        self.timings.append((time.perf_counter() - started) * 1000)
        expected = (expect,) if isinstance(expect, int) else expect
        if r.status_code not in expected:
            raise SystemExit(f"cost-check: {method} {path} answered {r.status_code}: {content[:500]!r}")
        if not content or "json" not in r.headers.get("content-type", ""):
            return content
        return r.json()

    def untimed(self, method: str, path: str, **kw: Any) -> Any:
        r = self.http.request(method, self.api + path, timeout=60, **kw)
        r.raise_for_status()
        return r.json() if r.content else None


def sign_up(c: Client, email: str) -> str:
    """A user of the local auth routes (not part of any phase): their token."""
    c.untimed("POST", "/local/auth/signup", json={"email": email, "password": PASSWORD})
    c.untimed("POST", "/local/auth/confirm", json={"email": email, "code": "000000"})
    return c.untimed("POST", "/local/auth/login", json={"email": email, "password": PASSWORD})["idToken"]


# --- the workloads -------------------------------------------------------------------------


def upload(c: Client, org: str, token: str, name: str, content_type: str, data: bytes) -> str:
    ticket = c.call("POST", f"/orgs/{org}/files", {"name": name, "size": len(data), "contentType": content_type}, token)
    form = ticket["upload"]
    r = c.http.post(form["url"], data=form["fields"], files={"file": (name, data, content_type)}, timeout=60)
    r.raise_for_status()
    return ticket["file"]["id"]


def processed(c: Client, org: str, token: str, file_id: str, limit: float = 120.0) -> None:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        f = c.call("GET", f"/orgs/{org}/files/{file_id}", token=token)
        if f["status"] not in ("uploading", "processing"):
            return
        time.sleep(1.0)
    raise SystemExit(f"cost-check: file {file_id} was not processed within {limit:.0f} s")


def board(c: Client, org: str, token: str, run: str) -> None:
    for p in range(2):
        project = c.call("POST", f"/orgs/{org}/projects", {"name": f"Board {p}", "description": "cost check"}, token)
        tasks = f"/orgs/{org}/projects/{project['id']}/tasks"
        ids = [c.call("POST", tasks, {"title": f"Task {p}.{i}", "priority": "high", "labels": ["cost"]}, token)["id"] for i in range(6)]
        for i, task in enumerate(ids):
            c.call("PATCH", f"{tasks}/{task}", {"status": "in_progress", "description": "x" * (200 * i)}, token)
            c.call("POST", f"{tasks}/{task}/comments", {"text": f"comment {i} on {run}"}, token)
            c.call("GET", f"{tasks}/{task}", token=token)
        c.call("POST", f"{tasks}/{ids[-1]}/move", {"before": ids[0]}, token)
        for status in ("todo", "in_progress"):
            c.call("GET", f"{tasks}?status={status}", token=token)
        c.call("GET", f"{tasks}/{ids[0]}/history", token=token)
    c.call("GET", f"/orgs/{org}/projects", token=token)
    c.call("GET", f"/orgs/{org}/labels", token=token)


def mail(c: Client, org: str, token: str, run: str) -> None:
    invites = [c.call("POST", f"/orgs/{org}/invites", {"email": f"cost-{run}-guest{i}@example.com", "role": "member"}, token)["id"] for i in range(3)]
    c.call("POST", f"/orgs/{org}/invites/{invites[0]}/resend", None, token)
    c.call("DELETE", f"/orgs/{org}/invites/{invites[1]}", token=token)
    c.call("GET", f"/orgs/{org}/invites", token=token)
    c.call("GET", f"/orgs/{org}/members", token=token)
    c.call("GET", f"/orgs/{org}/usage", token=token)


def files(c: Client, org: str, token: str, run: str) -> None:
    uploads = [
        ("gears.png", "image/png", demo_files.png(320, 200)),
        ("tables.pdf", "application/pdf", demo_files.pdf(["Table of squares", "Table of cubes: 1 8 27 64"])),
        ("notes.txt", "text/plain", ("cost check notes " * 200).encode()),
    ]
    ids = [upload(c, org, token, *u) for u in uploads]
    for f in ids:
        processed(c, org, token, f)
    c.call("GET", f"/orgs/{org}/files", token=token)
    c.call("GET", f"/orgs/{org}/usage", token=token)


def chat(c: Client, org: str, token: str, run: str) -> None:
    doc = upload(c, org, token, "engine.pdf", "application/pdf", demo_files.pdf(["The engine tabulates polynomials by differences."]))
    processed(c, org, token, doc)
    conversation = c.call("POST", f"/orgs/{org}/conversations", {}, token)["id"]
    for question in ("What does the engine tabulate?", "By what method?", "Summarise the document.", "Thanks!"):
        c.call("POST", f"/orgs/{org}/conversations/{conversation}/messages", {"content": question}, token, headers={"accept": "text/event-stream"})
    c.call("GET", f"/orgs/{org}/conversations", token=token)
    c.call("GET", f"/orgs/{org}/conversations/{conversation}", token=token)


WORKLOADS: dict[str, Callable[[Client, str, str, str], None]] = {"board": board, "mail": mail, "files": files, "chat": chat}


# --- phases --------------------------------------------------------------------------------


def quiet(bill_log: str, secs: float = QUIET_SECS, limit: float = 300.0) -> None:
    """Waits until the endpoint has received nothing billable for `secs`."""
    started = time.monotonic()
    last, since = -1, time.monotonic()
    while time.monotonic() - started < limit:
        size = os.path.getsize(bill_log) if os.path.exists(bill_log) else 0
        if size != last:
            last, since = size, time.monotonic()
        elif time.monotonic() - since >= secs:
            return
        time.sleep(0.25)
    raise SystemExit(f"cost-check: the stack did not go quiet within {limit:.0f} s")


def ledger_month(ddb: Any, table: str, org: str, month: str) -> dict[str, float]:
    item = ddb.get_item(TableName=table, Key={"PK": {"S": f"COSTS#ORG#{org}"}, "SK": {"S": f"COST#{month}"}}, ConsistentRead=True).get("Item") or {}
    return {k: float(v["N"]) for k, v in item.items() if "N" in v}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("TENANTRY_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--stack-log", required=True)
    parser.add_argument("--bill-log", required=True)
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    args = parser.parse_args()
    if not loopback(args.url):
        raise SystemExit("cost-check runs against a loopback stack only")
    aws, table = from_stack_log(args.stack_log)
    prices = json.load(open(os.path.join(ROOT, "shared/domain/prices/us-east-1.json")))
    indexes = cost_bill.indexes_of(json.load(open(os.path.join(ROOT, "shared/store/table.json"))))
    ddb = boto3.client("dynamodb", endpoint_url=aws, region_name=REGION, aws_access_key_id="local", aws_secret_access_key="local")
    transcript = aws + "/_fake/bedrock/transcript"
    c = Client(args.url)
    run = f"{int(time.time())}"
    month = time.strftime("%Y-%m", time.gmtime())

    # Not compared: the users and their orgs (sign-up is the user pool's, org creation
    # outside any org's phase).
    orgs = []
    for name in args.workloads.split(","):
        token = sign_up(c, f"cost-{run}-{name}@example.com")
        org = c.untimed("POST", "/orgs", json={"name": f"Cost {name} {run}"}, headers={"authorization": f"Bearer {token}"})["id"]
        orgs.append((name, org, token))

    failures, reports = [], []
    for name, org, token in orgs:
        quiet(args.bill_log)
        requests.delete(transcript, timeout=10)
        before = ledger_month(ddb, table, org, month)
        start_offset = os.path.getsize(args.bill_log)
        started = time.time()
        c.timings = []
        WORKLOADS[name](c, org, token, run)
        quiet(args.bill_log)
        ended = time.time()
        after = ledger_month(ddb, table, org, month)
        with open(args.bill_log, encoding="utf-8") as f:
            f.seek(start_offset)
            records = [json.loads(line) for line in f if line.strip()]
        records = [r for r in records if started <= r["at"] <= ended]
        # Deliveries are stamped to the second: the quiet second before the phase is its own.
        deliveries = [d for d in c.untimed("GET", "/local/events")["items"] if started - 1 < ts(d["at"]) <= ended]
        calls = [call for call in requests.get(transcript, timeout=10).json() if started <= ts(call["time"]) <= ended]

        bill = cost_bill.Bill()
        cost_bill.price_log(bill, records, indexes)
        cost_bill.price_invocations(bill, c.timings, [d["durationMs"] for d in deliveries], MEMORY_MB)
        cost_bill.price_bedrock(bill, calls)
        metered_units = {u: after.get(u, 0.0) - before.get(u, 0.0) for u in set(after) | set(before)}
        costs = c.untimed("GET", f"/orgs/{org}/costs?month={month}", headers={"authorization": f"Bearer {token}"})
        # The chat's tokens per model (`{model}:inputTokens`), from its usage records.
        for s in costs["services"]:
            if s["service"] == "bedrock":
                metered_units.update({u: n for u, n in s["units"].items() if ":" in u})
        rows = cost_bill.compare(cost_bill.by_service(prices, bill.units), cost_bill.by_service(prices, metered_units), args.tolerance)
        reports.append((name, org, len(c.timings), len(deliveries), rows, dict(bill.apart), bill.units, metered_units))
        failures += [f"{name} ({org}): {service} billed {b:.9f}, metered {m:.9f}" for service, b, m, _, ok in rows if not ok]

    print(f"\ncost-check: ledger (metered) against a bill priced by hand, per org and service (tolerance {args.tolerance:.0%})\n")
    for name, org, n_http, n_events, rows, apart, billed_units, metered in reports:
        print(f"### {name}: org {org}, {n_http} HTTP requests, {n_events} event deliveries\n")
        print("| service | billed (USD) | metered (USD) | difference |")
        print("|---|--:|--:|--:|")
        for service, b, m, diff, ok in rows:
            unit = "tokens" if service == "bedrockTokens" else ""
            shown = (lambda v: f"{v:,.0f}") if unit else (lambda v: f"{v:.9f}")
            print(f"| {service}{' (' + unit + ')' if unit else ''} | {shown(b)} | {shown(m)} | {'n/a' if diff is None else f'{diff:+.1%}'}{'' if ok else ' ✗'} |")
        if apart:
            print("\nbilled apart (not metered by design): " + ", ".join(f"{k} {v:g}" for k, v in sorted(apart.items())))
        units = sorted(set(billed_units) | set(metered))
        print("\nunits (billed / metered): " + ", ".join(f"{u} {billed_units.get(u, 0):g}/{metered.get(u, 0):g}" for u in units) + "\n")
    for f in failures:
        print("FAIL " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
