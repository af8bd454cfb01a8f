"""docs/testing-your-integration.md runs: its files are written to a directory and pytest runs
them there, with the installed plugin, in both modes (in-process and subprocess)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.pytest_runs import PYTEST

GUIDE = Path(__file__).parent.parent.parent / "docs" / "testing-your-integration.md"
_FILE_BLOCK = re.compile(r"<!-- file: (\S+) -->\n```python\n(.*?)```", re.DOTALL)


def guide_files() -> dict[str, str]:
    return dict(_FILE_BLOCK.findall(GUIDE.read_text()))


def test_the_guide_has_the_code_and_the_tests() -> None:
    assert sorted(guide_files()) == [
        "metering_job.py",
        "test_metering_job.py",
        "test_own_client.py",
    ]


@pytest.mark.parametrize("mode", ["inprocess", "subprocess"])
def test_the_guides_tests_pass(tmp_path: Path, mode: str) -> None:
    for name, code in guide_files().items():
        (tmp_path / name).write_text(code)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    run = subprocess.run(
        [*PYTEST, f"--marketmeter-mode={mode}"],
        cwd=tmp_path,
        env={**environment, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1].startswith("9 passed in ")
