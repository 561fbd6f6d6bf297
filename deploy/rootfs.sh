#!/usr/bin/env bash
# Builds the root filesystem of segfn's container image: the segfn binary, the shared
# libraries it loads (found with ldd, at the paths it looks for them), the JavaScript
# runtime guest (so `segfn serve handler.js` and `segfn build handler.js` work in the
# image), CA certificates, an unprivileged `segfn` user (65532) and its writable state
# and cache directories. deploy/Containerfile copies this tree into an empty image, and
# tests/e2e/deploy.rs runs segfn from the same tree with chroot: what is tested is what
# ships.
#
# Usage: deploy/rootfs.sh SEGFN_BINARY JS_RUNTIME_WASM OUT_DIR
set -euo pipefail
if [ $# -ne 3 ]; then
  echo "usage: $0 SEGFN_BINARY JS_RUNTIME_WASM OUT_DIR" >&2
  exit 2
fi
bin="$1" js="$2" out="$3"
for f in "$bin" "$js"; do
  [ -f "$f" ] || { echo "rootfs: $f does not exist" >&2; exit 1; }
done

rm -rf "$out"
mkdir -p "$out"/{usr/local/bin,opt/segfn,etc/ssl/certs,var/lib/segfn,var/cache/segfn,tmp,functions,config}
install -m 0755 "$bin" "$out/usr/local/bin/segfn"
install -m 0644 "$js" "$out/opt/segfn/segfn-js.wasm"
# Each library as ldd resolves it ("name => /path (addr)"), and the loader ("/path (addr)").
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
  while read -r lib; do
    mkdir -p "$out$(dirname "$lib")"
    cp -L "$lib" "$out$lib"
  done
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp -L /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/"
fi
printf 'root:x:0:0:root:/:/nonexistent\nsegfn:x:65532:65532:segfn:/var/lib/segfn:/nonexistent\n' >"$out/etc/passwd"
printf 'root:x:0:\nsegfn:x:65532:\n' >"$out/etc/group"
chmod 1777 "$out/tmp"
chown -R 65532:65532 "$out/var/lib/segfn" "$out/var/cache/segfn"
chmod 0700 "$out/var/lib/segfn"
echo "rootfs: $out ($(du -sh "$out" | cut -f1))"
