"""Exit 0 when evalserve's `GET /health` says `"status": "healthy"`, 1 otherwise.

`/health` answers 200 while the model is still loading (`"loading"`) and after it failed to
load (`"error"`), so a plain HTTP check would call a loading replica ready. This reads the
body instead. Used by the image's HEALTHCHECK, the compose healthchecks and the Kubernetes
readiness and startup probes. Standard library only: it runs in any evalserve image.

    python healthcheck.py [URL]      # default http://127.0.0.1:$PORT/health (PORT: 8000)
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else (
        f"http://127.0.0.1:{os.environ.get('PORT') or os.environ.get('API_PORT') or 8000}/health")
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            status = json.load(resp).get("status")
    except (OSError, ValueError) as exc:  # refused, timed out, HTTP error, not JSON
        sys.stderr.write(f"{url}: {exc}\n")
        return 1
    if status != "healthy":
        sys.stderr.write(f"{url}: status {status!r}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
