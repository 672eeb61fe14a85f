"""docker-compose.yml is a valid Compose file, and it runs the whole pipeline.

No Docker engine is needed: the file is checked against the Compose
Specification's JSON Schema (vendored in data/compose-spec/, see its README),
then against what the pipeline needs to start in order and stay up.
"""
from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml  # type: ignore[import-untyped]  # no stubs in the dev extras

from ducats.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = Path(__file__).resolve().parent / "data" / "compose-spec" / "compose-spec.json"
DOCKERFILE = "deploy/Dockerfile"

ONE_SHOTS = {"migrate": "postgres", "topics": "kafka"}  # each waits for its service to be healthy
LONG_RUNNING = {"ledger", "worker", "api"}
RESTARTS = {"no", "always", "on-failure", "unless-stopped"}

# Compose interpolation: $$ (a literal $), ${NAME}, ${NAME:-default} and
# friends, and $NAME (compose-spec 12-interpolation.md).
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
# The dialect the schema's $schema names. compose-spec writes it as
# "https://json-schema.org/draft-07/schema", which jsonschema's own lookup
# (keyed by "http://...#") does not know.
_DIALECTS: dict[str, Any] = {
    "draft-07": jsonschema.Draft7Validator,
    "draft/2020-12": jsonschema.Draft202012Validator,
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def interpolate(value: Any, found: list[tuple[str, str | None]]) -> Any:
    """``value`` as compose resolves it with no variable set: every reference
    becomes its default. Each reference is appended to ``found`` as (name, op)."""
    if isinstance(value, dict):
        return {key: interpolate(item, found) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, found) for item in value]
    if not isinstance(value, str):
        return value

    def resolve(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        found.append((match["braced"] or match["bare"], match["op"]))
        return (match["arg"] or "") if match["op"] in (":-", "-") else ""

    return _VARIABLE.sub(resolve, value)


def raw_document() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE_FILE.read_text())  # resolves anchors and << merges, as compose does
    assert isinstance(doc, dict), "docker-compose.yml is not a mapping"
    return doc


def references() -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    interpolate(raw_document(), found)
    return found


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    resolved: dict[str, Any] = interpolate(raw_document(), [])
    return resolved


@pytest.fixture(scope="module")
def services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = doc["services"]
    return found


@pytest.fixture(scope="module")
def ducats_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services that run the project's own image (entry point ``ducats``)."""
    return {name: svc for name, svc in services.items() if _dockerfile(svc) == DOCKERFILE}


def _dockerfile(service: dict[str, Any]) -> str | None:
    build = service.get("build")
    return build.get("dockerfile") if isinstance(build, dict) else None


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA_FILE.read_text())
    cls = next(v for key, v in _DIALECTS.items() if key in schema["$schema"])
    cls.check_schema(schema)
    errors = cls(schema).iter_errors(document)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=VALUE list form
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {key: str(value) for key, value in env.items()}


def settings_variables() -> set[str]:
    """Every environment variable name ducats/settings.py reads."""
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        choices = getattr(alias, "choices", [alias])
        names.update(choice for choice in choices if isinstance(choice, str))
    return names


def seconds(duration: str) -> float:
    parts = _DURATION.findall(duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(number) * _SECONDS[unit] for number, unit in parts)


def test_the_file_is_valid_against_the_compose_specification(doc: dict[str, Any]) -> None:
    assert schema_errors(doc) == []


def test_the_schema_check_is_not_vacuous(doc: dict[str, Any]) -> None:
    broken = copy.deepcopy(doc)
    broken["services"]["ledger"]["restrat"] = "always"  # a typo compose would refuse
    broken["services"]["worker"]["depends_on"] = "topics"
    errors = schema_errors(broken)
    assert any("restrat" in e for e in errors) and any(e.startswith("services/worker/depends_on") for e in errors)


def test_every_variable_reference_has_a_default() -> None:
    """`docker compose up` works with an empty environment and no .env file."""
    assert [name for name, op in references() if op != ":-"] == []


def test_the_pipeline_services_exist_and_run_their_subcommand(
    services: dict[str, dict[str, Any]], ducats_services: dict[str, dict[str, Any]]
) -> None:
    assert {"kafka", "postgres", "redis"} <= set(services)
    assert {"migrate", "topics", "ledger", "worker", "api"} <= set(ducats_services)
    for name in ("migrate", "topics", "ledger", "worker", "api"):
        assert ducats_services[name]["command"] == [name]
    images = {svc.get("image") for svc in ducats_services.values()}
    assert len(images) == 1, f"one image for every ducats service, not {images}"


def test_one_shots_wait_for_their_service_and_do_not_restart(services: dict[str, dict[str, Any]]) -> None:
    for name, needs in ONE_SHOTS.items():
        assert services[name]["depends_on"][needs] == {"condition": "service_healthy"}
        assert services[name].get("restart", "no") == "no", f"{name} runs once"
        assert "healthcheck" in services[needs]


def test_the_ledger_starts_after_migrate_and_topics_succeeded(services: dict[str, dict[str, Any]]) -> None:
    standbys = [n for n, svc in services.items() if svc.get("command") == ["ledger"]]
    assert "ledger" in standbys
    for name in standbys:
        depends = services[name]["depends_on"]
        for one_shot in ONE_SHOTS:
            assert depends[one_shot] == {"condition": "service_completed_successfully"}, (name, one_shot)
    for name in standbys:
        if name != "ledger":
            assert services[name].get("profiles"), f"{name}: a second ledger is opt-in (a profile)"


def test_every_ducats_service_gets_the_same_environment(
    doc: dict[str, Any], ducats_services: dict[str, dict[str, Any]]
) -> None:
    shared = {key: str(value) for key, value in doc["x-ducats-env"].items()}
    assert {"KAFKA_BOOTSTRAP", "DATABASE_URL", "REDIS_URL", "DUCATS_TOPIC_PREFIX", "DUCATS_APP_ID"} <= set(shared)
    for name, svc in ducats_services.items():
        env = environment(svc)
        assert {key: env.get(key) for key in shared} == shared, name


def test_the_environment_names_are_settings(ducats_services: dict[str, dict[str, Any]]) -> None:
    known = settings_variables()
    assert {"KAFKA_BOOTSTRAP", "DUCATS_LEDGER_METRICS_PORT"} <= known  # the parse found the aliases
    for name, svc in ducats_services.items():
        assert set(environment(svc)) - known == set(), name


def test_passthrough_variables_keep_their_names() -> None:
    """``DUCATS_X: ${DUCATS_X:-default}``: the shell's variable of the same name wins."""
    raw_env: dict[str, Any] = raw_document()["x-ducats-env"]
    for key, value in raw_env.items():
        names = [m["braced"] or m["bare"] for m in _VARIABLE.finditer(str(value)) if not m["escaped"]]
        assert names in ([], [key]), f"{key}: {value}"


def test_the_connection_urls_name_services_of_this_file(
    doc: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    env = doc["x-ducats-env"]
    hosts = [urlsplit(f"//{server.strip()}").hostname for server in env["KAFKA_BOOTSTRAP"].split(",")]
    hosts += [urlsplit(env["DATABASE_URL"]).hostname, urlsplit(env["REDIS_URL"]).hostname]
    assert hosts == ["kafka", "postgres", "redis"]
    assert set(hosts) <= set(services)


def test_ports_are_published_on_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for port in svc.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1" and port.get("published"), (name, port)
            else:
                assert isinstance(port, str) and port.startswith("127.0.0.1:"), (name, port)
                assert len(port.split(":")) == 3, (name, port)


def test_long_running_services_restart_report_health_and_stop_cleanly(
    services: dict[str, dict[str, Any]], ducats_services: dict[str, dict[str, Any]]
) -> None:
    for name, svc in services.items():
        restart = svc.get("restart", "no")
        assert restart in RESTARTS, (name, restart)
        if name not in ONE_SHOTS:
            assert restart == "unless-stopped", name
            assert svc.get("healthcheck", {}).get("test"), f"{name} has no health check"
    for name, svc in ducats_services.items():
        if name in ONE_SHOTS:
            continue
        assert seconds(svc["stop_grace_period"]) >= 30, f"{name}: Faust needs time to leave its group"
        variable = probed_variable(svc)
        assert variable in settings_variables(), f"{name} probes {variable}, which no setting reads"
        assert environment(svc).get(variable, "0") != "0", f"{name}: the health check needs a fixed port"


def probed_variable(service: dict[str, Any]) -> str:
    """The health check is ``python -c PROBE VARIABLE``: the variable holding the /metrics port."""
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"] and len(test) == 5, test
    assert "/metrics" in test[3], test
    variable: str = test[4]
    return variable


def test_the_ledger_and_worker_probe_their_readme_metrics_ports(
    ducats_services: dict[str, dict[str, Any]]
) -> None:
    probed = {}
    for name in LONG_RUNNING:
        variable = probed_variable(ducats_services[name])
        probed[name] = (variable, environment(ducats_services[name])[variable])
    assert probed == {"ledger": ("DUCATS_LEDGER_METRICS_PORT", "9101"),
                      "worker": ("DUCATS_WORKER_METRICS_PORT", "9102"), "api": ("DUCATS_API_PORT", "8000")}


def test_the_image_holds_every_package_pyproject_installs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*").rstrip(".") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    lines = (ROOT / DOCKERFILE).read_text().splitlines()
    copied = {parts[1] for parts in (line.split() for line in lines)
              if len(parts) == 3 and parts[0] == "COPY" and parts[1] == parts[2]}
    assert copied == packages
    assert all((ROOT / package).is_dir() for package in packages)
    assert any(line.split() == ['ENTRYPOINT', '["ducats"]'] for line in lines)
