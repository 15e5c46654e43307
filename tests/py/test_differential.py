"""Differential protocol tests: nats-mini must answer raw-protocol
transcripts exactly like nats-server (after normalization, see harness.py).

Per transcript (one pytest id each):
  * nats-server's output must match the transcript's own expectation, if any;
  * default mode: nats-mini's output must equal nats-server's, or for a
    `differs` transcript, match its `expect_mini`;
  * reference mode (--server-only / DIFF_REFERENCE_ONLY=1): nats-server is run
    a second time and both runs must agree (the transcript is deterministic).
"""

from __future__ import annotations

import difflib
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

import harness
from conftest import binary_for
from transcripts import TRANSCRIPTS


def run_on(kind: str, t: harness.Transcript) -> dict[str, list[str]]:
    return harness.run_on_fresh_server(t, kind, binary_for(kind))


def show(out: dict[str, list[str]]) -> list[str]:
    lines = []
    for conn, frames in out.items():
        for f in frames:
            lines.append(f"[{conn}] " + f.encode("unicode_escape").decode())
    return lines


def assert_same(left: dict, right: dict, lname: str, rname: str) -> None:
    if left == right:
        return
    diff = "\n".join(difflib.unified_diff(show(left), show(right), lname, rname, lineterm="", n=50))
    pytest.fail(f"{lname} and {rname} differ:\n{diff}", pytrace=False)


def check_expectation(t: harness.Transcript, kind: str, got: dict[str, list[str]]) -> None:
    exp = harness.expectation_for(t, kind)
    if exp is None:
        return
    view = {k: harness.expected_view(v, got.get(k, [])) for k, v in exp.items()}
    got_sel = {k: got.get(k, []) for k in exp}
    assert_same(view, got_sel, f"expected ({kind})", kind)


@pytest.mark.parametrize("t", TRANSCRIPTS, ids=[t.name for t in TRANSCRIPTS])
def test_transcript(t: harness.Transcript, ref_only: bool) -> None:
    # Both runs at once, each on its own fresh server process.
    second = "nats-server" if ref_only else "nats-mini"
    with ThreadPoolExecutor(2) as ex:
        fut_ref = ex.submit(run_on, "nats-server", t)
        fut_2nd = ex.submit(run_on, second, t)
        ref = fut_ref.result()
        check_expectation(t, "nats-server", ref)
        other = fut_2nd.result()
    if ref_only:
        assert_same(ref, other, "nats-server run 1", "nats-server run 2")
        return
    mini = other
    if t.differs:
        # deliberate difference: each server must match its own expectation
        check_expectation(t, "nats-mini", mini)
    else:
        assert_same(ref, mini, "nats-server", "nats-mini")


def test_transcript_count() -> None:
    assert len(TRANSCRIPTS) >= 70
    for t in TRANSCRIPTS:
        if t.differs:
            assert t.expect is not None and t.expect_mini is not None, t.name


def test_reference_server_version() -> None:
    out = subprocess.run([harness.nats_server_bin(), "--version"], capture_output=True, text=True, timeout=10)
    assert "v2.15.1" in out.stdout + out.stderr


def test_nats_mini_binary_present(ref_only: bool) -> None:
    """CI must never silently skip: without the binary the default mode fails."""
    if ref_only:
        return
    path = harness.nats_mini_bin()
    assert path.exists(), (
        f"nats-mini binary missing at {path}: build it (cargo build --release -p nats-mini) "
        "or set NATS_MINI_BIN; use --server-only / DIFF_REFERENCE_ONLY=1 for reference mode"
    )
