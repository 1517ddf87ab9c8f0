#!/usr/bin/env bash
# The console's browser test against the running local stack (TENANTRY_URL): builds the console
# (shared/console/dist, which the local runner serves at /app, same origin as the API) and runs
# test/console.test.mjs in headless Chromium against $TENANTRY_URL/app/. CONSOLE_URL to test a
# console served elsewhere (built with VITE_API_URL, on an origin the stack's CORS allows).
set -euo pipefail
cd "$(dirname "$0")"
if [ -z "${CONSOLE_URL:-}" ]; then
  npx vite build --logLevel warn
  export CONSOLE_URL="$TENANTRY_URL/app/"
fi
node --test test/console.test.mjs
