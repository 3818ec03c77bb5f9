"""Finding Ray and the cluster: a local instance on loopback, or an existing cluster.

Ray is an optional extra; without it `--ray` is one line saying how to install it.
A local instance is started with every Ray server bound to 127.0.0.1 (Ray binds a
node's servers to its node address, and picks loopback when clusters across
machines are switched off for the process tree), so nothing listens beyond this
machine unless an address of a real cluster is given.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

from bark_engine.errors import BadInputError

INSTALL_HINT = "--ray needs Ray: pip install 'bark-tui[ray]' (or pip install ray)"
LOCAL = "local"  # `--ray` with no address: a Ray instance of this machine, for this render
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Cluster:
    """Where the render runs, once connected."""

    address: str  # "local", "auto" or ray://host:port as given
    started_here: bool  # a local instance this process started (and stops)
    cpus: float
    gpus: float


def check_address(address: str) -> str:
    """`local`, `auto` or a `ray://host:port` address; anything else is refused."""
    if address in (LOCAL, "auto") or address.startswith("ray://"):
        return address
    raise BadInputError(f"--ray wants no address (a local Ray instance), 'auto' or "
                        f"ray://HOST:PORT, got '{address}'")


def import_ray():
    try:
        import ray
    except ImportError:
        raise BadInputError(INSTALL_HINT) from None
    return ray


def connect(address: str, *, num_cpus: int | None = None) -> Cluster:
    """Connect this process to Ray (starting a local instance for `local`)."""
    address = check_address(address)
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():  # already connected
        return _cluster(sys.modules["ray"], address, started_here=False)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    local = address == LOCAL
    if local:
        # Read when Ray is imported: loopback node address, servers bound to it.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray = import_ray()
    _fault_handler_first()
    kwargs: dict = {"log_to_driver": False, "configure_logging": True,
                    "logging_level": "ERROR"}
    if local:
        kwargs.update(address="local", num_cpus=num_cpus or os.cpu_count() or 1,
                      include_dashboard=False, _node_ip_address=LOOPBACK)
    else:
        kwargs.update(address=address)
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise BadInputError(f"could not reach the Ray cluster at {address}: "
                            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return _cluster(ray, address, started_here=local)


def _fault_handler_first() -> None:
    """Ray's `init` enables `faulthandler` on `sys.stderr`, which in the studio is
    Textual's capture of prints and has no file descriptor (so `init` fails). Enabled
    here first on the process's own stderr, Ray leaves it as it is."""
    import faulthandler

    if faulthandler.is_enabled() or sys.__stderr__ is None:
        return
    with contextlib.suppress(RuntimeError, ValueError, OSError):  # none usable: Ray's choice
        faulthandler.enable(file=sys.__stderr__, all_threads=False)


def _cluster(ray, address: str, *, started_here: bool) -> Cluster:
    resources = ray.cluster_resources()
    return Cluster(address, started_here, float(resources.get("CPU", 0.0)),
                   float(resources.get("GPU", 0.0)))


def disconnect() -> None:
    """Leave Ray (a local instance this process started stops with it)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
