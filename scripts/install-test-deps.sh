#!/usr/bin/env bash
# Installs what berth's tests need on Debian 12: the real clients and
# distribution 2.8.2 used by tests/interop.rs, Apache htpasswd for
# tests/htpasswd_cli.rs, nginx for the replica tests, the S3 servers of
# the S3 driver tests (Garage 2.5.0 with cargo, moto with pip) and Azurite for
# the Azure driver tests (npm). Tools already present are not reinstalled, so
# a warm machine returns at once. Needs root (or sudo).
set -euo pipefail

# tool -> Debian package
declare -A PKG=(
  [docker]=docker.io
  [dockerd]=docker.io
  [skopeo]=skopeo
  [podman]=podman
  [buildah]=buildah
  [umoci]=umoci
  [docker-registry]=docker-registry
  [tar]=tar
  [htpasswd]=apache2-utils
  # Browser tests of the web UI (tests/ui_browser.rs).
  [chromium]=chromium
  [chromedriver]=chromium-driver
  [curl]=curl
  [openssl]=openssl
  [nginx]=nginx-light
  [systemd-analyze]=systemd
  [ldd]=libc-bin
  [go]=golang-go
  [docker-compose]=docker-compose
  [mount]=mount
  [umount]=mount
  [losetup]=mount
  [mkfs.ext4]=e2fsprogs
  [strace]=strace
  [containerd]=containerd
  [ctr]=containerd
)

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

missing=()
for tool in "${!PKG[@]}"; do
  have "$tool" || missing+=("${PKG[$tool]}")
done
# Unique, stable order.
mapfile -t missing < <(printf '%s\n' "${missing[@]+"${missing[@]}"}" | sed '/^$/d' | sort -u)

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-test-deps: all test tools present"
else
  echo "install-test-deps: installing ${missing[*]}"
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      SUDO=(sudo)
    elif [ "${CI:-}" = true ]; then
      echo "install-test-deps: not root and no sudo; cannot install ${missing[*]}" >&2
      exit 1
    else
      echo "install-test-deps: not root and no sudo; tests needing ${missing[*]} will be skipped" >&2
      SUDO=(skip)
    fi
  fi
  if [ "${SUDO[*]-}" != skip ]; then
    export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a
    # Packages like nginx and docker.io start their services on install; the
    # tests start their own on loopback, so keep the packaged ones stopped.
    added_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
      "${SUDO[@]}" chmod +x /usr/sbin/policy-rc.d
      added_policy=1
    fi
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq "${missing[@]}" </dev/null
    if [ -n "$added_policy" ]; then "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d; fi
  fi
fi

# The Rust side: fmt and clippy ship with the toolchain on these machines;
# try rustup when one is missing, and say so if that cannot work.
for pair in rustfmt:fmt clippy:clippy; do
  comp=${pair%%:*} sub=${pair#*:}
  if ! cargo "$sub" --version >/dev/null 2>&1; then
    echo "install-test-deps: cargo $sub is missing; trying rustup component add $comp" >&2
    if ! { command -v rustup >/dev/null 2>&1 && rustup component add "$comp"; }; then
      echo "install-test-deps: could not add $comp; scripts/test.sh will fail at cargo $sub" >&2
    fi
  fi
done

# S3 servers for the S3 driver tests (tests/common/s3.rs). Garage builds from
# source with cargo (a few minutes, once); moto is a Python package.
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v garage >/dev/null 2>&1; then
  echo "install-test-deps: installing garage 2.5.0 (cargo install, takes a while)"
  cargo install --locked garage@2.5.0
fi
if ! command -v moto_server >/dev/null 2>&1; then
  echo "install-test-deps: installing moto[server]"
  if command -v pip3 >/dev/null 2>&1; then PIP=pip3; else PIP=pip; fi
  "$PIP" install --quiet 'moto[server]' ||
    "$PIP" install --quiet --break-system-packages 'moto[server]'
fi

# oras-py (PyPI `oras`) for tests/interop/oras.rs: the Go `oras` CLI is in
# neither Debian 12 nor PyPI/npm.
if ! python3 -c 'import oras.client' >/dev/null 2>&1; then
  echo "install-test-deps: installing oras-py 0.2.43"
  if command -v pip3 >/dev/null 2>&1; then PIP=pip3; else PIP=pip; fi
  "$PIP" install --quiet 'oras==0.2.43' ||
    "$PIP" install --quiet --break-system-packages 'oras==0.2.43'
fi

# Azurite (Microsoft's Azure Storage emulator) for the Azure driver tests
# (tests/common/azure.rs), from npm; Debian's nodejs/npm when npm is missing.
if ! command -v azurite-blob >/dev/null 2>&1; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-test-deps: installing nodejs and npm for azurite"
    export DEBIAN_FRONTEND=noninteractive
    if [ "$(id -u)" -eq 0 ]; then SUDO_NPM=(); else SUDO_NPM=(sudo -n); fi
    "${SUDO_NPM[@]}" apt-get update -qq
    "${SUDO_NPM[@]}" apt-get install -y -qq nodejs npm </dev/null
  fi
  echo "install-test-deps: installing azurite 3.35.0 (npm)"
  if [ "$(id -u)" -eq 0 ]; then
    npm install -g --no-fund --no-audit azurite@3.35.0
  else
    sudo -n npm install -g --no-fund --no-audit azurite@3.35.0
  fi
fi
