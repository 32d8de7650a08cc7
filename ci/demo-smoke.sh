#!/usr/bin/env bash
# `make demo` as a newcomer runs it, checked: it starts from nothing, serves lag for
# the group demo-slow within its first minutes, and stops cleanly on Ctrl-C (SIGINT).
#
#   ci/demo-smoke.sh            (from the repository's top folder)
set -u
listen=${LAG_EXPORTER_LISTEN_ADDRESS:-127.0.0.1:9308}
log=$(mktemp)
setsid make demo >"$log" 2>&1 &
pid=$!
stop() { kill -INT -- -"$pid" 2>/dev/null; }
trap stop EXIT

deadline=$((SECONDS + ${DEMO_SMOKE_TIMEOUT:-900}))
lagging() {
  curl -fsS "http://$listen/metrics" 2>/dev/null |
    grep -E '^kafka_consumergroup_lag_sum\{[^}]*consumergroup="demo-slow"' |
    awk '{ s += $2 } END { exit !(s > 0) }'
}
until lagging; do
  if ! kill -0 "$pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
    cat "$log"
    echo "demo smoke: make demo did not serve lag for demo-slow at http://$listen/metrics"
    exit 1
  fi
  sleep 2
done
echo "demo smoke: demo-slow is lagging at http://$listen/metrics after ${SECONDS}s"
stop
trap - EXIT
for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
if kill -0 "$pid" 2>/dev/null; then
  kill -KILL -- -"$pid"
  cat "$log"
  echo "demo smoke: make demo did not stop within 60 s of Ctrl-C"
  exit 1
fi
grep -q Traceback "$log" && { cat "$log"; echo "demo smoke: a traceback in the demo's output"; exit 1; }
echo "demo smoke: stopped cleanly"
