"""Work in worker processes that may hang or die: a decoder that stalls on a broken file, or crashes its process.

`run_guarded` runs a list of work units (videos) through a runner that uses worker processes with a time limit
(a DataLoader for `behavior predict`, a process pool for `behavior check`). When the runner reports a lost worker
(`WorkerLost`), the units that may have caused it (the first `suspects` unfinished ones) are run again one at a
time, or given up at once, and the runner resumes on the rest. One bad video never stops a run.

No torch here: `behavior check` uses it without loading torch.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import TypeVar

Unit = TypeVar("Unit", bound=Hashable)
Result = TypeVar("Result")


class WorkerLost(Exception):
    """A worker process hung past its time limit, or died; `reason` says which, for the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def run_guarded(
    units: Sequence[Unit],
    run: Callable[[list[Unit]], Iterator[Result]],
    finished: Callable[[Result], Iterable[Unit]],
    lost: Callable[[Unit, str], Result],
    suspects: int,
    retry_alone: bool = True,
) -> Iterator[Result]:
    """Yield what `run(pending)` yields, in its order, until every unit is finished.

    `run(units)` processes the units in workers and raises `WorkerLost` when one hangs or dies; `finished(result)`
    names the units a result completes. After a loss, the first `suspects` unfinished units (those the lost
    worker may have been on) are each run alone with `run([unit])` when `retry_alone`, and a unit lost again
    (or every suspect, without `retry_alone`) yields `lost(unit, reason)`; then `run` resumes on the units after
    them. A unit run again starts from its beginning: a consumer drops what it kept of a unit's earlier try when
    that unit's first result comes again."""
    pending = dict.fromkeys(units)  # unfinished units, in order
    while pending:
        try:
            for result in run(list(pending)):
                for unit in finished(result):
                    pending.pop(unit, None)
                yield result
            return
        except WorkerLost as loss:
            reason = loss.reason
        for unit in list(pending)[:suspects]:
            del pending[unit]
            if not retry_alone:
                yield lost(unit, reason)
                continue
            try:
                yield from run([unit])
            except WorkerLost as again:
                yield lost(unit, again.reason)
