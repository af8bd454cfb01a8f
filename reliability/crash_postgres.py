"""A PostgreSQL server the crash test can crash and bring back on the same data directory:
``crash`` is ``pg_ctl stop -m immediate`` (no checkpoint: the next start replays the WAL),
``recover`` starts the postmaster again (``PostgresServer.launch``) and times its recovery."""

from __future__ import annotations

import subprocess

from tests.postgres_server import PostgresServer

__all__ = ["CrashablePostgres"]


class CrashablePostgres(PostgresServer):
    """tests/postgres_server.py's throwaway cluster, plus an immediate stop and a restart."""

    def crash(self) -> None:
        """Immediate-mode stop: every server process quits at once, nothing is flushed."""
        stop = subprocess.run(
            self._as_owner(
                [str(self.bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate"]
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if stop.returncode != 0:
            raise RuntimeError(f"pg_ctl stop -m immediate failed:\n{stop.stdout}{stop.stderr}")
        if self.process is not None:
            self.process.wait(timeout=30)
            self.process = None

    def recover(self, timeout: float = 30.0) -> float:
        """Start the postmaster again (crash recovery); seconds until it accepts connections."""
        return self.launch(timeout)
