"""Resolve a template's functions with the SAM CLI's own providers, as ``sam local invoke`` does.

Run it with the SAM CLI's Python (``.venv-sam/bin/python``), not the project's: the SAM CLI pins
its own boto3. It prints, as JSON, what SAM would start a container with for each function.

    .venv-sam/bin/python tests/infra/sam_functions.py cdk.out/CloudWatchLogsForwarder.template.json
"""

from __future__ import annotations

import json
import sys


def resolve(template: str) -> list[dict]:
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
    from samcli.lib.utils.architecture import validate_architecture_runtime
    from samcli.local.docker.lambda_image import Runtime

    stacks, _remote = SamLocalStackProvider.get_stacks(template_file=template)
    provider = SamFunctionProvider(stacks)
    resolved = []
    for function in provider.get_all():
        validate_architecture_runtime(function)  # raises if SAM cannot run this pair
        # `sam local invoke <id>` looks the function up by logical id or CDK construct id.
        by_logical_id = provider.get(function.function_id)
        by_name = provider.get(function.name)
        resolved.append(
            {
                "function_id": function.function_id,
                "name": function.name,
                "full_path": function.full_path,
                "handler": function.handler,
                "runtime": function.runtime,
                "runtime_supported": Runtime.has_value(function.runtime),
                "architectures": function.architectures,
                "codeuri": function.codeuri,
                "packagetype": function.packagetype,
                "memory": function.memory,
                "timeout": function.timeout,
                "found_by_logical_id": by_logical_id is not None
                and by_logical_id.codeuri == function.codeuri,
                "found_by_name": by_name is not None and by_name.codeuri == function.codeuri,
            }
        )
    return resolved


if __name__ == "__main__":
    json.dump(resolve(sys.argv[1]), sys.stdout, indent=2)
