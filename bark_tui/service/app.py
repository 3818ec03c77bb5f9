"""The HTTP face of `bark-tui serve` (FastAPI): OpenAI's speech API and Bark's job API.

Every handler is thin: it checks the request, hands work to the `JobBoard`
and turns what the job records into bytes. Nothing here runs torch on the
event loop: checks that need the tokenizer run in the thread pool, and
generation runs on the board's engine thread.

Errors are always `{"error": {"message", "type"}}` with a 4xx/5xx status,
never a traceback. With a key, every endpoint but `/health` needs
`Authorization: Bearer <key>`.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from bark_engine.errors import BarkError, VoiceError
from bark_engine.voices.catalog import PRESETS, UserVoices, check_name_safe, valid_user_voice_name
from bark_engine.voices.prompts import VoicePrompt

from .board import JobBoard, QueueFull
from .config import RETRY_AFTER_S, ServeConfig
from .gate import ApiError, Gate, error_response
from .job import FINISHED, Job
from .speech import (
    CONTENT_TYPES,
    MODEL_NAMES,
    parse_speech,
    piece_bytes,
    sse_delta,
    sse_done,
    stream_chunks,
    voice_map_table,
    whole_file,
)
from .streams import SSE_PING_S, raise_for, until
from .streams import segments as job_segments
from .wire import API_VERSION, MAX_VOICE_BYTES, npz_bytes, voice_from_wire
from .work import SegmentResult, work_from_body

log = logging.getLogger("bark_tui.serve")

CANCEL_WAIT_S = 2.0  # DELETE answers once the job has stopped, or after this


def create_app(engine: Any, config: ServeConfig, board: JobBoard | None = None) -> FastAPI:
    """The service around one engine. The board (queue and engine thread) starts and
    stops with the app."""
    board = board or JobBoard(engine, queue_size=config.queue_size,
                              keep_minutes=config.keep_minutes, batch_rows=config.batch_rows,
                              done_info=lambda: _engine_facts(engine))
    voice_map = voice_map_table(config.voice_map)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        board.start(preload=getattr(app.state, "preload", False))
        yield
        await run_in_threadpool(board.stop)

    app = FastAPI(title="bark-tui serve", version=str(API_VERSION), lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.board = board
    app.add_middleware(Gate, max_body=config.max_body_bytes, board=board,
                       local_only=not config.api_key)

    # ---- errors: JSON, one line, never a traceback -------------------------------
    @app.exception_handler(ApiError)
    async def _apierror_response(request, exc: ApiError):
        return error_response(exc.status, str(exc), exc.headers)

    @app.exception_handler(BarkError)
    async def _barkerror_response(request, exc: BarkError):
        return error_response(400, str(exc))

    @app.exception_handler(QueueFull)
    async def _full(request, exc: QueueFull):
        return error_response(503, f"{exc}; try again shortly", {"Retry-After": str(RETRY_AFTER_S)})

    @app.exception_handler(HTTPException)
    async def _http(request, exc: HTTPException):
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def _unexpected(request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__}); the server log has details")

    # ---- the key ------------------------------------------------------------------
    async def need_key(request: Request) -> None:
        if not config.api_key:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode(), config.api_key.encode()):
            raise ApiError(401, "missing or wrong API key (Authorization: Bearer <key>)",
                           {"WWW-Authenticate": "Bearer"})

    keyed = [Depends(need_key)]

    async def body_json(request: Request) -> Any:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":  # (a web page cannot send this without asking first)
            raise ApiError(400, "send the body as JSON (Content-Type: application/json)")
        raw = await request.body()
        try:
            return json.loads(raw or b"null")
        except (ValueError, RecursionError):
            raise ApiError(400, "the request body is not valid JSON") from None

    def job_or_404(job_id: str) -> Job:
        job = board.get(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id!r} (finished jobs are kept "
                           f"{config.keep_minutes:g} minutes)")
        return job

    # ---- health, models, voices, info ----------------------------------------------
    @app.get("/health")
    async def health():
        return {"status": "ok", "api_version": API_VERSION, "app": "bark-tui",
                "loaded": engine.loaded, "queue": board.depth,
                "running": board.running is not None, "key_required": bool(config.api_key)}

    @app.get("/v1/models", dependencies=keyed)
    async def models():
        return {"object": "list", "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "bark-tui"}
            for name in MODEL_NAMES]}

    @app.get("/v1/audio/voices", dependencies=keyed)
    async def voices():
        items = [{"id": p.name, "name": p.name, "kind": "preset", "language": p.language,
                  "gender": p.gender, "prompt_seconds": p.prompt_seconds} for p in PRESETS]
        if engine.user_voices_dir is not None:
            items += [{"id": v.name, "name": v.name, "kind": "user", "language": None,
                       "gender": None, "prompt_seconds": round(v.duration_s, 2)}
                      for v in UserVoices(engine.user_voices_dir).list()]
        items += [{"id": k, "name": k, "kind": "openai", "maps_to": v}
                  for k, v in voice_map.items()]
        return {"object": "list", "voices": items}

    @app.get("/v1/bark/info", dependencies=keyed)
    async def info():
        body = await run_in_threadpool(_server_info, engine)
        body["queue"] = {"waiting": board.depth, "running": board.running is not None,
                         "size": config.queue_size, "completed": board.completed,
                         "keep_minutes": config.keep_minutes,
                         "batch_rows": board.batch_rows or engine.default_batch,
                         "recent_batches": board.batches[-8:]}
        body["api_version"] = API_VERSION
        return body

    @app.get("/v1/bark/vocab.txt", dependencies=keyed)
    async def vocab():
        """The tokenizer's vocabulary: a client counts tokens and cuts scripts
        itself, with exactly the server's tokenizer."""
        def read() -> bytes:
            src = engine.source()
            return src.fetch(src.vocab_relpath).read_bytes()
        return Response(await run_in_threadpool(read), media_type="text/plain")

    @app.post("/v1/bark/audition", dependencies=keyed)
    async def audition(request: Request):
        """A voice's own sample (its fine prompt decoded, no GPT stage) as a WAV:
        `{"voice": name}` for a voice the server knows, or an inline `.npz`."""
        body = await body_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "give {\"voice\": name or {\"npz\": base64}}")
        voice = await run_in_threadpool(voice_from_wire, body.get("voice"))
        if voice is None:
            raise ApiError(400, "no voice to audition")

        def decode() -> bytes:
            audio = engine.audition(_voices(engine).resolve(voice))
            return whole_file("wav", audio)
        return Response(await run_in_threadpool(decode), media_type="audio/wav")

    @app.get("/v1/bark/voices/{name:path}.npz", dependencies=keyed)
    async def voice_file(name: str):
        prompt = await run_in_threadpool(_voices(engine).resolve, name)
        return Response(npz_bytes(**prompt.as_dict()), media_type="application/octet-stream")

    @app.put("/v1/bark/voices/{name}", dependencies=keyed)
    async def upload_voice(name: str, request: Request):
        if engine.user_voices_dir is None:
            raise ApiError(409, "this server keeps no voices of its own")
        check_name_safe(name)
        if not valid_user_voice_name(name):
            raise VoiceError(f"unsafe voice name {name!r}: use letters, digits, space, _ . -")
        data = await request.body()
        prompt = await run_in_threadpool(lambda: VoicePrompt.from_npz_bytes(
            data, name=name, label=name, max_bytes=MAX_VOICE_BYTES))
        overwrite = request.query_params.get("overwrite") == "1"
        users = UserVoices(engine.user_voices_dir)
        if users.exists(name) and not overwrite:
            raise ApiError(409, f"a voice {name!r} exists (PUT ?overwrite=1 replaces it)")
        engine.user_voices_dir.mkdir(parents=True, exist_ok=True)
        users.add(name, prompt, overwrite=overwrite)
        return {"name": name, "prompt_seconds": round(prompt.duration_s, 2)}

    # ---- OpenAI speech ---------------------------------------------------------------
    @app.post("/v1/audio/speech", dependencies=keyed)
    async def speech(request: Request):
        body = await body_json(request)
        spec = await run_in_threadpool(parse_speech, body, voice_map)  # voices load here
        await run_in_threadpool(spec.work.check, engine)
        job = board.submit(spec.work, cancel_on_disconnect=True)
        fmt = spec.response_format
        headers = {"X-Bark-Job": job.id, "X-Bark-Seed": str(spec.work.seed)}
        # Nothing is sent until there is audio or an ending, so a job that fails
        # before its first segment is a JSON error, not a 200 with no audio.
        await until(job, board, request, lambda: job.finished or job.order)
        raise_for(job)
        if spec.stream_format is None:
            await until(job, board, request, lambda: job.finished)
            raise_for(job)
            # the joined audio, as render joins it
            data = await run_in_threadpool(whole_file, fmt, job.result.audio)
            return Response(data, media_type=CONTENT_TYPES[fmt], headers=headers)
        if spec.stream_format == "sse":
            async def sse() -> AsyncIterator[str]:
                samples = 0
                first = True
                async with contextlib.aclosing(job_segments(job, board)) as segments:
                    async for seg in segments:
                        chunk = piece_bytes(seg)
                        samples += len(chunk) // 2
                        if first and fmt == "wav":
                            chunk = b"".join(stream_chunks("wav", iter([chunk])))
                        first = False
                        yield sse_delta(chunk)
                if job.state == "done":
                    yield sse_done(spec.input_chars, samples)
                else:
                    error = job.error or {"message": f"the job was {job.state}",
                                          "type": "server_error"}
                    yield f"event: error\ndata: {json.dumps({'type': 'error', 'error': error})}\n\n"
            return StreamingResponse(sse(), media_type="text/event-stream", headers=headers)

        async def audio() -> AsyncIterator[bytes]:
            if fmt == "wav":
                yield next(stream_chunks("wav", iter(())))
            async with contextlib.aclosing(job_segments(job, board)) as segments:
                async for seg in segments:
                    yield piece_bytes(seg)
        return StreamingResponse(audio(), media_type=CONTENT_TYPES[fmt], headers=headers)

    # ---- Bark's jobs ------------------------------------------------------------------
    @app.post("/v1/bark/jobs", status_code=202, dependencies=keyed)
    async def create_job(request: Request):
        body = await body_json(request)
        work = await run_in_threadpool(work_from_body, body)  # inline voices load here
        await run_in_threadpool(work.check, engine)
        job = board.submit(work, cancel_on_disconnect=bool(body.get("cancel_on_disconnect")))
        return JSONResponse(job.summary(board.position(job)), status_code=202)

    @app.get("/v1/bark/jobs", dependencies=keyed)
    async def list_jobs():
        return {"jobs": [j.summary(board.position(j)) for j in board.jobs()]}

    @app.get("/v1/bark/jobs/{job_id}", dependencies=keyed)
    async def get_job(job_id: str):
        job = job_or_404(job_id)
        body = job.summary(board.position(job))
        body["segments"] = [e.data for e in job.events_after(0) if e.name == "segment"]
        return body

    @app.delete("/v1/bark/jobs/{job_id}", dependencies=keyed)
    async def cancel_job(job_id: str):
        job = job_or_404(job_id)
        if not job.finished:
            board.cancel(job)
            deadline = time.monotonic() + CANCEL_WAIT_S  # a running job stops at its next token
            while not job.finished and time.monotonic() < deadline:
                await job.changed(len(job.events), CANCEL_WAIT_S)
        return job.summary()

    @app.get("/v1/bark/jobs/{job_id}/events", dependencies=keyed)
    async def job_events(job_id: str, request: Request, after: int = 0):
        job = job_or_404(job_id)
        last = request.headers.get("last-event-id", "")
        start = int(last) if last.isascii() and last.isdigit() else max(0, after)

        async def stream() -> AsyncIterator[str]:
            seq = start
            try:
                while True:
                    if job.finished and seq >= len(job.events):
                        return  # resumed after its last event: nothing more will come
                    fresh = job.events_after(seq)
                    for e in fresh:
                        seq = e.seq
                        yield f"id: {e.seq}\nevent: {e.name}\ndata: {json.dumps(e.data)}\n\n"
                        if e.name in FINISHED:
                            return
                    if not fresh:
                        yield ": ping\n\n"  # a quiet stream stays open through proxies
                    await job.changed(seq, SSE_PING_S)
            finally:
                if job.cancel_on_disconnect and not job.finished:
                    board.cancel(job)
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    def segment_of(job_id: str, index: int) -> SegmentResult:
        job = job_or_404(job_id)
        seg = job.segments.get(index)
        if seg is None:
            if job.finished:
                raise ApiError(404, f"job {job_id} has no segment {index}")
            raise ApiError(409, f"segment {index} of job {job_id} is not made yet")
        return seg

    @app.get("/v1/bark/jobs/{job_id}/segments/{index}.wav", dependencies=keyed)
    async def segment_wav(job_id: str, index: int):
        seg = segment_of(job_id, index)
        return Response(whole_file("wav", seg.audio), media_type="audio/wav")

    @app.get("/v1/bark/jobs/{job_id}/segments/{index}.npz", dependencies=keyed)
    async def segment_npz(job_id: str, index: int):
        """Tokens and float32 audio as the engine made them (the remote engine's take)."""
        seg = segment_of(job_id, index)
        return Response(npz_bytes(semantic_prompt=seg.semantic, coarse_prompt=seg.coarse,
                                  fine_prompt=seg.fine, audio=seg.audio),
                        media_type="application/octet-stream")

    @app.get("/v1/bark/jobs/{job_id}/segments/{index}/tokens.npz", dependencies=keyed)
    async def segment_tokens(job_id: str, index: int):
        seg = segment_of(job_id, index)
        return Response(npz_bytes(semantic_prompt=seg.semantic, coarse_prompt=seg.coarse,
                                  fine_prompt=seg.fine), media_type="application/octet-stream")

    @app.get("/v1/bark/jobs/{job_id}/audio.wav", dependencies=keyed)
    async def job_audio(job_id: str):
        job = job_or_404(job_id)
        raise_for(job, waiting_ok=False)
        if job.result is None or job.result.audio is None:
            raise ApiError(409, "a job of takes has no joined audio: fetch "
                           "segments/{i}.wav for each take")
        return Response(whole_file("wav", job.result.audio),
                        media_type="audio/wav")

    @app.get("/v1/bark/jobs/{job_id}/tokens.npz", dependencies=keyed)
    async def job_tokens(job_id: str):
        job = job_or_404(job_id)
        raise_for(job, waiting_ok=False)
        if len(job.segments) != 1:
            raise ApiError(409, f"the job has {len(job.segments)} segments: fetch "
                           "segments/{i}/tokens.npz for the one you want")
        return await segment_tokens(job_id, next(iter(job.segments)))

    return app


# ---- helpers ----------------------------------------------------------------------------


def _voices(engine):
    from .work import ServerVoices

    return ServerVoices(engine)


def _engine_facts(engine) -> dict[str, Any]:
    return {"model": engine.model_id, "device": str(engine.device), "dtype": engine.dtype_name,
            "steps": engine.step_path, "random_weights": engine.random_weights}


def _server_info(engine) -> dict[str, Any]:
    from ..core.facts import compute_info, models_info, versions_info

    return {"versions": versions_info(), "compute": compute_info(engine.config),
            "models": models_info(engine.config), "loaded": engine.loaded,
            "engine": {**_engine_facts(engine), "default_batch": engine.default_batch,
                       "advice": engine.precision_advice}}
