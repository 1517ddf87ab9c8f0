#!/usr/bin/env bash
# `make demo`: a short walk through Tenantry against the running local stack (`make dev`).
# Signs up two users, creates an org, invites the second user, reads the invitation from the
# local mail, accepts it, lists members, and shows a cross-tenant request being refused.
set -euo pipefail

API="${TENANTRY_URL:-http://127.0.0.1:8080}"
RUN="$(date +%s)-$$"
PASSWORD="CorrectHorse42x"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json() { python3 -c 'import sys,json; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }
post() { curl -sS -f -X POST "$API$1" -H 'content-type: application/json' ${3:+-H "authorization: Bearer $3"} -d "$2"; }
get()  { curl -sS -f "$API$1" -H "authorization: Bearer $2"; }

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

step "A cross-tenant request is refused"
EVE_TOKEN=$(login "eve-$RUN@example.com")
STATUS=$(curl -sS -o /tmp/tenantry-demo-$$.json -w '%{http_code}' "$API/orgs/$ORG/members" -H "authorization: Bearer $EVE_TOKEN")
echo "Eve, who belongs to no org, asks for the members of Ada's org: HTTP $STATUS"
python3 -c 'import sys,json; print(json.load(open(sys.argv[1])))' /tmp/tenantry-demo-$$.json
rm -f /tmp/tenantry-demo-$$.json
[ "$STATUS" = "404" ] || { echo "expected 404" >&2; exit 1; }

step "Ada deletes a scratch org; the purge consumer gets the change from the table's stream"
SCRATCH=$(post /orgs '{"name":"Scratch"}' "$ADA_TOKEN" | json 'd["id"]')
curl -sS -f -X DELETE "$API/orgs/$SCRATCH" -H "authorization: Bearer $ADA_TOKEN"
echo "org $SCRATCH deleted (it answers 404 from now on); waiting for the purge"
for i in $(seq 1 40); do
  PURGED=$(curl -sS -f "$API/local/events" | json '"yes" if any(e["function"] == "org-purge" and e["source"] == "stream" and e["failed"] == 0 for e in d["items"]) else ""')
  [ -n "$PURGED" ] && break
  sleep 0.25
done
[ -n "$PURGED" ] || { echo "the purge consumer received nothing" >&2; exit 1; }
curl -sS -f "$API/local/events" | json '"\n".join(e["function"] + " <- " + e["source"] + ": " + str(e["records"]) + " record(s), " + str(e["failed"]) + " failed" for e in d["items"])'

step "An hour passes on the local clock: the hourly purge sweep fires"
post /local/clock '{"advanceSeconds":3600}' "" | json '"now " + d["now"] + "; fired: " + ", ".join(x["function"] + " <- " + x["source"] for x in d["deliveries"])'

step "Done"
