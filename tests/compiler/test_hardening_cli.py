"""Issue 9, the command line: bad option values are usage errors (exit 2), and an output
that cannot be written is one line and exit 1, never a traceback; `-o` keeps the kind of
what is at the path (a symlink stays a link, a FIFO or device is written in place)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT

from spec_compiler.cli import main

LENET = str(ROOT / "specs" / "lenet5.spec")


def _cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


def _stderr(result) -> str:
    return getattr(result, "stderr", None) or result.output


@pytest.mark.parametrize("args, says", [
    (("--max-params", "inf"), "--max-params"),
    (("--max-params", "nan"), "--max-params"),
    (("--max-params", "-3"), "--max-params"),
    (("--max-params", "0"), "--max-params"),
    (("--max-activation-memory", "inf"), "--max-activation-memory"),
    (("--max-activation-memory", "-1GiB"), "--max-activation-memory"),
    (("--max-activation-memory", "0"), "--max-activation-memory"),
    (("--depth", "-1"), "--depth"),
])
def test_limits_and_depth_must_make_sense(args, says):
    result = _cli("compile", LENET, *args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert says in _stderr(result) and "Traceback" not in _stderr(result)


@pytest.mark.parametrize("args, says", [
    (("--threads", "100000"), "--threads"),
    (("--threads", "0"), "--threads"),
    (("--seed", str(2**64)), "--seed"),
    (("--seed", "9" * 400), "--seed"),
    (("--max-params", "inf"), "--max-params"),
])
def test_train_options_out_of_range_are_usage_errors_before_any_work(args, says, tmp_path):
    result = _cli("train", LENET, "--out", str(tmp_path / "run"), *args)
    assert result.exit_code == 2, result.output
    assert says in _stderr(result)
    assert not (tmp_path / "run").exists()


def test_the_largest_seed_is_accepted_by_the_command_line():
    from spec_compiler.cli import MAX_SEED, train_command

    seed = next(p for p in train_command.params if p.name == "seed")
    assert seed.type.convert(str(MAX_SEED), seed, None) == MAX_SEED


# --- where the output goes -------------------------------------------------------------

def _summary_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_output_onto_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    result = _cli("compile", LENET, "--json", "-o", str(link))
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert _summary_json(target)["total_params"] == 61_706


def test_output_onto_a_fifo_writes_into_it(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text(encoding="utf-8")))
    reader.start()
    result = _cli("compile", LENET, "--json", "-o", str(fifo))
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert json.loads(received[0])["total_params"] == 61_706


def test_output_onto_a_device_writes_into_it():
    result = _cli("compile", LENET, "-o", os.devnull)
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_output_onto_a_directory_is_a_usage_error(tmp_path):
    result = _cli("compile", LENET, "-o", str(tmp_path))
    assert result.exit_code == 2
    assert "is a directory" in _stderr(result)


def test_output_under_a_file_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("")
    result = _cli("compile", LENET, "-o", str(blocker / "out.json"))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert _stderr(result).strip().splitlines() == [f"error: cannot write {blocker / 'out.json'}: Not a directory"]


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder this process cannot write into: a chmod-ed one, or /sys for root (whom
    permissions do not stop)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o500)
        yield folder
        folder.chmod(0o700)
    elif Path("/sys").is_dir():
        yield Path("/sys")
    else:
        pytest.skip("no folder that root cannot write")


def test_output_into_a_read_only_folder_is_one_clear_error(read_only_folder):
    before = sorted(p.name for p in read_only_folder.iterdir())
    result = _cli("compile", LENET, "-o", str(read_only_folder / "out.json"))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert _stderr(result).strip() == f"error: cannot write {read_only_folder / 'out.json'}: Permission denied"
    assert sorted(p.name for p in read_only_folder.iterdir()) == before


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_one_clear_error():
    result = _cli("compile", LENET, "-o", "/dev/full")
    assert result.exit_code == 1
    assert _stderr(result).strip() == "error: cannot write /dev/full: No space left on device"


def test_output_to_stdout_by_dash():
    result = _cli("compile", LENET, "--json", "-o", "-")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["total_params"] == 61_706
    assert "wrote" not in _stderr(result)


def test_a_closed_pipe_ends_quietly():
    command = [sys.executable, "-m", "spec_compiler.cli", "compile", LENET]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT) as process:
        process.stdout.close()  # the reader went away, like `| head -0`
        stderr = process.stderr.read().decode()
        process.wait(timeout=60)
    assert stderr == ""
    assert process.returncode == 1


# --- fmt ---------------------------------------------------------------------------

MESSY = "model  m\ninput vector 4   # in\ndense 2\n"
TIDY = "model m\ninput vector 4  # in\ndense 2\n"


def test_fmt_write_through_a_symlink_keeps_the_link(tmp_path):
    target = tmp_path / "real.spec"
    target.write_text(MESSY)
    link = tmp_path / "link.spec"
    link.symlink_to(target)
    result = _cli("fmt", "--write", str(link))
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and target.read_text() == TIDY


def test_fmt_check_reports_crlf_and_bom_and_write_fixes_them(tmp_path):
    crlf = tmp_path / "crlf.spec"
    crlf.write_bytes(b"\xef\xbb\xbf" + TIDY.replace("\n", "\r\n").encode())
    assert _cli("fmt", "--check", str(crlf)).exit_code == 1
    assert _cli("fmt", "--write", str(crlf)).exit_code == 0
    assert crlf.read_bytes() == TIDY.encode()
    assert _cli("fmt", "--check", str(crlf)).exit_code == 0


def test_fmt_of_a_file_that_is_not_utf8_is_a_spec_error(tmp_path):
    bad = tmp_path / "latin1.spec"
    bad.write_bytes(b"input vector 4\n# caf\xe9\ndense 2\n")
    result = _cli("fmt", str(bad))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert f"{bad}:2:6: error: cannot read {bad}: byte 0xe9 is not UTF-8 text" in _stderr(result)


def test_any_system_error_a_command_meets_is_one_line_and_exit_1():
    import click

    from spec_compiler.cli import handle_errors

    @click.group()
    @click.option("--debug", is_flag=True)
    def group(debug):
        """A stand-in for `specc`."""

    @group.command()
    @handle_errors
    def save():
        raise PermissionError(13, "Permission denied", "/data/run")

    result = CliRunner().invoke(group, ["save"])
    assert result.exit_code == 1
    assert _stderr(result).strip() == "error: /data/run: Permission denied"
    debug = CliRunner().invoke(group, ["--debug", "save"])
    assert isinstance(debug.exception, PermissionError)  # --debug shows the traceback
