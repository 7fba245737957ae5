"""``python -m dashboard [--host H] [--port P] [--cache-dir D] [--debug]``.

The dashboard is served by waitress (a production WSGI server, pure Python); with
``--debug`` by Flask's development server, with its reloader and error pages.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import waitress

from dashboard.app import create_app
from dashboard.config import parse_args


def main(argv: Sequence[str] | None = None) -> None:
    """Start the dashboard (the demo models are in its Model card)."""
    config = parse_args(argv)
    try:
        app = create_app(config)
    except (OSError, ValueError, KeyError) as error:
        raise SystemExit(f"Cannot start the dashboard: {error}") from None
    app.runner.start()  # workers are ready when the first page computes
    if config.debug:
        app.run(host=config.host, port=config.port, debug=True)
        return
    # Bodies over the upload limit are refused (HTTP 413) from their Content-Length,
    # before waitress buffers them. Each browser tab may hold several connections.
    waitress.serve(
        app.server, host=config.host, port=config.port, threads=config.threads,
        max_request_body_size=app.server.config["MAX_CONTENT_LENGTH"],
        connection_limit=CONNECTION_LIMIT, ident="innsight-dashboard",
    )  # fmt: skip


CONNECTION_LIMIT = 1000
"""Open connections the server keeps: a browser holds up to six per page, so
waitress's default of 100 would turn away part of a 30-person class."""


if __name__ == "__main__":
    main(sys.argv[1:])
