"""Shared fixtures for the Python test suites (differential + nats-py).

Modes
  default          nats-server vs nats-mini; a missing nats-mini binary FAILS.
  reference only   `pytest tests/py --server-only` or DIFF_REFERENCE_ONLY=1:
                   nats-server only (each transcript run twice and compared,
                   plus its expectation); nats-mini tests are not collected.
"""

from __future__ import annotations

import os
import subprocess

import pytest

import harness

KINDS = ("nats-server", "nats-mini")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--server-only",
        action="store_true",
        default=False,
        help="reference mode: run against nats-server only (no nats-mini needed)",
    )


def reference_only(config: pytest.Config) -> bool:
    env = os.environ.get("DIFF_REFERENCE_ONLY", "").strip().lower()
    return bool(config.getoption("--server-only")) or env in ("1", "true", "yes", "on")


def server_kinds(config: pytest.Config) -> tuple[str, ...]:
    return ("nats-server",) if reference_only(config) else KINDS


def binary_for(kind: str):
    return harness.nats_server_bin() if kind == "nats-server" else harness.nats_mini_bin()


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    try:
        ref = harness.nats_server_bin()
        ver = subprocess.run([ref, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        lines.append(f"reference: {ref} ({ver})")
    except Exception as e:  # noqa: BLE001 - reported, tests will fail later
        lines.append(f"reference: not found ({e})")
    if reference_only(config):
        lines.append("mode: REFERENCE ONLY (nats-mini not tested)")
    else:
        mini = harness.nats_mini_bin()
        lines.append(f"nats-mini: {mini}{'' if mini.exists() else ' (MISSING: tests will fail)'}")
    return lines


@pytest.fixture(scope="session")
def ref_only(pytestconfig: pytest.Config) -> bool:
    return reference_only(pytestconfig)
