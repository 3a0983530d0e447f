#!/usr/bin/env bash
# Benchmark `cpantuf-mirror serve` against nginx on the same files, certificate and load.
#
# Usage: scripts/bench-mirror.sh [options]
#   --duration D     seconds per wrk run (default 10)
#   --rounds N       alternating rounds per scenario; medians are reported (default 3)
#   --connections N  wrk connections (default 64)
#   --wrk-threads N  wrk threads (default 1)
#   --workers N      cpantuf-mirror worker threads (default 1, like nginx's 1 worker)
#   --scenarios S    comma list of small,large,meta (default all)
#   --access-log     have both servers write an access log (default: both off)
#   --nginx-aes128   make nginx prefer AES-128-GCM as cpantuf-mirror does (default: nginx
#                    as configured out of the box, which follows the client's order:
#                    AES-256-GCM for wrk/OpenSSL)
#   --work DIR       scratch directory (default /tmp/cpantuf-bench)
#   --no-build       use the existing target/release/cpantuf-mirror
#   -h, --help       this text
#
# What it does: makes 1,000 files of 20 KiB, 4 of 5 MiB and 1,000 metadata-sized JSON files
# (400 B - 4 KiB); one ECDSA P-256 certificate; starts nginx (1 worker) and cpantuf-mirror on
# 127.0.0.1 with TLS 1.3 only and keep-alive; then, for each scenario, runs wrk (random path per
# request) against nginx and cpantuf-mirror in turn, --rounds times. Prints a table of medians
# and the ratios the project's goals are stated in, and writes it to WORK/results.md. It also
# reports requests per CPU-second of each server (from /proc), which stays meaningful when
# other work shares the machine and makes requests/s noisy.
#
# Needs: nginx and wrk (Debian packages nginx-light and wrk), openssl, python3, cargo.
# All traffic stays on 127.0.0.1; every wrk run is bounded by --duration.
set -euo pipefail

DURATION=10 ROUNDS=3 CONNS=64 WRK_THREADS=1 WORKERS=1 SCENARIOS=small,large,meta
ACCESS_LOG=0 WORK=/tmp/cpantuf-bench BUILD=1 NGINX_AES128=0
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --connections) CONNS=$2; shift ;;
        --wrk-threads) WRK_THREADS=$2; shift ;;
        --workers) WORKERS=$2; shift ;;
        --scenarios) SCENARIOS=$2; shift ;;
        --access-log) ACCESS_LOG=1 ;;
        --nginx-aes128) NGINX_AES128=1 ;;
        --work) WORK=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-mirror: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

for tool in nginx wrk openssl python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench-mirror: $tool not found (apt-get install nginx-light wrk)" >&2; exit 2; }
done
NGINX=$(command -v nginx)
TOP=$(cd "$(dirname "$0")/.." && pwd)
BIN=$TOP/target/release/cpantuf-mirror
if [ "$BUILD" = 1 ]; then
    (cd "$TOP" && cargo build --release -q -p cpantuf-mirror-server)
fi
[ -x "$BIN" ] || { echo "bench-mirror: $BIN missing (drop --no-build)" >&2; exit 2; }

mkdir -p "$WORK"
ROOT=$WORK/root
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# ---- files (made once, reused by later runs) --------------------------------------------------
if [ ! -f "$ROOT/.complete" ]; then
    echo "bench-mirror: making files in $ROOT"
    rm -rf "$ROOT"; mkdir -p "$ROOT"
    python3 - "$ROOT" <<'PY'
import json, os, random, sys
root = sys.argv[1]
rnd = random.Random(20260402)
def write(rel, data):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
small, large, meta = [], [], []
for i in range(1000):
    # a per-author layout, as on CPAN
    a = "AUTHOR%04d" % i
    rel = "authors/id/%s/%s/%s/Dist-%d-1.0.tar.gz" % (a[0], a[:2], a, i)
    write(rel, rnd.randbytes(20 * 1024)); small.append("/" + rel)
for i in range(4):
    rel = "authors/id/B/BI/BIG/Big-Dist-%d.tar.gz" % i
    write(rel, rnd.randbytes(5 * 1024 * 1024)); large.append("/" + rel)
for i in range(1000):
    keys = rnd.randint(1, 12)
    doc = {"signatures": [{"keyid": "%064x" % rnd.getrandbits(256), "sig": "%0128x" % rnd.getrandbits(512)}],
           "signed": {"_type": "targets", "version": rnd.randint(1, 9999), "expires": "2027-01-01T00:00:00Z",
                      "targets": {"authors/id/X/XY/XYZ/F-%d.tar.gz" % k: {"length": rnd.randint(1, 10**6),
                                  "hashes": {"sha256": "%064x" % rnd.getrandbits(256)}} for k in range(keys)}}}
    rel = "metadata/%d.A%03d.json" % (rnd.randint(1, 99), i)
    write(rel, json.dumps(doc, separators=(",", ":")).encode()); meta.append("/" + rel)
for name, paths in (("small", small), ("large", large), ("meta", meta)):
    with open(os.path.join(root, "..", "paths-%s.txt" % name), "w") as f:
        f.write("\n".join(paths) + "\n")
PY
    touch "$ROOT/.complete"
fi
if [ ! -f "$WORK/cert.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
fi
cat > "$WORK/paths.lua" <<'LUA'
local paths = {}
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end
function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
LUA

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bench-mirror: nothing listening on port $1" >&2; return 1
}

# ---- nginx, 1 worker ----------------------------------------------------------------------------
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
if [ "$ACCESS_LOG" = 1 ]; then NGINX_LOG="access_log $WORK/nginx/access.log;"; else NGINX_LOG="access_log off;"; fi
NGINX_CIPHERS=""
if [ "$NGINX_AES128" = 1 ]; then
    NGINX_CIPHERS="ssl_prefer_server_ciphers on; ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;"
fi
cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process on;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    types { application/x-gzip gz; application/json json; }
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 60s;
    keepalive_requests 1000000;
    $NGINX_LOG
    client_body_temp_path $WORK/nginx/tmp;
    proxy_temp_path $WORK/nginx/tmp;
    fastcgi_temp_path $WORK/nginx/tmp;
    uwsgi_temp_path $WORK/nginx/tmp;
    scgi_temp_path $WORK/nginx/tmp;
    server {
        listen 127.0.0.1:$NGINX_PORT ssl;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        ssl_protocols TLSv1.3;
        $NGINX_CIPHERS
        ssl_session_cache shared:SSL:10m;
        root $ROOT;
    }
}
CONF
mkdir -p "$WORK/nginx/tmp"
"$NGINX" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
NGINX_PID=$!
PIDS+=($NGINX_PID)
wait_port "$NGINX_PORT"

# ---- cpantuf-mirror ---------------------------------------------------------------------------
MIRROR_PORT=$(free_port)
if [ "$ACCESS_LOG" = 1 ]; then MIRROR_LOG=$WORK/mirror-access.log; else MIRROR_LOG=off; fi
"$BIN" --log warn serve --root "$ROOT" --listen "127.0.0.1:$MIRROR_PORT" \
    --cert "$WORK/cert.pem" --key "$WORK/key.pem" --workers "$WORKERS" \
    --access-log "$MIRROR_LOG" --max-connections 4096 &
MIRROR_PID=$!
PIDS+=($MIRROR_PID)
wait_port "$MIRROR_PORT"

# ---- runs -------------------------------------------------------------------------------------
RAW=$WORK/raw; rm -rf "$RAW"; mkdir -p "$RAW"
# CPU time (clock ticks) used so far by a process and its children (nginx's worker).
cpu_ticks() {
    local total=0 p
    for p in "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        [ -r "/proc/$p/stat" ] || continue
        total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$total"
}
run() { # scenario server port round pid
    local out="$RAW/$1-$2-$4.txt" before after
    before=$(cpu_ticks "$5")
    wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 10s --latency \
        -s "$WORK/paths.lua" "https://127.0.0.1:$3" -- "$WORK/paths-$1.txt" > "$out" 2>&1 || true
    after=$(cpu_ticks "$5")
    echo "server-cpu-seconds: $(( (after - before) * 100 / $(getconf CLK_TCK) ))e-2" >> "$out"
}
echo "bench-mirror: $ROUNDS rounds x ${DURATION}s, $CONNS connections, wrk threads $WRK_THREADS, mirror workers $WORKERS, nginx prefers AES-128: $NGINX_AES128"
IFS=, read -ra SCN <<< "$SCENARIOS"
for s in "${SCN[@]}"; do
    # warm both servers and the page cache
    wrk -t1 -c8 -d2s -s "$WORK/paths.lua" "https://127.0.0.1:$NGINX_PORT" -- "$WORK/paths-$s.txt" >/dev/null 2>&1 || true
    wrk -t1 -c8 -d2s -s "$WORK/paths.lua" "https://127.0.0.1:$MIRROR_PORT" -- "$WORK/paths-$s.txt" >/dev/null 2>&1 || true
    for r in $(seq "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then
            run "$s" nginx "$NGINX_PORT" "$r" "$NGINX_PID"; run "$s" mirror "$MIRROR_PORT" "$r" "$MIRROR_PID"
        else
            run "$s" mirror "$MIRROR_PORT" "$r" "$MIRROR_PID"; run "$s" nginx "$NGINX_PORT" "$r" "$NGINX_PID"
        fi
        echo "  $s round $r done"
    done
done

python3 - "$RAW" "$WORK/results.md" "$SCENARIOS" <<'PY'
import glob, os, re, statistics, sys
raw, out, scenarios = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}
SIZE = {"B": 1 / 2**20, "KB": 1 / 1024, "MB": 1.0, "GB": 1024.0}
def parse(path):
    t = open(path).read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", t)
    tput = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", t)
    p99 = re.search(r"\s99%\s+([\d.]+)(\w+)", t)
    errs = re.search(r"Socket errors: (.*)", t)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    total = re.search(r"(\d+) requests in", t)
    cpu = re.search(r"server-cpu-seconds: (\d+)e-2", t)
    if not rps:
        return None
    return {"rps": float(rps.group(1)),
            "mib": float(tput.group(1)) * SIZE.get(tput.group(2), 1.0) if tput else 0.0,
            "p99": float(p99.group(1)) * UNIT.get(p99.group(2), 1.0) if p99 else float("nan"),
            "per_cpu_s": (int(total.group(1)) / (int(cpu.group(1)) / 100)) if total and cpu and int(cpu.group(1)) else float("nan"),
            "errors": (errs.group(1) if errs else "") + (" non2xx=" + non2xx.group(1) if non2xx else "")}
goals = {"small": ("20 KiB", "rps >= 1.0x nginx, p99 <= 5 ms"),
         "large": ("5 MiB", "MiB/s >= 1.3x nginx"),
         "meta": ("metadata", ">= 30,000 rps")}
lines = ["| files | server | req/s (median) | MiB/s | p99 ms | req per server CPU-s | runs | errors |",
         "|---|---|---|---|---|---|---|---|"]
summary = []
for s in scenarios:
    med = {}
    for server in ("nginx", "mirror"):
        runs = [r for r in (parse(p) for p in sorted(glob.glob(os.path.join(raw, f"{s}-{server}-*.txt")))) if r]
        if not runs:
            lines.append(f"| {s} | {server} | (no result) | | | 0 | |"); continue
        m = {k: statistics.median(r[k] for r in runs) for k in ("rps", "mib", "p99", "per_cpu_s")}
        med[server] = m
        errs = "; ".join(sorted({r["errors"] for r in runs if r["errors"]})) or "-"
        name = "cpantuf-mirror" if server == "mirror" else "nginx"
        lines.append(f"| {goals[s][0]} | {name} | {m['rps']:,.0f} | {m['mib']:,.1f} | {m['p99']:.2f} | {m['per_cpu_s']:,.0f} | {len(runs)} | {errs} |")
    if "nginx" in med and "mirror" in med:
        rr = med["mirror"]["rps"] / med["nginx"]["rps"]
        eff = med["mirror"]["per_cpu_s"] / med["nginx"]["per_cpu_s"]
        summary.append(f"- {goals[s][0]}: cpantuf-mirror / nginx = {rr:.2f}x requests/s, "
                       f"{eff:.2f}x requests per server CPU-second "
                       f"({med['mirror']['mib']:,.0f} vs {med['nginx']['mib']:,.0f} MiB/s), "
                       f"cpantuf-mirror p99 {med['mirror']['p99']:.2f} ms; goal: {goals[s][1]}")
text = "\n".join(lines + [""] + summary) + "\n"
open(out, "w").write(text)
print(text)
PY
echo "bench-mirror: raw wrk output in $RAW, table in $WORK/results.md"
