"""How a job tells what it is doing: steps, warnings and alarms, without printing itself.

The command line passes its console (a spinner per step, warnings in yellow on stderr);
a notebook, a benchmark or a test gets `Recorded`, which keeps the warnings and alarms for
the caller to read and shows nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Progress(Protocol):
    def step(self, text: str) -> AbstractContextManager[Callable[[str], None]]:
        """A step of the job; yields `detail(text)`, what the step is doing now."""

    def warn(self, text: str) -> None:
        """Something the user should know (a thin segment, a fallback taken)."""

    def say(self, text: str) -> None:
        """A line that stays: a milestone of a long step (a backtest origin done)."""

    def alarm(self, text: str, prefix: str = "") -> None:
        """Something the user must not miss ("do not trust this model")."""


class Recorded:
    """Progress kept, not shown: `steps`, `said`, `warnings` and `alarms` in the order they
    came."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.said: list[str] = []
        self.warnings: list[str] = []
        self.alarms: list[str] = []

    @contextmanager
    def step(self, text: str) -> Iterator[Callable[[str], None]]:
        self.steps.append(text)
        yield lambda detail: None

    def say(self, text: str) -> None:
        self.said.append(text)

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def alarm(self, text: str, prefix: str = "") -> None:
        self.alarms.append(f"{prefix} {text}".strip())
