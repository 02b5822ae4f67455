"""Folders written all at once: a reader never sees a half-written dataset."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from leadscore.crm.errors import LeadscoreError


@contextmanager
def staged_folder(out: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to `out`; it replaces `out` only if the block succeeds.

    A non-empty `out` is refused unless `overwrite`. On any error (or an interrupt) the
    temporary folder is removed and `out` is left as it was.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise LeadscoreError(
            f"{out}: folder exists and is not empty (pass --overwrite to replace it)"
        )
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_whole(path: str | Path, write: Callable[[Path], None], *, sync: bool = False) -> Path:
    """Write a file whole or not at all: `write(tmp)` fills a hidden temporary file next to
    `path`, which then replaces it. On any failure (a full disk, a refusal, an interrupt) the
    temporary file is removed and `path` is left as it was (an OSError becomes one line
    naming the file, a LeadscoreError). `sync`: on disk (the file and
    its folder) before this returns, for what must survive a crash."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        if sync:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        tmp.replace(path)
    except OSError as exc:  # a full disk, a refusal: one line naming the file
        tmp.unlink(missing_ok=True)
        raise LeadscoreError(f"{path}: not written ({exc.strerror or exc})") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    return path
