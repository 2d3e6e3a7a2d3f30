# Sourced by scripts/test and scripts/run: make .venv hold this checkout and its dependencies.
# Needs only python3 >= 3.11 (and npm for the contract tests). Re-installs only when
# pyproject.toml or package-lock.json changed since the last run.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

_python_ok() {
  "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

_find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 && _python_ok "$candidate"; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

_sha256() {
  .venv/bin/python -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
}

# ensure_venv [extra]: create .venv if missing and `pip install -e .[extra]` when needed.
ensure_venv() {
  local extra="${1:-}" python stamp want
  if [ ! -x .venv/bin/python ]; then
    python="$(_find_python)" || {
      echo "error: PeerBridge needs Python >= 3.11; set PYTHON=/path/to/python3.11" >&2
      exit 1
    }
    echo "==> creating .venv with $python"
    "$python" -m venv .venv
  fi
  if ! _python_ok .venv/bin/python; then
    echo "error: .venv uses Python < 3.11; remove .venv and run again" >&2
    exit 1
  fi
  stamp=".venv/.peerbridge-installed"
  want="$(_sha256 pyproject.toml)"
  # A test install (with extras) also satisfies a plain one.
  if [ -f "$stamp" ] && grep -qxF -e "$want $extra" -e "$want test" "$stamp"; then
    return 0
  fi
  echo "==> installing PeerBridge into .venv${extra:+ (with [$extra])}"
  # pip relays every build-backend warning even with --quiet: show its output only on failure.
  if ! .venv/bin/python -m pip install --disable-pip-version-check -e ".${extra:+[$extra]}" \
    >.venv/pip-install.log 2>&1; then
    cat .venv/pip-install.log >&2
    echo "error: pip install failed (log above, also in .venv/pip-install.log)" >&2
    exit 1
  fi
  echo "$want $extra" >"$stamp"
}

# ensure_node_modules: `npm ci` when package-lock.json changed (the contract tests' Node tools).
ensure_node_modules() {
  local stamp="node_modules/.peerbridge-lock-sha256" want
  if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm (Node 20) is needed for the contract tests; install Node 20 and run again" >&2
    exit 1
  fi
  want="$(_sha256 package-lock.json)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "==> npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
}

export PATH="$ROOT/.venv/bin:$PATH"

# ensure_chromium: the browser tests (tests/browser) drive Debian's Chromium through Playwright.
# As root (CI, the project's machines) install it quietly when missing; otherwise say how.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromium ]; then
    return 0
  fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> apt-get install chromium (for the browser tests)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
      >/tmp/peerbridge-chromium-install.log 2>&1; then
      cat /tmp/peerbridge-chromium-install.log >&2
      echo "error: installing chromium failed (log above)" >&2
      exit 1
    fi
    return 0
  fi
  echo "note: Chromium is missing, so tests/browser will fail: run 'sudo apt-get install chromium'" >&2
}
