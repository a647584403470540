#!/usr/bin/env bash
# Run from the repository root after `cargo build --release`. Starts its own chat-server on
# 127.0.0.1 and stops it (by PID) at the end; everything it starts stops by itself.
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
ulimit -n 20000
B=target/release
$B/chat-server --host 127.0.0.1 --port 0 --flood-rate 0 --no-web --max-per-ip 0 > "$tmp/out" 2>"$tmp/err" & SP=$!
sleep 0.5; PORT=$(head -1 "$tmp/out" | sed 's/.*://')
python3 scripts/measure/login-burst.py $PORT 200 register
rtt() { $B/chat-bench rtt -p $PORT -n 200 -k 4 -s $2 --server-pid $SP --prefix $1 --json 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); r=d['steps'][0]['rtt']; print('p50', r['p50_ms'], 'ms, p95', r['p95_ms'], 'ms, samples', r['count'])"; }
echo "baseline rtt: $(rtt a 400)"
python3 scripts/measure/login-burst.py $PORT 200 burst > "$tmp/burst" 2>&1 & BP=$!
sleep 0.2
echo "rtt during the burst: $(rtt b 400)"
wait $BP; cat "$tmp/burst"
echo "baseline again: $(rtt c 400)"
kill $SP
rm -rf "$tmp"
