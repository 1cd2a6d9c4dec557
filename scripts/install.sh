#!/usr/bin/env bash
# Installs everything the project needs, skipping what is already there (idempotent):
# Debian libraries for WeasyPrint, uv, the project's virtualenv from uv.lock, and SecantusDB
# (the local MongoDB-compatible server) in a virtualenv of its own.
source "$(dirname "$0")/lib.sh"

APT_PACKAGES=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v uv >/dev/null 2>&1; then
  say "installing uv"
  python3 -m pip install --quiet uv 2>/dev/null || python3 -m pip install --quiet --user uv
  export PATH="$HOME/.local/bin:$PATH"
fi

say "syncing the project's virtualenv (uv.lock)"
(cd "$ROOT" && uv sync --frozen --quiet --python 3.11 --compile-bytecode)

SECANTUS_VERSION="0.7.0b3"
if [ ! -x "$TOOLS/secantus/bin/secantusd-py" ] || \
   ! "$TOOLS/secantus/bin/python" -c "import importlib.metadata as m,sys; sys.exit(m.version('secantusdb')!='$SECANTUS_VERSION')" 2>/dev/null; then
  say "installing SecantusDB $SECANTUS_VERSION (local MongoDB-compatible server) in $TOOLS/secantus"
  mkdir -p "$TOOLS"
  uv venv --quiet --python 3.11 "$TOOLS/secantus"
  uv pip install --quiet --python "$TOOLS/secantus/bin/python" "secantusdb==$SECANTUS_VERSION"
fi
say "install complete"
