"""A tiny local stand-in for the Hugging Face hub's file endpoint, so that the real huggingface_hub
client runs against it (no network): `GET/HEAD /{org}/{name}/resolve/{revision}/{path}`.

Files are given as {(repo, path): bytes}; `errors` answers some with an HTTP error instead. `slow`
seconds are slept between chunks of a body; `cut_after` bytes closes the connection in the middle of a body (a dropped download)."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class HubServer:
    def __init__(self, files: dict[tuple[str, str], bytes], slow: float = 0.0, cut_after: int | None = None,
                 chunk: int = 64 * 1024, errors: dict | None = None):
        self.files, self.slow, self.cut_after, self.chunk = dict(files), slow, cut_after, chunk
        self.errors = dict(errors or {})  # {(repo, path) or repo: (status, X-Error-Code)}
        self.requests: list[tuple[str, str]] = []  # (method, path)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                self._answer(body=False)

            def do_GET(self):
                self._answer(body=True)

            def _answer(self, body: bool):
                server.requests.append((self.command, self.path))
                key = server.parse(self.path)
                error = server.errors.get(key) or (server.errors.get(key[0]) if key else None)
                if error is not None:
                    self.send_response(error[0])
                    self.send_header("X-Error-Code", error[1])
                    self.send_header("X-Error-Message", "refused by the test hub")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = server.files.get(key) if key else None
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("X-Error-Message", "Entry not found")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                etag = hashlib.sha256(data).hexdigest()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", f'"{etag}"')
                self.send_header("X-Repo-Commit", server.commit(self.path))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if not body:
                    return
                import time

                sent = 0
                while sent < len(data):
                    if server.cut_after is not None and sent >= server.cut_after:
                        self.close_connection = True
                        return
                    piece = data[sent:sent + server.chunk]
                    self.wfile.write(piece)
                    self.wfile.flush()
                    sent += len(piece)
                    if server.slow:
                        time.sleep(server.slow)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @staticmethod
    def commit(path: str) -> str:
        """The commit a /resolve/REV/ URL names (a 40-hex REV is a commit), else the branch's."""
        rev = path.split("/resolve/", 1)[1].split("/", 1)[0] if "/resolve/" in path else ""
        return rev if len(rev) == 40 and all(c in "0123456789abcdef" for c in rev) else COMMIT

    @staticmethod
    def parse(path: str):
        path = path.split("?")[0].lstrip("/")
        if "/resolve/" not in path:
            return None
        repo, rest = path.split("/resolve/", 1)
        return (repo, rest.split("/", 1)[1]) if "/" in rest else None

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
