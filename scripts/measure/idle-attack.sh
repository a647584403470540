#!/usr/bin/env bash
# Run from the repository root after `cargo build --release`. Starts its own chat-server on
# 127.0.0.1 and stops it (by PID) at the end; everything it starts stops by itself.
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
# usage: scripts/measure/idle-attack.sh LABEL CONNECTIONS ADDRESSES SERVER-OPTIONS...
label=$1; n=$2; addrs=$3; shift 3
ulimit -n 20000
B=target/release
$B/chat-server --host 127.0.0.1 --port 0 --flood-rate 0 --no-web "$@" > "$tmp/out" 2>"$tmp/err" & SP=$!
sleep 0.5; PORT=$(head -1 "$tmp/out" | sed 's/.*://')
rtt() { $B/chat-bench rtt -p $PORT -n 200 -k 4 -s 200 --server-pid $SP --prefix $1 --json 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); r=d[\"steps\"][0][\"rtt\"]; print(\"p50\", r[\"p50_ms\"], \"ms, p95\", r[\"p95_ms\"], \"ms\")" ; }
echo "[$label] baseline rtt: $(rtt a)"
timeout 300 python3 scripts/measure/idle-attack.py $n $addrs $PORT 25 > "$tmp/attack" 2>&1 & AP=$!
while ! grep -q "opened" "$tmp/attack" 2>/dev/null; do sleep 0.5; if ! kill -0 $AP 2>/dev/null; then break; fi; done
cat "$tmp/attack"
echo "[$label] server threads: $(grep Threads /proc/$SP/status)"
echo "[$label] $(python3 scripts/measure/login-time.py $PORT)"
echo "[$label] rtt under attack: $(rtt b)"
wait $AP; cat "$tmp/attack" | tail -1
kill $SP; wait $SP 2>/dev/null
rm -rf "$tmp"
