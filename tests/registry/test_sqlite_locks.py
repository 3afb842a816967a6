"""Opening the registry must not cancel this process's SQLite locks.

POSIX advisory locks belong to the process: closing *any* descriptor of the database file
drops every lock the process holds on it, including those of connections still open
(sqlite.org/howtocorrupt.html, 2.2). The service opens the registry from several threads
(the monitor's poll, the registry watcher, the request threads, the prediction log): if each
open read the file's header through a descriptor it then closed, another process (a CLI
promotion) closing its own connection would find no other holder, checkpoint and delete the
WAL under the service's connections, and every later open failed with "disk I/O error"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from causalcast.registry import Lineage, Registry
from tests.support.frames import weights_file

OTHER_PROCESS = """
import sys
from causalcast.registry import Registry
with Registry.open(sys.argv[1], create=False) as reg:
    reg.versions()
"""


def test_a_second_open_in_this_process_keeps_the_first_ones_locks(tmp_path: Path) -> None:
    with Registry.open(tmp_path) as reg:
        reg.register_version("m", weights_file(0), {}, {}, Lineage("0" * 64, {}, {}))
    wal = tmp_path / "registry" / "registry.db-wal"
    held = Registry.open(tmp_path, create=False)       # a connection that stays open
    try:
        held.versions()
        assert wal.exists()
        Registry.open(tmp_path, create=False).close()  # another thread's open and close
        # another process opens and closes: it must see this process still holding the file
        subprocess.run([sys.executable, "-c", OTHER_PROCESS, str(tmp_path)], check=True,
                       timeout=60)
        assert wal.exists(), "the WAL was deleted while this process had it open"
        assert [v.ref for v in held.versions()] == ["m:1"]
        with Registry.open(tmp_path, create=False) as again:
            assert [v.ref for v in again.versions()] == ["m:1"]
    finally:
        held.close()
