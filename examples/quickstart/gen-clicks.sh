#!/usr/bin/env bash
# Writes N web-click events as JSON lines (default 5000) over ten minutes of
# event time, deterministically (the same file every run), to stdout:
#   {"ts":1767225600123,"user":"u042","page":"/pricing","ms":87}
# About one in ten events arrives out of order (up to 20 s late), as clicks
# from a slow mobile connection would.
set -euo pipefail
N=${1:-5000}
awk -v n="$N" 'BEGIN {
  split("/home /pricing /docs /blog /signup /login /docs/install /about", pages, " ")
  weights[1]=30; weights[2]=14; weights[3]=18; weights[4]=10
  weights[5]=6;  weights[6]=9;  weights[7]=9;  weights[8]=4
  seed = 42
  start = 1767225600000            # 2026-01-01T00:00:00Z
  span = 600000                    # ten minutes
  for (i = 0; i < n; i++) {
    seed = (seed * 16807) % 2147483647
    r = seed % 100
    acc = 0
    for (p = 1; p <= 8; p++) { acc += weights[p]; if (r < acc) break }
    ts = start + int(i * span / n)
    seed = (seed * 16807) % 2147483647
    if (seed % 10 == 0) ts -= seed % 20000
    seed = (seed * 16807) % 2147483647
    user = seed % 300
    seed = (seed * 16807) % 2147483647
    printf "{\"ts\":%.0f,\"user\":\"u%03d\",\"page\":\"%s\",\"ms\":%d}\n", ts, user, pages[p], 20 + seed % 400
  }
}'
