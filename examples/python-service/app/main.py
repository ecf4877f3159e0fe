"""A tiny HTTP service: the example layerkit builds."""

from http.server import BaseHTTPRequestHandler, HTTPServer

from app.greeting import greeting


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = greeting(self.path.strip("/") or "world").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
