"""Benchmarks: retrieval accuracy on LoCoMo and LongMemEval next to baselines, scale and concurrency.

The command line lives in :mod:`engram.bench.cli` (``engram bench ...``); the pieces are usable
on their own: :mod:`~engram.bench.datasets`, :mod:`~engram.bench.metrics`,
:mod:`~engram.bench.baselines`, :mod:`~engram.bench.runner`, :mod:`~engram.bench.report`."""
