"""A real HTTP server on 127.0.0.1 (ephemeral port) in a background thread: what every fake venue runs on."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LocalServer:
    """Subclasses call `super().__init__()` and give `handler()`, the request handler class bound to themselves."""

    def __init__(self) -> None:
        self.stopping = threading.Event()  # set at stop: faults that hold a reply back end early
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> Self:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        assert self.httpd is not None, "the fake server is not started"
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"
