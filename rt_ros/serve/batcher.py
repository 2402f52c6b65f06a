"""Dynamic batching: concurrent steps are coalesced and run together on one inference thread.

The first step of a batch waits up to `max_wait_s` for others (up to `max_batch_size`); steps
that arrive while a batch runs form the next one without waiting. A batch is one call on the
inference thread: bundles whose graphs have a batch axis (rt_ros exports them so) run it through
each graph at once, older bundles run its steps back to back, each answered as soon as it is
done.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from rt_ros.serve.metrics import ServerMetrics

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Pending(Generic[Item]):
    item: Item
    future: asyncio.Future
    queued_s: float = field(default_factory=time.perf_counter)


class StepBatcher(Generic[Item, Result]):
    """`await submit(item)` returns `run_batch`'s result (or raises its exception) for the item.

    `run_batch(items)` runs on the one inference thread and yields, per item and in order, a
    result or the exception to raise for that item alone, so one bad step never fails the rest
    of its batch; each is handed to its request as soon as it is yielded.
    """

    def __init__(
        self,
        run_batch: Callable[[Sequence[Item]], Iterable[Result | Exception]],
        max_batch_size: int,
        max_wait_s: float,
        metrics: ServerMetrics,
    ) -> None:
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self._metrics = metrics
        self._queue: asyncio.Queue[_Pending[Item]] | None = None
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rt-ros-inference")

    def start(self) -> None:
        """Start the batching loop on the running event loop (the first step also starts it:
        a host that skips the app's lifespan, as a Ray Serve replica may, still serves)."""
        if self._worker is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._loop())

    @property
    def stopped(self) -> bool:
        """True once the batching loop ended (it only ends on a bug or at shutdown)."""
        return self._worker is not None and self._worker.done()

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._executor.shutdown(wait=True)

    async def submit(self, item: Item) -> Result:
        self.start()
        pending = _Pending(item, asyncio.get_running_loop().create_future())
        await self._queue.put(pending)
        return await pending.future

    async def _collect(self) -> list[_Pending[Item]]:
        queue = self._queue
        batch = [await queue.get()]
        deadline_s = time.perf_counter() + self.max_wait_s
        while len(batch) < self.max_batch_size:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            remaining_s = deadline_s - time.perf_counter()
            if remaining_s <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining_s))
            except TimeoutError:
                break
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            started_s = time.perf_counter()
            for pending in batch:
                self._metrics.batch_wait.observe(started_s - pending.queued_s)
            self._metrics.batch_size.observe(len(batch))
            await loop.run_in_executor(self._executor, self._run_and_deliver, loop, batch)

    def _run_and_deliver(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending]) -> None:
        """On the inference thread: run the batch, answering each step as it is done."""
        delivered = 0
        try:
            for result in self._run_batch([pending.item for pending in batch]):
                loop.call_soon_threadsafe(_deliver, batch[delivered].future, result)
                delivered += 1
        except Exception as error:  # a bug in run_batch: every request still waiting hears of it
            for pending in batch[delivered:]:
                loop.call_soon_threadsafe(_deliver, pending.future, error)


def _deliver(future: asyncio.Future, result: object) -> None:
    if future.done():  # the client went away
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)
