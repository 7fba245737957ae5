"""``python -m dashboard [--host H] [--port P] [--cache-dir D] [--debug]``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

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
    app.run(host=config.host, port=config.port, debug=config.debug)


if __name__ == "__main__":
    main(sys.argv[1:])
