#!/usr/bin/env bash
# Instructions per request: the gateway's own work counted by callgrind instead of timed.
#
# Time per request moves by tens of percent from one run to the next on a shared machine, so
# a change of a microsecond or two cannot be seen in bench/run.sh. The instructions a request
# executes hardly move: this script runs the gateway under valgrind's callgrind against the fake
# Kaleyra pod, counts only while wrk sends text messages, and prints the instructions per
# request of the whole process and of each part of the request's path. Compare two builds by
# running it on each (GATEWAY_BIN). User space only: the kernel's share (the loopback TCP, a
# third of the CPU in bench/run.sh's profiles) is not counted, and neither is time spent
# waiting. `rep`-prefixed instructions (glibc's memset and memcpy) count once per repetition.
#
# Settings (environment): DURATION (10s, counted), WARMUP (3s, not counted), CONNECTIONS (8),
# PORT_BASE (18500), GATEWAY_BIN (default: target/release/switchboard), SKIP_BUILD=1,
# SKIP_INSTALL=1, KEEP_TMP=1 (keep the callgrind file for callgrind_annotate).

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

# Loopback only: no proxy from the environment (as in run.sh).
unset HTTPS_PROXY https_proxy HTTP_PROXY http_proxy ALL_PROXY all_proxy

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
CONNECTIONS=${CONNECTIONS:-8}
PORT_BASE=${PORT_BASE:-18500}
FAKE_PORT=$((PORT_BASE + 1))
GATEWAY_PORT=$((PORT_BASE + 5))

log() { printf '%s\n' "instructions: $*" >&2; }
die() {
  log "$*"
  exit 1
}

missing=()
command -v valgrind >/dev/null || missing+=(valgrind)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  [[ "${SKIP_INSTALL:-0}" == 1 ]] && die "missing: ${missing[*]}"
  log "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

cd "$root"
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  log "building (release)"
  cargo build --release -p switchboard-server -p switchboard-bench
fi
target_dir=${CARGO_TARGET_DIR:-$root/target}
GATEWAY_BIN=${GATEWAY_BIN:-$target_dir/release/switchboard}
FAKE_BIN="$target_dir/release/fake-provider"
[[ -x "$GATEWAY_BIN" && -x "$FAKE_BIN" ]] || die "binaries missing under $target_dir/release"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-instructions.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then log "files kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

wait_for_ready() { # NAME PID URL [CURL ARGUMENTS]
  local name=$1 pid=$2 url=$3
  shift 3
  for _ in $(seq 600); do
    curl -fsS "$@" "$url" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || die "$name exited; see $tmp"
    sleep 0.1
  done
  die "$name did not answer $url within a minute"
}

cat >"$tmp/gateway.toml" <<EOF
[server]
listen = "127.0.0.1:$GATEWAY_PORT"

[store]
url = "sqlite://$tmp/gateway.db"

[[clients]]
name = "bench"
token = "bench-token"

[providers.kaleyra]
kind = "kaleyra"
sid = "HXAP16XXXXXX97IN"
api_key = "bench-kaleyra-key"
wa_source = "api"
[[providers.kaleyra.pods]]
name = "in"
base_url = "http://127.0.0.1:$FAKE_PORT"

[[senders]]
number = "+15550783881"
route = ["kaleyra"]

[routing]
default_sender = "+15550783881"
EOF

cat >"$tmp/text.lua" <<'EOF'
wrk.method = "POST"
wrk.path = "/v1/messages"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-token"
wrk.body = '{"to":"+14085551234","type":"text","text":{"body":"Your order shipped","preview_url":false}}'
done = function(summary, latency, requests)
  io.write(string.format("COUNTED requests=%d non2xx=%d\n", summary.requests, summary.errors.status))
end
EOF

"$FAKE_BIN" --listen "127.0.0.1:$FAKE_PORT" >"$tmp/fake.log" 2>&1 &
pids+=($!)
# The fake answers any POST.
wait_for_ready "fake-provider" "${pids[0]}" "http://127.0.0.1:$FAKE_PORT/" -X POST -d '{}'

log "starting the gateway under callgrind (slow: a minute or so)"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/callgrind.out" \
  "$GATEWAY_BIN" serve --config "$tmp/gateway.toml" 2>"$tmp/gateway.log" &
gateway=$!
pids+=("$gateway")
wait_for_ready "the gateway" "$gateway" "http://127.0.0.1:$GATEWAY_PORT/readyz"

wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" -s "$tmp/text.lua" "http://127.0.0.1:$GATEWAY_PORT" >/dev/null
callgrind_control -i on "$gateway" >/dev/null 2>&1
counted=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s "$tmp/text.lua" \
  "http://127.0.0.1:$GATEWAY_PORT" | grep '^COUNTED')
callgrind_control -i off "$gateway" >/dev/null 2>&1
callgrind_control -d "$gateway" >/dev/null 2>&1
requests=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$counted")
non2xx=$(sed 's/.*non2xx=\([0-9]*\).*/\1/' <<<"$counted")
((requests > 0)) || die "no request was answered; see $tmp/gateway.log"
((non2xx == 0)) || die "$non2xx of $requests requests were not answered 2xx; see $tmp/gateway.log"

dump=$(ls -S "$tmp"/callgrind.out* | head -n 1)
callgrind_annotate --inclusive=yes --threshold=100 "$dump" >"$tmp/inclusive.txt" 2>/dev/null

# Inclusive instructions of the functions whose names contain PATTERN (the first listed, i.e.
# the largest), per request.
per_request() {
  awk -v pattern="$1" -v requests="$requests" '
    index($0, pattern) && $1 ~ /^[0-9,]+$/ {
      gsub(",", "", $1); printf "%d", $1 / requests; found = 1; exit
    }
    END { if (!found) printf "-" }' "$tmp/inclusive.txt"
}
total=$(awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }' "$tmp/inclusive.txt")

row() { printf '| %s | %s |\n' "$1" "$2"; }
echo "Instructions per request (user space, callgrind): $requests text messages over" \
  "$CONNECTIONS connections in $DURATION, $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')."
echo
echo "| part | instructions per request |"
echo "|---|---:|"
row "whole process (every thread)" "$((total / requests))"
row "dispatcher: actix-web reads, routes, runs the middleware, writes (not the handler's task)" \
  "$(per_request '<actix_http::h1::dispatcher::Dispatcher<T,S,B,X,U> as core::future::future::Future>::poll ')"
row "dispatcher: the request's log line" \
  "$(per_request 'as tracing_core::subscriber::Subscriber>::event ')"
row "handler: parse, send, record, answer" \
  "$(per_request 'switchboard_server::api::answer_once::answer_once::{{closure}}::{{closure}} ')"
row "handler: parse and validate the message" "$(per_request 'switchboard_server::api::messages::prepare ')"
row "handler: send (render, provider call, classify)" "$(per_request 'switchboard_server::send::send::{{closure}} ')"
row "send: the provider call (reqwest)" \
  "$(per_request 'switchboard_server::send::executor::Executor::send::{{closure}} ')"
row "send: render" "$(per_request 'as switchboard_core::adapter::Adapter>::render ')"
row "send: classify the answer" "$(per_request 'as switchboard_core::adapter::Adapter>::classify ')"
row "handler: the answer's body" "$(per_request 'switchboard_server::api::answer_once::stored_response ')"
row "writer: the store's batches" "$(per_request 'switchboard_store::sqlite::Writer::apply_all ')"
row "writer: a message's row" "$(per_request 'switchboard_store::sqlite::insert_row ')"
row "checkpoints of the write-ahead log" \
  "$(per_request 'switchboard_store::sqlite_checkpoint::passive_checkpoint ')"
echo
echo "Parts are inclusive: \"handler: parse ...\" is part of the handler's row, \"send: ...\" of" \
  "the send's. \"-\" is a function not" \
  "found by name (renamed, or inlined by the compiler). The whole process also counts the" \
  "checkpoint thread and timers, which do not run in step with the requests: compare it" \
  "between runs of the same length only."
