#!/usr/bin/env bash
# `make demo`: a short walk through Tenantry against the running local stack (`make dev`).
# Signs up two users, creates an org, invites the second user, reads the invitation from the
# local mail, accepts it, lists members, runs a project board (tasks, a move, my tasks, a
# comment with a mention, a CSV import), shows the mention arriving as an in-app notification
# and a mail with one-click unsubscribe headers, moves the local clock so that a due-date
# reminder fires, uploads an image and a PDF straight to S3 (the upload events processed into a
# thumbnail and extracted text), shows a cross-tenant request being refused, removes a member
# (whose open tasks the stream consumer unassigns) and purges a deleted org.
set -euo pipefail

API="${TENANTRY_URL:-http://127.0.0.1:8080}"
RUN="$(date +%s)-$$"
PASSWORD="CorrectHorse42x"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json() { python3 -c 'import sys,json; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }
post() { curl -sS -f -X POST "$API$1" -H 'content-type: application/json' ${3:+-H "authorization: Bearer $3"} -d "$2"; }
get()  { curl -sS -f "$API$1" -H "authorization: Bearer $2"; }
patch() { curl -sS -f -X PATCH "$API$1" -H 'content-type: application/json' -H "authorization: Bearer $3" -d "$2"; }
# Waits until the local event log shows a delivery to function $1 from source $2 with no failure.
delivered() {
  for i in $(seq 1 40); do
    FOUND=$(curl -sS -f "$API/local/events" | json '"yes" if any(e["function"] == "'"$1"'" and e["source"] == "'"$2"'" and e["failed"] == 0 for e in d["items"]) else ""')
    [ -n "$FOUND" ] && return 0
    sleep 0.25
  done
  echo "$1 received nothing from $2" >&2
  return 1
}

curl -sS -f "$API/health" > /dev/null || { echo "Tenantry is not running at $API: start it with 'make dev'" >&2; exit 1; }

login() {
  local email="$1"
  post /local/auth/signup "{\"email\":\"$email\",\"password\":\"$PASSWORD\"}" > /dev/null
  post /local/auth/confirm "{\"email\":\"$email\",\"code\":\"000000\"}" > /dev/null
  post /local/auth/login "{\"email\":\"$email\",\"password\":\"$PASSWORD\"}" | json 'd["idToken"]'
}

ADA="ada-$RUN@example.com"
BOB="bob-$RUN@example.com"

step "Sign up and log in: $ADA and $BOB"
ADA_TOKEN=$(login "$ADA")
BOB_TOKEN=$(login "$BOB")
echo "two users confirmed; their profiles were created by the PostConfirmation trigger"

step "Ada creates an organization"
ORG=$(post /orgs '{"name":"Analytical Engines"}' "$ADA_TOKEN" | json 'd["id"]')
echo "org $ORG, Ada is its owner"

step "Ada invites Bob as a member"
post "/orgs/$ORG/invites" "{\"email\":\"$BOB\",\"role\":\"member\"}" "$ADA_TOKEN" | json '"invitation " + d["id"] + ", delivered: " + str(d["delivered"])'

step "Bob reads the invitation mail from the local SES"
MAIL=$(curl -sS -f "$API/local/mail?to=$BOB")
echo "$MAIL" | json '"subject: " + d["items"][-1]["subject"]'
TOKEN=$(echo "$MAIL" | python3 -c 'import sys,json,re; d=json.load(sys.stdin); print(re.search(r"token=([A-Za-z0-9_-]+)", d["items"][-1]["html"]).group(1))')
echo "accept link token taken from the mail"

step "Bob accepts"
post /invites/accept "{\"token\":\"$TOKEN\"}" "$BOB_TOKEN" | json '"Bob joined " + d["orgId"] + " as " + d["role"]'

step "Members of the org"
get "/orgs/$ORG/members" "$ADA_TOKEN" | json '"\n".join(m["email"] + "  " + m["role"] for m in d["items"])'

step "Ada starts a project with three tasks; one for Bob, due soon"
PROJECT=$(post "/orgs/$ORG/projects" '{"name":"Difference Engine","description":"Tabulate polynomials"}' "$ADA_TOKEN" | json 'd["id"]')
BOB_ID=$(get "/orgs/$ORG/members" "$ADA_TOKEN" | json '[m["userId"] for m in d["items"] if m["role"] == "member"][0]')
ADA_HANDLE=$(get "/orgs/$ORG/members" "$ADA_TOKEN" | json '[m["handle"] for m in d["items"] if m["role"] == "owner"][0]')
TASKS="/orgs/$ORG/projects/$PROJECT/tasks"
T1=$(post "$TASKS" '{"title":"Cast the gears","priority":"high","labels":["hardware"]}' "$ADA_TOKEN" | json 'd["id"]')
T2=$(post "$TASKS" "{\"title\":\"Check the tables\",\"assignee\":\"$BOB_ID\",\"due\":\"2030-01-15\"}" "$ADA_TOKEN" | json 'd["id"]')
T3=$(post "$TASKS" '{"title":"Write the notes"}' "$ADA_TOKEN" | json 'd["id"]')
get "$TASKS?status=todo" "$ADA_TOKEN" | json '"todo: " + ", ".join(t["title"] for t in d["items"])'

step "Ada moves the last task to the top of the column, then starts the first"
post "$TASKS/$T3/move" "{\"before\":\"$T1\"}" "$ADA_TOKEN" > /dev/null
patch "$TASKS/$T1" '{"status":"in_progress"}' "$ADA_TOKEN" | json '"\"" + d["title"] + "\" is now " + d["status"] + " (version " + str(d["version"]) + ")"'
get "$TASKS?status=todo" "$ADA_TOKEN" | json '"todo: " + ", ".join(t["title"] for t in d["items"])'
get "$TASKS/$T1/history" "$ADA_TOKEN" | json '"history of the first task: " + "; ".join(e["action"] + " " + ",".join(c["field"] for c in e["changes"]) for e in d["items"])'

step "Bob's tasks across the org, by due date; he comments, mentioning Ada"
get "/orgs/$ORG/tasks?assignee=me" "$BOB_TOKEN" | json '"\n".join(t["title"] + "  due " + t["due"] for t in d["items"])'
post "$TASKS/$T2/comments" "{\"text\":\"@$ADA_HANDLE the third table is off by one\"}" "$BOB_TOKEN" | json '"comment mentions " + str(len(d["mentions"])) + " member(s)"'

step "The mention reaches Ada: in her inbox, and by mail with one-click unsubscribe headers"
delivered notifications stream
get "/orgs/$ORG/notifications" "$ADA_TOKEN" | json '"\n".join(n["kind"] + ": " + n["title"] + ("  (unread)" if not n["read"] else "") for n in d["items"])'
get "/orgs/$ORG/notifications/unread-count" "$ADA_TOKEN" | json '"unread: " + str(d["unread"])'
curl -sS -f "$API/local/mail?to=$ADA" | json '"\n".join("mail: " + m["subject"] + "\n  " + "\n  ".join(h["name"] + ": " + h["value"][:90] for h in m["headers"]) for m in d["items"][-1:])'
post "/orgs/$ORG/notifications/read-all" '' "$ADA_TOKEN" > /dev/null
get "/orgs/$ORG/notifications/unread-count" "$ADA_TOKEN" | json '"after \"mark all read\": " + str(d["unread"]) + " unread"'

step "A task for Bob falls due tomorrow; the local clock moves ahead and the reminder fires"
NOW=$(curl -sS -f "$API/local/clock" | json 'd["now"]')
DUE=$(python3 -c 'import sys,datetime as t; n=t.datetime.fromisoformat(sys.argv[1].replace("Z","+00:00")); print((n+t.timedelta(hours=24,minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"))' "$NOW")
post "$TASKS" "{\"title\":\"Oil the crank\",\"assignee\":\"$BOB_ID\",\"due\":\"$DUE\"}" "$ADA_TOKEN" | json '"\"" + d["title"] + "\" due " + d["due"]'
post /local/clock '{"advanceSeconds":900}' "" | json '"+15 min, fired: " + (", ".join(x["function"] + " <- " + x["source"] for x in d["deliveries"]) or "nothing")'
post /local/clock '{"advanceSeconds":3600}' "" | json '"+1 h, fired: " + (", ".join(x["function"] + " <- " + x["source"] for x in d["deliveries"]) or "nothing")'
get "/orgs/$ORG/notifications?unread=true" "$BOB_TOKEN" | json '"\n".join("Bob: " + n["kind"] + ": " + n["title"] for n in d["items"])'
REMINDED=$(get "/orgs/$ORG/notifications" "$BOB_TOKEN" | json '"yes" if any(n["kind"] == "due_soon" for n in d["items"]) else ""')
[ -n "$REMINDED" ] || { echo "expected a due-soon reminder for Bob" >&2; exit 1; }

step "Ada imports tasks from CSV"
printf 'title,priority,due,labels\nDraw the plans,medium,2030-02-01,design\nOrder brass,low,,hardware;purchasing\n' |
  curl -sS -f -X POST "$API$TASKS/import" -H 'content-type: text/csv' -H "idempotency-key: demo-$RUN" -H "authorization: Bearer $ADA_TOKEN" --data-binary @- | json '"imported " + str(d["imported"]) + " task(s)"'
get "/orgs/$ORG/labels" "$ADA_TOKEN" | json '"labels in use: " + ", ".join(d["labels"])'

step "Bob attaches an image and a PDF to his task: straight to S3 with presigned POSTs"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DEMO_FILES="$(dirname "$0")/demo_files.py"
python3 "$DEMO_FILES" png 800 600 "$WORK/gears.png"
python3 "$DEMO_FILES" pdf "$WORK/tables.pdf" "Table of squares: 1 4 9 16 25" "Table of cubes: 1 8 27 64 125"
upload() { # path, name, content type; prints the file id
  local size ticket
  size=$(wc -c < "$1" | tr -d ' ')
  ticket=$(post "/orgs/$ORG/files" "{\"name\":\"$2\",\"size\":$size,\"contentType\":\"$3\",\"attachTo\":{\"projectId\":\"$PROJECT\",\"taskId\":\"$T2\"}}" "$BOB_TOKEN")
  echo "$ticket" | python3 "$DEMO_FILES" upload "$1" > /dev/null
  echo "$ticket" | json 'd["file"]["id"]'
}
IMAGE=$(upload "$WORK/gears.png" "gears.png" "image/png")
DOC=$(upload "$WORK/tables.pdf" "tables.pdf" "application/pdf")
echo "uploaded; S3 tells the files function through the upload queue"
ready() { # file id: waits until processing is done, prints the file
  for i in $(seq 1 60); do
    FILE=$(get "/orgs/$ORG/files/$1" "$BOB_TOKEN")
    [ "$(echo "$FILE" | json 'd["status"]')" != "uploading" ] && [ "$(echo "$FILE" | json 'd["status"]')" != "processing" ] && { echo "$FILE"; return 0; }
    sleep 0.25
  done
  echo "file $1 was not processed" >&2
  return 1
}
ready "$IMAGE" | json 'd["name"] + ": " + d["status"] + ", " + str(d["width"]) + "x" + str(d["height"]) + ", sniffed " + d["detectedType"] + ", sha256 " + d["sha256"][:12] + "…"'
ready "$DOC" | json 'd["name"] + ": " + d["status"] + ", " + str(d["pages"]) + " pages, " + str(d["characters"]) + " characters of text"'
THUMB=$(curl -sS -f -o /dev/null -w '%{redirect_url}' "$API/orgs/$ORG/files/$IMAGE/thumbnail" -H "authorization: Bearer $BOB_TOKEN")
curl -sS -f -o "$WORK/thumb.jpg" "$THUMB"
python3 -c 'import sys; b=open(sys.argv[1],"rb").read(); print("thumbnail: %d bytes of %s" % (len(b), "JPEG" if b[:3]==b"\xff\xd8\xff" else "?"))' "$WORK/thumb.jpg"
TEXT=$(curl -sS -f -o /dev/null -w '%{redirect_url}' "$API/orgs/$ORG/files/$DOC/text" -H "authorization: Bearer $BOB_TOKEN")
echo "extracted text:"; curl -sS -f "$TEXT" | sed 's/^/  /'
get "/orgs/$ORG/files?taskId=$T2" "$ADA_TOKEN" | json '"files on the task: " + ", ".join(f["name"] + " (" + f["status"] + ")" for f in d["items"])'
get "/orgs/$ORG/usage" "$ADA_TOKEN" | json '"storage: " + str(d["storageBytes"]) + " bytes used, " + str(d["storageReserved"]) + " reserved"'

step "Bob asks the chat about the PDF: the answer streams and cites it"
# The PDF's file.processed event reached the chat's ingest queue through the stream's fan-out.
delivered chat queue:ingest
CONV=$(post "/orgs/$ORG/conversations" '{}' "$BOB_TOKEN" | json 'd["id"]')
curl -sS -f -N -X POST "$API/orgs/$ORG/conversations/$CONV/messages" -H 'content-type: application/json' \
  -H 'accept: text/event-stream' -H "authorization: Bearer $BOB_TOKEN" -d '{"content":"What is in the table of cubes?"}' > "$WORK/chat.sse"
python3 -c '
import json, sys
events = [(e.split("\n")[0][7:], json.loads(e.split("\n")[1][6:])) for e in open(sys.argv[1]).read().split("\n\n") if e.strip()]
print("%d events: %s" % (len(events), ", ".join(sorted(set(n for n, _ in events)))))
name, turn = events[-1]
assert name == "done", events[-1]
answer = turn["answer"]
print("answer: " + answer["content"])
for c in answer.get("citations", []):
    print("cited [%d]: %s, page %s -> %s" % (c["number"], c["title"], c.get("page"), c["link"]))
assert any(c["title"] == "tables.pdf" for c in answer.get("citations", [])), "the answer does not cite tables.pdf"
print("usage: %d input and %d output tokens in %d ms" % (answer["usage"]["inputTokens"], answer["usage"]["outputTokens"], answer["latencyMs"]))
' "$WORK/chat.sse"
get "/orgs/$ORG/usage" "$ADA_TOKEN" | json '"chat this month: " + str(d["chat"]["tokensUsed"]) + " of " + str(d["chat"]["tokensPerMonth"]) + " tokens, USD " + format(d["chat"]["costUsd"], ".6f")'

step "A cross-tenant request is refused"
EVE_TOKEN=$(login "eve-$RUN@example.com")
STATUS=$(curl -sS -o /tmp/tenantry-demo-$$.json -w '%{http_code}' "$API/orgs/$ORG/members" -H "authorization: Bearer $EVE_TOKEN")
echo "Eve, who belongs to no org, asks for the members of Ada's org: HTTP $STATUS"
python3 -c 'import sys,json; print(json.load(open(sys.argv[1])))' /tmp/tenantry-demo-$$.json
rm -f /tmp/tenantry-demo-$$.json
[ "$STATUS" = "404" ] || { echo "expected 404" >&2; exit 1; }

step "Eve cannot see Ada's board either"
STATUS=$(curl -sS -o /dev/null -w '%{http_code}' "$API$TASKS" -H "authorization: Bearer $EVE_TOKEN")
echo "Eve asks for the tasks of Ada's project: HTTP $STATUS"
[ "$STATUS" = "404" ] || { echo "expected 404" >&2; exit 1; }

step "Ada removes Bob; the stream consumer unassigns his open tasks"
curl -sS -f -X DELETE "$API/orgs/$ORG/members/$BOB_ID" -H "authorization: Bearer $ADA_TOKEN"
delivered org-purge stream
get "$TASKS/$T2" "$ADA_TOKEN" | json '"\"" + d["title"] + "\" assignee: " + str(d.get("assignee"))'
get "$TASKS/$T2/history" "$ADA_TOKEN" | json '"last change: " + d["items"][-1]["action"] + " by " + d["items"][-1]["actor"]'

step "Ada deletes a scratch org; the purge consumer gets the change from the table's stream"
SCRATCH=$(post /orgs '{"name":"Scratch"}' "$ADA_TOKEN" | json 'd["id"]')
curl -sS -f -X DELETE "$API/orgs/$SCRATCH" -H "authorization: Bearer $ADA_TOKEN"
echo "org $SCRATCH deleted (it answers 404 from now on); waiting for the purge"
delivered org-purge stream
curl -sS -f "$API/local/events" | json '"\n".join(e["function"] + " <- " + e["source"] + ": " + str(e["records"]) + " record(s), " + str(e["failed"]) + " failed" for e in d["items"])'

step "An hour passes on the local clock: the hourly purge sweep fires"
post /local/clock '{"advanceSeconds":3600}' "" | json '"now " + d["now"] + "; fired: " + ", ".join(x["function"] + " <- " + x["source"] for x in d["deliveries"])'

step "What serving Ada's org cost this month: the cost ledger, priced at read time"
# Locally the runner meters the API's requests (the event handlers' work is metered on Lambda).
get "/orgs/$ORG/costs" "$ADA_TOKEN" | json '"total %.6f USD, prices %s\n" % (d["totalUsd"], d["prices"]) + "\n".join("  %-10s %.6f USD%s" % (s["service"], s["usd"], "  (estimated)" if s["estimated"] else "") for s in d["services"])'

step "Done"
