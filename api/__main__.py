"""`python -m api`: serve the API with uvicorn on the configured host and port."""

import uvicorn

from domain.settings import ensure_safe_to_start, get_settings
from workflows.client.logs import configure_logging


def main() -> None:
    settings = get_settings()
    ensure_safe_to_start(settings, "the API")
    configure_logging(settings, "api")
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        access_log=False,
        log_config=None,  # keep the format configure_logging chose (text or JSON)
        # "auto" (the default) takes uvloop and httptools when installed (pyproject.toml): said here so
        # that nobody pins the pure-Python ones by accident.
        loop="auto",
        http="auto",
    )


if __name__ == "__main__":
    main()
