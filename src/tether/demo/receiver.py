"""The demo's notification receiver: the owner's and backup's "phone", an HTTP listener on 127.0.0.1.

The demo's people are reached at ``json://127.0.0.1:PORT/owner`` (and ``/backup``): apprise POSTs each
notification there as JSON, and this keeps it, one line each, in ``notifications.jsonl`` in the demo's
folder. So the demo's timeline shows notifications sent, as a real host would, not a column of
``notify.failed`` to an address nobody listens on.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MAX_BODY = 256 * 1024


class Receiver:
    """Started with the demo, in its process (a daemon thread); ``close`` stops it."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.count = 0
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server calls it by this name
                size = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
                body = self.rfile.read(size).decode("utf-8", errors="replace")
                try:
                    got = json.loads(body)
                except ValueError:
                    got = body
                line = json.dumps({"ts": time.time(), "to": self.path.strip("/"), "notification": got})
                with lock, receiver.log.open("a", encoding="utf-8") as f:
                    f.write(line + "\n")
                    receiver.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # quiet: the file is the log
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="demo-receiver", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
