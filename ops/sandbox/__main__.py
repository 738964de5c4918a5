"""``python -m ops.sandbox [--host H] [--port P] [--db PATH] [--public-url URL]``: run the sandbox."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from domain.settings import ensure_safe_to_start, get_settings
from ops.sandbox.app import create_app


def main(argv: list[str] | None = None) -> None:
    settings = get_settings()
    ensure_safe_to_start(settings, "the sandbox")
    parser = argparse.ArgumentParser(
        prog="python -m ops.sandbox", description="Run the sandbox: the stand-in outside world."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=settings.sandbox_port)
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (default: <data_dir>/sandbox.sqlite3)")
    parser.add_argument("--public-url", default=None, help="base of pay_urls (default: http://localhost:PORT)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    db = args.db or settings.data_dir / "sandbox.sqlite3"
    public_url = args.public_url or f"http://localhost:{args.port}"
    uvicorn.run(create_app(db, public_url), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
