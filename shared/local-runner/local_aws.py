"""The local AWS endpoint: moto in server mode, on a loopback port.

Requests are handled one at a time behind a lock. DynamoDB guarantees that each request
(a transaction above all) is atomic; moto's in-memory backends do not when requests run on
parallel threads, so serialising them is what keeps the local endpoint faithful. Connections
are still accepted concurrently, so clients see the same concurrency as against AWS.

Usage: python local_aws.py PORT [--exit-with-parent]
"""

import os
import sys
import threading
import time

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    port = int(sys.argv[1])
    os.environ.setdefault("MOTO_PORT", str(port))
    if "--exit-with-parent" in sys.argv:
        parent = os.getppid()

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()

    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            return list(app(environ, start_response))

    run_simple(
        "127.0.0.1",
        port,
        serialised,
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
