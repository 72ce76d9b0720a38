"""The README's tables of the function's options, rendered from their one table.

``python -m local.readme`` rewrites the tables between their markers in ``README.md``;
``tests/unit/test_readme.py`` fails when the README and ``forwarder.settings.OPTIONS`` disagree.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from forwarder.settings import OPTIONS, Option

README = Path(__file__).resolve().parent.parent / "README.md"
#: Keys documented with their source (each sets ``INVALID_RECORDS`` of one function).
_PER_SOURCE = frozenset({"sqsInvalidRecords", "kinesisInvalidRecords"})


def _default(option: Option) -> str:
    value = option.default
    if value is None:
        return "unset"
    return f"`{option.kind.text(value)}`"


def _context_default(value: object) -> str:
    if value == "":
        return '`""` (none)'
    return f"`{value}`" if isinstance(value, str) else f"`{json.dumps(value)}`"


def environment_table() -> str:
    """Every variable the function reads, with its default, what it accepts and what it does."""
    rows = [f"| `{o.variable}` | {_default(o)} | {o.kind.accepts} | {o.help} |" for o in OPTIONS]
    return "\n".join(
        ["| variable | default | accepts | meaning |", "| --- | --- | --- | --- |", *rows]
    )


def context_table() -> str:
    """The context keys that set the function's options (the per-source ones are with their
    source)."""
    rows = [
        f"| `{key}` | {_context_default(default)} | `{o.variable}` | {o.help} |"
        for o in OPTIONS
        for key, default in o.context.items()
        if key not in _PER_SOURCE
    ]
    return "\n".join(["| key | default | sets | meaning |", "| --- | --- | --- | --- |", *rows])


TABLES = {"environment": environment_table, "context": context_table}


def render(readme: str) -> str:
    """``readme`` with each marked table replaced by its rendering."""
    for name, table in TABLES.items():
        pattern = re.compile(
            rf"(<!-- options:{name} -->\n).*?(<!-- /options:{name} -->)", re.DOTALL
        )
        if not pattern.search(readme):
            raise ValueError(f"README.md has no <!-- options:{name} --> markers")
        readme = pattern.sub(lambda m, t=table: m.group(1) + t() + "\n" + m.group(2), readme)
    return readme


def main() -> int:
    text = README.read_text(encoding="utf-8")
    rendered = render(text)
    if rendered != text:
        README.write_text(rendered, encoding="utf-8")
        print("README.md: option tables rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
