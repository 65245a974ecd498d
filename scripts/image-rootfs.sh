#!/usr/bin/env bash
# Lays out the root filesystem of berth's container image in OUT from a built
# berth binary: the binary, the shared C libraries it links (from this
# machine), CA certificates for object stores over HTTPS, passwd/group with
# the unprivileged `berth` user (65532), the registry:2-compatible config,
# and the data directory. Used by scripts/build-image.sh and by the
# Dockerfile's build stage, so both images hold the same files.
#
#   scripts/image-rootfs.sh target/release/berth OUT
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bin=${1:?usage: image-rootfs.sh BINARY OUT}
out=${2:?usage: image-rootfs.sh BINARY OUT}

mkdir -p "$out/usr/bin" "$out/etc/docker/registry" "$out/etc/ssl/certs" \
  "$out/var/lib/registry" "$out/tmp"
chmod 1777 "$out/tmp"
install -m 0755 "$bin" "$out/usr/bin/berth"
if command -v strip >/dev/null 2>&1; then strip "$out/usr/bin/berth" 2>/dev/null || true; fi

# Shared libraries and the dynamic loader, at the paths the binary names.
ldd "$bin" | while read -r first second third _; do
  case "$first" in
    linux-vdso.so.*) continue ;;
    /*) lib=$first ;;                       # the loader: "/lib64/ld-linux-x86-64.so.2 (0x...)"
    *) [ "$second" = "=>" ] && lib=$third || continue ;;
  esac
  [ -e "$lib" ] || { echo "image-rootfs: $lib not found" >&2; exit 1; }
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
done

ca=/etc/ssl/certs/ca-certificates.crt
if [ -f "$ca" ]; then cp "$ca" "$out$ca"; else echo "image-rootfs: no $ca; object stores over HTTPS need one" >&2; fi

printf 'root:x:0:0:root:/:/sbin/nologin\nberth:x:65532:65532:berth:/var/lib/registry:/sbin/nologin\n' >"$out/etc/passwd"
printf 'root:x:0:\nberth:x:65532:\n' >"$out/etc/group"
cp "$here/deploy/image/config.yml" "$out/etc/docker/registry/config.yml"
