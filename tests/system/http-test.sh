#!/usr/bin/env bash
# psod --http under load: 2 workers train while the test scrapes /metrics
# (Prometheus text format; promtool checks it where installed), reads
# /status.json and /history.json, and throws hostile HTTP at it: garbage, a
# 64 KiB header, POST with a body, more connections than --http-max-connections
# held open (20 against 8). Training must go on through all of it (the round count grows),
# /metrics must answer afterwards, and psod stops cleanly on SIGTERM.
# Prints "http: N passed, M failed".
set -u
BUILD=${BUILD:-build}
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "http: FAIL: $*"; }

"$root/$BUILD/psod" --bind 'tcp://127.0.0.1:*' --endpoint-file "$dir/ep" --http 127.0.0.1:0 \
    --http-max-connections 8 --workers 2 --max-rounds 1000000 --progress-interval 0 \
    2> "$dir/psod.err" &
psod=$!
for _ in $(seq 100); do
    [ -s "$dir/ep" ] && grep -q "status page at" "$dir/psod.err" && break
    sleep 0.1
done
url=$(sed -n 's|.*status page at \(http://[^ ]*\)/ .*|\1|p' "$dir/psod.err" | head -1)
[ -n "$url" ] && ok || { bad "no status page line: $(tail -3 "$dir/psod.err")"; echo "http: $pass passed, $fail failed"; exit 1; }
# More connections than --http-max-connections, held half-open and then
# closed: /metrics must answer again within 3 s.
flood=$(cat <<'PY'
import socket, sys, time, urllib.request
def flood(when):
    held = []
    for _ in range(20):    # 8 served, the rest wait in the backlog
        try:
            c = socket.create_connection((host, port), timeout=0.5)
            c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")   # never finished
            held.append(c)
        except OSError:
            pass
    time.sleep(0.5)
    for c in held:
        c.close()
    for _ in range(6):
        try:
            with urllib.request.urlopen(url + "/metrics", timeout=0.5) as r:
                if r.status == 200:
                    return
        except OSError:     # refused, reset or timed out: try again
            pass
    check(False, f"/metrics unreachable {when}, after {len(held)} connections held and closed")
PY
)
# First while psod idles, waiting for its workers: nothing but HTTP wakes
# its loop then.
if /usr/bin/python3 - "$url" <<PY
url = "$url"
host, port = url[len("http://"):].rsplit(":", 1)
port = int(port)
fails = []
def check(cond, what):
    if not cond:
        fails.append(what)
$flood
flood("while psod waits for its workers")
print("\n".join(fails))
raise SystemExit(1 if fails else 0)
PY
then ok; else bad "HTTP flood before training (above)"; fi

for i in 1 2; do
    "$root/$BUILD/psoworker" --connect "$(cat "$dir/ep")" --name "w$i" --objective sphere --dim 300000 \
        --rounds 1000000 --sync-every 1 --lr 0.01 --reconnect-ms 0 --join-timeout-ms 10000 \
        > "$dir/w$i.out" 2> "$dir/w$i.err" &
    eval "w$i=\$!"
done
sleep 1

if /usr/bin/python3 - "$url" "$dir" "$flood" <<'PY'
import json, re, socket, sys, time, urllib.request, urllib.error
url, out = sys.argv[1], sys.argv[2]
host, port = url[len("http://"):].rsplit(":", 1)
port = int(port)
fails = []
def get(path, method="GET", data=None):
    req = urllib.request.Request(url + path, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
def check(cond, what):
    if not cond:
        fails.append(what)
exec(sys.argv[3])

st, hd, body = get("/metrics")
text = body.decode()
open(out + "/metrics.txt", "w").write(text)
check(st == 200, f"/metrics status {st}")
check(hd.get("Content-Type", "").startswith("text/plain"), "metrics content type")
value = r'(NaN|[+-]Inf|[-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?)'
sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? ' + value + '$')
for line in text.splitlines():
    if line and not line.startswith("#"):
        check(sample.match(line) is not None, f"bad sample line {line!r}")
for name in ("psod_rounds_total", "psod_workers_expected", "psod_round_duration_seconds_bucket",
             "psod_received_bytes_total", "psod_particles"):
    check(re.search(r"^" + name + r"[ {]", text, re.M) is not None, f"missing {name}")

def rounds():
    return json.loads(get("/status.json")[2]).get("round", 0)
r0 = rounds()
st, _, body = get("/status.json")
check(st == 200, f"/status.json status {st}")
s = json.loads(body)
check(s.get("particles") == 2 and len(s.get("particle", [])) == 2, f"status particles {s.get('particles')}")
st, _, body = get("/history.json")
check(st == 200 and isinstance(json.loads(body), dict), "/history.json")
st, _, body = get("/")
check(st == 200 and b"<html" in body.lower(), "status page")
st, hd, _ = get("/metrics", "POST", b"x" * 100)
check(st == 405 and "GET" in (hd.get("Allow") or ""), f"POST gave {st}")
try:    # a body past the connection's memory: 405 or the connection dropped
    st, _, _ = get("/metrics", "POST", b"x" * 100000)
    check(st in (405, 413), f"large POST gave {st}")
except (ConnectionError, urllib.error.URLError):
    pass
st, _, _ = get("/no/such/thing")
check(st == 404, f"unknown path gave {st}")

def raw(payload):
    s = socket.create_connection((host, port), timeout=2)
    try:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        return s.recv(4096)
    except OSError:
        return b""
    finally:
        s.close()
r = raw(b"\x00\xff garbage \r\n\r\n")
check(r == b"" or r.startswith(b"HTTP/1.1 4"), f"garbage answered {r[:40]!r}")
r = raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n")
check(r == b"" or r.startswith(b"HTTP/1.1 4"), f"64 KiB header answered {r[:40]!r}")
flood("during training")
time.sleep(0.5)
r1 = rounds()
check(r1 > r0, f"training stalled under the hostile requests: round {r0} then {r1}")
print("\n".join(fails))
sys.exit(1 if fails else 0)
PY
then ok; else bad "HTTP checks (above)"; fi

# The status page as a person sees it: headless Chromium runs its script,
# which must draw the plot (uPlot's canvas) and list both particles. The
# screenshot stays in $BUILD/test-output/http/ for a person to look at.
chrome=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$chrome" ]; then
    shots="$root/$BUILD/test-output/http"
    mkdir -p "$shots"
    flags=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run
           --user-data-dir="$dir/chrome" --virtual-time-budget=4000 --window-size=1200,900)
    timeout 90 "$chrome" "${flags[@]}" --dump-dom "$url/" > "$shots/status.html" 2> "$dir/chrome.err"
    timeout 90 "$chrome" "${flags[@]}" --screenshot="$shots/status.png" "$url/" >> "$dir/chrome.err" 2>&1
    for want in '<canvas' 'class="u-series"' '<td>w1' '<td>w2' 'waits for'; do
        grep -q "$want" "$shots/status.html" && ok || bad "status page in Chromium lacks '$want' (see $shots/status.html)"
    done
    if [ "$(head -c 8 "$shots/status.png" 2>/dev/null | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ] &&
       [ "$(stat -c %s "$shots/status.png")" -gt 10000 ]; then ok
    else bad "no screenshot of the status page: $(tail -2 "$dir/chrome.err")"; fi
else
    echo "http: chromium not installed (scripts/install-deps.sh --ops); the page check skipped"
fi

if command -v promtool >/dev/null; then
    if [ -s "$dir/metrics.txt" ] && promtool check metrics < "$dir/metrics.txt" > "$dir/promtool.out" 2>&1; then ok
    else bad "promtool: $(head -5 "$dir/promtool.out")"; fi
else
    echo "http: promtool not installed (scripts/install-deps.sh --ops); its check skipped"
fi

# psod ends on SIGTERM like a service stop: exit 0; the workers are then
# without a daemon (--reconnect-ms 0), so they are only reaped.
kill -TERM "$psod"
if wait "$psod"; then ok; else bad "psod did not stop cleanly: $(tail -3 "$dir/psod.err")"; fi
kill "$w1" "$w2" 2>/dev/null
wait "$w1" "$w2" 2>/dev/null
if grep -qiE "assert|sanitizer|segfault" "$dir/psod.err"; then bad "psod log: $(grep -iE 'assert|sanitizer' "$dir/psod.err" | head -2)"; else ok; fi

# The page an operator reads, under pso with real networks: the global
# model's accuracy known all through the run (the report's evaluator fetches
# the global model), the accuracy axis 0..100 and the loss axis log, a
# worker killed with -9 shown silent from its first missed heartbeat, and
# the round rate at zero once rounds stall (--liveness 30: the round waits).
/usr/bin/python3 - "$dir/mnist" <<'PY'
import os, struct, sys
import numpy as np
root = sys.argv[1]; os.makedirs(root, exist_ok=True)
rng = np.random.default_rng(1)
for prefix, n in (("train", 1200), ("t10k", 200)):
    y = rng.integers(0, 10, n).astype(np.uint8)
    x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i in range(n):
        x[i, 2 + 5 * (y[i] // 5):7 + 5 * (y[i] // 5), 5 * (y[i] % 5):5 + 5 * (y[i] % 5)] = 230
    open(f"{root}/{prefix}-images-idx3-ubyte", "wb").write(struct.pack(">IIII", 0x803, n, 28, 28) + x.tobytes())
    open(f"{root}/{prefix}-labels-idx1-ubyte", "wb").write(struct.pack(">II", 0x801, n) + y.tobytes())
PY
"$root/$BUILD/psod" --bind 'tcp://127.0.0.1:*' --endpoint-file "$dir/ep2" --http 127.0.0.1:0 \
    --workers 2 --liveness 30 --progress-interval 0 2> "$dir/psod2.err" &
psod2=$!
for _ in $(seq 100); do
    [ -s "$dir/ep2" ] && grep -q "status page at" "$dir/psod2.err" && break
    sleep 0.1
done
url2=$(sed -n 's|.*status page at \(http://[^ ]*\)/ .*|\1|p' "$dir/psod2.err" | head -1)
for i in 1 2; do
    "$root/$BUILD/psoworker" --connect "$(cat "$dir/ep2")" --name "m$i" --model mlp \
        --data-dir "$dir/mnist" --epochs 1000 --batch 32 --sync-every 2 --eval-every 1 \
        --eval-samples 100 --progress-interval 0 --reconnect-ms 0 > "$dir/m$i.out" 2> "$dir/m$i.err" &
    eval "m$i=\$!"
done
if /usr/bin/python3 - "$url2" <<'PY'
import json, sys, time, urllib.request
url = sys.argv[1]
def status():
    with urllib.request.urlopen(url + "/status.json", timeout=5) as r:
        return json.loads(r.read())
deadline = time.time() + 60
while time.time() < deadline:
    s = status()
    if s["round"] >= 12:
        break
    time.sleep(0.2)
with urllib.request.urlopen(url + "/history.json", timeout=5) as r:
    h = json.loads(r.read())
known = sum(1 for a in h["global_acc"] if a is not None)
first = next((r for r, a in zip(h["round"], h["global_acc"]) if a is not None), None)
ok = s["strategy"] == "pso" and s["global_accuracy"] is not None and first is not None \
    and first <= 3 and known >= len(h["round"]) - 4
print(f"pso: round {s['round']}, global accuracy {s['global_accuracy']}, known from round "
      f"{first} for {known} of {len(h['round'])} rounds")
sys.exit(0 if ok else 1)
PY
then ok; else bad "the global model's accuracy under pso (above)"; fi
kill -9 "$m2"
sleep 3     # beyond 1.5 heartbeat intervals: silent; the round waits (liveness 30 s)
if [ -n "$chrome" ]; then
    timeout 90 "$chrome" "${flags[@]}" --dump-dom "$url2/" > "$shots/status-pso.html" 2>> "$dir/chrome.err"
    for want in 'data-acc-axis="0..100"' 'data-loss-axis="log"' '<td>silent [0-9]* s</td>' \
                'test accuracy [0-9.]* %'; do
        grep -q "$want" "$shots/status-pso.html" && ok ||
            bad "status page under pso lacks '$want' (see $shots/status-pso.html)"
    done
    sleep 8     # 11 s without a round: the rate over the last 10 s is zero
    timeout 90 "$chrome" "${flags[@]}" --dump-dom "$url2/" > "$shots/status-stalled.html" 2>> "$dir/chrome.err"
    timeout 90 "$chrome" "${flags[@]}" --screenshot="$shots/status-pso.png" "$url2/" >> "$dir/chrome.err" 2>&1
    grep -q '(0.00 rounds/s)' "$shots/status-stalled.html" && ok ||
        bad "stalled rounds not at 0.00 rounds/s: $(grep -o '([0-9.]* rounds/s)' "$shots/status-stalled.html")"
    # The screenshot: a PNG of the window's size (1200 x 900), not a blank.
    if /usr/bin/python3 - "$shots/status-pso.png" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
w, h = struct.unpack(">II", data[16:24])
sys.exit(0 if data[:8] == b"\x89PNG\r\n\x1a\n" and (w, h) == (1200, 900) and len(data) > 20000 else 1)
PY
    then ok; else bad "screenshot of the pso page: $(ls -l "$shots/status-pso.png" 2>&1)"; fi
fi
kill "$psod2" "$m1" 2>/dev/null
wait "$psod2" "$m1" "$m2" 2>/dev/null
echo "http: $pass passed, $fail failed ($SECONDS s)"
[ "$fail" -eq 0 ]
