#!/usr/bin/env bash
# Prints the path of a working Chromium/Chrome binary (tests/browser.rs renders report.html
# in it). $CHROME wins when set; otherwise the first of the usual names on PATH that answers
# --version. When none is found, installs Debian's `chromium` package (with fonts-liberation,
# so text renders) using apt-get: directly as root, through sudo otherwise; fails with the fix
# when neither is possible. Never skips silently. Everything but the path goes to stderr.
set -euo pipefail

works() { [ -x "$1" ] && timeout 60 "$1" --version >/dev/null 2>&1; }

find_chrome() {
  if [ -n "${CHROME:-}" ]; then
    if works "$CHROME"; then echo "$CHROME"; return 0; fi
    echo "ensure-chromium: CHROME=$CHROME is not a working browser binary" >&2
    return 1
  fi
  local name path
  for name in chromium chromium-browser google-chrome-stable google-chrome chrome; do
    path="$(command -v "$name" 2>/dev/null || true)"
    if [ -n "$path" ] && works "$path"; then echo "$path"; return 0; fi
  done
  return 1
}

if find_chrome; then exit 0; fi
if [ -n "${CHROME:-}" ]; then
  echo "ensure-chromium: fix: point CHROME at a Chromium/Chrome binary, or unset it" >&2
  exit 1
fi

fix="install Chromium (Debian/Ubuntu, as root: apt-get install -y chromium) or set CHROME=/path/to/chrome"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: no Chromium/Chrome found and no apt-get to install it; fix: $fix" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "ensure-chromium: no Chromium/Chrome found; installing it needs root and there is no sudo; fix: $fix" >&2
  exit 1
fi
echo "ensure-chromium: no Chromium/Chrome found; installing Debian's chromium with apt-get (first run only)" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q >&2
"${as_root[@]}" apt-get install -y -q --no-install-recommends chromium fonts-liberation >&2
if find_chrome; then exit 0; fi
echo "ensure-chromium: apt-get installed chromium but no working binary was found; fix: $fix" >&2
exit 1
