"""The app the end-to-end benchmark serves: ``python -m benchmarks.serve_app bare|hubsig PORT``.

Both variants read the body and answer the same JSON; ``hubsig`` wraps the
app in ``HubSignatureMiddleware``. Run in its own process, under uvicorn.
"""

from __future__ import annotations

import sys

import uvicorn

from benchmarks.adapters import bare_asgi
from benchmarks.bodies import SECRET
from hubsig.asgi import HubSignatureMiddleware


def main() -> None:
    variant, port = sys.argv[1], int(sys.argv[2])
    app = bare_asgi if variant == "bare" else HubSignatureMiddleware(bare_asgi, secret=SECRET)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


if __name__ == "__main__":
    main()
