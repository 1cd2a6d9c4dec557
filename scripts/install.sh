#!/usr/bin/env bash
# Installs everything the project needs, skipping what is already there (idempotent):
# Debian libraries for WeasyPrint, uv, the project's virtualenv from uv.lock, SecantusDB
# (the local MongoDB-compatible server) in a virtualenv of its own, and the tools the tests use
# to check the API from outside: headless Chromium (Debian's), Node.js with openapi-typescript,
# openapi-fetch and TypeScript in .tools/node (pinned by scripts/node/package-lock.json), and
# openapi-python-client in a virtualenv of its own. None of these tools ship with the service.
source "$(dirname "$0")/lib.sh"

APT_PACKAGES=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils)
command -v python3 >/dev/null 2>&1 || { echo "error: python3 (3.11) is required" >&2; exit 1; }
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "note: not root and no sudo: Debian packages must already be installed" >&2
fi
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# Test tools: any Chromium and Node.js on PATH will do (Playwright drives the system browser;
# it never downloads one).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# uv: the one on PATH, else ours in .tools/uv (Debian's python3 ships without pip and refuses
# system-wide pip installs, so uv goes into a virtualenv of its own).
[ -x "$TOOLS/uv/bin/uv" ] && export PATH="$TOOLS/uv/bin:$PATH"
if ! command -v uv >/dev/null 2>&1; then
  say "installing uv in $TOOLS/uv"
  if ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
  fi
  mkdir -p "$TOOLS"
  python3 -m venv "$TOOLS/uv"
  "$TOOLS/uv/bin/python" -m pip install --quiet --disable-pip-version-check uv
  export PATH="$TOOLS/uv/bin:$PATH"
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
NODE_TOOLS="$TOOLS/node"
if [ ! -d "$NODE_TOOLS/node_modules" ] || \
   ! cmp -s "$ROOT/scripts/node/package-lock.json" "$NODE_TOOLS/package-lock.json"; then
  say "installing openapi-typescript, openapi-fetch and TypeScript (client checks) in $NODE_TOOLS"
  mkdir -p "$NODE_TOOLS"
  cp "$ROOT/scripts/node/package.json" "$ROOT/scripts/node/package-lock.json" "$NODE_TOOLS/"
  (cd "$NODE_TOOLS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

OPENAPI_PYTHON_CLIENT_VERSION="0.29.1"
CLIENT_TOOLS="$TOOLS/openapi-python-client"
if [ ! -x "$CLIENT_TOOLS/bin/openapi-python-client" ] || \
   ! "$CLIENT_TOOLS/bin/python" -c "import importlib.metadata as m,sys,dateutil; sys.exit(m.version('openapi-python-client')!='$OPENAPI_PYTHON_CLIENT_VERSION')" 2>/dev/null; then
  say "installing openapi-python-client $OPENAPI_PYTHON_CLIENT_VERSION (client checks) in $CLIENT_TOOLS"
  mkdir -p "$TOOLS"
  uv venv --quiet --allow-existing --python 3.11 "$CLIENT_TOOLS"
  # python-dateutil: what a generated client needs besides httpx and attrs, to run it here.
  uv pip install --quiet --python "$CLIENT_TOOLS/bin/python" \
    "openapi-python-client==$OPENAPI_PYTHON_CLIENT_VERSION" "python-dateutil>=2.9"
fi
say "install complete"
