#!/usr/bin/env bash
# The Go conformance host (test/plugin/host, a Go module: go-plugin and Vault's
# sdk from the Go module proxy), built with the machine's Go into
# $GOBIN/tvm-host. Rebuilt only when the host's sources change: the status
# names the sha256 of go.mod, go.sum and the .go files. Run by
# scripts/real-parts (REAL, GOBIN, GOMODCACHE, GOCACHE, GOFLAGS, GOTOOLCHAIN);
# test/plugin/support.ts runs it through the driver.
set -uo pipefail
SRC="$(cd "$(dirname "$0")/../../test/plugin/host" && pwd)"
STATUS="$REAL/status/go-host"
BIN="$GOBIN/tvm-host"
STAMP="$REAL/go-host.sources"
LOG="$REAL/go-host-build.log"
GO=${GO:-/usr/local/go/bin/go}
# Two test files may ask at once: one builds, the other waits and finds it built.
exec 9>"$REAL/go-host.lock"
flock 9
if ! "$GO" version >/dev/null 2>&1; then
  echo "unavailable: no Go toolchain at $GO" > "$STATUS"; exit 0
fi
sources=$(cd "$SRC" && cat go.mod go.sum $(ls *.go | sort) | sha256sum | cut -c1-12)
modules=$(cd "$SRC" && "$GO" list -m -f '{{.Path}}@{{.Version}}' github.com/hashicorp/go-plugin github.com/hashicorp/vault/sdk 2>/dev/null | sed 's|github.com/hashicorp/||' | paste -sd, -)
version="${modules:-unknown},src-$sources"
if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$sources" ]; then
  echo "ok $version $BIN" > "$STATUS"; exit 0
fi
rm -f "$BIN" "$STAMP"
if ! (cd "$SRC" && timeout 20m "$GO" build -o "$BIN" .) >"$LOG" 2>&1; then
  echo "unavailable: go build of test/plugin/host failed: $(grep -v '^go: downloading' "$LOG" | tail -1)" > "$STATUS"; exit 0
fi
echo "$sources" > "$STAMP"
echo "ok $version $BIN" > "$STATUS"
