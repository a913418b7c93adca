"""`opslabs workshop serve`: build the workshop, say how to join, run uvicorn until Ctrl-C."""

from __future__ import annotations

import logging
from pathlib import Path

from opslabs import engine
from opslabs.catalog import Catalog
from opslabs.errors import UserError
from opslabs.web.service import Settings, Workshop, default_state_path

WS_MAX_SIZE = 1024 * 1024  # past this the websocket library closes that one connection (1009)


def vendor_missing() -> list[str]:
    vendor = Path(__file__).parent / "static" / "vendor"
    return [name for name in ("xterm.js", "xterm.css", "addon-fit.js") if not (vendor / name).is_file()]


def serve(catalog: Catalog, host: str, port: int, settings: Settings, state_path: Path | None = None,
          secure_cookie: bool = False, say=print) -> None:
    import uvicorn

    from opslabs.web.app import create_app

    missing = vendor_missing()
    if missing:
        raise UserError(f"the terminal's browser files are missing ({', '.join(missing)} in {Path(__file__).parent / 'static' / 'vendor'}): "
                        "run `python scripts/vendor-frontend.py` (make dev does)")
    engine.ensure_engine()
    service = Workshop(catalog, state_path or default_state_path(), settings)
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    url = f"http://{shown}:{port}"
    idle = f"{settings.idle / 60:g} min" if settings.idle >= 60 else f"{settings.idle:g} s"
    engines = ", ".join(one.name for one in service.pool.engines)
    say(f"opslabs workshop: {len(catalog.labs())} labs, {sum(one.seats for one in service.pool.engines)} seats on {engines}, "
        f"labs idle for {idle} are stopped")
    say(f"Learners open   {url}/   workshop code: {service.secrets['code']}")
    say(f"Trainer opens   {url}/trainer   trainer token: {service.secrets['trainer_token']}")
    say(f"State (progress, learners): {service.state.path}")
    say("Ctrl-C stops the server and removes every lab's containers (progress is kept).")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = uvicorn.Config(create_app(service, secure_cookie=secure_cookie), host=host, port=port, ws="websockets-sansio",
                            ws_max_size=WS_MAX_SIZE, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=5, proxy_headers=False)
    server = uvicorn.Server(config)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once it has shut down (the labs are removed by then)
        pass
    if not server.started:
        raise UserError(f"the workshop server could not listen on {host}:{port} (in use, or not an address of this machine)")
    say("opslabs workshop: stopped; every lab's containers are removed, progress is kept.")
