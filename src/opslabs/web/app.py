"""The ASGI layer: routes, the signed session, the ownership checks; everything else is
opslabs.web.service (plain functions, called in threads) and opslabs.web.terminal.

Who someone is comes only from the signed, HTTP-only session cookie (learner id, trainer
flag); a URL names a lab and a host, and the server looks up that learner's own run of it,
so no request can name another learner's containers. No response carries a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from opslabs.errors import OpslabsError, UserError
from opslabs.web import terminal
from opslabs.web.pages import page
from opslabs.web.service import Forbidden, WebError, Workshop

log = logging.getLogger("opslabs.web")
STATIC = Path(__file__).parent / "static"
COOKIE = "opslabs_workshop"
MAX_FORM = 16 * 1024
THREADS = 200
TOUCH_EVERY = 10.0  # seconds: terminal input marks the lab active at most this often
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
API_HEADER = "x-opslabs"  # a cross-site page cannot send it without a preflight this server refuses


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                                                           "Referrer-Policy": "same-origin", "Cache-Control": "no-store"})


def _error_json(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"Cache-Control": "no-store"})


def status_of(err: Exception) -> int:
    if isinstance(err, WebError):
        return err.status
    if isinstance(err, UserError):
        return 409  # e.g. every step done, a broken lab: the request was fine, the lab's state is not
    return 500


def message_of(err: Exception) -> str:
    if isinstance(err, OpslabsError):
        return str(err)
    return "the workshop server failed on this request; the trainer finds the details in the server's output"


def create_app(service: Workshop, secure_cookie: bool = False) -> Starlette:
    terminals: set[terminal.PtyProcess] = set()

    async def learner_id(conn) -> str:
        """The session's learner; refused unless they exist here (a cookie of another workshop).
        In a thread, as every database call: the event loop never waits for SQLite's lock."""
        return (await run_in_threadpool(service.learner, conn.session.get("learner"))).id

    async def call(fn, *args):
        """Run a blocking service call in a thread; refusals and failures become JSON with a status."""
        try:
            return JSONResponse(await run_in_threadpool(fn, *args), headers={"Cache-Control": "no-store"})
        except Exception as err:  # noqa: BLE001 - the one place a request's failure becomes its answer
            if not isinstance(err, OpslabsError):
                log.exception("request failed")
            return _error_json(status_of(err), message_of(err))

    def api(handler):
        """A learner API endpoint: the session names the learner; POSTs need our header."""
        async def endpoint(request: Request):
            if request.method == "POST" and request.headers.get(API_HEADER) != "1":
                return _error_json(403, f"missing the {API_HEADER} header: requests come from the workshop's own pages")
            try:
                learner = await learner_id(request)
            except WebError as err:
                return _error_json(401, str(err))
            return await handler(request, learner)
        return endpoint

    # --- learner pages ---

    async def home(request: Request):
        try:
            learner = await run_in_threadpool(service.learner, request.session.get("learner"))
        except WebError:
            return _html(page("join.html", error="", name=""))
        labs = await run_in_threadpool(service.catalog_labs, learner.id)
        return _html(page("labs.html", learner=learner, labs=labs))

    async def join(request: Request):
        form = await _form(request)
        if isinstance(form, Response):
            return form
        name, code = str(form.get("name", "")), str(form.get("code", ""))
        try:
            learner = await run_in_threadpool(service.join, name, code)
        except UserError as err:  # a wrong code (403), a name that is empty or too long (400)
            return _html(page("join.html", error=str(err), name=name[:60]), status=getattr(err, "status", 400))
        request.session.clear()
        request.session["learner"] = learner.id
        return RedirectResponse("/", status_code=303)

    async def leave(request: Request):
        request.session.pop("learner", None)
        return RedirectResponse("/", status_code=303)

    async def lab_page(request: Request):
        lab = request.path_params["lab"]
        try:
            learner = await run_in_threadpool(service.learner, request.session.get("learner"))
        except WebError:
            return RedirectResponse("/", status_code=303)
        try:
            state = await run_in_threadpool(service.lab_state, learner.id, lab)
        except WebError as err:
            return _html(page("error.html", title="No such lab", message=str(err)), status=err.status)
        return _html(page("lab.html", learner=learner, state=state))

    async def lab_state(request: Request, learner: str):
        return await call(service.lab_state, learner, request.path_params["lab"])

    async def lab_action(request: Request, learner: str):
        lab, action = request.path_params["lab"], request.path_params["action"]
        fn = {"start": service.start, "check": service.check, "solve": service.solve, "hints": service.hints}.get(action)
        if fn is None:
            return _error_json(404, f"unknown action {action!r}: start, check, solve or hints")
        return await call(fn, learner, lab)

    # --- the terminal ---

    async def terminal_ws(ws: WebSocket):
        lab, host = ws.path_params["lab"], ws.path_params["host"]
        await ws.accept()

        async def refuse(code: int, message: str) -> None:
            await ws.send_json({"type": "error", "message": message, "fatal": True})
            await ws.close(code=code, reason=message[:120])

        origin = ws.headers.get("origin")
        if origin and urlsplit(origin).netloc != ws.headers.get("host"):
            return await refuse(4403, "this terminal opens only from the workshop's own pages")
        try:
            learner = await learner_id(ws)
            container, engine_url = await run_in_threadpool(service.terminal, learner, lab, host)
        except WebError as err:
            return await refuse(4000 + (401 if isinstance(err, Forbidden) else err.status), str(err))
        except OpslabsError as err:
            return await refuse(4500, str(err))
        cols = _int(ws.query_params.get("cols"), 80)
        rows = _int(ws.query_params.get("rows"), 24)
        try:
            pty = terminal.PtyProcess(container, engine_url, cols, rows)
        except OSError as err:
            return await refuse(4500, f"cannot open a terminal: {err}")
        terminals.add(pty)
        loop = asyncio.get_running_loop()
        output: asyncio.Queue[bytes | None] = asyncio.Queue()

        first = True

        def readable() -> None:
            nonlocal first
            data = pty.read()
            if data is None:
                loop.remove_reader(pty.master)
            if data != b"":
                output.put_nowait(data)
            if data and first:
                # The shell answered, so the docker CLI runs; a size set before (the page's first
                # fit) may have reached it before it watched for resizes: set it again, and once
                # more a little later (on a loaded machine the CLI's watcher starts late).
                first = False
                for delay in (0, 0.5, 2.0):
                    loop.call_later(delay, lambda: pty.proc.poll() is None and pty.resize(*pty.size))

        loop.add_reader(pty.master, readable)

        async def pump() -> None:
            while (data := await output.get()) is not None:
                await ws.send_bytes(data)
            row = await run_in_threadpool(service.state.lab, learner, lab)
            note = row.note if row is not None and not row.running else ""
            await ws.send_json({"type": "closed", "message": note or f"The shell on {host} ended. Reconnect opens a new one."})
            await ws.close(code=1000)

        sender = asyncio.create_task(pump())
        touched = 0.0
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("text") if message.get("text") is not None else message.get("bytes", b"")
                try:
                    parsed = terminal.parse_message(raw)
                except terminal.BadMessage as err:
                    await ws.send_json({"type": "error", "message": str(err)})  # the terminal stays open
                    continue
                if isinstance(parsed, terminal.Resize):
                    pty.resize(parsed.cols, parsed.rows)
                    continue
                await run_in_threadpool(pty.write, parsed.data.encode("utf-8", "replace"))
                if time.monotonic() - touched > TOUCH_EVERY:
                    touched = time.monotonic()
                    await run_in_threadpool(service.touch, learner, lab)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            with contextlib.suppress(Exception):
                loop.remove_reader(pty.master)
            sender.cancel()
            terminals.discard(pty)
            await run_in_threadpool(pty.close)

    # --- the web port proxy (opslabs.web.proxy) ---

    async def port_proxy(request: Request):
        from opslabs.web import proxy

        lab, host, path = request.path_params["lab"], request.path_params["host"], request.path_params["path"]
        port = request.path_params["port"]
        try:
            learner = await learner_id(request)
            container, engine_url = await run_in_threadpool(service.terminal, learner, lab, host)
        except WebError as err:
            status = 401 if isinstance(err, Forbidden) else err.status
            return Response(str(err), status_code=status, media_type="text/plain")
        if not 1 <= port <= 65535:
            return Response(f"port {port} is not a TCP port (1 to 65535)", status_code=404, media_type="text/plain")
        await run_in_threadpool(service.touch, learner, lab)
        prefix = f"/lab/{lab}/host/{host}/port/{port}"
        return await proxy.forward(request, engine_url or None, container, port, "/" + path, prefix,
                                   host=host, drop_cookies=[COOKIE])

    async def open_port(request: Request):
        """The lab page's "Open web page" form (it works without script): on to the proxy path."""
        lab, host, port = request.path_params["lab"], request.query_params.get("host", ""), request.query_params.get("port", "")
        try:
            entry = service.entry(lab)
        except WebError as err:
            return _html(page("error.html", title="No such lab", message=str(err)), status=err.status)
        if host not in entry.task.lab.hosts or not port.isdigit() or not 1 <= int(port) <= 65535:
            return _html(page("error.html", title="Bad request", message=f"expected a host of lab {lab} "
                              f"({', '.join(entry.task.lab.hosts)}) and a port from 1 to 65535"), status=400)
        return RedirectResponse(f"/lab/{entry.id}/host/{host}/port/{int(port)}/", status_code=303)

    # --- the trainer ---

    def is_trainer(request: Request) -> bool:
        return request.session.get("trainer") == service.secrets["trainer_token"][:8]

    async def trainer_page(request: Request):
        if not is_trainer(request):
            return _html(page("trainer_login.html", error=""))
        return _html(page("trainer.html", code=service.secrets["code"]))

    async def trainer_login(request: Request):
        form = await _form(request)
        if isinstance(form, Response):
            return form
        if not service.trainer_ok(str(form.get("token", ""))):
            return _html(page("trainer_login.html", error="That is not the trainer token printed when the server started."), status=403)
        request.session["trainer"] = service.secrets["trainer_token"][:8]
        return RedirectResponse("/trainer", status_code=303)

    async def trainer_room(request: Request):
        if not is_trainer(request):
            return _error_json(401, "log in as the trainer first")
        return await call(lambda: {"learners": service.room(), "engines": service.pool.status(),
                                   "seats": service.settings.seats, "idle": service.settings.idle})

    async def trainer_action(request: Request):
        if not is_trainer(request):
            return _error_json(401, "log in as the trainer first")
        if request.headers.get(API_HEADER) != "1":
            return _error_json(403, f"missing the {API_HEADER} header: requests come from the workshop's own pages")
        learner, lab, action = (request.path_params[k] for k in ("learner", "lab", "action"))
        if action == "stop":
            return await call(lambda: service.stop(learner, lab, "Your trainer stopped this lab. Your progress is kept: "
                                                   "Start recreates it at your step.") or {"stopped": lab})
        if action == "reset":
            return await call(lambda: service.reset(learner, lab) or {"reset": lab})
        return _error_json(404, f"unknown action {action!r}: stop or reset")

    async def not_found(request: Request, exc: HTTPException):
        if request.url.path.startswith("/api/"):
            return _error_json(exc.status_code, exc.detail)
        return _html(page("error.html", title=exc.detail, message=f"{request.url.path}: {exc.detail}"), status=exc.status_code)

    async def failed(request: Request, exc: Exception):
        log.exception("request failed")
        return _error_json(500, message_of(exc))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        # Checks, solutions and lab starts each hold a thread while the engine works: a room of
        # learners pressing Check together should not queue behind anyio's default 40.
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        await run_in_threadpool(service.remove_all, "The workshop server restarted. Your progress is kept: "
                                "Start recreates your lab at your step.")
        reaper = asyncio.create_task(_reap(service))
        try:
            yield
        finally:
            reaper.cancel()
            for pty in list(terminals):
                pty.close()
            await run_in_threadpool(service.remove_all, "The workshop server stopped. Your progress is kept: "
                                    "Start recreates your lab at your step.")

    routes = [
        Route("/", home),
        Route("/join", join, methods=["POST"]),
        Route("/leave", leave, methods=["POST"]),
        Route("/lab/{lab}", lab_page),
        Route("/lab/{lab}/open-port", open_port),
        Route("/lab/{lab}/host/{host}/port/{port:int}/{path:path}", port_proxy,
              methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        Route("/api/lab/{lab}", api(lab_state)),
        Route("/api/lab/{lab}/{action}", api(lab_action), methods=["POST"]),
        WebSocketRoute("/ws/lab/{lab}/host/{host}", terminal_ws),
        Route("/trainer", trainer_page),
        Route("/trainer/login", trainer_login, methods=["POST"]),
        Route("/api/trainer/room", trainer_room),
        Route("/api/trainer/learner/{learner}/lab/{lab}/{action}", trainer_action, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(SessionMiddleware, secret_key=service.secrets["secret_key"], session_cookie=COOKIE,
                             same_site="lax", https_only=secure_cookie, max_age=7 * 24 * 3600)]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                     exception_handlers={HTTPException: not_found, Exception: failed})


async def _form(request: Request):
    """A small urlencoded form (the join and login forms) as {name: value}, or an error page."""
    length = request.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > MAX_FORM:
        return _html(page("error.html", title="Request too large", message=f"a form has at most {MAX_FORM} bytes"), status=413)
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return _html(page("error.html", title="Bad request", message="expected a form (application/x-www-form-urlencoded)"), status=400)
    body = await request.body()
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return _html(page("error.html", title="Bad request", message="the form could not be read"), status=400)
    return {key: values[0] for key, values in fields.items()}


async def _reap(service: Workshop) -> None:
    every = min(max(service.settings.idle / 4, 1.0), 30.0)
    while True:
        await asyncio.sleep(every)
        try:
            await run_in_threadpool(service.reap_idle)
        except Exception:  # noqa: BLE001 - the reaper must outlive one failed round
            log.exception("idle reaper")


def _int(value: str | None, default: int) -> int:
    try:
        number = int(value or default)
    except ValueError:
        return default
    return min(max(number, 1), terminal.MAX_SIZE)
