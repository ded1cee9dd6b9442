#!/usr/bin/env bash
# Terraform v1.5.7 (the last MPL-2.0 release), built from the Go module proxy
# with `go install` into $GOBIN. Run by scripts/real-parts, which sets REAL,
# GOBIN, GOMODCACHE, GOCACHE, GOFLAGS and GOTOOLCHAIN.
set -uo pipefail
VERSION=1.5.7
STATUS="$REAL/status/terraform"
BIN="$GOBIN/terraform"
LOG="$REAL/terraform-build.log"
GO=${GO:-/usr/local/go/bin/go}
# The version line only: a CLI configuration of the caller's (TF_CLI_CONFIG_FILE,
# ~/.terraformrc), or a missing one it names, must not decide the check.
version() { TF_CLI_CONFIG_FILE=/dev/null "$BIN" version 2>&1 | grep -m1 '^Terraform v'; }
if [ -x "$BIN" ] && [ "$(version)" = "Terraform v$VERSION" ]; then
  echo "ok $VERSION $BIN" > "$STATUS"; exit 0
fi
if ! "$GO" version >/dev/null 2>&1; then
  echo "unavailable: no Go toolchain at $GO" > "$STATUS"; exit 0
fi
rm -f "$BIN"
if ! timeout 30m "$GO" install "github.com/hashicorp/terraform@v$VERSION" >"$LOG" 2>&1; then
  echo "unavailable: go install github.com/hashicorp/terraform@v$VERSION failed: $(grep -v '^go: downloading' "$LOG" | tail -1)" > "$STATUS"; exit 0
fi
if [ "$(version)" = "Terraform v$VERSION" ]; then
  echo "ok $VERSION $BIN" > "$STATUS"
else
  echo "unavailable: the built terraform does not report v$VERSION: $(TF_CLI_CONFIG_FILE=/dev/null "$BIN" version 2>&1 | head -1)" > "$STATUS"
fi
