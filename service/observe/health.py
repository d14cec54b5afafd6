"""What readiness is made of: the loops report whether they are backing off, the watch loop
whether PostgreSQL and Kafka answer, and `/readyz` reads the lot without doing any I/O.

One `Health` per instance, built by the wiring and handed to each loop; a loop that is given
none reports to a private one nobody reads.
"""

from __future__ import annotations

NOT_CHECKED = "not checked yet"


class Health:
    def __init__(self) -> None:
        self._checks: dict[str, str | None] = {}
        self._backing_off: dict[str, str] = {}

    def expect(self, *checks: str) -> None:
        """Checks that must have passed once before the instance is ready."""
        for check in checks:
            self._checks.setdefault(check, NOT_CHECKED)

    def checked(self, check: str, problem: str | None) -> None:
        """The latest result of a dependency check: None when it passed."""
        self._checks[check] = problem

    def backing_off(self, loop: str, error: BaseException | None) -> None:
        self._backing_off[loop] = f"backing off after {error!r}"

    def recovered(self, loop: str) -> None:
        if self._backing_off:  # the common case costs one truth test
            self._backing_off.pop(loop, None)

    def problems(self) -> dict[str, str]:
        """What is not ready, by name; empty when ready."""
        failed = {name: problem for name, problem in self._checks.items() if problem is not None}
        return failed | {f"{loop} loop": why for loop, why in self._backing_off.items()}
