"""Where Bark's files come from: a local model folder or the Hugging Face hub.

Both look the same to the engine: `fetch("text.pt")` returns a local path.
A folder is used as it is; a hub repo goes through `huggingface_hub`'s cache,
so files downloaded once (or by `bark-tui download`) are found again offline.
Every failure becomes one line a user can act on: which file, and the way out.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from ..config import CHECKPOINT_FILES, CODEC_DIR, CODEC_REPO, DEFAULT_REPO, VOCAB_FILE
from ..errors import BadInputError, CheckpointError, WeightsUnavailableError
from ..events import EventCallback, LoadProgress, ignore_event

MARKER_FILE = "RANDOM_WEIGHTS"  # written by bark_engine.testing next to random weights
CODEC_FILES = ("config.json", "model.safetensors")  # what EncodecModel.from_pretrained needs
CODEC_OPTIONAL_FILES = ("preprocessor_config.json",)
# Where to find a file a repo may lack: suno/bark's tokenizer is mBERT cased's.
HUB_FALLBACKS = {VOCAB_FILE: ("google-bert/bert-base-multilingual-cased", VOCAB_FILE)}
WAY_OUT = "run `bark-tui download` on a connected machine, or pass --models DIR"
STAGES = ("semantic", "coarse", "fine")

_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def check_relpath(relpath: str) -> str:
    """A repo-relative POSIX path that cannot leave its folder, or BadInputError."""
    pure = PurePosixPath(relpath)
    if (
        not relpath
        or "\\" in relpath
        or "\x00" in relpath
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in relpath.split("/"))
        or re.match(r"^[A-Za-z]:", relpath)
    ):
        raise BadInputError(f"unsafe model file path {relpath!r}")
    return relpath


class ModelSource:
    """A local model folder or a hub repo, with the file names of one model size.

    `models` is a folder when it exists as a directory, otherwise a hub repo
    id (default `suno/bark`). `offline=None` follows `HF_HUB_OFFLINE` like
    huggingface_hub does; `True` never touches the network. `endpoint` points
    at a hub mirror (None: huggingface_hub's default, `HF_ENDPOINT`).
    `on_event` hears download progress; it may be replaced between calls.
    """

    def __init__(
        self,
        models: str | os.PathLike[str] | None = None,
        *,
        size: str = "small",
        offline: bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        on_event: EventCallback = ignore_event,
        endpoint: str | None = None,
    ) -> None:
        if size not in CHECKPOINT_FILES:
            raise BadInputError(f"unknown model size {size!r}: use small or large")
        self.size = size
        self.on_event = on_event
        self.cache_dir = None if cache_dir is None else str(cache_dir)
        self.endpoint = endpoint
        spec = DEFAULT_REPO if models is None else os.fspath(models)
        path = Path(spec).expanduser()
        if models is not None and path.is_dir():
            self.root: Path | None = path
            self.repo_id = ""
        elif path.exists():
            raise BadInputError(f"--models {spec}: not a folder")
        elif _REPO_ID_RE.match(spec) and not spec.startswith("."):
            self.root = None
            self.repo_id = spec
        else:
            raise BadInputError(f"model folder {spec} does not exist")
        if offline is None:
            offline = _env_flag("HF_HUB_OFFLINE") or _env_flag("TRANSFORMERS_OFFLINE")
        self.offline = offline

    # --- what the source is ---------------------------------------------------------
    @property
    def is_local(self) -> bool:
        return self.root is not None

    @property
    def random_weights(self) -> bool:
        """True for folders written by `bark_engine.testing` (output is noise)."""
        return self.root is not None and (self.root / MARKER_FILE).is_file()

    @property
    def model_id(self) -> str:
        """A short label for results and the UI, e.g. `suno/bark small`."""
        return f"{self.root if self.root is not None else self.repo_id} {self.size}"

    def checkpoint_relpath(self, stage: str) -> str:
        """`text.pt` / `coarse_2.pt` ...: the file of a stage at this size."""
        try:
            return CHECKPOINT_FILES[self.size][stage]
        except KeyError:
            raise BadInputError(f"unknown stage {stage!r}: use {', '.join(STAGES)}") from None

    @property
    def vocab_relpath(self) -> str:
        return VOCAB_FILE

    def __repr__(self) -> str:
        return f"ModelSource({self.model_id!r}, offline={self.offline})"

    # --- what is here already -----------------------------------------------------------
    def has(self, relpath: str) -> bool:
        """True when `relpath` can be read without a download: in the local folder,
        or in the hub cache (its fallback repo's copy counts)."""
        check_relpath(relpath)
        if self.root is not None:
            return self.root.joinpath(*relpath.split("/")).is_file()
        if self._cached(self.repo_id, relpath, None):
            return True
        fallback = HUB_FALLBACKS.get(relpath)
        return fallback is not None and self._cached(fallback[0], fallback[1], None)

    def has_codec(self) -> bool:
        """True when EnCodec's files can be read without a download."""
        if self.root is not None:
            return all(self.has(f"{CODEC_DIR}/{name}") for name in CODEC_FILES)
        return all(self._cached(CODEC_REPO, name, None) for name in CODEC_FILES)

    # --- fetching ------------------------------------------------------------------
    def fetch(self, relpath: str) -> Path:
        """The local path of a repo file, downloading it first from a hub repo."""
        check_relpath(relpath)
        if self.root is not None:
            return self._local(relpath)
        try:
            return self._hub_file(self.repo_id, relpath)
        except _EntryMissing:
            fallback = HUB_FALLBACKS.get(relpath)
            if fallback is None:
                raise CheckpointError(f"{self.repo_id} has no file {relpath}") from None
            try:
                return self._hub_file(*fallback)
            except _EntryMissing:
                raise CheckpointError(f"{self.repo_id} has no file {relpath}") from None

    def codec_path(self) -> Path:
        """A folder `EncodecModel.from_pretrained` reads: `DIR/encodec` or a hub snapshot."""
        if self.root is not None:
            folder = self.root / CODEC_DIR
            for name in CODEC_FILES:
                self._local(f"{CODEC_DIR}/{name}")
            return folder
        first = self._hub_file(CODEC_REPO, CODEC_FILES[0], missing_is_error=True)
        commit = first.parent.name  # the snapshot folder is named by its commit hash
        for name in CODEC_FILES[1:]:
            self._hub_file(CODEC_REPO, name, revision=commit, missing_is_error=True)
        for name in CODEC_OPTIONAL_FILES:  # not needed to decode
            with contextlib.suppress(_EntryMissing, WeightsUnavailableError):
                self._hub_file(CODEC_REPO, name, revision=commit)
        return first.parent

    def _local(self, relpath: str) -> Path:
        assert self.root is not None
        path = self.root.joinpath(*relpath.split("/"))
        if not path.is_file():
            raise WeightsUnavailableError(
                f"model folder {self.root} has no {relpath}: pass a complete --models DIR "
                "(or `bark-tui download` one)"
            )
        return path

    def _hub_file(
        self,
        repo_id: str,
        relpath: str,
        *,
        revision: str | None = None,
        missing_is_error: bool = False,
    ) -> Path:
        """`hf_hub_download` with progress events and our error types."""
        import huggingface_hub as hub
        from huggingface_hub import utils as hub_errors  # (also re-exported by old versions)

        # huggingface_hub retries an unreachable hub for ~25 s (and logs each try)
        # before giving up on a file it has not cached; a quick connect says so at once.
        online = not self.offline
        if (
            online
            and not self._cached(repo_id, relpath, revision)
            and not hub_reachable(self.endpoint)
        ):
            raise self._unavailable(repo_id, relpath)
        try:
            local = hub.hf_hub_download(
                repo_id,
                relpath,
                revision=revision,
                cache_dir=self.cache_dir,
                local_files_only=self.offline,
                endpoint=self.endpoint,
                library_name="bark-tui",
                tqdm_class=progress_bar_class(relpath, self.on_event),
            )
        except hub_errors.LocalEntryNotFoundError as e:
            raise self._unavailable(repo_id, relpath) from e
        except hub_errors.OfflineModeIsEnabled as e:
            raise self._unavailable(repo_id, relpath) from e
        except hub_errors.RevisionNotFoundError as e:
            raise CheckpointError(
                f"{repo_id} has no revision {revision or 'main'}: cannot get {relpath}"
            ) from e
        except hub_errors.RepositoryNotFoundError as e:  # missing, private or gated
            raise CheckpointError(
                f"repository {repo_id} not found or not accessible (a gated repo needs "
                f"`hf auth login`): cannot get {relpath}"
            ) from e
        except hub_errors.EntryNotFoundError as e:
            if missing_is_error:
                raise CheckpointError(f"{repo_id} has no file {relpath}") from e
            raise _EntryMissing(relpath) from e
        except Exception as e:
            if not isinstance(e, (hub_errors.HfHubHTTPError, OSError)) and not _is_network_error(e):
                raise
            raise WeightsUnavailableError(
                f"downloading {relpath} from {repo_id} failed ({_first_line(e)}): {WAY_OUT}"
            ) from e
        return Path(local)

    def _cached(self, repo_id: str, relpath: str, revision: str | None) -> bool:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(
            repo_id, relpath, cache_dir=self.cache_dir, revision=revision
        )
        return isinstance(found, str)

    def _unavailable(self, repo_id: str, relpath: str) -> WeightsUnavailableError:
        why = "offline mode is on" if self.offline else "the hub cannot be reached"
        return WeightsUnavailableError(
            f"{relpath} ({repo_id}) is not downloaded and {why}: {WAY_OUT}"
        )


class _EntryMissing(Exception):
    """The repo exists but has no such file (lets `fetch` try a fallback repo)."""


def _is_network_error(e: BaseException) -> bool:
    """An exception of the HTTP client huggingface_hub uses (it changed across versions)."""
    return type(e).__module__.split(".")[0] in {"httpx", "httpx2", "requests", "urllib3"}


PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
PROBE_TIMEOUT_S = 5.0


def hub_reachable(endpoint: str | None = None) -> bool:
    """Whether a TCP connection to the hub opens; assumed yes behind a proxy."""
    if any(os.environ.get(var) for var in PROXY_VARS):
        return True  # only the proxy knows the way
    if endpoint is None:
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=PROBE_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def progress_bar_class(what: str, on_event: EventCallback) -> type:
    """A tqdm class for `hf_hub_download(tqdm_class=...)` that reports through `on_event`.

    It never draws: the app and the CLI render `LoadProgress` themselves.
    """
    from tqdm.auto import tqdm

    class _EventBar(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)  # some huggingface_hub versions pass it
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self._done = int(kwargs.get("initial") or 0)
            total = kwargs.get("total")
            self._total = None if total is None else int(total)
            on_event(LoadProgress(what, self._done, self._total, f"downloading {what}"))

        def update(self, n: float | None = 1) -> bool | None:
            self._done += int(n or 0)
            on_event(LoadProgress(what, self._done, self._total, f"downloading {what}"))
            return None

    return _EventBar


# --- `bark-tui download` -----------------------------------------------------------------


def v2_preset_names() -> list[str]:
    """The 130 `v2/...` presets of the catalog."""
    from ..voices.catalog import PRESETS

    return [p.name for p in PRESETS if p.version == "v2"]


def download_relpaths(source: ModelSource, presets: Iterable[str] | None = None) -> list[str]:
    """Repo files `download` fetches: checkpoints, vocabulary, each preset's three arrays."""
    from ..voices.catalog import preset_relpaths

    names = v2_preset_names() if presets is None else list(presets)
    files = [source.checkpoint_relpath(stage) for stage in STAGES]
    files.append(source.vocab_relpath)
    for name in names:
        files.extend(preset_relpaths(name))
    return files


def download(source: ModelSource, presets: Iterable[str] | None = None) -> list[Path]:
    """Fetch everything a session needs into the cache (or check a local folder has it).

    `presets` are catalog names; None means all 130 v2 presets. Reports
    `LoadProgress("download", i, n, relpath)` before each file, besides the
    byte-level progress of each download. Returns the local paths, codec folder last.
    """
    relpaths = download_relpaths(source, presets)
    n = len(relpaths) + 1
    paths = []
    for i, relpath in enumerate(relpaths):
        source.on_event(LoadProgress("download", i, n, relpath))
        paths.append(source.fetch(relpath))
    source.on_event(LoadProgress("download", n - 1, n, "encodec"))
    paths.append(source.codec_path())
    source.on_event(LoadProgress("download", n, n, "done"))
    return paths
