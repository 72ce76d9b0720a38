"""The function's asset: the ``forwarder`` package plus its runtime dependencies, no Docker needed.

CDK bundles the asset on the host with :class:`PipLocalBundling`: pip (of the Python that runs the
CDK app) downloads wheels for the Lambda's platform (``manylinux2014_aarch64``, CPython 3.14,
binary wheels only) into the asset, and the ``forwarder`` package is copied beside them. Only when
pip cannot run here does CDK fall back to the same steps in the SAM build image under Docker.

Synth stays fast on repeat:

- the asset hash is computed from the sources (the package, ``requirements.txt`` and the bundling
  parameters), so CDK skips bundling when ``cdk.out/asset.<hash>`` is already there;
- the installed dependencies are cached in ``.build/pip/<hash of requirements + platform>``, so a
  change to the package alone only copies files and never calls pip again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

__all__ = [
    "HANDLER",
    "LAMBDA_SRC",
    "PACKAGE",
    "PIP_PLATFORM",
    "PYTHON_VERSION",
    "PipLocalBundling",
    "forwarder_code",
    "source_hash",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SRC = REPO_ROOT / "lambda_src"
PACKAGE = "forwarder"
HANDLER = "forwarder.handler.handler"
REQUIREMENTS = "requirements.txt"

#: The Lambda's runtime and architecture, as pip names them.
PIP_PLATFORM = "manylinux2014_aarch64"
PIP_IMPLEMENTATION = "cp"
PYTHON_VERSION = "3.14"
DOCKER_PLATFORM = "linux/arm64"

#: Bump to rebuild every asset when the way it is built changes.
BUNDLER_VERSION = "1"

_IGNORED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
_IGNORED_SUFFIXES = (".pyc", ".pyo")


def _package_files(package_dir: Path) -> Iterator[Path]:
    """Files of the package that belong in the asset, in a stable order."""
    if not package_dir.is_dir():
        return
    for root, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d not in _IGNORED_DIRS)
        for name in sorted(files):
            if not name.endswith(_IGNORED_SUFFIXES):
                yield Path(root) / name


def _pip_arguments() -> list[str]:
    return [
        "--platform",
        PIP_PLATFORM,
        "--implementation",
        PIP_IMPLEMENTATION,
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
    ]


def dependencies_key(source_dir: Path = LAMBDA_SRC) -> str:
    """What the installed dependencies depend on: the requirements and the target platform."""
    digest = hashlib.sha256()
    digest.update(f"{BUNDLER_VERSION}\0{' '.join(_pip_arguments())}\0".encode())
    requirements = source_dir / REQUIREMENTS
    digest.update(requirements.read_bytes() if requirements.is_file() else b"")
    return digest.hexdigest()


def source_hash(source_dir: Path = LAMBDA_SRC, package: str = PACKAGE) -> str:
    """The asset's hash, from its inputs: equal inputs, equal hash, and no rebuild."""
    digest = hashlib.sha256()
    digest.update(dependencies_key(source_dir).encode())
    package_dir = source_dir / package
    for path in _package_files(package_dir):
        digest.update(b"\0" + path.relative_to(source_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _ignore_build_litter(_directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n in _IGNORED_DIRS or n.endswith(_IGNORED_SUFFIXES)}


@jsii.implements(cdk.ILocalBundling)
class PipLocalBundling:
    """``ILocalBundling`` with pip: the dependencies for the Lambda's platform, then the package.

    It returns ``False`` (so CDK uses Docker) only when pip cannot run at all; a pip that runs
    and fails (no network, an unknown version) stops the synth with pip's own message.
    """

    def __init__(
        self,
        source_dir: Path = LAMBDA_SRC,
        *,
        package: str = PACKAGE,
        cache_dir: Path | None = None,
        python: str | None = None,
    ) -> None:
        self.source_dir = Path(source_dir)
        self.package = package
        self.cache_dir = Path(cache_dir) if cache_dir else REPO_ROOT / ".build" / "pip"
        self.python = python or sys.executable

    # The options are not needed: everything the build depends on is in this object.
    def try_bundle(self, output_dir: str, options: cdk.BundlingOptions | None = None) -> bool:
        if not self.pip_available():
            print(
                f"[bundling] {self.python} -m pip is not available; falling back to Docker",
                file=sys.stderr,
            )
            return False
        shutil.copytree(self.dependencies(), output_dir, dirs_exist_ok=True)
        package_dir = self.source_dir / self.package
        if package_dir.is_dir():
            shutil.copytree(
                package_dir,
                Path(output_dir) / self.package,
                ignore=_ignore_build_litter,
                dirs_exist_ok=True,
            )
        else:
            print(
                f"[bundling] WARNING: {package_dir} does not exist; the asset holds the "
                "dependencies only and the handler cannot be imported",
                file=sys.stderr,
            )
        return True

    def pip_available(self) -> bool:
        try:
            result = subprocess.run(
                [self.python, "-m", "pip", "--version"],
                capture_output=True,
                check=False,
                timeout=120,
            )
        except (OSError, subprocess.SubprocessError):
            return False
        return result.returncode == 0

    def pip_command(self, target: Path) -> list[str]:
        return [
            self.python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",  # bytecode of the host's Python would be useless on 3.14
            *_pip_arguments(),
            "--target",
            str(target),
            "--requirement",
            str(self.source_dir / REQUIREMENTS),
        ]

    def dependencies(self) -> Path:
        """The installed dependencies, built once per requirements file and platform."""
        cached = self.cache_dir / dependencies_key(self.source_dir)
        if cached.is_dir():
            return cached
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix="building-", dir=self.cache_dir))
        try:
            result = subprocess.run(
                self.pip_command(building), capture_output=True, text=True, check=False
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"pip could not install {self.source_dir / REQUIREMENTS} for "
                    f"{PIP_PLATFORM} / CPython {PYTHON_VERSION}:\n{result.stderr or result.stdout}"
                )
            # Console scripts (bin/) are not importable and not needed in Lambda.
            shutil.rmtree(building / "bin", ignore_errors=True)
            for litter in list(building.rglob("__pycache__")):
                shutil.rmtree(litter, ignore_errors=True)
            try:
                building.rename(cached)
            except OSError:  # another synth finished first: use its copy
                if not cached.is_dir():
                    raise
        finally:
            shutil.rmtree(building, ignore_errors=True)
        return cached


def _docker_command(package: str) -> list[str]:
    pip = " ".join(
        [
            "pip install --no-cache-dir --no-compile",
            *_pip_arguments(),
            f"--target /asset-output --requirement {REQUIREMENTS}",
        ]
    )
    return [
        "bash",
        "-c",
        f"{pip} && rm -rf /asset-output/bin && cp -r {package} /asset-output/ "
        "&& find /asset-output -name __pycache__ -prune -exec rm -rf {} +",
    ]


def forwarder_code(
    source_dir: Path = LAMBDA_SRC,
    *,
    runtime: lambda_.Runtime | None = None,
    package: str = PACKAGE,
) -> lambda_.AssetCode:
    """The function's code: ``lambda_src`` bundled with its dependencies for arm64 / 3.14."""
    runtime = runtime or lambda_.Runtime.PYTHON_3_14
    return lambda_.Code.from_asset(
        str(source_dir),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=source_hash(source_dir, package),
        bundling=cdk.BundlingOptions(
            image=runtime.bundling_image,
            platform=DOCKER_PLATFORM,
            command=_docker_command(package),
            local=PipLocalBundling(source_dir, package=package),
        ),
    )
