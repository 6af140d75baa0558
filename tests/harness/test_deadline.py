"""The test run's own guard: a coroutine test that hangs on uvloop fails at its deadline, with
where each task waits, and the run goes on (pytest-timeout's alarm alone cannot stop it there)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_hung_coroutine_test_fails_with_its_tasks_stacks_and_the_run_goes_on():
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/harness/hanging.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "1 failed, 1 passed" in out, out
    assert "FAILED tests/harness/hanging.py::test_hangs - TimeoutError" in out, out
    assert "a helper that hangs too:" in out, out
    assert "hanging.py:9 in wait_forever" in out, out
