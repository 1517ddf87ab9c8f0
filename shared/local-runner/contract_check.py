#!/usr/bin/env python3
"""The OpenAPI document against the API it describes, with Schemathesis.

Against the running local stack (`TENANTRY_URL`, default http://127.0.0.1:8080) this creates
an owner (signed up, with an org), a member (invited by the owner, the invitation read from
the local mail and accepted) and a stranger (signed up, in no org), then runs Schemathesis over
every operation of `/openapi.json` once per caller, with the caller's token and the path
parameters pointing at the owner's org, the member, an open invitation, the member's
project, task and comment, the member's notification of the owner's comment (with the
unsubscribe token of its mail for the public unsubscribe routes), and the member's file
(uploaded with its presigned POST, processed to ready), so that the
generated requests reach the handlers instead of stopping at 404. Checks: no server error,
documented status codes, content types, headers and response schemas, and every 4xx a
problem+json except API Gateway's own 401 (`contract_hooks.py`).

Before those passes, Schemathesis' stateful phase runs as the member and as the owner
(`--stateful-examples`, default 20; `CONTRACT_STATEFUL_EXAMPLES`): sequences of calls along the
links of the OpenAPI document (an org created, then read, renamed, invited to; an invitation
created, then resent or revoked; a listing's first item, then changed or removed), with ids
taken from the answers instead of the fixture's, under the same checks. `make fuzz-api` runs
the whole check with many more examples.

Operations that destroy what later requests use (deleting the org, removing a member,
revoking an invitation, transferring ownership, deleting or archiving the project, deleting
the task, the comment or the file) run last, in a second pass per caller, and
the callers run from the least to the most privileged.

Run with the project's virtualenv (`make venv` installs Schemathesis):
    .venv/bin/python shared/local-runner/contract_check.py [--max-examples N] [--seed S] [--only owner]
`CONTRACT_CHECKS=positive_data_acceptance,negative_data_rejection` swaps the checks for others
of Schemathesis' (those two also flag rules the schemas cannot state, such as a forged cursor or
an unknown time zone, and the leniencies of the API, such as `limit` over 100).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PASSWORD = "CorrectHorse42x"
CHECKS = os.environ.get("CONTRACT_CHECKS", "").split(",") if os.environ.get("CONTRACT_CHECKS") else [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]
# Run in a second pass: they remove what the other operations' requests point at.
DESTRUCTIVE = [
    "removeMember", "revokeInvite", "transferOwnership", "deleteOrg",
    # the project's, task's and comment's own ends (and a read-only project) leave the other
    # operations on them nothing but 404s and 409s
    "deleteComment", "deleteTask", "archiveProject", "deleteProject", "deleteFile",
    "deleteConversation",
]


class Api:
    def __init__(self, base: str):
        self.base = base.rstrip("/")

    def call(self, method: str, path: str, body=None, token: str | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if body is not None:
            req.add_header("content-type", "application/json")
        if token:
            req.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as res:
                raw = res.read()
                return res.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raise SystemExit(f"setup: {method} {path} answered {e.code}: {e.read().decode(errors='replace')}")

    def user(self, email: str) -> tuple[str, str]:
        """Signs up, confirms and logs in; returns (id token, user id)."""
        self.call("POST", "/local/auth/signup", {"email": email, "password": PASSWORD})
        self.call("POST", "/local/auth/confirm", {"email": email, "code": "000000"})
        _, tokens = self.call("POST", "/local/auth/login", {"email": email, "password": PASSWORD})
        token = tokens["idToken"]
        _, me = self.call("GET", "/me", token=token)
        return token, me["userId"]


def post_form(url: str, fields: dict, data: bytes) -> int:
    """A browser-based POST upload: the presigned fields, then the file."""
    boundary = f"----contract{time.time_ns()}"
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    )
    body += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n'.encode() + data
    body += f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("content-type", f"multipart/form-data; boundary={boundary}")
    with urllib.request.urlopen(req, timeout=30) as res:
        return res.status


def ready_file(api: Api, org_id: str, project: str, task: str, token: str) -> str:
    """A text file of the caller's, attached to the task, uploaded and processed to ready."""
    data = b"Contract notes\n"
    body = {"name": "notes.txt", "size": len(data), "contentType": "text/plain", "attachTo": {"projectId": project, "taskId": task}}
    _, ticket = api.call("POST", f"/orgs/{org_id}/files", body, token)
    post_form(ticket["upload"]["url"], ticket["upload"]["fields"], data)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        _, file = api.call("GET", f"/orgs/{org_id}/files/{ticket['file']['id']}", token=token)
        if file["status"] == "ready":
            return file["id"]
        time.sleep(0.25)
    raise SystemExit(f"setup: the uploaded file did not become ready: {file}")


def setup(api: Api) -> dict:
    run = f"{int(time.time())}-{os.getpid()}"
    owner, owner_id = api.user(f"owner-{run}@example.com")
    member_email = f"member-{run}@example.com"
    member, member_id = api.user(member_email)
    stranger, stranger_id = api.user(f"stranger-{run}@example.com")
    _, org = api.call("POST", "/orgs", {"name": "Contract Co"}, owner)
    org_id = org["id"]
    api.call("POST", f"/orgs/{org_id}/invites", {"email": member_email, "role": "member"}, owner)
    _, mail = api.call("GET", f"/local/mail?to={urllib.request.quote(member_email)}")
    link = re.search(r"token=([A-Za-z0-9_-]+)", mail["items"][-1]["html"])
    assert link, "no invitation link in the mail"
    api.call("POST", "/invites/accept", {"token": link.group(1)}, member)
    # an open invitation for the invitation routes to point at
    _, invite = api.call("POST", f"/orgs/{org_id}/invites", {"email": f"invitee-{run}@example.com", "role": "viewer"}, owner)
    # a project with a task that has a comment, all the member's (so that the member's edits
    # are allowed and the owner's are too)
    _, project = api.call("POST", f"/orgs/{org_id}/projects", {"name": "Contract project"}, member)
    tasks = f"/orgs/{org_id}/projects/{project['id']}/tasks"
    _, task = api.call("POST", tasks, {"title": "Contract task", "assignee": member_id, "due": "2030-01-01"}, member)
    _, comment = api.call("POST", f"{tasks}/{task['id']}/comments", {"text": "first"}, member)
    # The owner's comment mentioning the member reaches the member's inbox and mailbox through
    # the local stream: a notification to mark read, and an unsubscribe link's token.
    _, members = api.call("GET", f"/orgs/{org_id}/members", token=owner)
    handle = next(m["handle"] for m in members["items"] if m["userId"] == member_id)
    api.call("POST", f"{tasks}/{task['id']}/comments", {"text": f"@{handle} a word from the owner"}, owner)
    notification, token = None, None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not (notification and token):
        _, inbox = api.call("GET", f"/orgs/{org_id}/notifications", token=member)
        notification = inbox["items"][0]["id"] if inbox["items"] else None
        _, mail = api.call("GET", f"/local/mail?to={urllib.request.quote(member_email)}")
        for m in mail["items"]:
            for h in m.get("headers", []):
                found = re.search(r"token=([A-Za-z0-9_.-]+)", h["value"]) if h["name"] == "List-Unsubscribe" else None
                token = found.group(1) if found else token
        time.sleep(0.25)
    assert notification and token, "the comment's notification did not arrive"
    file_id = ready_file(api, org_id, project["id"], task["id"], member)
    # the member's conversation (the owner and the stranger reach it not at all: 404)
    _, conversation = api.call("POST", f"/orgs/{org_id}/conversations", {}, member)
    return {
        "conversation": conversation["id"],
        "file": file_id,
        "notification": notification,
        "unsubscribe": token,
        "org": org_id,
        "invite": invite["id"],
        "project": project["id"],
        "task": task["id"],
        "comment": comment["id"],
        "callers": [
            ("stranger", stranger, stranger_id),
            ("member", member, member_id),
            ("owner", owner, owner_id),
        ],
        "member_id": member_id,
    }


def config(token: str, params: dict, query: dict, args) -> str:
    lines = [
        f'headers = {{ Authorization = "Bearer {token}" }}',
        f"seed = {args.seed}",
        f"workers = {args.workers}",
        "request-timeout = 30",
        # No state carried from one run to the next: each run is the same run.
        "[cache]",
        "enabled = false",
        "[generation]",
        f"max-examples = {args.max_examples}",
        "[parameters]",
    ]
    lines += [f'"path.{k}" = "{v}"' for k, v in params.items()]
    lines += [f'"query.{k}" = "{v}"' for k, v in query.items()]
    return "\n".join(lines) + "\n"


def stateful_config(token: str, args) -> str:
    """The stateful phase's: the caller's token and nothing else, so that the links between
    operations (an org created, then invited to; a member listed, then their role changed,
    then removed) supply the ids, not fixed parameters."""
    return "\n".join([
        f'headers = {{ Authorization = "Bearer {token}" }}',
        f"seed = {args.seed}",
        "workers = 1",
        "request-timeout = 30",
        "[cache]",
        "enabled = false",
        "[generation]",
        f"max-examples = {args.stateful_examples}",
        # Only the document's own links: Schemathesis' inferred ones (thousands, by name) would
        # spread the scenarios too thin to follow ours.
        "[phases.stateful.inference]",
        "algorithms = []",
    ]) + "\n"


def schemathesis(args, cfg: Path, include: list[str] | None, exclude: list[str] | None, phases: str | None = None) -> int:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    cmd = [
        exe,
        "--config-file", str(cfg),
        "run", f"{args.url}/openapi.json",
        "--checks", ",".join(CHECKS + ["problem_json_errors"]),
        "--phases", phases or args.phases,
        "--no-color",
        "--suppress-health-check", "too_slow,filter_too_much",
    ]
    for op in include or []:
        cmd += ["--include-operation-id", op]
    for op in exclude or []:
        cmd += ["--exclude-operation-id", op]
    env = dict(os.environ, SCHEMATHESIS_HOOKS=str(HERE / "contract_hooks.py"))
    return subprocess.run(cmd, env=env).returncode


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=os.environ.get("TENANTRY_URL", "http://127.0.0.1:8080"))
    p.add_argument("--max-examples", type=int, default=int(os.environ.get("CONTRACT_MAX_EXAMPLES", "20")))
    p.add_argument("--seed", type=int, default=int(os.environ.get("CONTRACT_SEED", "20261127")))
    p.add_argument("--workers", default="1")
    p.add_argument("--phases", default="examples,coverage,fuzzing")
    p.add_argument("--only", choices=["stranger", "member", "owner"], action="append")
    p.add_argument("--stateful-examples", type=int, default=int(os.environ.get("CONTRACT_STATEFUL_EXAMPLES", "20")),
                   help="also run Schemathesis' stateful phase (sequences of calls along the OpenAPI links) as the owner "
                   "and as the member, with this many examples (0: not at all)")
    p.add_argument("--stateful-only", action="store_true", help="only the stateful phase")
    args = p.parse_args()
    args.url = args.url.rstrip("/")

    api = Api(args.url)
    started = time.monotonic()
    s = setup(api)
    print(f"contract: org {s['org']}, invitation {s['invite']}, member {s['member_id']}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="tenantry-contract-"))
    failed = []
    params = {
        "orgId": s["org"], "userId": s["member_id"], "inviteId": s["invite"],
        "projectId": s["project"], "taskId": s["task"], "commentId": s["comment"],
        "notificationId": s["notification"], "fileId": s["file"],
        "conversationId": s["conversation"],
    }
    query = {"token": s["unsubscribe"], "projectId": s["project"], "taskId": s["task"]}
    callers = [c for c in s["callers"] if not args.only or c[0] in args.only]
    passes = [] if args.stateful_only else [("safe", None, DESTRUCTIVE), ("destructive", DESTRUCTIVE, None)]
    try:
        # Sequences first, on what the sequences themselves create (their own orgs, invitations,
        # projects), while the fixture's org and member still exist for the links from listings.
        if args.stateful_examples or args.stateful_only:
            args.stateful_examples = args.stateful_examples or 20
            for name, token, _ in callers:
                if name == "stranger":
                    continue
                cfg = work / f"{name}-stateful.toml"
                cfg.write_text(stateful_config(token, args))
                print(f"\n== contract: {name}, sequences along the links (stateful)", flush=True)
                if schemathesis(args, cfg, None, None, phases="stateful") != 0:
                    failed.append(f"{name}/stateful")
        # Every caller's safe pass before any destructive one: the member leaving or the org
        # going away would leave later passes nothing but 404s.
        for kind, include, exclude in passes:
            for name, token, _ in callers:
                cfg = work / f"{name}.toml"
                cfg.write_text(config(token, params, query, args))
                print(f"\n== contract: {name}, {kind} operations", flush=True)
                if schemathesis(args, cfg, include, exclude) != 0:
                    failed.append(f"{name}/{kind}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    took = time.monotonic() - started
    if failed:
        print(f"\ncontract: FAILED ({', '.join(failed)}) in {took:.0f} s", file=sys.stderr)
        return 1
    who = ", ".join(c[0] for c in callers)
    print(f"\ncontract: every operation conforms to the OpenAPI document as {who} ({took:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
