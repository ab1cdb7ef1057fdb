"""Settings gunicorn reads from the working directory whenever it serves `wsgi:app` here
(`make serve`, the benchmark, the fault tests). Workers and threads come from the command line.

The `Server` header names the API, not the server software behind it.

Forwarded headers follow `PROXY_HOPS`, as the app's own ProxyFix does (api/limits.py): with 0
(the default) gunicorn believes no `X-Forwarded-Proto`/`X-Forwarded-*` header from any address,
loopback included; with 1 or more a proxy sits in front, and gunicorn takes the scheme from it.

The error log never holds a request line or URI: a malformed request line (or a request that
fails inside gunicorn) may carry a search, and a search may hold a child's circumstances."""

import logging
import os

import gunicorn.glogging
import gunicorn.http.wsgi

gunicorn.http.wsgi.SERVER = "occh"

_hops = int(os.environ.get("PROXY_HOPS", "").strip() or 0)
forwarded_allow_ips = "*" if _hops > 0 else ""


class _NoRequestLines(logging.Filter):
    """Rewrites gunicorn's messages that quote what a client sent."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith("Invalid request from ip="):
            ip = message[len("Invalid request from ip=") :].split(": ", 1)[0]
            record.msg, record.args = "Invalid request from ip=%s (the request line is not logged)", (ip,)
        elif message.startswith("Error handling request"):
            record.msg, record.args = "Error handling request (the URI is not logged)", ()
        return True


class Logger(gunicorn.glogging.Logger):
    def setup(self, cfg):
        super().setup(cfg)
        if not any(isinstance(f, _NoRequestLines) for f in self.error_log.filters):
            self.error_log.addFilter(_NoRequestLines())


logger_class = Logger
