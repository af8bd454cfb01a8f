"""A PostgreSQL server the crash test can crash and bring back on the same data directory:
``crash`` is ``pg_ctl stop -m immediate`` (no checkpoint: the next start replays the WAL),
``recover`` starts the postmaster again with the settings of ``PostgresServer.start``."""

from __future__ import annotations

import subprocess
import time

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
        started = time.monotonic()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "on" if self.fsync else "off",
            "max_connections": "200",
            "shared_buffers": "128MB",
        }
        args = [str(self.bin / "postgres"), "-D", str(self.data)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self._as_owner(args), stdout=log, stderr=subprocess.STDOUT
            )
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited in recovery:\n{self.log.read_text()}")
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                return time.monotonic() - started
            time.sleep(0.02)
        raise RuntimeError(f"postgres did not recover in {timeout} s:\n{self.log.read_text()}")
