"""A run folder: the files of one training run, owned by one process at a time.

    runs/<model>-<YYYYmmdd-HHMMSS>/   (or --out DIR)
      run.json              RunRecord: run id, status, resolved config, data, final metrics
      preprocess.json       Preprocess: input kind, labels, normalization, image size, vocabulary
      model.spec            the spec source
      weights.safetensors   the kept weights (their metadata names the run id)
      checkpoint.pt         resume state (training writes and reads it)
      metrics.csv, curves.png, events (logs)

The contract kept here:
- one process owns a folder (`owned()`, a lock on `.NAME.lock` beside it); a second one
  gets a clear error at once;
- a folder that holds a finished run is replaced only on request, and then the new run is
  built in `.NAME.next` beside it and swapped in at the end (`commit_staging`), so after a
  kill at any moment the folder holds the old run or a resumable new one, never a mix;
- run.json, preprocess.json and the weights carry the same run id; readers check it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SpecError
from ..files import write_bytes_atomic, write_text_atomic
from .records import Preprocess, RunRecord

if TYPE_CHECKING:
    import numpy as np

RECORD = "run.json"
PREPROCESS = "preprocess.json"
SPEC = "model.spec"
WEIGHTS = "weights.safetensors"
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.csv"
CURVES = "curves.png"
RUN_ID_KEY = "specc.run_id"  # in the safetensors header's metadata


def new_run_id() -> str:
    return uuid.uuid4().hex


def validation_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The one rule for the validation split: (train, validation) sample indices, reproducible
    from the seed, the validation part `fraction` of n (at least one sample)."""
    import numpy as np  # here: reading records needs no numpy

    if fraction <= 0:
        return np.arange(n), np.arange(0)
    n_val = max(1, int(round(n * fraction)))
    if n_val >= n:
        raise SpecError.at(None, f"validation_split={fraction:g} leaves no training samples out of {n}",
                           "lower validation_split, or give more data")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class RunFolder:
    """Paths and records of one run folder; see the module docstring for the contract."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # --- files ------------------------------------------------------------------------
    @property
    def record_file(self) -> Path:
        return self.path / RECORD

    @property
    def preprocess_file(self) -> Path:
        return self.path / PREPROCESS

    @property
    def spec_file(self) -> Path:
        return self.path / SPEC

    @property
    def weights_file(self) -> Path:
        return self.path / WEIGHTS

    @property
    def checkpoint_file(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS

    @property
    def curves_file(self) -> Path:
        return self.path / CURVES

    @classmethod
    def new(cls, model_name: str, root: Path | str = "runs") -> RunFolder:
        """A fresh folder name under `root`: <model>-<YYYYmmdd-HHMMSS>[-N]."""
        base = Path(root) / f"{model_name}-{time.strftime('%Y%m%d-%H%M%S')}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        return cls(path)

    @classmethod
    def of_weights(cls, weights: Path | str) -> tuple[RunFolder | None, Path]:
        """`--weights`: a run folder (its weights.safetensors) or a .safetensors file, whose
        folder is its run when it holds a run.json or preprocess.json."""
        path = Path(weights)
        if path.is_dir():
            folder = cls(path)
            if not folder.weights_file.is_file():
                raise SpecError.at(None, f"{path} holds no {WEIGHTS}",
                                   "pass a run folder written by `specc train`, or a .safetensors file")
            return folder, folder.weights_file
        if path.is_file():
            folder = cls(path.parent)
            known = folder.record_file.is_file() or folder.preprocess_file.is_file()
            return (folder if known else None), path
        raise SpecError.at(None, f"weights not found: {path}")

    def holds_files(self) -> bool:
        return self.path.is_dir() and any(self.path.iterdir())

    # --- records ----------------------------------------------------------------------
    def _read_text(self, file: Path) -> str | None:
        if not file.is_file():
            return None
        try:
            with open(file, "rb") as stream:
                data = stream.read(64 * 2**20 + 1)
            return data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise SpecError.at(None, f"cannot read {file}: {error}") from None

    def read_record(self) -> RunRecord | None:
        text = self._read_text(self.record_file)
        if text is None:
            return None
        try:
            return RunRecord.from_json_text(text, str(self.record_file))
        except ValueError as error:
            raise SpecError.at(None, str(error), "was this folder written by `specc train`?") from None

    def read_preprocess(self) -> Preprocess | None:
        text = self._read_text(self.preprocess_file)
        if text is None:
            return None
        try:
            return Preprocess.from_json_text(text, str(self.preprocess_file))
        except ValueError as error:
            raise SpecError.at(None, str(error), "was this folder written by `specc train`?") from None

    def spec_source(self) -> str | None:
        with contextlib.suppress(SpecError):
            return self._read_text(self.spec_file)
        return None

    def write_record(self, record: RunRecord) -> None:
        write_text_atomic(self.record_file, record.to_json_text())

    def write_preprocess(self, preprocess: Preprocess) -> None:
        write_text_atomic(self.preprocess_file, preprocess.to_json_text())

    def write_spec(self, source: str) -> None:
        write_text_atomic(self.spec_file, source)

    # --- weights ------------------------------------------------------------------------
    def save_weights(self, state: dict, run_id: str) -> None:
        """A state_dict as safetensors, tagged with the run id (torch imported here only)."""
        from safetensors.torch import save

        tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
        write_bytes_atomic(self.weights_file, save(tensors, metadata={"format": "pt", RUN_ID_KEY: run_id}))

    @staticmethod
    def weights_run_id(file: Path) -> str | None:
        """The run id in a safetensors file's header (None for files written elsewhere)."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(file), framework="numpy") as handle:
                return (handle.metadata() or {}).get(RUN_ID_KEY)
        except (SafetensorError, OSError, ValueError):
            return None

    def check_one_run(self, weights: Path | None = None) -> None:
        """Refuse a folder whose record, preprocessing and weights come from different runs."""
        ids = {}
        record, preprocess = self.read_record(), self.read_preprocess()
        if record is not None and record.run_id is not None:
            ids[RECORD] = record.run_id
        if preprocess is not None and preprocess.run_id is not None:
            ids[PREPROCESS] = preprocess.run_id
        file = weights or self.weights_file
        if file.is_file():
            weights_id = self.weights_run_id(file)
            if weights_id is not None:
                ids[file.name] = weights_id
        if len(set(ids.values())) > 1:
            listing = ", ".join(f"{name} is from run {value[:8]}" for name, value in ids.items())
            raise SpecError.at(None, f"{self.path} mixes files of different runs ({listing})",
                               "train again into this folder with --overwrite, or use another run folder")

    # --- state and ownership ------------------------------------------------------------
    @property
    def lock_file(self) -> Path:
        return self.path.parent / f".{self.path.name}.lock"

    @property
    def staging_path(self) -> Path:
        return self.path.parent / f".{self.path.name}.next"

    @property
    def retired_path(self) -> Path:
        return self.path.parent / f".{self.path.name}.old"

    def in_use(self) -> bool:
        """True while another process owns the folder."""
        if not self.lock_file.exists():
            return False
        try:
            with _lock(self.lock_file):
                return False
        except BlockingIOError:
            return True

    def state(self) -> str:
        """empty | running (owned now) | stopped (killed while running: resumable) |
        interrupted (resumable) | completed | diverged | failed."""
        record = self.read_record()
        if record is None:
            return "empty"
        if record.status == "running":
            return "running" if self.in_use() else "stopped"
        return record.status

    def is_finished(self) -> bool:
        record = self.read_record()
        return record is not None and record.status in ("completed", "diverged", "failed")

    @contextlib.contextmanager
    def owned(self) -> Iterator[RunFolder]:
        """Hold the folder for this process; tidy what a killed process left behind first."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with _lock(self.lock_file):
                self._recover()
                yield self
        except BlockingIOError:
            raise SpecError.at(None, f"{self.path} is in use by another specc process",
                               "wait for it to finish, or train into another folder") from None

    def _recover(self) -> None:
        """Finish or undo a swap cut short, and drop half-written files of a killed run."""
        staging, retired = RunFolder(self.staging_path), RunFolder(self.retired_path)
        if not self.path.exists() and retired.path.exists():
            if staging.path.exists() and staging.state() in ("completed", "diverged", "failed"):
                os.rename(staging.path, self.path)
            else:
                os.rename(retired.path, self.path)
        for leftover in (staging.path, retired.path):
            if leftover.exists():
                shutil.rmtree(leftover)
        if self.path.is_dir():
            for temporary in self.path.glob(".*.tmp"):
                temporary.unlink(missing_ok=True)

    def staging(self) -> RunFolder:
        """An empty folder beside this one where a replacing run is built."""
        if self.staging_path.exists():
            shutil.rmtree(self.staging_path)
        self.staging_path.mkdir(parents=True)
        return RunFolder(self.staging_path)

    def commit_staging(self, staging: RunFolder) -> None:
        """Swap the finished run in `staging` into this folder's place (atomically where the
        system can exchange two paths), then remove the old run."""
        if not self.path.exists():
            os.rename(staging.path, self.path)
            return
        if _exchange(staging.path, self.path):
            # the old run, now at the staging path, is retired by one rename before it is removed:
            # a kill during the removal leaves `.NAME.old`, which the next owner deletes
            os.rename(staging.path, self.retired_path)
            shutil.rmtree(self.retired_path)
            return
        os.rename(self.path, self.retired_path)
        os.rename(staging.path, self.path)
        shutil.rmtree(self.retired_path)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive, non-blocking lock on `path` (BlockingIOError when another process has it)."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))
