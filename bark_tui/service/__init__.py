"""`bark-tui serve`: the engine as an HTTP service (an optional extra: `.[serve]`).

- `wire`: what travels between server and clients (events, voices, options, errors);
  imported by the remote client too, so it holds no web framework.
- `config`: the service's settings and its safety rules (loopback, key files).
- `work`: what a job does with the engine (rows of one batch, or a script).
- `job`: one job's state, events, segments and result.
- `board`: the bounded queue, the engine thread and the kept jobs.
- `speech`: OpenAI's speech API: fields, voice names, audio bytes.
- `gate`, `streams`, `app`: the request gate, waiting on jobs, and the FastAPI routes
  (these import FastAPI; only `serve` loads them).
- `run`: the command: checks, logging, uvicorn.
- `process`: a `bark-tui serve` child on loopback (tests, the benchmark).
- `bench`: requests per minute and time to first byte against direct runs.
"""
