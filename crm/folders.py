"""Folders written all at once: a reader never sees a half-written dataset."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from crm.errors import LeadscoreError


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
