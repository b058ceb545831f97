#!/usr/bin/env bash
# Installs (once) what checks deploy/: checkov, in a virtual environment of its own (its pinned
# dependencies would fight the test clients'), and kubectl (with kustomize) when it is missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$here/scripts/env.sh"
venv="$TRACKWIRE_CACHE/checkov-venv"
req="$here/tests/python/requirements-deploy.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if ! [ -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi
if ! command -v kubectl > /dev/null; then
  echo "kubectl not found: installing the Debian package (needs root)" >&2
  sudo_="$( [ "$(id -u)" = 0 ] || echo sudo )"
  $sudo_ apt-get update -q
  $sudo_ apt-get install -y --no-install-recommends kubectl || $sudo_ apt-get install -y --no-install-recommends kubernetes-client
fi
