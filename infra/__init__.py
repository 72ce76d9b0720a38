"""The CDK app of the CloudWatch Logs forwarder.

- ``infra.config``: CDK context -> a typed, validated :class:`~infra.config.ForwarderConfig`.
- ``infra.blueprint``: what the stack builds, as plain values, from the config (no CDK): the
  local loop runs it.
- ``infra.bundling``: the function's asset, built with pip on the host (no Docker needed).
- ``infra.function``, ``infra.sqs_forwarder``, ``infra.kinesis_forwarder``, ``infra.failure_store``:
  reusable constructs, one per module (``infra.parts``: what they share); ``infra.forwarder``
  imports them all.
- ``infra.stack``: the stack that ``app.py`` instantiates from the config.
"""

import sys
from pathlib import Path

# The function's option table (``forwarder.settings.OPTIONS``) is the one definition of its
# options, and the app validates context with it; that module is pure, so it is imported from the
# function's own source. Appended, so that nothing already importable is shadowed.
_LAMBDA_SRC = str(Path(__file__).resolve().parent.parent / "lambda_src")
if _LAMBDA_SRC not in sys.path:
    sys.path.append(_LAMBDA_SRC)
