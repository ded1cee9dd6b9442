#!/usr/bin/env bash
# The Terraform Vault provider v5.9.0, built from the Go module proxy with
# `go install`. The proxy serves no v5 release tag of
# github.com/hashicorp/terraform-provider-vault (its v5 has no /v5 module path),
# only v1.9.0 and the pseudo-version of the commit tagged v5.9.0, used here.
# The binary lands in the unpacked filesystem-mirror layout
#   $REAL/terraform-plugins/registry.terraform.io/hashicorp/vault/5.9.0/<os>_<arch>/terraform-provider-vault
# so its directory serves a CLI config's dev_overrides ("hashicorp/vault" = dir)
# and the tree a filesystem_mirror. Run by scripts/real-parts (REAL, GOBIN,
# GOMODCACHE, GOCACHE, GOFLAGS, GOTOOLCHAIN).
set -uo pipefail
VERSION=5.9.0
MODULE=github.com/hashicorp/terraform-provider-vault
PSEUDO=v1.9.1-0.20260422134934-5e9fcd457a99
STATUS="$REAL/status/provider"
LOG="$REAL/provider-build.log"
GO=${GO:-/usr/local/go/bin/go}
if ! "$GO" version >/dev/null 2>&1; then
  echo "unavailable: no Go toolchain at $GO" > "$STATUS"; exit 0
fi
DIR="$REAL/terraform-plugins/registry.terraform.io/hashicorp/vault/$VERSION/$("$GO" env GOOS)_$("$GO" env GOARCH)"
BIN="$DIR/terraform-provider-vault"
built() { [ -x "$BIN" ] && "$GO" version -m "$BIN" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+$MODULE[[:space:]]+$PSEUDO[[:space:]]"; }
if built; then echo "ok $VERSION $BIN" > "$STATUS"; exit 0; fi
mkdir -p "$DIR" && rm -f "$BIN"
if ! GOBIN="$DIR" timeout 30m "$GO" install "$MODULE@$PSEUDO" >"$LOG" 2>&1; then
  echo "unavailable: go install $MODULE@$PSEUDO failed: $(grep -v '^go: downloading' "$LOG" | tail -1)" > "$STATUS"; exit 0
fi
if built; then
  echo "ok $VERSION $BIN" > "$STATUS"
else
  echo "unavailable: go install $MODULE@$PSEUDO left no provider binary at $BIN" > "$STATUS"
fi
