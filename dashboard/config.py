"""The dashboard's settings: where it listens, where it caches, how large uploads may be."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from dashboard.images import UploadLimits

GIB = 1024**3
MB = 1000**2
_POSITIVE = (
    "cache_size_limit",
    "max_upload_bytes",
    "max_uncompressed_bytes",
    "max_zip_members",
    "max_image_pixels",
    "max_instance_values",
    "workers",
    "threads",
    "max_rows",
    "max_samples",
)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/innsight-dashboard``, or ``~/.cache/innsight-dashboard``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "innsight-dashboard"


def default_workers() -> int:
    """One job per core (each job then runs torch on one thread)."""
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class WorkLimits:
    """The most one request may ask for: rows to explain, and samples (``n``, background
    sample size, DeepSHAP's ``limit_ref``)."""

    max_rows: int = 1000
    max_samples: int = 1000


@dataclass(frozen=True)
class Config:
    """Settings of one dashboard process.

    Parameters
    ----------
    host : str, default="127.0.0.1"
        The interface to listen on; ``"0.0.0.0"`` serves the whole network.
    port : int, default=8050
    cache_dir : path, default=default_cache_dir()
        The folder of the upload and result cache (created private to the user). It
        holds pickled results that the dashboard loads, so no one else may write to it.
    cache_size_limit : int, default=2 GiB
        Bytes the cache may hold; least recently used entries are evicted beyond it.
    max_upload_bytes : int, default=50 MB
        The largest model or data file accepted, and the most a zip member may unpack to.
    max_uncompressed_bytes : int, default=200 MB
        The most bytes all members of an uploaded zip may unpack to together.
    max_zip_members : int, default=10000
        The most files an uploaded zip may hold.
    max_image_pixels : int, default=16 million
        The most pixels (height × width) an uploaded image may declare.
    max_instance_values : int, default=4 million
        The most values one instance may have at the input or any layer of an uploaded
        model (checked from the declared shapes, before anything is allocated).
    trust_torchscript : bool, default=False
        Accept TorchScript uploads (``--trust-torchscript``). TorchScript runs code from
        the file when it is loaded, so it is refused unless every uploader is trusted.
    workers : int, default=the number of cores
        Jobs that run at once; the rest wait in a queue. Each job gets
        ``max(1, cores // workers)`` torch threads.
    threads : int, default=8
        Request threads of the server (``python -m dashboard``; gunicorn has its own
        options). Jobs run in worker processes, so the threads only answer requests.
    job_time_limit : float, default=300
        Seconds a job may run before it is stopped and reported as failed.
    max_rows : int, default=1000
        The most rows one request may explain.
    max_samples : int, default=1000
        The most samples, path steps, background rows or reference rows of a request
        (``n``, ``sample_size``, ``limit_ref``).
    redis_url : str, default=None
        ``redis://host:port/db``: jobs run on Celery workers with Redis as broker and
        the store for uploads and results (see the README); None runs them in worker
        processes of this server, with the store in ``cache_dir``.
    debug : bool, default=False
        Dash's debug mode (reloader and error pages); never on a shared server.
    model_file, data_file : path, default=None
        A model and a data file every new page starts with (``--model``, ``--data``).
    input_columns : tuple of str, default=None
        The columns of ``data_file`` that are the model's inputs (``--input-columns``);
        None: every numeric column, which the page lets the user change.

    Examples
    --------
    >>> Config(port=8051, max_upload_bytes=10_000_000).port
    8051
    """

    host: str = "127.0.0.1"
    port: int = 8050
    cache_dir: Path = field(default_factory=default_cache_dir)
    cache_size_limit: int = 2 * GIB
    max_upload_bytes: int = 50 * MB
    max_uncompressed_bytes: int = 200 * MB
    max_zip_members: int = 10_000
    max_image_pixels: int = 16_000_000
    max_instance_values: int = 4_000_000
    trust_torchscript: bool = False
    workers: int = field(default_factory=default_workers)
    threads: int = 8
    job_time_limit: float = 300.0
    max_rows: int = 1000
    max_samples: int = 1000
    redis_url: str | None = None
    debug: bool = False
    model_file: Path | None = None
    data_file: Path | None = None
    input_columns: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser())
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ValueError(f"port must be an integer from 1 to 65535; got {self.port!r}.")
        for name in _POSITIVE:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                unit = "number of bytes" if name.endswith(("_bytes", "_limit")) else "number"
                raise ValueError(f"{name} must be a positive {unit}; got {value!r}.")
        limit = self.job_time_limit
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
            raise ValueError(f"job_time_limit must be a positive number of seconds; got {limit!r}.")
        if self.max_upload_bytes > self.cache_size_limit:
            raise ValueError(
                f"max_upload_bytes ({self.max_upload_bytes}) exceeds cache_size_limit "
                f"({self.cache_size_limit}): an upload would evict itself. Raise "
                "cache_size_limit or lower max_upload_bytes."
            )

    @property
    def work_limits(self) -> WorkLimits:
        """The bounds on one request, for :func:`dashboard.jobs.build_request`."""
        return WorkLimits(max_rows=self.max_rows, max_samples=self.max_samples)

    @property
    def torch_threads(self) -> int:
        """Threads each job's torch uses: the cores shared by the workers."""
        return max(1, (os.cpu_count() or 1) // self.workers)

    @property
    def upload_limits(self) -> UploadLimits:
        """The bounds on uploaded images and zips, for :func:`dashboard.uploads.read_data`."""
        return UploadLimits(
            max_member_bytes=self.max_upload_bytes,
            max_uncompressed_bytes=self.max_uncompressed_bytes,
            max_zip_members=self.max_zip_members,
            max_image_pixels=self.max_image_pixels,
            max_instance_values=self.max_instance_values,
            trust_torchscript=self.trust_torchscript,
        )


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """A :class:`Config` from command-line arguments (``python -m dashboard --port 8051``).

    Parameters
    ----------
    argv : list of str, default=None
        The arguments without the program name; None reads ``sys.argv``.

    Examples
    --------
    >>> parse_args(["--port", "8051", "--max-upload-mb", "10"]).max_upload_bytes
    10000000
    """
    defaults = {f.name: f.default for f in fields(Config)}
    parser = argparse.ArgumentParser(
        prog="python -m dashboard", description="Run the innsight dashboard."
    )
    parser.add_argument("--host", default=defaults["host"], help="interface (%(default)s)")
    parser.add_argument("--port", type=int, default=defaults["port"], help="port (%(default)s)")
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help=f"cache folder ({default_cache_dir()})"
    )
    parser.add_argument(
        "--cache-size-gb",
        type=float,
        default=defaults["cache_size_limit"] / GIB,
        help="cache size limit in GiB (%(default)s)",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=defaults["max_upload_bytes"] / MB,
        help="largest upload in MB (%(default)s)",
    )
    parser.add_argument(
        "--max-uncompressed-mb",
        type=float,
        default=defaults["max_uncompressed_bytes"] / MB,
        help="most an uploaded zip may unpack to, in MB (%(default)s)",
    )
    parser.add_argument(
        "--max-zip-members",
        type=int,
        default=defaults["max_zip_members"],
        help="most files in an uploaded zip (%(default)s)",
    )
    parser.add_argument(
        "--max-image-pixels",
        type=int,
        default=defaults["max_image_pixels"],
        help="most pixels of an uploaded image (%(default)s)",
    )
    parser.add_argument(
        "--max-instance-values",
        type=int,
        default=defaults["max_instance_values"],
        help="most values per instance at any layer of an uploaded model (%(default)s)",
    )
    parser.add_argument(
        "--trust-torchscript",
        action="store_true",
        help="accept TorchScript uploads, which run code from the file (trusted users only)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="jobs run at once (the number of cores)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=defaults["threads"],
        help="request threads of the server (%(default)s)",
    )
    parser.add_argument(
        "--job-time-limit",
        type=float,
        default=defaults["job_time_limit"],
        help="seconds a job may run (%(default)s)",
    )
    parser.add_argument(
        "--max-rows", type=int, default=defaults["max_rows"], help="rows per request (%(default)s)"
    )
    parser.add_argument(
        "--max-samples",
        type=int,
        default=defaults["max_samples"],
        help="samples, steps or reference rows per request (%(default)s)",
    )
    parser.add_argument(
        "--redis-url", help="run jobs on Celery workers with this Redis (redis://host:6379/0)"
    )
    parser.add_argument("--model", type=Path, help="a model file every page starts with")
    parser.add_argument("--data", type=Path, help="a data file every page starts with")
    parser.add_argument(
        "--input-columns",
        help="the --data CSV's columns that are the model's inputs, comma-separated "
        "(default: every numeric column; the page can change them)",
    )
    parser.add_argument("--debug", action="store_true", help="Dash debug mode")
    args = parser.parse_args(argv)
    settings = {
        "host": args.host,
        "port": args.port,
        "cache_size_limit": round(args.cache_size_gb * GIB),
        "max_upload_bytes": round(args.max_upload_mb * MB),
        "max_uncompressed_bytes": round(args.max_uncompressed_mb * MB),
        "max_zip_members": args.max_zip_members,
        "max_image_pixels": args.max_image_pixels,
        "max_instance_values": args.max_instance_values,
        "trust_torchscript": args.trust_torchscript,
        "threads": args.threads,
        "job_time_limit": args.job_time_limit,
        "max_rows": args.max_rows,
        "max_samples": args.max_samples,
        "redis_url": args.redis_url,
        "debug": args.debug,
        "model_file": args.model,
        "data_file": args.data,
        "input_columns": _names(args.input_columns),
    }
    if args.cache_dir is not None:
        settings["cache_dir"] = args.cache_dir
    if args.workers is not None:
        settings["workers"] = args.workers
    return Config(**settings)


def _names(text: str | None) -> tuple[str, ...] | None:
    """``"age, bmi"`` → ``("age", "bmi")``; empty → None."""
    names = tuple(name.strip() for name in (text or "").split(",") if name.strip())
    return names or None
