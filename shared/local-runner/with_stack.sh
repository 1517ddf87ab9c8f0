#!/usr/bin/env bash
# Runs a command against a local stack started as `make dev` starts it, on a free loopback
# port, and stops the stack afterwards:
#   with_stack.sh BINARY LOG command [args...]
# The command gets TENANTRY_URL; the stack's output goes to LOG (shown when the command fails).
# Extra environment for the stack: pass it in the environment of this script.
set -euo pipefail
bin="$1"; log="$2"; shift 2
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
env -u TENANTRY_ALLOWED_ORIGINS TENANTRY_PORT="$port" "$bin" > "$log" 2>&1 & pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.5; done
TENANTRY_URL="http://127.0.0.1:$port" "$@" || { status=$?; tail -n 200 "$log"; exit $status; }
