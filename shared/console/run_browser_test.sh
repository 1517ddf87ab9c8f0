#!/usr/bin/env bash
# The console's browser test: builds the console for the running stack (TENANTRY_URL), serves it
# with `vite preview` on a free port, and runs test/console.test.mjs in headless Chromium. The
# stack must allow the console's origin (TENANTRY_ALLOWED_ORIGINS).
set -euo pipefail
cd "$(dirname "$0")"
port="${CONSOLE_PORT:-4173}"
VITE_API_URL="$TENANTRY_URL" npx vite build --logLevel warn
npx vite preview --port "$port" --strictPort --host 127.0.0.1 > /dev/null 2>&1 & pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$port/app/" >/dev/null && break; sleep 0.25; done
CONSOLE_URL="http://127.0.0.1:$port/app/" node --test test/
