#!/usr/bin/env bash
# Writes on stdout the ConfigMap that holds a server's functions: every
# file of DIR (the policy file, functions.toml, as text; the components as
# binary data), to mount read-only at /etc/wsandbox. A ConfigMap holds at
# most 1 MiB: larger components belong in the image or a volume.
#
# Usage: deploy/make-configmap.sh [DIR] [NAME] > configmap.yaml
#   DIR   [default: deploy/functions]   NAME  [default: wsandbox-functions]
set -euo pipefail
dir="${1:-$(dirname "$0")/functions}"
name="${2:-wsandbox-functions}"
[ -f "$dir/functions.toml" ] || { echo "make-configmap.sh: no $dir/functions.toml" >&2; exit 2; }
echo "apiVersion: v1"
echo "kind: ConfigMap"
echo "metadata:"
echo "  name: $name"
echo "  labels:"
echo "    app.kubernetes.io/name: wsandbox"
echo "data:"
for file in "$dir"/*.toml; do
    echo "  $(basename "$file"): |"
    sed 's/^/    /' "$file"
done
binaries=("$dir"/*.wasm)
if [ -e "${binaries[0]}" ]; then
    echo "binaryData:"
    for file in "${binaries[@]}"; do
        echo "  $(basename "$file"): $(base64 -w0 "$file")"
    done
fi
