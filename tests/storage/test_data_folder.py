"""The embedded PostgreSQL's folder checked before anything starts (storage/embedded.py): a folder
this process may not write in, or a pgdata/ of another user's, stops the start with one line
naming the chown that mends it. The Docker image's check (.ci/docker_check.py) tries the same with
a host folder of root's mounted at /data."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from storage import DataFolderUnusable
from storage.embedded import check_data_folder

NOBODY = 65534


def check_as_nobody(folder: Path) -> str:
    """check_data_folder(folder) as uid and gid 65534, in a forked child (the tests run as root in
    CI, and root may write anywhere): the error's text, or "" when the folder is usable."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never back into pytest
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                check_data_folder(folder)
                answer = ""
            except DataFolderUnusable as exc:
                answer = str(exc)
            os.write(write, answer.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    return answer


@pytest.fixture
def shared():
    """A folder every user may reach (pytest's own are root's alone, 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="twinhub-data-folder-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to check as another user (CI runs as root)")


@needs_root
def test_a_folder_of_roots_is_refused_with_the_chown_to_run(shared):
    folder = shared / "data"
    folder.mkdir(mode=0o755)
    answer = check_as_nobody(folder)
    assert f"the data folder {folder} belongs to uid 0, gid 0 and this process may not write in it" in answer
    assert f"chown -R {NOBODY}:{NOBODY} {folder}" in answer and "\n" not in answer


@needs_root
def test_a_pgdata_of_another_user_is_refused(shared):
    folder = shared / "data"
    (folder / "pgdata").mkdir(parents=True)
    os.chown(folder, NOBODY, NOBODY)
    answer = check_as_nobody(folder)
    assert "holds a pgdata/ that belongs to uid 0, gid 0" in answer and f"chown -R {NOBODY}:{NOBODY}" in answer


@needs_root
def test_a_folder_of_ones_own_is_made_and_accepted(shared):
    parent = shared / "mine"
    parent.mkdir()
    os.chown(parent, NOBODY, NOBODY)
    assert check_as_nobody(parent / "data") == ""
    assert (parent / "data").is_dir() and (parent / "data").stat().st_uid == NOBODY


def test_a_missing_folder_is_made(tmp_path):
    check_data_folder(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()
