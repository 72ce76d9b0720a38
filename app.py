#!/usr/bin/env python3
"""The CDK app: ``npx cdk synth`` and ``npx cdk deploy`` run this file (see ``cdk.json``).

It only instantiates the stack from the CDK context; everything else lives in ``infra/``.
"""

import sys

from infra.config import ConfigError
from infra.stack import build_app

try:
    app, _stack = build_app()
except ConfigError as error:
    sys.exit(str(error))
app.synth()
