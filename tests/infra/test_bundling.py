"""The asset: built by pip on the host for arm64 / CPython 3.14, no Docker, cached on repeat."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import bundling
from infra.bundling import PipLocalBundling, dependencies_key, source_hash
from tests.infra.conftest import ROOT

LAMBDA_SIZE_LIMIT = 250 * 1024 * 1024  # unzipped code, the Lambda quota


def make_source(tmp_path: Path, requirements: str = "six==1.17.0\n") -> Path:
    source = tmp_path / "src"
    (source / "forwarder").mkdir(parents=True)
    (source / "requirements.txt").write_text(requirements)
    (source / "forwarder" / "__init__.py").write_text("")
    (source / "forwarder" / "handler.py").write_text("def handler(event, context):\n    pass\n")
    return source


def test_source_hash_depends_on_sources_only(tmp_path):
    source = make_source(tmp_path)
    first = source_hash(source)
    assert source_hash(source) == first
    (source / "forwarder" / "__pycache__").mkdir()
    (source / "forwarder" / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\0")
    assert source_hash(source) == first, "bytecode does not change the asset"
    (source / "forwarder" / "handler.py").write_text("def handler(event, context):\n    1\n")
    assert source_hash(source) != first
    second = source_hash(source)
    (source / "requirements.txt").write_text("six==1.16.0\n")
    assert source_hash(source) != second


def test_dependencies_key_ignores_the_package(tmp_path):
    source = make_source(tmp_path)
    key = dependencies_key(source)
    (source / "forwarder" / "handler.py").write_text("changed = True\n")
    assert dependencies_key(source) == key


def test_pip_targets_the_lambda_platform(tmp_path):
    command = PipLocalBundling(make_source(tmp_path), python="/venv/bin/python").pip_command(
        tmp_path / "out"
    )
    assert command[:4] == ["/venv/bin/python", "-m", "pip", "install"]
    text = " ".join(command)
    for argument in (
        "--platform manylinux2014_aarch64",
        "--implementation cp",
        "--python-version 3.14",
        "--only-binary=:all:",
        "--no-compile",
        f"--target {tmp_path / 'out'}",
        f"--requirement {tmp_path / 'src' / 'requirements.txt'}",
    ):
        assert argument in text


def test_the_default_python_is_the_one_running_the_app():
    import sys

    assert PipLocalBundling().python == sys.executable


def test_bundle_copies_cached_dependencies_and_the_package(tmp_path):
    source = make_source(tmp_path)
    cache = tmp_path / "cache"
    cached = cache / dependencies_key(source)
    (cached / "six-1.17.0.dist-info").mkdir(parents=True)
    (cached / "six.py").write_text("# six\n")
    (source / "forwarder" / "__pycache__").mkdir()
    (source / "forwarder" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    out = tmp_path / "out"
    out.mkdir()

    bundler = PipLocalBundling(source, cache_dir=cache, python="/nonexistent/python")
    bundler.pip_available = lambda: True  # the cache is warm: pip must not run
    assert bundler.try_bundle(str(out)) is True

    assert (out / "six.py").read_text() == "# six\n"
    assert (out / "forwarder" / "handler.py").is_file()
    assert not (out / "forwarder" / "__pycache__").exists()


def test_without_pip_cdk_falls_back_to_docker(tmp_path):
    bundler = PipLocalBundling(make_source(tmp_path), python=str(tmp_path / "no-python"))
    assert bundler.try_bundle(str(tmp_path / "out")) is False


def test_a_failing_pip_stops_the_synth_with_its_message(tmp_path):
    source = make_source(tmp_path, requirements="this-package-does-not-exist-anywhere==0.0.0\n")
    bundler = PipLocalBundling(source, cache_dir=tmp_path / "cache")
    bundler.pip_command = lambda target: [  # no network needed to fail
        bundler.python,
        "-m",
        "pip",
        "install",
        "--no-index",
        "--target",
        str(target),
        "--requirement",
        str(source / "requirements.txt"),
    ]
    with pytest.raises(RuntimeError, match="pip could not install"):
        bundler.dependencies()
    assert not any((tmp_path / "cache").iterdir()), "no half-built cache entry is left"


def test_docker_fallback_runs_the_same_pip(tmp_path):
    command = bundling._docker_command("forwarder")
    assert command[:2] == ["bash", "-c"]
    assert "--platform manylinux2014_aarch64" in command[2]
    assert "--python-version 3.14" in command[2]
    assert "cp -r forwarder /asset-output/" in command[2]


# -- the real asset, from the CLI synth ------------------------------------------------------------


def wheel_tags(asset: Path) -> dict[str, list[str]]:
    tags = {}
    for wheel in asset.glob("*.dist-info/WHEEL"):
        tags[wheel.parent.name] = [
            line.split(":", 1)[1].strip()
            for line in wheel.read_text().splitlines()
            if line.startswith("Tag:")
        ]
    return tags


@pytest.mark.slow
def test_asset_holds_pinned_runtime_dependencies(cli_asset):
    names = {p.name for p in cli_asset.iterdir()}
    for dist in (
        "aws_lambda_powertools-3.37.0.dist-info",
        "boto3-1.44.5.dist-info",
        "botocore-1.44.5.dist-info",
    ):
        assert dist in names
    assert "bin" not in names


@pytest.mark.slow
def test_asset_wheels_fit_the_lambda_platform(cli_asset):
    tags = wheel_tags(cli_asset)
    assert tags
    for dist, dist_tags in tags.items():
        assert all(t.endswith("-none-any") or "aarch64" in t for t in dist_tags), (dist, dist_tags)
    for shared_object in cli_asset.rglob("*.so"):
        assert "x86_64" not in shared_object.name


@pytest.mark.slow
def test_asset_holds_the_package_without_bytecode(cli_asset):
    assert not list(cli_asset.rglob("__pycache__"))
    assert not list(cli_asset.rglob("*.pyc"))
    package = ROOT / "lambda_src" / "forwarder"
    expected = {
        p.relative_to(package) for p in package.rglob("*.py") if "__pycache__" not in p.parts
    }
    bundled = {
        p.relative_to(cli_asset / "forwarder") for p in (cli_asset / "forwarder").rglob("*.py")
    }
    assert bundled == expected


@pytest.mark.slow
def test_asset_is_within_the_lambda_size_limit(cli_asset):
    size = sum(p.stat().st_size for p in cli_asset.rglob("*") if p.is_file())
    assert size < LAMBDA_SIZE_LIMIT


@pytest.mark.slow
def test_asset_hash_is_deterministic_and_independent_of_bundling(cli_template, synth):
    """The CLI's bundled asset and an in-process synth that skipped bundling name the same
    asset: the hash comes from the sources, so an unchanged asset is never rebuilt."""
    in_process = synth(kinesisEnabled=True).json["Resources"]
    for logical_id in ("SqsFunction", "KinesisFunction"):
        cli_code = cli_template["Resources"][logical_id]["Properties"]["Code"]
        assert cli_code["S3Key"] == in_process[logical_id]["Properties"]["Code"]["S3Key"]


def test_local_bundling_is_possible_here():
    """So CDK never reaches for Docker (there is no Docker engine on this machine)."""
    assert PipLocalBundling().pip_available()
