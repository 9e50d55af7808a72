#!/usr/bin/env bash
# `make proto`: regenerates Shared/Contracts/Generated from proto/ with Debian's protoc and protoc-gen-swift
# built from the mirrored swift-protobuf (the version Package.swift names).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd); cd "$root"
version=1.39.0
tool="$root/.build-protoc/swift-protobuf-$version"
if [ ! -x "$tool/.build/release/protoc-gen-swift" ]; then
  rm -rf "$tool"; mkdir -p "$root/.build-protoc"
  git clone -q --depth 1 --branch "$version" https://github.com/apple/swift-protobuf "$tool"
  (cd "$tool" && swift build -c release --product protoc-gen-swift >/dev/null)
fi
out="$root/Shared/Contracts/Generated"
rm -f "$out"/*.pb.swift; mkdir -p "$out"
protoc --plugin=protoc-gen-swift="$tool/.build/release/protoc-gen-swift" \
  --swift_opt=Visibility=Public --swift_opt=FileNaming=PathToUnderscores \
  -I proto -I /usr/include $(cd proto && find funnel -name '*.proto' | sort) --swift_out="$out"
ls "$out"
