#!/usr/bin/env bash
# Creates (once) the virtual environment the end-to-end tests use and installs the pinned
# independent clients into it. Re-runs are a hash check: nothing is installed twice.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$here/scripts/env.sh"
req="$here/tests/python/requirements.txt"
stamp="$TRACKWIRE_VENV/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
python3 -m venv "$TRACKWIRE_VENV"
"$TRACKWIRE_VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
"$TRACKWIRE_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
