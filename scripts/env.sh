# Sourced by the project's scripts: where slow, reusable things live (outside the clone, so a fresh
# clone re-uses them and `git clean` never throws them away).
export TRACKWIRE_CACHE="${TRACKWIRE_CACHE:-$HOME/.cache/trackwire}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$TRACKWIRE_CACHE/target}"
export TRACKWIRE_VENV="${TRACKWIRE_VENV:-$TRACKWIRE_CACHE/venv}"
mkdir -p "$TRACKWIRE_CACHE"
