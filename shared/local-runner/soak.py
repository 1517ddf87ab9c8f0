#!/usr/bin/env python3
"""`make soak`: the local stack under a bounded mixed load, then invariants over the whole table.

Against a running local stack (`TENANTRY_URL`, loopback only) `SOAK_CLIENTS` threads (default
50) act as users for `SOAK_MINUTES` (default 5): they sign up (some only once an invitation to a
fresh address waits for them), create orgs, invite existing and fresh addresses, read the
invitation from the local mail and accept or decline it, revoke and resend invitations, change
roles, transfer ownership, remove members and leave, create, archive and restore projects,
create, edit, move, comment on and delete tasks, upload files (presigned POST to the local S3,
then the upload events' processing; some uploads are abandoned, some files deleted) and read
what they can see. Expected refusals (plan limits, rate limits, conflicts, stale versions,
lost races) are 4xx and are counted, not failed.

When the load stops and the stack's event deliveries have settled, the whole table is read
through the local AWS endpoint the stack uses (its URL and the table's name from the runner's
own start-up lines, `--stack-log`, or `--aws-endpoint` and `--table`) and checked:

- every org's counters equal the items they count: `memberCount` its members, `ownerCount`
  its owners, `seatsUsed` its members plus pending invitations, `projectCount` its active
  projects, `storageBytes` the sizes of its arrived files, `storageReserved` the declared sizes
  of the uploads still awaited, `storageCommitted` their sum;
- every active org has an owner;
- no orphans: every membership and invitation belongs to an org that exists, every pending
  invitation has its token and every token a pending invitation, every task a project that
  exists (or awaits its purge), every open task's assignee is a member.

It prints requests by operation (statuses, p50/p95 latency), responses by status, the 4xx by
problem, every 5xx (and transport error) with its request and body, and every violation; it
exits non-zero on any 5xx, transport error or violation.

    .venv/bin/python shared/local-runner/soak.py --stack-log .soak-stack.log [--minutes 5] [--clients 50]
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import re
import socket
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

import boto3
import requests
from boto3.dynamodb.types import TypeDeserializer

PASSWORD = "CorrectHorse42x"
ROLES = ["viewer", "member", "admin", "owner"]
TASK_STATUSES = ["todo", "in_progress", "blocked", "done", "canceled"]
REGION = "us-east-1"  # testkit::endpoint::REGION


# --- recording -------------------------------------------------------------------------------

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_op: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.by_status: collections.Counter = collections.Counter()
        self.problems: collections.Counter = collections.Counter()
        self.failures: list[str] = []

    def record(self, op: str, method: str, path: str, status, ms: float, body: str, sent) -> None:
        with self.lock:
            self.by_op[op][status] += 1
            self.latency[op].append(ms)
            self.by_status[status] += 1
            if isinstance(status, int) and 400 <= status < 500:
                self.problems[(status, problem_of(body))] += 1
            if not isinstance(status, int) or status >= 500:
                self.failures.append(f"{op}: {method} {path} -> {status}\n    request: {str(sent)[:300]}\n    response: {body[:600]}")


def problem_of(body: str) -> str:
    m = re.search(r'"detail"\s*:\s*"([^"]{0,90})', body) or re.search(r'"title"\s*:\s*"([^"]{0,90})', body) or re.search(r'"message"\s*:\s*"([^"]{0,90})', body)
    # ids differ from request to request: the kind of problem is what is counted
    return re.sub(r"[0-9A-Z]{26}|[0-9a-f-]{36}", "…", m.group(1)) if m else body[:60]


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


# --- the shared picture of the world (what the clients learned from answers) -----------------

@dataclass
class Identity:
    email: str
    token: str = ""
    user_id: str = ""
    orgs: dict = field(default_factory=dict)  # org id -> role as last answered
    tried_tokens: set = field(default_factory=set)


class World:
    def __init__(self, run: str):
        self.run = run
        self.lock = threading.Lock()
        self.users: dict[str, Identity] = {}  # email -> identity (signed up)
        self.fresh: list[str] = []  # invited addresses nobody signed up with yet
        self.org_names: dict[str, str] = {}  # org id -> name (unique, found in the mail subject)
        self.projects: dict[str, list[str]] = collections.defaultdict(list)  # org -> project ids
        self.tasks: dict[tuple, list[str]] = collections.defaultdict(list)  # (org, project) -> task ids
        self.files: dict[str, list[str]] = collections.defaultdict(list)  # org -> file ids
        self.counter = 0

    def next(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def pick(self, seq):
        with self.lock:
            return random.choice(seq) if seq else None


# --- one client --------------------------------------------------------------------------------

class Client:
    def __init__(self, n: int, api: str, world: World, stats: Stats, deadline: float):
        self.n = n
        self.api = api
        self.world = world
        self.stats = stats
        self.deadline = deadline
        self.http = requests.Session()
        self.ids: list[Identity] = []
        self.me: Identity | None = None
        self.rng = random.Random(f"{world.run}-{n}")

    def call(self, op: str, method: str, path: str, body=None, token: str | None = None, **kw):
        headers = kw.pop("headers", {})
        if token:
            headers["authorization"] = f"Bearer {token}"
        started = time.perf_counter()
        try:
            r = self.http.request(method, self.api + path, json=body, headers=headers, timeout=120, allow_redirects=False, **kw)
            status, text = r.status_code, r.text
        except requests.RequestException as e:
            r, status, text = None, type(e).__name__, str(e)
        self.stats.record(op, method, path, status, (time.perf_counter() - started) * 1000, text, body)
        data = None
        if r is not None and text and r.headers.get("content-type", "").split(";")[0].endswith("json"):
            try:
                data = r.json()
            except ValueError:
                pass
        return status, data

    # identities

    def sign_up(self, email: str) -> Identity | None:
        s, _ = self.call("signup", "POST", "/local/auth/signup", {"email": email, "password": PASSWORD})
        if s != 200 and s != 201:
            return None
        self.call("confirm", "POST", "/local/auth/confirm", {"email": email, "code": "000000"})
        s, tokens = self.call("login", "POST", "/local/auth/login", {"email": email, "password": PASSWORD})
        if s != 200 or not tokens:
            return None
        ident = Identity(email=email, token=tokens["idToken"])
        s, me = self.call("getMe", "GET", "/me", token=ident.token)
        if s == 200 and me:
            ident.user_id = me["userId"]
        self.ids.append(ident)
        with self.world.lock:
            self.world.users[email] = ident
        return ident

    def my_org(self, roles=ROLES):
        orgs = [o for o, r in self.me.orgs.items() if r in roles]
        return self.rng.choice(orgs) if orgs else None

    def forget(self, org: str, status) -> None:
        if status in (403, 404):
            self.me.orgs.pop(org, None)

    # the mix

    def run(self) -> None:
        self.me = self.sign_up(f"soak-{self.world.run}-c{self.n}@example.com")
        if not self.me:
            return
        actions = [
            (self.create_org, 2), (self.invite, 12), (self.accept, 10), (self.claim_fresh, 4), (self.decline, 2),
            (self.revoke, 2), (self.resend, 1), (self.change_role, 3), (self.transfer, 1), (self.remove_member, 2),
            (self.leave, 1), (self.create_project, 4), (self.archive_or_restore, 2), (self.create_task, 10),
            (self.update_task, 10), (self.move_task, 4), (self.comment, 4), (self.delete_task, 1), (self.upload, 6),
            (self.delete_file, 2), (self.read, 12),
        ]
        fns, weights = zip(*actions)
        while time.monotonic() < self.deadline:
            self.me = self.rng.choice(self.ids)
            self.rng.choices(fns, weights)[0]()

    def create_org(self):
        name = f"Soak {self.world.run} {self.world.next()}"
        s, org = self.call("createOrg", "POST", "/orgs", {"name": name}, self.me.token)
        if s == 201 and org:
            self.me.orgs[org["id"]] = "owner"
            with self.world.lock:
                self.world.org_names[org["id"]] = name

    def invite(self):
        org = self.my_org(("owner", "admin"))
        if not org:
            # mostly join others' orgs instead: fewer, fuller orgs contend for their seats
            return self.create_org() if self.rng.random() < 0.3 else self.accept()
        with self.world.lock:
            others = [u for u in self.world.users.values() if org not in u.orgs]
        if others and self.rng.random() < 0.6:
            email, fresh = self.rng.choice(others).email, False
        else:
            email, fresh = f"soak-{self.world.run}-f{self.world.next()}@example.com", True
        role = self.rng.choice(["viewer", "member", "member", "admin", "owner"] if self.me.orgs.get(org) == "owner" else ["viewer", "member", "admin"])
        s, _ = self.call("createInvite", "POST", f"/orgs/{org}/invites", {"email": email, "role": role}, self.me.token)
        self.forget(org, s)
        if s == 201 and fresh:
            with self.world.lock:
                self.world.fresh.append(email)

    def mailed_tokens(self, ident: Identity) -> list[tuple[str, str]]:
        """(org id, token) of the invitation mails to `ident`, newest first, not yet tried."""
        s, mail = self.call("readMail", "GET", "/local/mail?to=" + urllib.parse.quote(ident.email))
        if s != 200 or not mail:
            return []
        with self.world.lock:
            by_name = {name: org for org, name in self.world.org_names.items()}
        found = []
        for m in reversed(mail.get("items", [])):
            t = re.search(r"token=([A-Za-z0-9_-]+)", m.get("html") or "")
            org = next((o for name, o in by_name.items() if m.get("subject", "").endswith(f"invited you to {name}")), None)
            if t and org and t.group(1) not in ident.tried_tokens:
                found.append((org, t.group(1)))
        return found

    def accept(self, ident: Identity | None = None):
        ident = ident or self.me
        for org, token in self.mailed_tokens(ident)[:2]:
            ident.tried_tokens.add(token)
            s, member = self.call("acceptInvite", "POST", "/invites/accept", {"token": token}, ident.token)
            if s in (200, 201) and member:
                ident.orgs[member["orgId"]] = member["role"]
                return

    def decline(self):
        for _, token in self.mailed_tokens(self.me)[:1]:
            self.me.tried_tokens.add(token)
            self.call("declineInvite", "POST", "/invites/decline", {"token": token}, self.me.token)

    def claim_fresh(self):
        with self.world.lock:
            email = self.world.fresh.pop(self.rng.randrange(len(self.world.fresh))) if self.world.fresh else None
        if not email:
            return self.invite()
        ident = self.sign_up(email)
        if ident:
            self.accept(ident)

    def pending_invites(self, org: str):
        s, page = self.call("listInvites", "GET", f"/orgs/{org}/invites", token=self.me.token)
        self.forget(org, s)
        return [i for i in (page or {}).get("items", []) if i.get("status") == "pending"] if s == 200 else []

    def revoke(self):
        org = self.my_org(("owner", "admin"))
        if org and (invites := self.pending_invites(org)):
            i = self.rng.choice(invites)
            self.call("revokeInvite", "DELETE", f"/orgs/{org}/invites/{i['id']}", token=self.me.token)

    def resend(self):
        org = self.my_org(("owner", "admin"))
        if org and (invites := self.pending_invites(org)):
            i = self.rng.choice(invites)
            self.call("resendInvite", "POST", f"/orgs/{org}/invites/{i['id']}/resend", token=self.me.token)

    def members(self, org: str):
        s, page = self.call("listMembers", "GET", f"/orgs/{org}/members", token=self.me.token)
        self.forget(org, s)
        return (page or {}).get("items", []) if s == 200 else []

    def change_role(self):
        org = self.my_org(("owner", "admin"))
        if org and (ms := self.members(org)):
            m = self.rng.choice(ms)
            role = self.rng.choice(ROLES if self.me.orgs.get(org) == "owner" else ["viewer", "member", "admin"])
            s, _ = self.call("changeMemberRole", "PATCH", f"/orgs/{org}/members/{m['userId']}", {"role": role}, self.me.token)
            if s == 200 and m["userId"] == self.me.user_id:
                self.me.orgs[org] = role

    def transfer(self):
        org = self.my_org(("owner",))
        if org and (ms := [m for m in self.members(org) if m["userId"] != self.me.user_id]):
            m = self.rng.choice(ms)
            self.call("transferOwnership", "POST", f"/orgs/{org}/transfer-ownership", {"userId": m["userId"]}, self.me.token)

    def remove_member(self):
        org = self.my_org(("owner", "admin"))
        if org and (ms := [m for m in self.members(org) if m["userId"] != self.me.user_id]):
            m = self.rng.choice(ms)
            self.call("removeMember", "DELETE", f"/orgs/{org}/members/{m['userId']}", token=self.me.token)

    def leave(self):
        org = self.my_org()
        if org and self.rng.random() < 0.5:
            s, _ = self.call("removeMember", "DELETE", f"/orgs/{org}/members/{self.me.user_id}", token=self.me.token)
            if s == 204:
                self.me.orgs.pop(org, None)

    def create_project(self):
        org = self.my_org(("owner", "admin", "member"))
        if not org:
            return self.create_org() if self.rng.random() < 0.3 else self.accept()
        s, p = self.call("createProject", "POST", f"/orgs/{org}/projects", {"name": f"Project {self.world.next()}"}, self.me.token)
        self.forget(org, s)
        if s == 201 and p:
            with self.world.lock:
                self.world.projects[org].append(p["id"])

    def a_project(self, roles=("owner", "admin", "member")):
        org = self.my_org(roles)
        if not org:
            return None, None
        project = self.world.pick(self.world.projects.get(org, []))
        if not project:
            self.create_project()
        return org, project

    def archive_or_restore(self):
        org, project = self.a_project(("owner", "admin"))
        if project:
            what = self.rng.choice(["archive", "restore"])
            self.call(f"{what}Project", "POST", f"/orgs/{org}/projects/{project}/{what}", token=self.me.token)

    def create_task(self):
        org, project = self.a_project()
        if not project:
            return
        body = {"title": f"Task {self.world.next()}", "priority": self.rng.choice(["low", "medium", "high"])}
        if self.rng.random() < 0.4:
            body["assignee"] = self.me.user_id
        if self.rng.random() < 0.3:
            body["due"] = f"2030-0{self.rng.randint(1, 9)}-1{self.rng.randint(0, 9)}"
        s, t = self.call("createTask", "POST", f"/orgs/{org}/projects/{project}/tasks", body, self.me.token)
        self.forget(org, s)
        if s == 201 and t:
            with self.world.lock:
                self.world.tasks[(org, project)].append(t["id"])

    def a_task(self):
        org, project = self.a_project()
        if not project:
            return None, None, None
        task = self.world.pick(self.world.tasks.get((org, project), []))
        if not task:
            self.create_task()
        return org, project, task

    def update_task(self):
        org, project, task = self.a_task()
        if not task:
            return
        path = f"/orgs/{org}/projects/{project}/tasks/{task}"
        s, current = self.call("getTask", "GET", path, token=self.me.token)
        if s != 200 or not current:
            return
        patch = self.rng.choice([
            {"status": self.rng.choice(TASK_STATUSES)},
            {"title": f"Task {self.world.next()} (edited)"},
            {"assignee": self.me.user_id},
            {"assignee": None},
            {"labels": self.rng.sample(["ops", "bug", "docs", "ui"], 2)},
        ])
        headers = {"if-match": f'"{current["version"]}"'} if self.rng.random() < 0.7 else {}
        self.call("updateTask", "PATCH", path, patch, self.me.token, headers=headers)

    def move_task(self):
        org, project, task = self.a_task()
        if not task:
            return
        other = self.world.pick(self.world.tasks.get((org, project), []))
        body = {"before": other} if other and other != task else {"status": self.rng.choice(TASK_STATUSES)}
        self.call("moveTask", "POST", f"/orgs/{org}/projects/{project}/tasks/{task}/move", body, self.me.token)

    def comment(self):
        org, project, task = self.a_task()
        if task:
            self.call("createComment", "POST", f"/orgs/{org}/projects/{project}/tasks/{task}/comments", {"text": f"note {self.world.next()}"}, self.me.token)

    def delete_task(self):
        org, project, task = self.a_task()
        if task:
            s, _ = self.call("deleteTask", "DELETE", f"/orgs/{org}/projects/{project}/tasks/{task}", token=self.me.token)
            if s == 204:
                with self.world.lock:
                    if task in self.world.tasks[(org, project)]:
                        self.world.tasks[(org, project)].remove(task)

    def upload(self):
        org, project, task = self.a_task()
        if not org:
            return
        data = (f"soak notes {self.world.next()}\n" * self.rng.randint(1, 400)).encode()
        body = {"name": "notes.txt", "size": len(data), "contentType": "text/plain"}
        if project and self.rng.random() < 0.7:
            body["attachTo"] = {"projectId": project, **({"taskId": task} if task else {})}
        s, ticket = self.call("createFile", "POST", f"/orgs/{org}/files", body, self.me.token)
        self.forget(org, s)
        if s != 201 or not ticket:
            return
        with self.world.lock:
            self.world.files[org].append(ticket["file"]["id"])
        if self.rng.random() < 0.1:
            return  # abandoned: the reservation stays until the sweep
        up = ticket["upload"]
        started = time.perf_counter()
        try:
            r = self.http.post(up["url"], data=up["fields"], files={"file": ("notes.txt", data, "text/plain")}, timeout=120)
            status, text = r.status_code, r.text
        except requests.RequestException as e:
            status, text = type(e).__name__, str(e)
        self.stats.record("s3PresignedPost", "POST", "(upload bucket)", status, (time.perf_counter() - started) * 1000, text, {"size": len(data)})

    def delete_file(self):
        org = self.my_org(("owner", "admin", "member"))
        file = org and self.world.pick(self.world.files.get(org, []))
        if file:
            s, _ = self.call("deleteFile", "DELETE", f"/orgs/{org}/files/{file}", token=self.me.token)
            if s == 204:
                with self.world.lock:
                    if file in self.world.files[org]:
                        self.world.files[org].remove(file)

    def read(self):
        org = self.my_org()
        if not org:
            self.call("listMyOrgs", "GET", "/orgs", token=self.me.token)
            return
        op, path = self.rng.choice([
            ("getOrg", f"/orgs/{org}"), ("listMembers", f"/orgs/{org}/members"), ("listProjects", f"/orgs/{org}/projects"),
            ("listOrgTasks", f"/orgs/{org}/tasks?assignee=me"), ("getUsage", f"/orgs/{org}/usage"),
            ("listFiles", f"/orgs/{org}/files"), ("countUnreadNotifications", f"/orgs/{org}/notifications/unread-count"),
            ("listMyOrgs", "/orgs"), ("listMyInvites", "/invites/pending"),
        ])
        s, _ = self.call(op, "GET", path, token=self.me.token)
        if path.startswith(f"/orgs/{org}"):
            self.forget(org, s)


# --- settling and the invariants ---------------------------------------------------------------

def quiet(api: str, quiet_secs: float = 5.0, limit_secs: float = 120.0) -> None:
    """Waits until the stack's event deliveries stop growing for `quiet_secs`."""
    started = time.monotonic()
    last, since = None, time.monotonic()
    while time.monotonic() - started < limit_secs:
        try:
            n = len(requests.get(api + "/local/events", timeout=30).json()["items"])
        except (requests.RequestException, ValueError, KeyError):
            n = None
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= quiet_secs:
            return
        time.sleep(0.5)


def settle(client: "Client", limit_secs: float = 900.0) -> float:
    """Waits until the stack has caught up with the load; answers how long it took.

    Under load the local stack's event deliveries fall behind (one batch per consumer per pass
    of its pump), so a quiet moment proves nothing. A marker instead: a member with an open
    task is removed after the load, and the stream's records are delivered in order, so once
    the consumer has unassigned that task it has taken in every removal before it; an upload
    after the load, once processed, shows the upload queue drained likewise. Then the
    deliveries must stay quiet a few seconds. The marker's requests are counted as `settle:*`.
    """
    started = time.monotonic()
    c = client
    owner = c.sign_up(f"soak-{c.world.run}-marker-owner@example.com")
    member_email = f"soak-{c.world.run}-marker-member@example.com"
    member = c.sign_up(member_email)
    if not owner or not member:
        raise SystemExit("soak: the settle marker's users could not sign up")
    c.me = owner
    name = f"Soak {c.world.run} marker"
    s, org = c.call("settle:createOrg", "POST", "/orgs", {"name": name}, owner.token)
    org_id = org["id"]
    with c.world.lock:
        c.world.org_names[org_id] = name
    c.call("settle:createInvite", "POST", f"/orgs/{org_id}/invites", {"email": member_email, "role": "member"}, owner.token)
    tokens = c.mailed_tokens(member)
    s, _ = c.call("settle:acceptInvite", "POST", "/invites/accept", {"token": tokens[0][1]}, member.token)
    s, project = c.call("settle:createProject", "POST", f"/orgs/{org_id}/projects", {"name": "Marker"}, owner.token)
    tasks = f"/orgs/{org_id}/projects/{project['id']}/tasks"
    s, task = c.call("settle:createTask", "POST", tasks, {"title": "Marker", "assignee": member.user_id}, owner.token)
    data = b"marker\n"
    s, ticket = c.call("settle:createFile", "POST", f"/orgs/{org_id}/files", {"name": "marker.txt", "size": len(data), "contentType": "text/plain"}, owner.token)
    c.http.post(ticket["upload"]["url"], data=ticket["upload"]["fields"], files={"file": ("marker.txt", data, "text/plain")}, timeout=120).raise_for_status()
    c.call("settle:removeMember", "DELETE", f"/orgs/{org_id}/members/{member.user_id}", token=owner.token)
    unassigned = ready = False
    while time.monotonic() - started < limit_secs and not (unassigned and ready):
        time.sleep(2)
        if not unassigned:
            s, t = c.call("settle:getTask", "GET", f"{tasks}/{task['id']}", token=owner.token)
            unassigned = s == 200 and not (t or {}).get("assignee")
        if not ready:
            s, f = c.call("settle:getFile", "GET", f"/orgs/{org_id}/files/{ticket['file']['id']}", token=owner.token)
            ready = s == 200 and (f or {}).get("status") not in ("uploading", "processing")
    if not (unassigned and ready):
        # checked all the same, but a violation may only be the backlog: the run fails
        c.stats.failures.append(f"the stack did not catch up within {limit_secs:.0f} s (marker task unassigned: {unassigned}, marker file processed: {ready})")
        return time.monotonic() - started
    quiet(c.api)
    return time.monotonic() - started


def scan(endpoint: str, table: str) -> list[dict]:
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="local", aws_secret_access_key="local")
    des = TypeDeserializer()
    items = []
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items += [{k: des.deserialize(v) for k, v in i.items()} for i in page["Items"]]
    return items


def check(items: list[dict]) -> tuple[list[str], dict]:
    orgs = {}  # org id -> org item
    part = collections.defaultdict(list)  # PK -> items
    tokens = {}
    for i in items:
        part[i["PK"]].append(i)
        if i["PK"].startswith("ORG#") and i["SK"] == "ORG":
            orgs[i["PK"][4:]] = i
        if i["PK"].startswith("TOKEN#"):
            tokens[i["PK"][6:]] = i
    v = []
    totals = collections.Counter(orgs=len(orgs), items=len(items))
    for pk, its in part.items():
        m = re.fullmatch(r"ORG#([0-9A-Z]{26})", pk)
        if not m:
            continue
        org_id = m.group(1)
        org = orgs.get(org_id)
        members = [i for i in its if i["SK"].startswith("MEMBER#")]
        invites = [i for i in its if i["SK"].startswith("INVITE#")]
        projects = [i for i in its if i["SK"].startswith("PROJECT#")]
        files = [i for i in its if i["SK"].startswith("FILE#")]
        totals.update(members=len(members), invitations=len(invites), projects=len(projects), files=len(files))
        if org is None:
            for i in members:
                v.append(f"orphaned membership: {pk} {i['SK']} (no org item)")
            for i in invites:
                v.append(f"orphaned invitation: {pk} {i['SK']} status {i.get('status')} (no org item)")
            continue
        owners = [i for i in members if i.get("role") == "owner"]
        pending = [i for i in invites if i.get("status") == "pending"]
        active_projects = [i for i in projects if i.get("status") == "active"]
        settled = sum(int(i["size"]) for i in files if i.get("status") != "uploading")
        reserved = sum(int(i["size"]) for i in files if i.get("status") == "uploading")
        expected = {
            "memberCount": len(members),
            "ownerCount": len(owners),
            "seatsUsed": len(members) + len(pending),
            "projectCount": len(active_projects),
            "storageBytes": settled,
            "storageReserved": reserved,
        }
        if "storageCommitted" in org:
            expected["storageCommitted"] = int(org.get("storageBytes", 0)) + int(org.get("storageReserved", 0))
        for attr, want in expected.items():
            have = int(org.get(attr, 0))
            if have != want:
                v.append(f"counter: org {org_id} ({org.get('status')}) {attr} = {have}, but counts {want}")
        if org.get("status") == "active" and not owners:
            v.append(f"org without an owner: {org_id} is active with {len(members)} member(s), none an owner")
        for i in pending:
            if i.get("tokenHash") not in tokens:
                v.append(f"pending invitation without its token: {pk} {i['SK']}")
        member_ids = {i["SK"][len("MEMBER#"):] for i in members}
        for p in projects:
            for t in part.get(f"{pk}#PROJECT#{p['SK'][len('PROJECT#'):]}", []):
                if t["SK"].startswith("TASK#") and t.get("status") in ("todo", "in_progress", "blocked") and t.get("assignee") and t["assignee"] not in member_ids:
                    v.append(f"open task assigned to a non-member: {t['PK']} {t['SK']} assignee {t['assignee']}")
    for h, t in tokens.items():
        owner = part.get(f"ORG#{t.get('orgId')}", [])
        invite = next((i for i in owner if i["SK"] == f"INVITE#{t.get('inviteId')}"), None)
        if invite is None or invite.get("status") != "pending" or invite.get("tokenHash") != h:
            v.append(f"token without a pending invitation: TOKEN#{h[:12]}… -> org {t.get('orgId')} invitation {t.get('inviteId')} ({invite and invite.get('status')})")
    for pk, its in part.items():
        m = re.fullmatch(r"ORG#([0-9A-Z]{26})#PROJECT#([0-9A-Z]{26})", pk)
        if not m or not any(i["SK"].startswith("TASK#") for i in its):
            continue
        home = {i["SK"] for i in part.get(f"ORG#{m.group(1)}", [])}
        if f"PROJECT#{m.group(2)}" not in home and f"PURGE#PROJECT#{m.group(2)}" not in home:
            v.append(f"orphaned tasks: {pk} has {sum(i['SK'].startswith('TASK#') for i in its)} task(s), its project is neither there nor awaiting its purge")
        totals["tasks"] += sum(i["SK"].startswith("TASK#") for i in its)
    return v, totals


# --- the run -------------------------------------------------------------------------------------

def from_stack_log(path: str) -> tuple[str, str]:
    text = open(path).read()
    endpoint = re.search(r"^\s*AWS:\s+(http://\S+)", text, re.M)
    table = re.search(r"^\s*Table:\s+(\S+)", text, re.M)
    if not endpoint or not table:
        raise SystemExit(f"soak: no 'AWS:' and 'Table:' lines in {path}; is it the runner's output?")
    return endpoint.group(1), table.group(1)


def loopback(url: str) -> bool:
    host = urllib.parse.urlparse(url).hostname or ""
    try:
        return all(socket.inet_aton(a[4][0])[0] == 127 for a in socket.getaddrinfo(host, None, socket.AF_INET))
    except OSError:
        return False


def log_problems(path: str | None) -> collections.Counter:
    """The warnings and errors in the stack's output, by level and message (not failures by
    themselves: a handler's refusal logged as a warning can be right)."""
    found = collections.Counter()
    for line in open(path, errors="replace") if path else []:
        m = re.search(r'"level":"(WARN|ERROR)".*?"message":"([^"]{0,120})', line)
        if m:
            found[(m.group(1), m.group(2))] += 1
    return found


def report(stats: Stats, violations: list[str], totals: dict, args, took: float, settled: float) -> int:
    statuses = sorted(stats.by_status, key=str)
    total = sum(stats.by_status.values())
    fivexx = sum(c for s, c in stats.by_status.items() if not isinstance(s, int) or s >= 500)
    lagging = [f for f in stats.failures if f.startswith("the stack did not catch up")]
    load = total - sum(sum(c.values()) for op, c in stats.by_op.items() if op.startswith("settle:"))
    print(f"\n## Soak: {args.clients} clients, {took / 60:.1f} min of load, {load} requests ({load / max(took, 1):.1f}/s), caught up {settled:.0f} s later\n")
    print("| operation | requests | 2xx | 4xx | 5xx | p50 ms | p95 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    # the settle marker's requests (after the load) in one row
    by_op, latency = collections.defaultdict(collections.Counter), collections.defaultdict(list)
    for op, c in stats.by_op.items():
        name = "(settle marker)" if op.startswith("settle:") else op
        by_op[name].update(c)
        latency[name] += stats.latency[op]
    for op in sorted(by_op):
        c = by_op[op]
        ok = sum(n for s, n in c.items() if isinstance(s, int) and s < 400)
        four = sum(n for s, n in c.items() if isinstance(s, int) and 400 <= s < 500)
        five = sum(n for s, n in c.items() if not isinstance(s, int) or s >= 500)
        lat = latency[op]
        print(f"| {op} | {sum(c.values())} | {ok} | {four} | {five} | {pct(lat, 0.5):.0f} | {pct(lat, 0.95):.0f} |")
    every = [x for lat in stats.latency.values() for x in lat]
    print(f"| **all** | {total} | | | {fivexx} | {pct(every, 0.5):.0f} | {pct(every, 0.95):.0f} |")
    print("\n| status | responses |\n|---|---:|")
    for s in statuses:
        print(f"| {s} | {stats.by_status[s]} |")
    print("\n| 4xx (expected refusals) | count |\n|---|---:|")
    for (s, what), c in stats.problems.most_common(25):
        print(f"| {s} {what.replace('|', '/')} | {c} |")
    print(f"\nTable at the end: {', '.join(f'{v} {k}' for k, v in sorted(totals.items()))}.")
    problems = log_problems(args.stack_log)
    print(f"\nWarnings and errors in the stack's log: {sum(problems.values())}")
    for (level, message), c in problems.most_common(20):
        print(f"  - {level} {message} ({c})")
    print(f"\n5xx and transport errors: {fivexx}")
    for f in [f for f in stats.failures if f not in lagging][:30]:
        print("  - " + f)
    print(f"Invariant violations: {len(violations)}")
    for x in violations[:100]:
        print("  - " + x)
    for f in lagging:
        print("  - " + f)
    ok = fivexx == 0 and not violations and not lagging
    print("\nsoak: " + ("PASSED" if ok else "FAILED"))
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=os.environ.get("TENANTRY_URL", "http://127.0.0.1:8080"))
    p.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "5")))
    p.add_argument("--clients", type=int, default=int(os.environ.get("SOAK_CLIENTS", "50")))
    p.add_argument("--stack-log", help="the runner's output, whose AWS: and Table: lines name the endpoint and table")
    p.add_argument("--aws-endpoint")
    p.add_argument("--table")
    p.add_argument("--check-only", action="store_true", help="no load: settle and check the table as it is")
    args = p.parse_args()
    api = args.url.rstrip("/")
    endpoint, table = from_stack_log(args.stack_log) if args.stack_log else (args.aws_endpoint, args.table)
    if not endpoint or not table:
        raise SystemExit("soak: give --stack-log, or --aws-endpoint and --table")
    if not (loopback(api) and loopback(endpoint)):
        raise SystemExit(f"soak: runs against loopback only ({api}, {endpoint})")
    requests.get(api + "/health", timeout=10).raise_for_status()

    stats = Stats()
    world = World(f"{int(time.time())}{os.getpid() % 1000}")
    started = time.monotonic()
    if not args.check_only:
        deadline = started + args.minutes * 60
        clients = [Client(n, api, world, stats, deadline) for n in range(args.clients)]
        threads = [threading.Thread(target=c.run, name=f"soak-{c.n}", daemon=True) for c in clients]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            time.sleep(5)
            done = sum(stats.by_status.values())
            print(f"soak: {time.monotonic() - started:4.0f} s, {done} requests, {sum(c for s, c in stats.by_status.items() if not isinstance(s, int) or s >= 500)} 5xx", flush=True)
    took = time.monotonic() - started
    print("soak: load stopped; waiting for the stack's event deliveries to catch up", flush=True)
    settled = settle(Client(args.clients, api, world, stats, 0))
    violations, totals = check(scan(endpoint, table))
    return report(stats, violations, totals, args, took, settled)


if __name__ == "__main__":
    sys.exit(main())
