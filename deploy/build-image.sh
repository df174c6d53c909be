#!/usr/bin/env bash
# Builds the container image of wsandbox offline: a release build (or the
# binary given), the shared libraries it links and the host's CA bundle
# staged as the root of a FROM scratch image (deploy/Containerfile), built
# by podman.
#
# Usage: deploy/build-image.sh [--binary PATH] [--tag TAG]
#   --binary PATH  stage this wsandbox instead of building one
#   --tag TAG      the image's name [default: localhost/wsandbox:VERSION]
# Prints the image's name on stdout once built.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
binary=""
tag="localhost/wsandbox:$version"
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --tag) tag="$2"; shift 2 ;;
        *) echo "build-image.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$binary" ]; then
    cargo build --release --locked >&2
    binary=target/release/wsandbox
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
root="$context/rootfs"
install -D -m 0755 "$binary" "$root/usr/local/bin/wsandbox"
if command -v strip >/dev/null; then
    strip "$root/usr/local/bin/wsandbox"
fi
# The libraries it links (glibc's, which also resolves names for the
# broker: its NSS "files" and "dns" are built into libc.so since 2.34), at
# the paths the binary names them by.
ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
    sort -u | while read -r lib; do
        install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
    done
# The guests' HTTPS trusts the host's certificate authorities.
for bundle in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
    if [ -f "$bundle" ]; then
        install -D -m 0644 "$bundle" "$root/etc/ssl/certs/ca-certificates.crt"
        break
    fi
done
# Names for the ids the container runs as; a writable /tmp; where the
# functions and the cache are mounted.
install -d -m 0755 "$root/etc" "$root/etc/wsandbox"
printf 'root:x:0:0::/:/nonexistent\nnobody:x:65534:65534::/nonexistent:/nonexistent\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
install -d -m 1777 "$root/tmp" "$root/var/cache/wsandbox"
cp deploy/Containerfile "$context/Containerfile"

deploy/podman.sh build --quiet --file "$context/Containerfile" --tag "$tag" "$context" >&2
echo "$tag"
