"""The simulated traffic `fulfillment simulate` and the benchmarks send: pure generators, no I/O."""
