"""Opportunistic micro-batching: requests that arrive while a forward pass runs share the next.

There is no artificial wait. The first request runs at once; requests arriving meanwhile
queue, and when the running batch finishes they all go in one call. Under load the batch grows
to the number of requests in flight, which is what keeps latency flat at 32 concurrent
connections on two cores: one forward pass over 32 windows costs little more than over one.
The batch function runs on one worker thread so the event loop keeps parsing requests (torch
releases the GIL inside its kernels).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class MicroBatcher(Generic[In, Out]):
    def __init__(self, fn: Callable[[Sequence[In]], Sequence[Out]], max_batch: int = 256,
                 name: str = "batcher", on_batch: Callable[[int], None] | None = None):
        self.fn = fn
        self.on_batch = on_batch
        self.max_batch = max_batch
        self._queue: list[tuple[In, asyncio.Future[Out]]] = []
        self._running = False
        self._task: asyncio.Task[None] | None = None  # kept so the drain task is not collected
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.batches = 0
        self.items = 0

    async def submit(self, item: In) -> Out:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Out] = loop.create_future()
        self._queue.append((item, future))
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                items = [item for item, _ in batch]
                try:
                    results = await loop.run_in_executor(self._executor, self.fn, items)
                except Exception as exc:  # every waiter learns of the failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.batches += 1
                self.items += len(items)
                if self.on_batch is not None:
                    self.on_batch(len(items))
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._running = False

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
