"""`opslabs workshop serve`: build the workshop, say how to join, run uvicorn until Ctrl-C."""

from __future__ import annotations

import fcntl
import logging
import os
import socket
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
    state_path = Path(state_path or default_state_path())
    lock = _lock_state(state_path)  # a second server on the same state would remove this one's labs at start
    sock = _listen(host, port)  # before anything is started: a port in use changes nothing
    service = Workshop(catalog, state_path, settings)
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
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once it has shut down (the labs are removed by then)
        pass
    finally:
        sock.close()
        lock.close()
    say("opslabs workshop: stopped; every lab's containers are removed, progress is kept.")


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise UserError(f"the workshop server cannot listen on {host}:{port}: {err.strerror} "
                        "(another server there? pick another --port)") from None
    return sock


def _lock_state(state_path: Path):
    state_path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(state_path.with_name(state_path.name + ".lock"), "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise UserError(f"another workshop server ({holder}) uses {state_path}; stop it first, "
                        "or give this one its own --state") from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()}")
    lock.flush()
    return lock
