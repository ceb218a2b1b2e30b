#!/usr/bin/env bash
# The release binary built with profile-guided optimization (PGO), as the image ships it:
#
#   deploy/pgo/build.sh              # → target/pgo/switchboard (the path is printed last)
#   deploy/pgo/build.sh --check BIN  # only the training run, with BIN (any build): checks
#                                    # that the mix still fits the API (CI runs this)
#
# 1. A release build instrumented to count which code runs and which way its branches go (in a
#    target directory of its own, so the plain build's cache is kept).
# 2. Training: that binary runs as `switchboard sandbox` (Meta, Kaleyra's three pods and the
#    generic API simulated on loopback, a SQLite store in a temporary directory) and wrk sends
#    it deploy/pgo/train.lua's mix for TRAIN_SECS: every message type on every provider, keyed
#    and keyless, queued and batched, dry runs, invalid bodies, reads and webhooks. With
#    PGO_POSTGRES_URL (a database the build may write to), a second instrumented gateway with
#    that database as its store, and the sandbox's simulator as its providers, gets the same mix.
# 3. The counts merged with llvm-profdata (rustup's llvm-tools component, which matches rustc's
#    LLVM) and the release build that uses them.
#
# The compiler then lays out the code that runs in production as the fast path: bench/RESULTS.md
# has the measurements. A path the training never runs still works the same; it is only laid out
# as cold code. The binary behaves exactly as the plain `cargo build --release` one: only the
# machine code's layout and inlining differ.
#
# Settings (environment): TRAIN_SECS (15 per store), PGO_POSTGRES_URL, PORT_BASE (18600),
# CARGO_TARGET_DIR, SKIP_INSTALL=1 (fail instead of installing llvm-tools or wrk).
# Takes two release builds: about 15 minutes on 2 cores.

set -euo pipefail

check_only=""
case "${1:-}" in
  "") ;;
  --check)
    check_only=${2:?"--check needs the switchboard binary to train"}
    [[ -x "$check_only" ]] || { echo "pgo: $check_only is not an executable" >&2; exit 1; }
    check_only=$(cd "$(dirname "$check_only")" && pwd)/$(basename "$check_only")
    ;;
  *)
    echo "usage: deploy/pgo/build.sh [--check SWITCHBOARD_BINARY]" >&2
    exit 2
    ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
TRAIN_SECS=${TRAIN_SECS:-15}
PORT_BASE=${PORT_BASE:-18600}
GATEWAY_PORT=$PORT_BASE
SIM_PORT=$((PORT_BASE + 1))
PG_GATEWAY_PORT=$((PORT_BASE + 2))
target_dir=${CARGO_TARGET_DIR:-$root/target}

# Loopback only: no proxy from the environment.
unset HTTPS_PROXY https_proxy HTTP_PROXY http_proxy ALL_PROXY all_proxy

log() { printf '%s\n' "pgo: $*" >&2; }
die() {
  log "$*"
  exit 1
}

# --- tools ---

host=$(rustc -vV | sed -n 's/^host: //p')
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [[ -z "$check_only" && ! -x "$profdata" ]]; then
  [[ "${SKIP_INSTALL:-0}" == 1 ]] && die "llvm-profdata missing: run 'rustup component add llvm-tools'"
  log "installing rustup's llvm-tools component (llvm-profdata)"
  rustup component add llvm-tools
  [[ -x "$profdata" ]] || die "llvm-tools installed but $profdata is missing"
fi
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  [[ "${SKIP_INSTALL:-0}" == 1 ]] && die "missing: ${missing[*]} (install them, or unset SKIP_INSTALL)"
  log "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-pgo.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

cd "$root"

# --- 1. the instrumented build ---

if [[ -n "$check_only" ]]; then
  instrumented=$check_only
else
  log "1/3 building the instrumented binary"
  RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$tmp/profiles" \
    CARGO_TARGET_DIR="$target_dir/pgo-instrumented" \
    cargo build --locked --release -p switchboard-server
  instrumented="$target_dir/pgo-instrumented/release/switchboard"
fi

# --- 2. training ---

wait_ready() {
  local port=$1 pid=$2 log_file=$3 i
  for i in $(seq 300); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$log_file" >&2 || true
  die "the gateway on port $port did not become ready"
}

# Stops a gateway with SIGTERM: the counts are written when the process exits normally.
stop() {
  local pid=$1
  kill -TERM "$pid"
  wait "$pid" || die "the gateway (pid $pid) did not exit cleanly: its counts may be missing"
}

# The counts are only as good as the mix: every kind of request in it must have been answered
# as the mix expects (an API change that turned it into errors would train the error paths
# instead), and none with a 5xx.
check_mix() {
  local port=$1 metrics want counted=()
  metrics=$(curl -fs "http://127.0.0.1:$port/metrics") || die "no metrics from the gateway on port $port"
  for want in \
    'route="/v1/messages",method="POST",status="202"' \
    'route="/v1/messages",method="POST",status="200"' \
    'route="/v1/messages",method="POST",status="400"' \
    'route="/v1/messages",method="POST",status="422"' \
    'route="/v1/messages/batch",method="POST",status="202"' \
    'route="/v1/messages/{id}",method="GET",status="200"' \
    'route="/webhooks/{instance}",method="POST",status="200"'; do
    local line
    line=$(grep -F "switchboard_http_requests_total{$want}" <<<"$metrics") ||
      die "the training mix got no answer {$want}: deploy/pgo/train.lua no longer fits the API"
    counted+=("${want//\"/} ${line##* }")
  done
  if grep -E '^switchboard_http_requests_total\{[^}]*status="5' <<<"$metrics" >&2; then
    die "the gateway answered 5xx during the training"
  fi
  log "answered: $(IFS=';'; echo "${counted[*]}")"
}

train() {
  local port=$1 what=$2
  log "2/3 training: ${TRAIN_SECS}s of the mix against $what"
  local out
  out=$(wrk -t2 -c32 -d"${TRAIN_SECS}s" -s "$here/train.lua" "http://127.0.0.1:$port" 2>&1) ||
    die "wrk failed: $out"
  grep '^TRAIN ' <<<"$out" >&2 || die "wrk printed no summary: $out"
  check_mix "$port"
}

export LLVM_PROFILE_FILE="$tmp/profiles/%p-%m.profraw"
mkdir -p "$tmp/sandbox" "$tmp/profiles"
(cd "$tmp/sandbox" && exec env -u RUST_LOG "$instrumented" sandbox \
  --port "$GATEWAY_PORT" --sim-port "$SIM_PORT") >"$tmp/sandbox.log" 2>&1 &
sandbox=$!
pids+=("$sandbox")
wait_ready "$GATEWAY_PORT" "$sandbox" "$tmp/sandbox.log"
train "$GATEWAY_PORT" "the sandbox (SQLite store)"

if [[ -n "${PGO_POSTGRES_URL:-}" ]]; then
  # The sandbox's configuration with PostgreSQL as the store and the running simulator as
  # every provider (the simulator checks the sandbox's credentials, which the file holds).
  sed -e "s#^listen = .*#listen = \"127.0.0.1:$PG_GATEWAY_PORT\"#" \
    -e "s#^url = \"sqlite:.*#url = \"$PGO_POSTGRES_URL\"#" \
    -e "s#http://127.0.0.1:9/#http://127.0.0.1:$SIM_PORT/#" \
    config/default.toml >"$tmp/postgres.toml"
  grep -q "^url = \"postgres" "$tmp/postgres.toml" || die "could not set the store in the configuration"
  env -u RUST_LOG "$instrumented" serve --config "$tmp/postgres.toml" >"$tmp/postgres.log" 2>&1 &
  pg_gateway=$!
  pids+=("$pg_gateway")
  wait_ready "$PG_GATEWAY_PORT" "$pg_gateway" "$tmp/postgres.log"
  train "$PG_GATEWAY_PORT" "a gateway with PostgreSQL as its store"
  stop "$pg_gateway"
fi
stop "$sandbox"
pids=()
if [[ -n "$check_only" ]]; then
  log "the training mix fits the API"
  exit 0
fi

shopt -s nullglob
raw=("$tmp"/profiles/*.profraw)
((${#raw[@]})) || die "the training wrote no counts"
"$profdata" merge -o "$tmp/merged.profdata" "${raw[@]}"
mkdir -p "$target_dir/pgo"
cp "$tmp/merged.profdata" "$target_dir/pgo/switchboard.profdata"

# --- 3. the optimized build ---

log "3/3 building with the profile"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$target_dir/pgo/switchboard.profdata" \
  CARGO_TARGET_DIR="$target_dir/pgo-optimized" \
  cargo build --locked --release -p switchboard-server
cp "$target_dir/pgo-optimized/release/switchboard" "$target_dir/pgo/switchboard"
log "built $target_dir/pgo/switchboard"
echo "$target_dir/pgo/switchboard"
