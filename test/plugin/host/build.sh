#!/usr/bin/env bash
# Builds the Go conformance host offline, in GOPATH mode, against Debian's
# packages (golang-go, golang-github-hashicorp-go-plugin-dev,
# golang-google-grpc-dev, golang-goprotobuf-dev, protobuf-compiler).
# The pb/logical/multiplexing Go packages are generated from the plugin's own
# .proto files with Debian's protoc and protoc-gen-go.
#
#   test/plugin/host/build.sh [OUT_DIR]     (default: dist/host)
# Prints the path of the built binary.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out="$(mkdir -p "${1:-$repo/dist/host}" && cd "${1:-$repo/dist/host}" && pwd)"
proto="$repo/src/plugin/proto"
gopath="$out/gopath"

for tool in go protoc protoc-gen-go; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool not found (apt-get install golang-go protobuf-compiler golang-goprotobuf-dev)" >&2; exit 3; }
done
[ -d /usr/share/gocode/src/github.com/hashicorp/go-plugin ] || { echo "build.sh: go-plugin not found (apt-get install golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev)" >&2; exit 3; }

gen() { # gen <package dir> <proto file> <M mappings>
  local tmp; tmp="$(mktemp -d)"
  protoc -I "$proto" -I /usr/include --go_out="plugins=grpc,$3:$tmp" "$2"
  mkdir -p "$gopath/src/tvmhost/$1"
  find "$tmp" -name '*.pb.go' -exec mv {} "$gopath/src/tvmhost/$1/" \;
  rm -rf "$tmp"
}
rm -rf "$gopath/src/tvmhost"
gen logical vault/logical.proto "Mvault/logical.proto=tvmhost/logical"
gen pb vault/backend.proto "Mvault/logical.proto=tvmhost/logical,Mvault/backend.proto=tvmhost/pb,Mgoogle/protobuf/timestamp.proto=github.com/golang/protobuf/ptypes/timestamp"
gen multiplexing vault/multiplexing.proto "Mvault/multiplexing.proto=tvmhost/multiplexing"

export GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS=
export GOCACHE="${GOCACHE:-$out/gocache}"
cd "$here"
go build -o "$out/tvm-host" ./*.go
echo "$out/tvm-host"
