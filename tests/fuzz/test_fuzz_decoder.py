"""A short coverage-guided fuzzing session of the protocol decoder in every test run (issue 9,
part 2): tests/fuzz/fuzz_decoder.py under atheris for a bounded time, from a seed corpus of
every frame type in both encodings. It fails on any crash (an exception other than
ProtocolError, a frame that does not survive a round trip), a slow input or a memory blow-up.
Longer runs: the harness's docstring, figures in docs/reliability.md."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# atheris ships wheels for Linux x86_64 only (pyproject.toml installs it there, as on CI); the
# hypothesis properties in tests/protocol/test_fuzz.py run everywhere.
pytest.importorskip("atheris", reason="atheris has no wheel for this platform (Linux x86_64 only)")

HARNESS = Path(__file__).with_name("fuzz_decoder.py")
ROOT = HARNESS.parents[2]
SECONDS = int(os.environ.get("TWINHUB_FUZZ_SECONDS", "15"))


def test_the_decoder_survives_a_fuzzing_session(tmp_path):
    corpus = tmp_path / "corpus"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    seeded = subprocess.run([sys.executable, str(HARNESS), "--seed", str(corpus)], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert seeded.returncode == 0, seeded.stderr
    run = subprocess.run(
        [sys.executable, str(HARNESS), f"-max_total_time={SECONDS}", "-timeout=2", "-rss_limit_mb=1024",
         "-print_final_stats=1", str(corpus)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=SECONDS + 120,
    )
    log = run.stderr + run.stdout
    crashes = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-")))
    assert run.returncode == 0 and not crashes, f"the fuzzer found {crashes}:\n{log[-3000:]}"
    done = re.search(r"Done (\d+) runs", log)
    assert done, log[-2000:]
    runs = int(done.group(1))
    print(f"atheris: {runs:,} inputs in {SECONDS} s, no crash")
    assert runs > 1_000  # it really ran
