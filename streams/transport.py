"""Faust's aiokafka transport, with a short fetch wait for the workers.

Faust builds its worker consumer with ``fetch_max_wait_ms=1500``, fixed. While
one fetch waits for data, aiokafka sends no new fetch for partitions whose
buffered records the agent has just drained, so those records wait up to
1.5 s: the snapshot's freshness budget (1 s) is gone before an event is even
read. This transport is the same as Faust's (``kafka://``) except that its
worker consumer waits at most FETCH_MAX_WAIT_MS. It is registered under the
``ducats://`` scheme through Faust's ``faust.transports`` entry point
(pyproject.toml), the extension point Faust offers for transports.
"""
from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 50


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts its fetcher
        return consumer


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
