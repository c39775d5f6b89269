"""The sweep of temporary files (jobs.spool.sweep_temporary) deletes only those whose writer is gone,
whatever their age: a live writer holds the lock on its temporary file until its rename."""

import os

from jobs import spool
from jobs.spool import files


def test_a_live_writers_temporary_file_is_kept_and_swept_once_its_writer_is_gone(tmp_path):
    fd, tmp = files.locked_temporary(lambda: files.create_temporary(tmp_path / "status.json"))
    try:
        assert spool.sweep_temporary(tmp_path) == 0
        assert tmp.exists()
    finally:
        os.close(fd)   # its writer died before the rename: the kernel lets go of its lock
    assert spool.sweep_temporary(tmp_path) == 1 and not tmp.exists()
