"""The checkpoint's order (write, publish, commit offsets) and its typed errors, with fakes."""
from __future__ import annotations

from collections.abc import Sequence

import pytest

from ducats.errors import DucatsError, ServiceRefused, ServiceUnavailable
from sinks.postgres.ledger import BatchReport
from streams.checkpoint import Checkpoint
from streams.errors import CheckpointError, OffsetCommitFailed, PublishFailed, WriteFailed

STEPS = ["write", "publish", "commit_offsets"]


class Recorder:
    """The three steps as fakes that record their calls; ``fail`` makes one raise ``error``."""

    def __init__(self, *, fail: str | None = None, error: DucatsError | None = None) -> None:
        self.calls: list[tuple[str, object]] = []
        self.fail, self.error = fail, error
        self.steps: list[str | None] = []  # what the checkpoint said it was doing, at each call
        self.current: Checkpoint[str] | None = None

    def _step(self, name: str, arg: object = None) -> None:
        self.calls.append((name, arg))
        self.steps.append(None if self.current is None else self.current.step)
        if name == self.fail:
            assert self.error is not None
            raise self.error

    async def write(self, records: Sequence[str]) -> BatchReport:
        self._step("write", list(records))
        return BatchReport(accepted=len(records), last_seq=7)

    async def publish(self) -> int:
        self._step("publish")
        return 3

    async def commit_offsets(self) -> None:
        self._step("commit_offsets")

    def checkpoint(self) -> Checkpoint[str]:
        self.current = Checkpoint(write=self.write, publish=self.publish, commit_offsets=self.commit_offsets)
        return self.current


async def test_steps_run_in_order_once_each() -> None:
    rec = Recorder()
    checkpoint = rec.checkpoint()
    report = await checkpoint.commit(["a", "b"])
    assert rec.calls == [("write", ["a", "b"]), ("publish", None), ("commit_offsets", None)]
    assert (report.accepted, report.last_seq, report.published) == (2, 7, 3)
    assert rec.steps == [WriteFailed.step, PublishFailed.step, OffsetCommitFailed.step]  # what it waits on
    assert checkpoint.step is None


@pytest.mark.parametrize(("step", "typed"), [("write", WriteFailed), ("publish", PublishFailed),
                                             ("commit_offsets", OffsetCommitFailed)])
@pytest.mark.parametrize("cause", [ServiceUnavailable("PostgreSQL at x is not answering"),
                                   ServiceRefused("PostgreSQL at x: permission denied")])
async def test_a_failed_step_stops_the_checkpoint_with_its_typed_error(
        step: str, typed: type[CheckpointError], cause: DucatsError) -> None:
    rec = Recorder(fail=step, error=cause)
    checkpoint = rec.checkpoint()
    with pytest.raises(typed) as raised:
        await checkpoint.commit(["a"])
    assert checkpoint.step is None
    assert [name for name, _ in rec.calls] == STEPS[:STEPS.index(step) + 1]  # nothing after step N
    err = raised.value
    assert isinstance(err, DucatsError) and err.cause is cause and err.__cause__ is cause
    assert err.retriable is cause.retriable and err.exit_code == cause.exit_code
    assert str(cause) in str(err) and str(err).startswith(typed.step)


async def test_an_error_outside_the_tree_is_a_bug_and_leaves_as_it_is() -> None:
    async def broken(records: Sequence[str]) -> BatchReport:
        raise KeyError("bug")

    rec = Recorder()
    checkpoint = Checkpoint(write=broken, publish=rec.publish, commit_offsets=rec.commit_offsets)
    with pytest.raises(KeyError):
        await checkpoint.commit(["a"])
    assert rec.calls == []
