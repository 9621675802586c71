#!/usr/bin/env bash
# Regenerates Sources/RapportProto from proto/ with protoc and the Swift plugins built from this package's own
# resolved dependencies. With --check, fails when the committed code differs from what the protos generate.
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
[ "${1:-}" = "--check" ] && check=true

if ! command -v protoc >/dev/null 2>&1; then
    apt-get update
    apt-get install -y protobuf-compiler
fi

swift build -c release --product protoc-gen-swift
swift build -c release --product protoc-gen-grpc-swift-2
bin=$(swift build -c release --show-bin-path)

out="$PWD/Sources/RapportProto"
if $check; then
    out=$(mktemp -d)
fi

protos=$(cd proto && find . -name '*.proto' | sed 's|^\./||' | sort)
rm -f "$out"/*.pb.swift "$out"/*.grpc.swift
(
    cd proto
    protoc \
        --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
        --plugin=protoc-gen-grpc-swift-2="$bin/protoc-gen-grpc-swift-2" \
        --swift_opt=Visibility=Package,FileNaming=PathToUnderscores,UseAccessLevelOnImports=true \
        --swift_out="$out" \
        --grpc-swift-2_opt=Visibility=Package,FileNaming=PathToUnderscores,UseAccessLevelOnImports=true,Server=true,Client=true \
        --grpc-swift-2_out="$out" \
        $protos
)

if $check; then
    if ! diff -r -x '*.md' "$out" Sources/RapportProto >/dev/null; then
        diff -r -x '*.md' "$out" Sources/RapportProto | head -40
        echo "Sources/RapportProto is out of date: run scripts/generate-protos.sh and commit the result." >&2
        exit 1
    fi
    echo "Sources/RapportProto matches proto/."
fi
