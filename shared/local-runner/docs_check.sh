#!/usr/bin/env bash
# The docs page in headless Chromium against the running local stack: the page loads the
# OpenAPI document, shows every operation, and a "try it" call (GET /me with a real token
# from the local user pool) returns 200.
set -euo pipefail

API="${TENANTRY_URL:-http://127.0.0.1:8080}"
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
[ -n "$CHROMIUM" ] || { echo "chromium is not installed (Debian: apt-get install chromium)" >&2; exit 1; }

EMAIL="docs-$(date +%s)-$$@example.com"
PASSWORD="CorrectHorse42x"
post() { curl -sS -f -X POST "$API$1" -H 'content-type: application/json' -d "$2"; }
post /local/auth/signup "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" > /dev/null
post /local/auth/confirm "{\"email\":\"$EMAIL\",\"code\":\"000000\"}" > /dev/null
TOKEN=$(post /local/auth/login "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" | python3 -c 'import sys,json; print(json.load(sys.stdin)["idToken"])')
EXPECTED=$(curl -sS -f "$API/openapi.json" | python3 -c 'import sys,json; d=json.load(sys.stdin); print(sum(len(v) for v in d["paths"].values()))')

PROFILE=$(mktemp -d)
trap 'rm -rf "$PROFILE"' EXIT
"$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$PROFILE" --virtual-time-budget=15000 --dump-dom \
  "$API/docs?token=$TOKEN&run=getMe" > "$PROFILE/dom.html" 2>/dev/null

python3 - "$EXPECTED" "$EMAIL" "$PROFILE/dom.html" <<'PY'
import re, sys
expected, email = int(sys.argv[1]), sys.argv[2]
dom = open(sys.argv[3]).read()
shown = re.search(r'data-operations="(\d+)"', dom)
assert shown, "the page did not render the operations"
assert int(shown.group(1)) == expected, f"{shown.group(1)} operations shown, {expected} in the document"
section = re.search(r'<section[^>]*data-operation="getMe"[^>]*>', dom)
assert section and 'data-status="200"' in section.group(0), f"try-it of getMe did not return 200: {section.group(0) if section else 'no section'}"
assert email in dom, "the response body is shown"
print(f"docs page: {expected} operations shown; try-it GET /me answered 200")
PY
