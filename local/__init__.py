"""Local tooling: endpoints on 127.0.0.1 for the tests, the demo and the timings. Not deployed."""

import sys
from pathlib import Path

# The function's option table (``forwarder.settings``) gives the loop its defaults; the loop also
# runs the function in process. Appended, so that nothing already importable is shadowed.
_LAMBDA_SRC = str(Path(__file__).resolve().parent.parent / "lambda_src")
if _LAMBDA_SRC not in sys.path:
    sys.path.append(_LAMBDA_SRC)
