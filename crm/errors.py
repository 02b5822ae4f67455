"""Project exceptions: messages a user can act on (file, column, rows, expected vs found)."""

from __future__ import annotations

from collections.abc import Sequence


class LeadscoreError(Exception):
    """Base class for every error leadscore raises on purpose (bad input, bad config)."""


class DatasetError(LeadscoreError):
    """A dataset file breaks the data contract.

    Attributes name where the problem is so that a CLI or a test can check them, and the
    message spells them out: ``leads.csv, column 'lead_id', row 3: duplicate ...``.
    Rows are 1-based data rows (the CSV header is not counted).
    """

    def __init__(
        self,
        file: str,
        problem: str,
        *,
        column: str | None = None,
        rows: Sequence[int] = (),
        values: Sequence[object] = (),
        expected: str | None = None,
        total: int | None = None,
        at_least: bool = False,
    ) -> None:
        self.file = file
        self.column = column
        self.rows = [int(r) for r in rows]
        self.values = list(values)
        self.problem = problem
        self.expected = expected
        self.total = total if total is not None else len(self.rows)
        self.at_least = at_least  # total counts some rows only (a later part was not checked)
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.file
        if self.column is not None:
            where += f", column '{self.column}'"
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:5])
            noun = "row" if len(self.rows) == 1 else "rows"
            where += f", {noun} {shown}"
            if self.at_least:
                where += f" (at least {self.total} in all)"
            elif self.total > len(self.rows[:5]):
                where += f" ({self.total} in all)"
        message = f"{where}: {self.problem}"
        if self.values:
            found = ", ".join(repr(v) for v in self.values[:5])
            message += f" (found {found})"
        if self.expected:
            message += f"; expected {self.expected}"
        return message


class ConfigError(LeadscoreError):
    """A configuration file (YAML) is malformed or has values out of range."""


class PayloadError(LeadscoreError, ValueError):
    """A lead payload (the CRM's JSON) has a field missing or malformed; `field` names it
    (dotted path) and `lead` is the lead's position in a batch (None for a single lead).
    A ValueError too, for callers that validate input generally."""

    def __init__(self, field: str, problem: str, lead: int | None = None) -> None:
        self.field = field
        self.problem = problem
        self.lead = lead
        super().__init__(f"{field}: {problem}")

    @property
    def path(self) -> str:
        return f"leads[{self.lead}].{self.field}" if self.lead is not None else self.field


class StoreUnavailable(LeadscoreError):
    """A store did not answer (the online store, its outbox); the caller may retry later
    (503, Retry-After)."""

    def __init__(self, message: str, retry_after_s: int = 2) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
