"""Run the serving app with uvicorn: ``python -m churn_mlops.serving``.

Everything is configured by ``CHURN_*`` environment variables (``docs/serving.md``): bind
address (default 127.0.0.1:8000), TLS certificate and key, auth, limits, model bundle. One
worker process: scale out with replicas, not workers, so each process keeps one model copy
and one metrics registry.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

logger = logging.getLogger("churn_mlops.serving")


def main(argv: Sequence[str] | None = None) -> int:
    """Validate the settings, build the app and serve it until interrupted."""
    import uvicorn

    from churn_mlops.serving.app import create_app
    from churn_mlops.serving.errors import SettingsError
    from churn_mlops.serving.middleware import header_timeout_protocol
    from churn_mlops.serving.settings import get_settings

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s - %(message)s"
    )
    try:
        settings = get_settings()
    except ValidationError as exc:
        for err in exc.errors(include_input=False, include_url=False):
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            logger.error("invalid setting CHURN_%s: %s", field.upper(), err["msg"])
        return 2
    logging.getLogger().setLevel(settings.log_level.upper())
    try:
        app = create_app(settings)
    except SettingsError as exc:
        logger.error("%s", exc)
        return 2
    password = settings.ssl_keyfile_password
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        workers=1,
        http=header_timeout_protocol(settings.request_timeout_s),
        log_level=settings.log_level,
        access_log=settings.access_log,
        ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
        ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
        ssl_keyfile_password=password.get_secret_value() if password else None,
        server_header=False,
        timeout_graceful_shutdown=30,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
