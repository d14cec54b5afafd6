"""The layers run one way, read from the code's own imports: core <- handlers <- adapters <-
bootstrap <- reprocess <- entrypoints (reprocessing sits beside the rules, never inside them;
the poison search is policy, beside the handlers, which the wiring hands to the consumer),
with observability (metrics, health, HTTP, tracing, logs) beside the adapters,
with the configuration beside the core (it reads the core, every layer above reads it, and its
modules import one another without a cycle); and every Kafka client is built by the one factory."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICE = ROOT / "service"
KAFKA_CLIENTS = {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient"}
FACTORY = SERVICE / "bootstrap" / "factory.py"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package.replace(".", "/")).rglob("*.py"))


def imports_of(path: Path) -> set[str]:
    """Every module an import statement names, at any depth of the file (lazy imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def top(name: str) -> str:
    return name.split(".")[0]


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def outside(path: Path, *allowed: str) -> set[str]:
    """What `path` imports beyond the standard library, `schemas` and the `allowed` packages."""
    return {
        name
        for name in imports_of(path)
        if top(name) not in sys.stdlib_module_names
        and name != "__future__"
        and not any(within(name, prefix) for prefix in ("schemas", *allowed))
    }


@pytest.mark.parametrize("path", modules("service.core"), ids=module_name)
def test_the_core_imports_only_the_contract_and_the_standard_library(path: Path) -> None:
    foreign = outside(path, "service.core")
    assert not foreign, f"{module_name(path)} imports {sorted(foreign)}"


@pytest.mark.parametrize("path", modules("service.handlers"), ids=module_name)
def test_handlers_reach_the_database_only_through_the_store_port(path: Path) -> None:
    foreign = outside(path, "service.core", "service.handlers")
    assert not foreign, f"{module_name(path)} imports {sorted(foreign)}"


@pytest.mark.parametrize(
    "path", modules("service.adapters") + modules("service.observe"), ids=module_name
)
def test_adapters_import_no_handlers_reprocessing_entrypoints_or_wiring(path: Path) -> None:
    upward = {
        name
        for name in imports_of(path)
        if any(
            within(name, layer)
            for layer in (
                "service.handlers",
                "service.reprocess",
                "service.entrypoints",
                "service.bootstrap",
            )
        )
    }
    assert not upward, f"{module_name(path)} imports {sorted(upward)}"


POISON_POLICY = "service.handlers.poison"


def test_the_poison_search_is_policy_beside_the_handlers_not_an_adapter() -> None:
    """It does no I/O of its own: it decides which events of a failing batch are set aside. It is
    defined beside the handlers (whose imports the test above holds to the core) and bound by the
    wiring and the release command alone; the consumer loop is handed it contained."""
    defined = {
        module_name(path)
        for path in modules("service")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name in ("PoisonGuard", "find_poison")
    }
    assert defined == {POISON_POLICY}
    binders = {
        module_name(path)
        for path in modules("service")
        if any(within(name, POISON_POLICY) for name in imports_of(path))
    }
    assert binders == {"service.bootstrap.service", "service.entrypoints.parked"}


CONFIG = "service.config"


@pytest.mark.parametrize("path", modules(CONFIG), ids=module_name)
def test_the_configuration_imports_nothing_of_the_service_but_the_core(path: Path) -> None:
    upward = {
        name
        for name in imports_of(path)
        if top(name) == "service" and not any(within(name, p) for p in ("service.core", CONFIG))
    }
    assert not upward, f"{module_name(path)} imports {sorted(upward)}"


def test_the_configuration_modules_import_one_another_without_a_cycle() -> None:
    """Type-only imports count too: settings.py and the Kafka security checks once imported
    each other, which is why the checks kept their own copy of the variables' prefix."""
    graph = {
        module_name(path): {
            name for name in imports_of(path) if within(name, CONFIG) and name != CONFIG
        }
        for path in modules(CONFIG)
    }
    graph = {module: {n for n in named if n in graph} for module, named in graph.items()}

    def cycle_from(module: str, path: tuple[str, ...]) -> tuple[str, ...] | None:
        if module in path:
            return (*path[path.index(module) :], module)
        for imported in sorted(graph[module]):
            found = cycle_from(imported, (*path, module))
            if found:
                return found
        return None

    cycles = [cycle for module in sorted(graph) if (cycle := cycle_from(module, ()))]
    assert not cycles, " -> ".join(cycles[0])


def test_the_observe_package_imports_nothing_when_it_is_imported() -> None:
    """`service.observe.logs` is imported before `run` sets the metrics' multiprocess directory,
    so the package itself must not import the metrics (service/bootstrap/metrics_dir.py)."""
    assert not imports_of(SERVICE / "observe" / "__init__.py")


@pytest.mark.parametrize("path", modules("service.core"), ids=module_name)
def test_the_core_does_not_import_reprocessing(path: Path) -> None:
    reprocess = {name for name in imports_of(path) if within(name, "service.reprocess")}
    assert not reprocess, f"{module_name(path)} imports {sorted(reprocess)}"


@pytest.mark.parametrize("path", modules("service.reprocess"), ids=module_name)
def test_reprocessing_uses_the_core_handlers_adapters_and_the_factory_not_the_commands(
    path: Path,
) -> None:
    foreign = {
        name
        for name in imports_of(path)
        if top(name) == "service"
        and not any(
            within(name, layer)
            for layer in (
                "service.core",
                "service.handlers",
                "service.adapters",
                "service.observe",
                "service.bootstrap.factory",
                "service.bootstrap.reach",
                "service.bootstrap.service",
                "service.reprocess",
                "service.config",
            )
        )
    }
    assert not foreign, f"{module_name(path)} imports {sorted(foreign)}"


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in modules("service")
        if not any(within(module_name(p), m) for m in ("service.entrypoints", "service.reprocess"))
    ],
    ids=module_name,
)
def test_only_the_commands_import_reprocessing(path: Path) -> None:
    reprocess = {name for name in imports_of(path) if within(name, "service.reprocess")}
    assert not reprocess, f"{module_name(path)} imports {sorted(reprocess)}"


@pytest.mark.parametrize("path", modules("service.bootstrap"), ids=module_name)
def test_the_wiring_imports_no_entrypoint(path: Path) -> None:
    upward = {name for name in imports_of(path) if within(name, "service.entrypoints")}
    assert not upward, f"{module_name(path)} imports {sorted(upward)}"


@pytest.mark.parametrize("path", modules("service.simulation"), ids=module_name)
def test_the_simulation_is_pure_generators_over_the_contract(path: Path) -> None:
    foreign = outside(path, "service.simulation", "orjson")
    assert not foreign, f"{module_name(path)} imports {sorted(foreign)}"


def test_nothing_but_the_factory_constructs_a_kafka_client() -> None:
    offenders = []
    for path in modules("service"):
        if path == FACTORY:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name in KAFKA_CLIENTS:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}(...)")
    assert not offenders


def test_the_contract_package_imports_nothing_of_the_service() -> None:
    for path in modules("schemas"):
        assert not any(top(n) == "service" for n in imports_of(path)), module_name(path)


@pytest.mark.parametrize(
    "path", modules("service") + modules("schemas") + modules("bench"), ids=module_name
)
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 320, f"{module_name(path)} has {lines} lines: two concepts in one module?"


# The benchmarks drive the service through the command line, `schemas` and the settings; what
# they need beyond that comes through `bench/service_api.py`, whose imports are this list.
BENCH_SERVICE_API = ROOT / "bench" / "service_api.py"
BENCH_MAY_IMPORT = ("service.config.settings",)
SERVICE_API_MODULES = {
    "service.adapters.kafka.relay",
    "service.adapters.memory_store",
    "service.adapters.postgres.sql",
    "service.adapters.postgres.store",
    "service.bootstrap.allocator",
    "service.bootstrap.factory",
    "service.bootstrap.service",
    "service.simulation.payments",
    "service.simulation.stream",
    "service.handlers.consume",
    "service.handlers.outbox",
    "service.observe",
    "service.observe.logs",
}


@pytest.mark.parametrize(
    "path", [p for p in modules("bench") if p != BENCH_SERVICE_API], ids=module_name
)
def test_the_benchmarks_reach_the_service_only_through_its_settings_and_the_bench_api(
    path: Path,
) -> None:
    internal = {
        name
        for name in imports_of(path)
        if top(name) == "service" and not any(within(name, m) for m in BENCH_MAY_IMPORT)
    }
    assert not internal, f"{module_name(path)} imports {sorted(internal)}: use bench.service_api"


def test_the_bench_api_imports_only_its_listed_service_modules() -> None:
    modules_named = {
        node.module
        for node in ast.walk(ast.parse(BENCH_SERVICE_API.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module and top(node.module) == "service"
    }
    plain = {
        alias.name
        for node in ast.walk(ast.parse(BENCH_SERVICE_API.read_text(encoding="utf-8")))
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert not plain, f"bench/service_api.py imports {sorted(plain)}: name what it takes"
    assert modules_named <= SERVICE_API_MODULES, sorted(modules_named - SERVICE_API_MODULES)


@pytest.mark.parametrize("path", modules("tests"), ids=module_name)
def test_tests_do_not_import_the_benchmarks(path: Path) -> None:
    bench = {name for name in imports_of(path) if top(name) == "bench"}
    assert not bench, f"{module_name(path)} imports {sorted(bench)}"
