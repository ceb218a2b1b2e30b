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
#    PGO_POSTGRES_URL (a throwaway database the build may write to), a second instrumented
#    gateway with that database as its store, and the sandbox's simulator as its providers,
#    gets the same mix.
# 3. The counts merged with llvm-profdata (rustup's llvm-tools component, which matches rustc's
#    LLVM) and the release build that uses them.
#
# The compiler then lays out the code the mix runs as the fast path: bench/RESULTS.md has the
# measurements. A path the training never runs (HTTPS to a provider: the simulator speaks plain
# HTTP; the PostgreSQL store without PGO_POSTGRES_URL) still works the same; it is only laid out
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
# Absolute: cargo runs rustc from each crate's own directory, and -Cprofile-use names a file.
[[ "$target_dir" == /* ]] || target_dir="$root/$target_dir"

# Loopback only: no proxy from the environment, and no configuration override from it.
unset HTTPS_PROXY https_proxy HTTP_PROXY http_proxy ALL_PROXY all_proxy
while read -r name; do unset "$name"; done < <(compgen -e | grep '^SWITCHBOARD__' || true)

log() { printf '%s\n' "pgo: $*" >&2; }
die() {
  log "$*"
  exit 1
}

# --- tools ---

if [[ -z "$check_only" ]]; then
  host=$(rustc -vV | sed -n 's/^host: //p')
  profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
  if [[ ! -x "$profdata" ]]; then
    [[ "${SKIP_INSTALL:-0}" == 1 ]] && die "llvm-profdata missing: run 'rustup component add llvm-tools'"
    log "installing rustup's llvm-tools component (llvm-profdata)"
    rustup component add llvm-tools
    [[ -x "$profdata" ]] || die "llvm-tools installed but $profdata is missing"
  fi
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

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$GATEWAY_PORT" "$SIM_PORT" "$PG_GATEWAY_PORT"; do
  port_free "$port" || die "port $port is in use (set PORT_BASE)"
done

# --- 1. the instrumented build ---

# `--target`: RUSTFLAGS then reach the binary's crates only, not the build scripts and
# procedural macros that cargo runs during the build (instrumented, they would write counts of
# the build itself). The path given to -Cprofile-generate is fixed, so that the instrumented
# build stays cached between runs; LLVM_PROFILE_FILE below says where the training's counts go.
if [[ -n "$check_only" ]]; then
  instrumented=$check_only
else
  rm -f "$target_dir/pgo/switchboard" "$target_dir/pgo/switchboard.profdata"
  log "1/3 building the instrumented binary"
  RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$target_dir/pgo/unused-counts" \
    CARGO_TARGET_DIR="$target_dir/pgo-instrumented" \
    cargo build --locked --release -p switchboard-server --target "$host"
  instrumented="$target_dir/pgo-instrumented/$host/release/switchboard"
fi

# --- 2. training ---

wait_ready() {
  local port=$1 pid=$2 log_file=$3 i
  for i in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || break
    curl -fs --max-time 2 "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  tail -n 20 "$log_file" >&2 || true
  die "the gateway on port $port did not become ready"
}

# Stops a gateway with SIGTERM: the counts are written when the process exits normally.
stop() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
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

export LLVM_PROFILE_FILE="$tmp/counts/%p-%m.profraw"
mkdir -p "$tmp/sandbox" "$tmp/counts"
(cd "$tmp/sandbox" && exec env -u RUST_LOG "$instrumented" sandbox \
  --port "$GATEWAY_PORT" --sim-port "$SIM_PORT") >"$tmp/sandbox.log" 2>&1 &
sandbox=$!
pids+=("$sandbox")
wait_ready "$GATEWAY_PORT" "$sandbox" "$tmp/sandbox.log"
train "$GATEWAY_PORT" "the sandbox (SQLite store)"

if [[ -n "${PGO_POSTGRES_URL:-}" ]]; then
  # The sandbox's configuration with the running simulator as every provider (the simulator
  # checks the sandbox's credentials, which the file holds) and PostgreSQL as the store (given
  # through the environment, so that no character of the URL needs quoting in the file).
  sed -e "s#^listen = .*#listen = \"127.0.0.1:$PG_GATEWAY_PORT\"#" \
    -e "s#http://127.0.0.1:9/#http://127.0.0.1:$SIM_PORT/#" \
    config/default.toml >"$tmp/postgres.toml"
  SWITCHBOARD__STORE__URL=$PGO_POSTGRES_URL env -u RUST_LOG "$instrumented" serve \
    --config "$tmp/postgres.toml" >"$tmp/postgres.log" 2>&1 &
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
raw=("$tmp"/counts/*.profraw)
((${#raw[@]})) || die "the training wrote no counts"
"$profdata" merge -o "$tmp/merged.profdata" "${raw[@]}"
mkdir -p "$target_dir/pgo"
cp "$tmp/merged.profdata" "$target_dir/pgo/switchboard.profdata"

# --- 3. the optimized build ---

# Every crate reads the profile, so each new profile rebuilds them all.
log "3/3 building with the profile"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$target_dir/pgo/switchboard.profdata" \
  CARGO_TARGET_DIR="$target_dir/pgo-optimized" \
  cargo build --locked --release -p switchboard-server --target "$host"
cp "$target_dir/pgo-optimized/$host/release/switchboard" "$target_dir/pgo/switchboard"
log "built $target_dir/pgo/switchboard"
echo "$target_dir/pgo/switchboard"
