#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs them.
# README.md's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

# A real etcd (Debian's etcd-server, with etcdctl) for the etcd backend's tests; openssl
# encrypts values by hand in tests/encryption.rs.
if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1 \
  || ! command -v openssl >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server etcd-client openssl
fi

if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo nextest run --workspace --no-fail-fast
# Once more on the epoll driver, so the fallback where io_uring is missing stays honest.
MONOIO_FORCE_LEGACY_DRIVER=1 cargo nextest run --workspace --no-fail-fast
