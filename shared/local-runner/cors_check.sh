#!/usr/bin/env bash
# A front end on another origin, in headless Chromium, against the running local stack: a page
# served from a different port signs up, confirms and logs in through /local/auth/*, creates an
# org with POST /orgs (the Authorization header makes the browser send a preflight first),
# reads it back with GET /orgs/{id} and reads the exposed ETag and Location headers. A page
# from an origin the policy does not allow must not be able to read any answer.
# The stack must run with its default TENANTRY_ALLOWED_ORIGINS (loopback origins on any port).
set -euo pipefail

API="${TENANTRY_URL:-http://127.0.0.1:8080}"
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
[ -n "$CHROMIUM" ] || { echo "chromium is not installed (Debian: apt-get install chromium)" >&2; exit 1; }
curl -sS -f "$API/health" > /dev/null || { echo "Tenantry is not running at $API" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$1"; }

mkdir -p "$WORK/site"
cat > "$WORK/site/app.html" <<'HTML'
<!doctype html>
<html><head><meta charset="utf-8"><title>cross-origin check</title></head>
<body>
<pre id="outcome" data-status="running"></pre>
<script>
const q = new URLSearchParams(location.search);
const api = q.get("api"), email = q.get("email"), password = "CorrectHorse42x";
const out = document.getElementById("outcome");
const steps = [];
function done(status, detail) {
  out.dataset.status = status;
  out.textContent = JSON.stringify({ origin: location.origin, steps, ...detail });
}
async function call(method, path, body, token) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers["Authorization"] = "Bearer " + token;
  const res = await fetch(api + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  steps.push(method + " " + path.replace(/[0-9A-Z]{26}/, "{id}") + " " + res.status);
  if (!res.ok) throw new Error(method + " " + path + " answered " + res.status + ": " + text);
  return { res, json: text ? JSON.parse(text) : null };
}
(async () => {
  try {
    if (q.get("expect") === "blocked") {
      try {
        await fetch(api + "/health");
        done("error", { error: "an origin the policy does not allow could read an answer" });
      } catch (e) {
        done("blocked", { error: String(e) });
      }
      return;
    }
    await call("POST", "/local/auth/signup", { email, password });
    await call("POST", "/local/auth/confirm", { email, code: "000000" });
    const token = (await call("POST", "/local/auth/login", { email, password })).json.idToken;
    const created = await call("POST", "/orgs", { name: "Cross Origin Co" }, token);
    const id = created.json.id;
    const read = await call("GET", "/orgs/" + id, undefined, token);
    done("ok", {
      orgId: id,
      name: read.json.name,
      role: read.json.role,
      location: created.res.headers.get("Location"),
      etag: read.res.headers.get("ETag"),
    });
  } catch (e) {
    done("error", { error: String(e) });
  }
})();
</script>
</body></html>
HTML

# Serves the page from $1 (an address) and loads it in a new headless Chromium; prints the DOM.
load() {
  local host="$1" query="$2" port profile
  port=$(free_port "$host")
  python3 -m http.server --bind "$host" --directory "$WORK/site" "$port" > "$WORK/site-$host.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 50); do curl -sf "http://$host:$port/app.html" > /dev/null && break; sleep 0.1; done
  profile=$(mktemp -d -p "$WORK")
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --virtual-time-budget=30000 --dump-dom \
    "http://$host:$port/app.html?$query" 2>/dev/null
}

API_ORIGIN=$(python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(f"{p.scheme}://{p.netloc}")' "$API")
EMAIL="cors-$(date +%s)-$$@example.com"
QUERY="api=$(python3 -c 'import sys,urllib.parse as u; print(u.quote(sys.argv[1], safe=""))' "$API_ORIGIN")&email=$(python3 -c 'import sys,urllib.parse as u; print(u.quote(sys.argv[1], safe=""))' "$EMAIL")"

load 127.0.0.1 "$QUERY" > "$WORK/allowed.html"
# 127.0.0.2 is loopback too, but not an origin the default policy allows.
load 127.0.0.2 "$QUERY&expect=blocked" > "$WORK/blocked.html"

python3 - "$WORK/allowed.html" "$WORK/blocked.html" "$API_ORIGIN" <<'PY'
import html, json, re, sys

def outcome(path):
    dom = open(path).read()
    m = re.search(r'<pre id="outcome" data-status="([a-z]+)">(.*?)</pre>', dom, re.S)
    assert m, f"the page did not run: {dom[:500]}"
    return m.group(1), json.loads(html.unescape(m.group(2)) or "{}")

status, o = outcome(sys.argv[1])
assert status == "ok", f"cross-origin flow failed: {o}"
assert o["origin"] != sys.argv[3], "the page must be served from another origin than the API"
assert o["steps"] == [
    "POST /local/auth/signup 201", "POST /local/auth/confirm 204", "POST /local/auth/login 200",
    "POST /orgs 201", "GET /orgs/{id} 200",
], o["steps"]
assert o["name"] == "Cross Origin Co" and o["role"] == "owner", o
assert o["location"] == f"/orgs/{o['orgId']}", f"Location not exposed: {o}"
assert o["etag"] and o["etag"].startswith('"'), f"ETag not exposed: {o}"
print(f"cross-origin: a page on {o['origin']} signed up, logged in, created org {o['orgId']} (preflighted) and read it back with its ETag and Location")

status, o = outcome(sys.argv[2])
assert status == "blocked", f"a disallowed origin read an answer: {o}"
print(f"cross-origin: a page on {o['origin']} (not allowed) could not read any answer")
PY
