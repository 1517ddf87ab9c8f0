"""The soak's invariant checker on tables made up here: a consistent one passes, and each kind
of violation is reported. `make soak` runs these before the load.

    .venv/bin/python -B -m unittest shared/local-runner/soak_test.py
"""

import copy
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak import check  # noqa: E402

ORG = "01M8GBVKJHA8Q0475H7Y239J2X"
OTHER = "01M8GBVKMXP2NAN89NZ03PKBNH"
PROJECT = "01M8GBW0000000000000000000"
ADA, BOB = "187cb585-1184-42ed-a4f6-f13f6a52361b", "29c0a1f7-5b2e-4e8e-9c1e-0d7f3b1e2a44"


def table():
    pk = f"ORG#{ORG}"
    return [
        {"PK": pk, "SK": "ORG", "status": "active", "memberCount": 2, "ownerCount": 1, "seatsUsed": 3, "projectCount": 1,
         "storageBytes": 100, "storageReserved": 30, "storageCommitted": 130},
        {"PK": pk, "SK": f"MEMBER#{ADA}", "role": "owner"},
        {"PK": pk, "SK": f"MEMBER#{BOB}", "role": "member"},
        {"PK": pk, "SK": "INVITE#I1", "status": "pending", "tokenHash": "h1"},
        {"PK": pk, "SK": "INVITE#I2", "status": "accepted", "tokenHash": "h2"},
        {"PK": pk, "SK": "INVITES#2026-11-28", "count": 2},
        {"PK": "TOKEN#h1", "SK": "TOKEN", "orgId": ORG, "inviteId": "I1"},
        {"PK": pk, "SK": f"PROJECT#{PROJECT}", "status": "active"},
        {"PK": pk, "SK": "PROJECT#01M8GBW1111111111111111111", "status": "archived"},
        {"PK": f"{pk}#PROJECT#{PROJECT}", "SK": "TASK#T1", "status": "todo", "assignee": BOB},
        {"PK": f"{pk}#PROJECT#{PROJECT}", "SK": "TASK#T2", "status": "done", "assignee": "gone"},
        {"PK": pk, "SK": "FILE#F1", "status": "ready", "size": 60},
        {"PK": pk, "SK": "FILE#F2", "status": "processing", "size": 40},
        {"PK": pk, "SK": "FILE#F3", "status": "uploading", "size": 30},
    ]


def with_change(change):
    items = copy.deepcopy(table())
    change(items)
    violations, _ = check(items)
    return violations


def item(items, sk):
    return next(i for i in items if i["SK"] == sk)


class CheckTest(unittest.TestCase):
    def test_a_consistent_table_passes(self):
        violations, totals = check(table())
        self.assertEqual(violations, [])
        self.assertEqual((totals["orgs"], totals["members"], totals["tasks"], totals["files"]), (1, 2, 2, 3))

    def test_every_counter_is_compared_with_what_it_counts(self):
        for attr in ["memberCount", "ownerCount", "seatsUsed", "projectCount", "storageBytes", "storageReserved", "storageCommitted"]:
            with self.subTest(attr=attr):
                v = with_change(lambda items, a=attr: item(items, "ORG").update({a: item(items, "ORG")[a] + 1}))
                self.assertTrue(any(f"{attr} = " in x for x in v), v)

    def test_an_extra_member_or_pending_invitation_breaks_the_counters(self):
        v = with_change(lambda items: items.append({"PK": f"ORG#{ORG}", "SK": "MEMBER#x", "role": "viewer"}))
        self.assertTrue(any("memberCount = 2, but counts 3" in x for x in v), v)
        self.assertTrue(any("seatsUsed = 3, but counts 4" in x for x in v), v)

    def test_an_active_org_without_an_owner(self):
        def demote(items):
            item(items, f"MEMBER#{ADA}")["role"] = "admin"
            item(items, "ORG")["ownerCount"] = 0
        v = with_change(demote)
        self.assertEqual(v, [f"org without an owner: {ORG} is active with 2 member(s), none an owner"])

    def test_orphaned_memberships_and_invitations(self):
        v = with_change(lambda items: items.extend([
            {"PK": f"ORG#{OTHER}", "SK": f"MEMBER#{ADA}", "role": "owner"},
            {"PK": f"ORG#{OTHER}", "SK": "INVITE#I9", "status": "pending", "tokenHash": "h9"},
        ]))
        self.assertEqual(sorted(x.split(":")[0] for x in v), ["orphaned invitation", "orphaned membership"])

    def test_tokens_and_pending_invitations_go_together(self):
        v = with_change(lambda items: items.remove(item(items, "TOKEN")))
        self.assertEqual(v, [f"pending invitation without its token: ORG#{ORG} INVITE#I1"])
        v = with_change(lambda items: item(items, "INVITE#I1").update({"status": "revoked"}))
        self.assertTrue(any(x.startswith("token without a pending invitation") for x in v), v)

    def test_tasks_need_their_project_and_open_ones_a_member_assignee(self):
        v = with_change(lambda items: items.remove(item(items, f"PROJECT#{PROJECT}")))
        self.assertTrue(any(x.startswith("orphaned tasks") for x in v), v)
        v = with_change(lambda items: items.append({"PK": f"ORG#{ORG}", "SK": f"PURGE#PROJECT#{PROJECT}"}) or items.remove(item(items, f"PROJECT#{PROJECT}")))
        self.assertFalse(any(x.startswith("orphaned tasks") for x in v), v)
        v = with_change(lambda items: item(items, "TASK#T1").update({"assignee": "stranger"}))
        self.assertEqual(v, [f"open task assigned to a non-member: ORG#{ORG}#PROJECT#{PROJECT} TASK#T1 assignee stranger"])


if __name__ == "__main__":
    unittest.main()
