"""Production defaults of the web service: ``gunicorn wsgi:app`` reads this file from the
working directory (or pass ``-c gunicorn.conf.py``). Command-line options override it, e.g.
``gunicorn -w 4 -b 0.0.0.0:8000 wsgi:app``; riskmap's own settings come from ``RISKMAP_*``
variables (see ``riskmap/settings.py``).

- One process per core, each with a few threads: rendering is CPU-bound (one page at a time
  per process, because of Python's GIL), while the threads keep connections alive and answer
  cached pages while another thread renders.
- ``preload_app``: the master loads the application, reads the data directory and renders
  the main pages once (``riskmap.web.cache.warm``) before forking, so every worker starts
  with the atlas and those pages in memory, shared copy-on-write, and the first visitor of a
  page does not wait for it.
- The access log records the path without its query string (``%(U)s``), so parameters never
  end up in log files.
"""

import multiprocessing
import os

workers = int(os.environ.get("WEB_CONCURRENCY", 0)) or max(2, multiprocessing.cpu_count())
worker_class = "gthread"
threads = 4
# A cold comparison of two editions on different geographies takes a few seconds; nothing
# legitimate takes a minute.
timeout = 60
graceful_timeout = 30
keepalive = 5
preload_app = True
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'


def when_ready(server):
    """Warm the preloaded application in the master, before the workers are forked."""
    if not server.cfg.preload_app:
        return  # each worker loads the application itself: nothing to share
    import time

    from riskmap.web.cache import warm

    import gc

    started = time.perf_counter()
    done = warm(server.app.wsgi())
    # What is loaded now lives as long as the workers: keep the collector from scanning it
    # (shorter pauses) and from writing to its pages (which would undo copy-on-write sharing).
    gc.collect()
    gc.freeze()
    failed = {path: status for path, status in done.items() if status >= 500}
    server.log.info("riskmap: %d answers rendered in %.1f s before forking%s", len(done),
                    time.perf_counter() - started,
                    f"; server errors: {failed}" if failed else "")
