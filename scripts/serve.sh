#!/usr/bin/env bash
# Runs `trackwire serve` on embedded defaults: HTTP on 127.0.0.1:8080, state under ./data.
# Extra arguments go to `trackwire serve` (e.g. --http-addr 0.0.0.0:8080 --data-dir /var/lib/tw).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
exec cargo run --locked --release --bin trackwire -- serve "$@"
