"""The ten-line script of docs/client.md works in a fresh venv with only `pip install clients/python`.

The package is copied to a temporary directory first: pip builds in the source tree and would leave build/
and *.egg-info behind. pyarrow comes from PyPI (from pip's cache after the first run); this takes about 15 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path
from typing import Any

Server = Any

PACKAGE = Path(__file__).resolve().parents[2]  # clients/python

SCRIPT = textwrap.dedent(
    """
    import sys

    import fletch

    with fletch.Client(sys.argv[1]) as client:
        print(", ".join(info.name for info in client.list()))
        print(client.call("add_int64", [1, 2, None], [10, 20, 30]).to_pylist())
        try:
            client.call("div_int64", [1], [0])
        except fletch.UdfError as err:
            print("failed:", err)
    """
)


def test_ten_line_script_in_a_fresh_venv(server: Server, tmp_path: Path) -> None:
    assert len(SCRIPT.strip().splitlines()) <= 11
    source = tmp_path / "fletch-udf"
    shutil.copytree(
        PACKAGE,
        source,
        ignore=shutil.ignore_patterns(
            "tests", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "*.go"
        ),
    )
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    script = tmp_path / "script.py"
    script.write_text(SCRIPT, encoding="utf-8")
    run = subprocess.run(
        [str(python), str(script), server.location],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,  # not the source tree: the installed package must be the one imported
    )
    assert run.returncode == 0, run.stdout + run.stderr
    names, result, failure = run.stdout.splitlines()
    assert "add_int64" in names.split(", ")
    assert result == "[11, 22, None]"
    assert failure == "failed: div_int64: row 0: division by zero"
    # The venv's fletch is the installed copy, not this checkout.
    where = subprocess.run(
        [str(python), "-c", "import fletch; print(fletch.__file__)"], capture_output=True, text=True, env=env
    )
    assert str(env_dir) in where.stdout
    assert sys.prefix != str(env_dir)
