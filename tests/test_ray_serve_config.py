"""export/ray-serve.yaml and the flags of `qa-engine serve --ray`, with no Ray started.

The config validates against Ray Serve's own schema; its args go through build_app into a
bound application whose deployment options are the ones the file states; a typo or a
misplaced key is an error naming it; the --ray flags reach RayServeOptions and are usage
errors without --ray.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import asdict, fields
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
ray = pytest.importorskip("ray")
pytest.importorskip("ray.serve")
from click.testing import CliRunner  # noqa: E402
from ray.serve.deployment import deployment_to_schema  # noqa: E402
from ray.serve.schema import (  # noqa: E402
    HTTPOptionsSchema,
    ServeApplicationSchema,
    ServeDeploySchema,
)

from qa_engine.cli import cli  # noqa: E402
from qa_engine.ray import serve_app  # noqa: E402
from qa_engine.ray.serve_app import RayServeOptions, build, build_app  # noqa: E402
from qa_engine.serve.settings import ServeSettings  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "export" / "ray-serve.yaml"
AUTOSCALING = ("min_replicas", "max_replicas", "target_ongoing_requests")


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def config_args(config: dict, export_dir: Path) -> dict:
    """The one application's args, with export_dir pointing at a real directory."""
    (app,) = config["applications"]
    return {**app["args"], "export_dir": str(export_dir)}


def deployment_options(application) -> dict:
    """The options a bound application carries, as `serve build` would write them."""
    deployment = application._bound_deployment
    return deployment_to_schema(deployment).model_dump(exclude_unset=True)


def expected_options(args: dict) -> dict:
    """What the deployment should carry for these args (defaults where args are silent)."""
    options = RayServeOptions()
    want = {
        "name": "QAEngine",
        "max_ongoing_requests": args.get("max_ongoing_requests", options.max_ongoing_requests),
        "max_queued_requests": args.get("max_queued_requests", options.max_queued_requests),
        "health_check_timeout_s": 60.0,
        # Serve waits the service's drain before killing a stopping replica.
        "graceful_shutdown_timeout_s": float(args.get("drain_timeout_s", 60.0)),
        "ray_actor_options": {
            "num_cpus": float(args.get("cpus_per_replica", options.cpus_per_replica)),
            "num_gpus": float(args.get("gpus_per_replica", options.gpus_per_replica)),
        },
    }
    if "max_replicas" in args:
        want["autoscaling_config"] = {
            name: args.get(name, getattr(options, name)) for name in AUTOSCALING
        }
    else:
        want["num_replicas"] = args.get("replicas", options.replicas)
    return want


def test_config_validates_with_serve_schema(config):
    schema = ServeDeploySchema.model_validate(config)
    # Serve ignores keys it does not know at these levels: a typo there would be silent.
    assert set(config) <= set(ServeDeploySchema.model_fields)
    assert set(config["http_options"]) <= set(HTTPOptionsSchema.model_fields)
    (app_config,) = config["applications"]
    assert set(app_config) <= set(ServeApplicationSchema.model_fields)
    assert "deployments" not in app_config  # it would override build_app's options
    assert schema.http_options.host == "127.0.0.1"
    (app,) = schema.applications
    module, attribute = app.import_path.split(":")
    assert getattr(importlib.import_module(module), attribute) is build_app
    assert app.name and app.route_prefix == "/"
    assert "export_dir" in app.args


def test_every_config_line_is_commented():
    lines = [line.strip() for line in CONFIG.read_text().splitlines()]
    previous = ""
    for number, line in enumerate(lines, 1):
        if line and not line.startswith("#"):
            assert "#" in line or previous.startswith("#"), f"line {number} has no comment: {line}"
        previous = line


def test_config_args_build_the_deployment_they_describe(config, tiny_onnx_dir):
    # As Serve's controller builds a config's application on deploy: import the builder,
    # call it with args (Serve's own signature checks), then split it into deployments.
    from ray._common.utils import import_attr
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
    from ray.serve._private.build_app import build_app as serve_build_app

    (app_config,) = config["applications"]
    args = config_args(config, tiny_onnx_dir)
    started = ray.is_initialized()
    builder = import_attr(app_config["import_path"])
    application = call_user_app_builder_with_args_if_necessary(builder, args)
    assert ray.is_initialized() == started  # binding starts no Ray
    built = serve_build_app(application, name=app_config["name"])
    (deployment,) = built.deployments
    assert deployment_to_schema(deployment).model_dump(exclude_unset=True) == (
        expected_options(args)
    )
    export_dir, settings = deployment.init_args
    assert export_dir == os.path.abspath(tiny_onnx_dir)
    setting_names = {f.name for f in fields(ServeSettings)}
    given = {name: value for name, value in args.items() if name in setting_names}
    assert given and {name: settings[name] for name in given} == given


def test_every_config_arg_reaches_the_deployment(config, tmp_path):
    # The file's values may equal the defaults; move each one so a dropped arg shows.
    args = config_args(config, tmp_path)
    for name, value in args.items():
        if isinstance(value, bool):
            args[name] = not value
        elif isinstance(value, int | float):
            args[name] = value + 1
    args["pad_batch_rows"] = True
    application = build_app(args)
    assert deployment_options(application) == expected_options(args)
    settings = application._bound_deployment.init_args[1]
    setting_names = {f.name for f in fields(ServeSettings)}
    given = {name: value for name, value in args.items() if name in setting_names}
    assert {name: settings[name] for name in given} == given
    defaults = {**asdict(RayServeOptions()), **asdict(ServeSettings())}
    moved = {name: value for name, value in args.items() if name not in ("export_dir", "device")}
    assert all(defaults[name] != value for name, value in moved.items())


def test_fixed_replicas_alternative(config, tmp_path):
    args = {k: v for k, v in config_args(config, tmp_path).items() if k not in AUTOSCALING}
    args["replicas"] = 3
    options = deployment_options(build_app(args))
    assert options == expected_options(args)
    assert options["num_replicas"] == 3 and "autoscaling_config" not in options
    with pytest.raises(ValueError, match="replicas.*max_replicas"):
        build_app({**config_args(config, tmp_path), "replicas": 3})
    with pytest.raises(ValueError, match="min_replicas.*max_replicas"):
        build_app({"export_dir": str(tmp_path), "min_replicas": 0})


@pytest.mark.parametrize("typo", ["max_batch_token", "max_replica", "replica_count"])
def test_unknown_arg_is_an_error_naming_it(config, tmp_path, typo):
    args = {**config_args(config, tmp_path), typo: 4}
    with pytest.raises(ValueError, match=rf"unknown args {typo}; valid: export_dir, ") as err:
        build_app(args)
    assert "max_batch_tokens" in str(err.value) and "max_replicas" in str(err.value)


@pytest.mark.parametrize(
    ("key", "where"),
    [
        ("route_prefix", "route_prefix"),
        ("name", "name"),
        ("host", "http_options.host"),
        ("port", "http_options.port"),
        ("threads", "cpus_per_replica"),
    ],
)
def test_misplaced_arg_says_where_it_goes(tmp_path, key, where):
    with pytest.raises(ValueError, match=rf"{key} do not go in args: set {key} -> .*{where}"):
        build_app({"export_dir": str(tmp_path), key: "x"})


def test_export_dir_missing_or_absent(tmp_path):
    with pytest.raises(ValueError, match="export_dir"):
        build_app({"max_replicas": 2})
    with pytest.raises(FileNotFoundError, match="not-there"):
        build_app({"export_dir": str(tmp_path / "not-there")})


def test_string_args_from_serve_run_are_parsed(tmp_path):
    # `serve run qa_engine.ray.serve_app:build_app key=value ...` passes strings.
    args = {"export_dir": str(tmp_path), "max_replicas": "3", "min_replicas": "0"}
    application = build_app({**args, "warmup": "false", "max_wait_ms": "1.5"})
    options = deployment_options(application)
    assert options["autoscaling_config"]["max_replicas"] == 3
    assert options["autoscaling_config"]["min_replicas"] == 0
    settings = application._bound_deployment.init_args[1]
    assert settings["warmup"] is False and settings["max_wait_ms"] == 1.5
    with pytest.raises(ValueError, match="max_batch_tokens must be int"):
        build_app({"export_dir": str(tmp_path), "max_batch_tokens": "lots"})


def test_log_level_sets_replica_logging_with_access_log_only_at_debug(tiny_onnx_dir):
    quiet = deployment_options(build(tiny_onnx_dir, {}, RayServeOptions(), log_level="info"))
    loud = deployment_options(build(tiny_onnx_dir, {}, RayServeOptions(), log_level="debug"))
    assert quiet["logging_config"]["enable_access_log"] is False
    assert quiet["logging_config"]["log_level"] == "INFO"
    assert loud["logging_config"]["enable_access_log"] is True
    assert "logging_config" not in deployment_options(build(tiny_onnx_dir, {}, RayServeOptions()))


@pytest.fixture
def captured(monkeypatch) -> list:
    """Calls of serve_app.run (nothing starts): (export_dir, settings, options, address)."""
    calls: list = []

    def fake_run(export_dir, settings, options, *, address=None, **kwargs):
        calls.append((export_dir, settings, options, address))

    monkeypatch.setattr(serve_app, "run", fake_run)
    return calls


def serve(*args: str):
    return CliRunner().invoke(cli, ["serve", *args])


def test_ray_flags_reach_ray_serve_options(tmp_path, captured):
    result = serve(
        str(tmp_path),
        "--ray",
        "--replicas",
        "2",
        "--max-replicas",
        "4",
        "--max-ongoing-requests",
        "16",
        "--max-queued-requests",
        "-1",
        "--threads",
        "2",
        "--address",
        "auto",
    )
    assert result.exit_code == 0, result.output
    ((_, settings, options, address),) = captured
    assert address == "auto" and settings["threads"] is None
    assert options == RayServeOptions(
        replicas=None,
        min_replicas=2,
        max_replicas=4,
        target_ongoing_requests=8,
        max_ongoing_requests=16,
        max_queued_requests=-1,
        cpus_per_replica=2.0,
    )
    assert options.deployment_options()["autoscaling_config"] == {
        "min_replicas": 2,
        "max_replicas": 4,
        "target_ongoing_requests": 8,
    }


def test_ray_defaults_and_fixed_replicas(tmp_path, captured):
    assert serve(str(tmp_path), "--ray").exit_code == 0
    assert serve(str(tmp_path), "--ray", "--replicas", "3").exit_code == 0
    (*_, default, _), (*_, fixed, _) = captured
    assert default == RayServeOptions()
    assert fixed == RayServeOptions(replicas=3)
    assert "autoscaling_config" not in fixed.deployment_options()


@pytest.mark.parametrize(
    "flags",
    [
        ["--max-replicas", "2"],
        ["--replicas", "2"],
        ["--max-ongoing-requests", "8"],
        ["--max-queued-requests", "8"],
        ["--address", "auto"],
    ],
)
def test_ray_flags_without_ray_are_usage_errors(tmp_path, captured, flags):
    result = serve(str(tmp_path), *flags)
    assert result.exit_code == 2, result.output
    assert f"{flags[0]} only apply with --ray" in result.output
    assert not captured


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--replicas", "3", "--max-replicas", "2"], "max_replicas must be >="),
        (["--max-queued-requests", "0"], "max_queued_requests must be >= 1, or -1"),
    ],
)
def test_bad_ray_flag_values_are_usage_errors(tmp_path, captured, flags, message):
    result = serve(str(tmp_path), "--ray", *flags)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not captured
