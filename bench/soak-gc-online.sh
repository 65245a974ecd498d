#!/usr/bin/env bash
# Serves a registry (e.g. one written by bench/soak-gc-synth.py) with a dry-run
# online GC every 5 s and prints berth's VmRSS/VmHWM once the first run has
# finished, with its log line: the collector's memory on that registry.
#
#   bench/soak-gc-online.sh BERTH ROOT
set -euo pipefail
b=$1
root=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog: {level: info, accesslog: {disabled: true}}\nstorage:\n  filesystem: {rootdirectory: %s}\n  delete: {enabled: true}\n  maintenance:\n    uploadpurging: {enabled: false}\n    gc: {enabled: true, interval: 5s, graceperiod: 30s, dryrun: true}\nhttp: {addr: 127.0.0.1:%s}\n' "$root" "$port" > online.yml
$b serve --config online.yml > online.log 2>&1 &
pid=$!
start=$(grep VmRSS /proc/$pid/status)
for _ in $(seq 1 600); do sleep 1; if grep -q "garbage collection finished" online.log; then break; fi; done
echo "start $start"; grep -E "VmRSS|VmHWM" /proc/$pid/status
grep "garbage collection finished" online.log | head -1 | cut -c1-400
kill "$pid"; wait "$pid" 2>/dev/null || true
