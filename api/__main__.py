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
    )


if __name__ == "__main__":
    main()
