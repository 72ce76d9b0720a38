"""Cold start: the time and memory of importing the handler module, and the asset's size.

Each import runs in a fresh interpreter (a subprocess), timed from inside around the import
statements alone (interpreter start-up is the same for all and not counted), with the process's
peak RSS (``VmHWM``) after it. The contenders run interleaved, N rounds, medians:

- the interpreter alone (nothing imported): the RSS floor;
- boto3 and Powertools (``Logger``, ``Metrics``) alone: what any Python forwarder pays;
- the same plus one CloudWatch Logs client (botocore loads its endpoint and service models);
- ``forwarder.handler``: the same plus the forwarder's modules, its settings, a CloudWatch Logs
  client and the send pool, all built at import.

Twice: from this virtualenv (bytecode cached in ``__pycache__``), and from the bundled asset with
``-B`` and no ``__pycache__``, as on Lambda, whose code directory is read-only and whose asset
ships no ``.pyc`` (bytecode compiled here would be for this Python, not the function's 3.14), so
every cold start compiles every module it imports.

The asset: ``cdk.out/asset.*`` when a synth has left one (the function's, by the asset manifest),
otherwise one built the same way into a temporary directory (``pip install --target`` for
manylinux2014_aarch64 / CPython 3.14 plus ``lambda_src/forwarder``); a quick run, which must not
need the network, copies the same packages from this virtualenv instead. Its size on disk, its file
count and its size zipped (what Lambda limits to 50 MB; unzipped to 250 MB).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from benchmarks import LAMBDA_SRC, RESULTS, ROOT
from benchmarks.common import AWS_ENV, Row, median, run_alone, spread

# The peak RSS is the kernel's VmHWM of the new process image: ru_maxrss would carry over the
# parent's peak across fork and exec.
_CHILD = """
import json, time
started = time.perf_counter()
{imports}
elapsed = time.perf_counter() - started
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({{"ms": elapsed * 1000, "maxrss_mb": peak / 1024}}))
"""

CONTENDERS = {
    "interpreter alone": "pass",
    "boto3 + Powertools": "import boto3\nfrom aws_lambda_powertools import Logger, Metrics",
    "boto3 + Powertools + a logs client": "import boto3\n"
    "from aws_lambda_powertools import Logger, Metrics\n"
    "boto3.client('logs')",
    "forwarder.handler": "import forwarder.handler",
}


def _environment(path: list[Path]) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))
    }
    env |= AWS_ENV
    env["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"] = "http://127.0.0.1:9"  # never called at import
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in path)
    return env


def _import_once(code: str, path: list[Path], no_bytecode: bool) -> dict[str, float]:
    command = [sys.executable, *(["-B"] if no_bytecode else []), "-c", _CHILD.format(imports=code)]
    done = subprocess.run(
        command,
        env=_environment(path),
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"import failed: {code!r}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def find_asset() -> tuple[Path | None, str]:
    """The function's bundled asset in cdk.out, and how it was found."""
    out = ROOT / "cdk.out"
    candidates = [p for p in out.glob("asset.*") if (p / "forwarder" / "handler.py").is_file()]
    if not candidates:
        return None, ""
    manifests = list(out.glob("*.assets.json"))
    named = set()
    for manifest in manifests:
        try:
            named |= set(json.loads(manifest.read_text()).get("files", {}))
        except ValueError:
            continue
    listed = [p for p in candidates if p.name.removeprefix("asset.") in named]
    chosen = max(listed or candidates, key=lambda p: p.stat().st_mtime)
    how = "named by the asset manifest" if listed else "the newest asset.* with forwarder/"
    return chosen, f"cdk.out/{chosen.name[:18]}... ({how})"


def build_asset(target: Path) -> None:
    """What the CDK bundling does, without CDK: wheels for the function's platform, no .pyc."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--target",
            str(target),
            "-r",
            str(LAMBDA_SRC / "requirements.txt"),
            "--platform",
            "manylinux2014_aarch64",
            "--python-version",
            "3.14",
            "--only-binary=:all:",
            "--implementation",
            "cp",
        ],
        check=True,
        timeout=600,
    )
    shutil.copytree(
        LAMBDA_SRC / "forwarder",
        target / "forwarder",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )


def copy_installed(target: Path) -> None:
    """A stand-in for the asset without the network (quick runs): the runtime requirements and
    their dependencies as installed in this virtualenv (the same versions, all pure Python),
    plus the forwarder package."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    wanted = [
        Requirement(line.split("#")[0].strip())
        for line in (LAMBDA_SRC / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    seen: set[str] = set()
    while wanted:
        requirement = wanted.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        try:
            dist = distribution(requirement.name)
        except PackageNotFoundError:
            continue
        if dist.metadata["Name"].lower() in seen:
            continue
        seen.add(dist.metadata["Name"].lower())
        wanted.extend(Requirement(r) for r in dist.requires or [])
        for file in dist.files or []:
            source = Path(str(dist.locate_file(file)))
            if "__pycache__" in file.parts or not source.is_file() or ".." in file.parts:
                continue
            destination = target / file
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    shutil.copytree(
        LAMBDA_SRC / "forwarder",
        target / "forwarder",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )


def asset_size(asset: Path) -> dict[str, Any]:
    files = [p for p in asset.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    top: dict[str, int] = {}
    for p in files:
        part = p.relative_to(asset).parts[0]
        top[part] = top.get(part, 0) + p.stat().st_size
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "asset.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for p in files:
                zipped.write(p, p.relative_to(asset))
        zipped_size = archive.stat().st_size
    largest = sorted(top.items(), key=lambda item: -item[1])[:4]
    return {
        "bytes": total,
        "files": len(files),
        "zipped_bytes": zipped_size,
        "pycache_dirs": sum(1 for p in asset.rglob("__pycache__")),
        "largest": dict(largest),
    }


def _measure(
    path: list[Path], no_bytecode: bool, repetitions: int
) -> dict[str, dict[str, list[float]]]:
    results = {name: {"ms": [], "maxrss_mb": []} for name in CONTENDERS}
    names = list(CONTENDERS)
    for _ in range(1 if not no_bytecode else 0):  # fill __pycache__ once (not counted)
        for name in names:
            _import_once(CONTENDERS[name], path, no_bytecode)
    for round_ in range(repetitions):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            figures = _import_once(CONTENDERS[name], path, no_bytecode)
            for key, value in figures.items():
                results[name][key].append(value)
    return results


def _rows(
    label: str, results: dict[str, dict[str, list[float]]], facts: dict[str, Any]
) -> list[Row]:
    base = results["boto3 + Powertools"]
    handler = results["forwarder.handler"]
    floor = median(results["interpreter alone"]["maxrss_mb"])
    time_ratio = median(handler["ms"]) / median(base["ms"])
    rss_ratio = median(handler["maxrss_mb"]) / median(base["maxrss_mb"])
    client = results["boto3 + Powertools + a logs client"]
    return [
        Row(
            "cold start",
            f"import time, {label}",
            f"forwarder.handler {median(handler['ms']):.0f} ms (spread {spread(handler['ms'])})",
            f"boto3 + Powertools {median(base['ms']):.0f} ms (spread {spread(base['ms'])})",
            time_ratio,
            "",
            None,
            facts | {"time_ratio": time_ratio, "results": results},
        ),
        Row(
            "cold start",
            f"  boto3 + Powertools + a logs client, {label}",
            f"{median(client['ms']):.0f} ms; {median(client['maxrss_mb']):.1f} MB",
            f"forwarder.handler {median(handler['ms']):.0f} ms",
            median(handler["ms"]) / median(client["ms"]),
        ),
        Row(
            "cold start",
            f"peak RSS after import, {label}",
            f"forwarder.handler {median(handler['maxrss_mb']):.1f} MB",
            f"boto3 + Powertools {median(base['maxrss_mb']):.1f} MB; interpreter {floor:.1f} MB",
            rss_ratio,
            "",
            None,
            {"rss_ratio": rss_ratio},
        ),
    ]


def import_breakdown(path: list[Path], out: Path, top: int = 25) -> Path:
    """``python -X importtime`` of the handler: the imports that cost most, cumulative."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import forwarder.handler"],
        env=_environment(path),
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            name = parts[2].rstrip()
            depth = (len(name) - len(name.lstrip())) // 2
            lines.append((int(parts[1]), int(parts[0]), depth, name.strip()))
    lines.sort(reverse=True)
    text = ["cumulative_ms  self_ms  depth  module"]
    text += [f"{c / 1000:13.1f}  {s / 1000:7.1f}  {d:5d}  {n}" for c, s, d, n in lines[:top]]
    out.mkdir(parents=True, exist_ok=True)
    target = out / "importtime.txt"
    target.write_text("\n".join(text) + "\n")
    return target


def run(quick: bool = False, out: Path = RESULTS) -> list[Row]:
    repetitions = 2 if quick else 11
    if not quick:
        import_breakdown([LAMBDA_SRC], out)
    rows = _rows(
        "virtualenv with .pyc",
        _measure([LAMBDA_SRC], False, repetitions),
        {"source": "virtualenv"},
    )
    asset, how = find_asset()
    scratch = None
    try:
        if asset is None:
            scratch = tempfile.mkdtemp(prefix="forwarder-asset-")
            asset = Path(scratch) / "asset"
            if quick:  # no network: the same packages, from this virtualenv
                copy_installed(asset)
                how = "no synth output: the runtime packages copied from this virtualenv"
            else:
                build_asset(asset)
                how = "no synth output: built with pip for manylinux2014_aarch64, CPython 3.14"
        size = asset_size(asset)
        # From the asset itself, without bytecode, as on Lambda (copy the asset so that -B
        # cannot be defeated by a __pycache__ someone left in cdk.out).
        with tempfile.TemporaryDirectory() as clean:
            copy = Path(clean) / "asset"
            shutil.copytree(asset, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            rows += _rows(
                "bundled asset, no .pyc (as on Lambda)",
                _measure([copy], True, repetitions),
                {"source": "asset"},
            )
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    largest = ", ".join(f"{name} {size_ / 1e6:.1f}" for name, size_ in size["largest"].items())
    rows.append(
        Row(
            "cold start",
            "bundled asset size",
            f"{size['bytes'] / 1e6:.1f} MB in {size['files']:,} files; "
            f"{size['zipped_bytes'] / 1e6:.1f} MB zipped",
            f"Lambda limits: 250 MB unzipped, 50 MB zipped; largest (MB): {largest}",
            size["zipped_bytes"] / 50e6,
            "",
            None,
            size | {"asset": how},
        )
    )
    rows.append(Row("cold start", "  asset measured", how))
    return rows


if __name__ == "__main__":
    run_alone(run, __doc__, sys.argv[1:])
