#!/usr/bin/env bash
# Installs (once) tansu, the Kafka-protocol broker the Kafka tests run against (crates.io,
# Apache-2.0), into the cache outside the clone. The first build takes 15-25 minutes on 2 cores;
# re-runs find the binary and return at once.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$here/scripts/env.sh"
tools="$TRACKWIRE_CACHE/tools"
version="0.6.0"
if [ -x "$tools/bin/tansu" ] && "$tools/bin/tansu" --version 2>/dev/null | grep -q "$version"; then exit 0; fi
cargo install tansu --version "$version" --locked --no-default-features --features dynostore \
  --root "$tools" --target-dir "$TRACKWIRE_CACHE/tansu-target"
