"""Open a lab host's web port in the learner's browser, through the engine itself.

Nothing of a lab is published on any interface. As `kubectl port-forward` does over the
Kubernetes API, the workshop server reaches a port over the Docker engine's exec API: one
`docker exec -i HOST bash` per request opens a TCP connection to 127.0.0.1:PORT inside the
host (bash's /dev/tcp) and copies bytes both ways. The server speaks HTTP/1.1 to it with
`Connection: close` (h11 writes the request and parses the answer) and streams the body
back. It works the same for a lab on a remote engine (ssh://, tcp://): only the exec
travels, over the engine's own connection.

`relay()` is the whole relay; `forward()` is a Starlette endpoint helper that the server's
route calls after it has checked that the lab belongs to the learner.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

from opslabs import engine

MAX_BODY = 10 * 1024 * 1024  # a request body larger than this is refused (413)
HEAD_TIMEOUT = 30.0  # seconds until the response's status line and headers
IDLE_TIMEOUT = 120.0  # seconds without a byte of the response body
READ_SIZE = 65536

# Inside the lab host: connect, then copy stdin to the socket in the background and the
# socket to stdout in the foreground (the exec ends when the web server closes). A
# background job's stdin would be /dev/null, so it reads a duplicate (fd 4) of ours.
# Exit 111: nothing listens there; 112: the host has no bash for /dev/tcp.
RELAY_SCRIPT = (
    'command -v bash >/dev/null 2>&1 || { echo "the host has no bash to open the connection with" >&2; exit 112; }; '
    "exec bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 || exit 111; exec 4<&0; cat <&4 >&3 4<&- & exec cat <&3 4<&-' relay \"$1\""
)

# Hop-by-hop headers (RFC 9110 7.6.1) are between two parties, never relayed; the length is recomputed.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "transfer-encoding", "upgrade", "content-length", "host"})

# Single-valued headers the ASGI server (uvicorn) writes itself: the lab's copy would make a second one.
SERVER_SETS = frozenset({"date", "server"})


class RelayError(Exception):
    """The port could not be reached; `status` is the HTTP status to answer with, the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Relayed:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: AsyncIterator[bytes]


def request_bytes(method: str, path: str, headers: Iterable[tuple[str, str]], body: bytes, host: str) -> bytes:
    """The HTTP/1.1 request as bytes on the wire: the browser's headers minus hop-by-hop ones,
    with Host, Content-Length and `Connection: close` set by us."""
    if not path.startswith("/"):
        raise RelayError(400, f"expected a path starting with /, got {path[:80]!r}")
    kept = [(name, value) for name, value in headers if name.lower() not in HOP_BY_HOP]
    wire = h11.Connection(our_role=h11.CLIENT)
    request = h11.Request(method=method, target=path,
                          headers=[("Host", host), *kept, ("Content-Length", str(len(body))), ("Connection", "close")])
    try:
        return wire.send(request) + (wire.send(h11.Data(data=body)) if body else b"") + wire.send(h11.EndOfMessage())
    except h11.LocalProtocolError as err:
        raise RelayError(400, f"the request cannot be relayed: {err}") from None


async def relay(engine_url: str | None, container: str, port: int, method: str, path: str,
                headers: Iterable[tuple[str, str]], body: bytes = b"", host: str = "localhost") -> Relayed:
    """Send one HTTP request to 127.0.0.1:`port` inside `container` on the engine at `engine_url`
    (None: the environment's) and return the status, headers and a stream of the body.
    Raises RelayError (502 unreachable, 504 no answer in time) with a sentence for the learner."""
    if not 1 <= port <= 65535:
        raise RelayError(400, f"expected a port from 1 to 65535, got {port}")
    data = request_bytes(method, path, headers, body, f"{host}:{port}" if port != 80 else host)
    args = engine.cli("exec", "--interactive", container, "sh", "-c", RELAY_SCRIPT, "relay", str(port), url=engine_url)
    try:
        proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError:
        raise RelayError(502, "the `docker` command is not installed on the workshop server") from None
    stderr_task = asyncio.ensure_future(proc.stderr.read())
    try:
        proc.stdin.write(data)
        await proc.stdin.drain()
        proc.stdin.close()  # the request is complete; `cat` in the host ends, the socket stays open for the answer
    except (BrokenPipeError, ConnectionResetError):
        pass  # the exec ended already; its exit status says why, below
    parser = h11.Connection(our_role=h11.CLIENT)
    parser.send(h11.Request(method=method, target=path, headers=[("Host", host)]))  # so h11 knows e.g. HEAD has no body
    parser.send(h11.EndOfMessage())
    try:
        response = await asyncio.wait_for(_head(proc, parser), HEAD_TIMEOUT)
    except asyncio.TimeoutError:
        await _end(proc, stderr_task)
        raise RelayError(504, f"port {port} on {host} gave no answer within {HEAD_TIMEOUT:.0f} s") from None
    except (RelayError, h11.RemoteProtocolError) as err:
        code = await _end(proc, stderr_task, grace=5.0)  # its exit status says why: let it exit on its own
        said = (stderr_task.result() if stderr_task.done() and not stderr_task.cancelled() else b"").decode("utf-8", "replace").strip()
        raise _unreachable(code, said, port, host, err) from None
    headers_out = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in response.headers]
    return Relayed(response.status_code, response.reason.decode("latin-1"), headers_out, _body(proc, parser, stderr_task))


async def _head(proc: asyncio.subprocess.Process, parser: h11.Connection) -> h11.Response:
    while True:
        event = parser.next_event()
        if event is h11.NEED_DATA:
            chunk = await proc.stdout.read(READ_SIZE)
            parser.receive_data(chunk)  # b"" is the end of the stream
            continue
        if isinstance(event, h11.InformationalResponse):
            continue  # 100 Continue and friends: the final answer follows
        if isinstance(event, h11.Response):
            return event
        raise RelayError(502, "the connection closed before an HTTP answer")


async def _body(proc: asyncio.subprocess.Process, parser: h11.Connection, stderr_task: asyncio.Future) -> AsyncIterator[bytes]:
    try:
        while True:
            event = parser.next_event()
            if event is h11.NEED_DATA:
                chunk = await asyncio.wait_for(proc.stdout.read(READ_SIZE), IDLE_TIMEOUT)
                parser.receive_data(chunk)
            elif isinstance(event, h11.Data):
                yield bytes(event.data)
            else:  # EndOfMessage, or the connection closed
                return
    except (asyncio.TimeoutError, h11.RemoteProtocolError):
        return  # the browser sees a truncated body; nothing better can be said mid-stream
    finally:
        await _end(proc, stderr_task)


async def _end(proc: asyncio.subprocess.Process, stderr_task: asyncio.Future, grace: float = 0.0) -> int | None:
    """Stop the exec (if it still runs after `grace` seconds) and reap it; its exit status."""
    if proc.returncode is None and grace:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), grace)
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    try:
        code = await asyncio.wait_for(proc.wait(), 15)
    except asyncio.TimeoutError:
        code = None
    with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(stderr_task), 5)
    return code


def _unreachable(code: int | None, said: str, port: int, host: str, err: Exception) -> RelayError:
    if code == 111 or "Connection refused" in said:
        return RelayError(502, f"nothing listens on port {port} of host {host} (connection refused); start the service first")
    if code == 112:
        return RelayError(502, f"host {host} has no bash, which the port relay needs")
    if "No such container" in said or "is not running" in said:
        return RelayError(502, f"host {host} is not running; start the lab again")
    if any(sign in said for sign in ("Cannot connect to the Docker daemon", "error during connect")):
        return RelayError(502, f"the Docker engine of host {host} does not answer: {said.splitlines()[-1]}")
    last = said.splitlines()[-1] if said else str(err)
    return RelayError(502, f"port {port} of host {host} did not give an HTTP answer ({last})")


def rewrite_location(value: str, prefix: str, host: str, port: int) -> str:
    """A redirect inside the lab host stays inside the proxy: `/login` -> `PREFIX/login`,
    `http://HOST[:PORT]/x` or `http://localhost[:PORT]/x` -> `PREFIX/x`; anything else as it is."""
    if value.startswith("/") and not value.startswith("//"):
        return prefix.rstrip("/") + value
    parts = urlsplit(value)
    names = {host, "localhost", "127.0.0.1"}
    if parts.scheme in ("http", "https") and parts.hostname in names and parts.port in (None, port):
        return prefix.rstrip("/") + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return value


def _without_cookies(value: str, drop: frozenset[str]) -> str:
    """A Cookie header minus the workshop's own cookies (the lab host never sees the learner's session)."""
    kept = [part.strip() for part in value.split(";") if part.strip() and part.split("=", 1)[0].strip() not in drop]
    return "; ".join(kept)


async def forward(request, engine_url: str | None, container: str, port: int, path: str, prefix: str,
                  host: str = "localhost", drop_cookies: Iterable[str] = ()):
    """A Starlette endpoint helper: relay `request` to `path` on the lab host's `port` and stream
    the answer. `prefix` is where the server mounts this port (redirects are kept under it);
    `drop_cookies` are the server's own cookie names, never shown to the lab host.
    Call it only after checking that the lab is the learner's."""
    from starlette.responses import PlainTextResponse, StreamingResponse

    drop = frozenset(drop_cookies)
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return PlainTextResponse(f"the request body is larger than {MAX_BODY // (1024 * 1024)} MiB", status_code=413)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return PlainTextResponse(f"the request body is larger than {MAX_BODY // (1024 * 1024)} MiB", status_code=413)
    headers = []
    for name, value in request.headers.items():
        if name.lower() == "cookie":
            value = _without_cookies(value, drop)
            if not value:
                continue
        headers.append((name, value))
    target = path if path.startswith("/") else "/" + path
    if request.url.query:
        target += "?" + request.url.query
    try:
        answer = await relay(engine_url, container, port, request.method, target, headers, body, host=host)
    except RelayError as err:
        return PlainTextResponse(str(err), status_code=err.status)
    out = []
    for name, value in answer.headers:
        lower = name.lower()
        if lower in HOP_BY_HOP - {"content-length"} or lower in SERVER_SETS:
            continue
        if lower == "location":
            value = rewrite_location(value, prefix, host, port)
        if lower == "set-cookie" and value.split("=", 1)[0].strip() in drop:
            continue  # a lab page may not replace the learner's workshop session
        out.append((name, value))
    response = StreamingResponse(answer.body, status_code=answer.status)
    response.raw_headers = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in out]
    return response
