"""The networks and how they step: the GPTs, their KV cache, the CPU kernels and
the step strategies (eager, CPU kernel plan, CUDA graph), and precision."""
