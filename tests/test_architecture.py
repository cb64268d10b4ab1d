"""The package's imports go one way (docs/architecture.md): each layer imports only the layers
before it, counting imports inside functions, and no module imports itself back in a circle."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "r1omni"
# Lowest first. A module may import its own layer and the layers before it.
LAYERS = [
    {"errors", "labels", "prompts", "claims", "rewards", "assets", "progress", "atomic", "checks"},  # assets: no code
    {"media"},
    {"data"},
    {"models"},
    {"predict"},
    {"eval"},
    {"rl"},
    {"train"},
    {"demo", "pretrain", "cli", "serve", "__init__"},
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """r1omni modules `path` imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return {name for name in found if name == "r1omni" or name.startswith("r1omni.")}


def layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    return next(i for i, names in enumerate(LAYERS) if top in names)


GRAPH = {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def test_every_module_has_a_layer():
    for module in GRAPH:
        layer(module)  # StopIteration names a module outside every layer


def test_imports_only_go_to_earlier_layers():
    upward = [f"{module} -> {target}" for module, targets in GRAPH.items() for target in targets
              if layer(target) > layer(module)]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    def resolve(name: str) -> str:  # `from r1omni.x import y` names the module x (or x.y when it exists)
        return name if name in GRAPH else name.rsplit(".", 1)[0]

    edges = {m: {resolve(t) for t in targets} - {m} for m, targets in GRAPH.items()}
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in edges.get(module, ()):
            assert state.get(target) != 1, " -> ".join(path + [module, target])
            if target not in state:
                visit(target, path + [module])
        state[module] = 2

    for module in edges:
        if module not in state:
            visit(module, [])


def test_nothing_outside_models_names_a_backend():
    """Commands, training and evaluation reach a backend only through `OmniPolicy`, `load_policy`
    and the options backends declare (`loading_options`): none imports a backend's module or
    class, so adding a backend touches models/ alone."""
    from r1omni.models import BACKENDS

    modules = {".".join(cls.__module__.split(".")[:3]) for cls in BACKENDS.values()}  # r1omni.models.<backend>
    classes = {cls.__name__ for cls in BACKENDS.values()}
    found = []
    for path in PACKAGE.rglob("*.py"):
        module = module_name(path)
        if module.startswith("r1omni.models"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                named = {node.module} | {f"{node.module}.{a.name}" for a in node.names}
                found += [f"{module} -> {n}" for n in named if any(n == m or n.startswith(m + ".") for m in modules)]
                found += [f"{module} -> {a.name}" for a in node.names if a.name in classes]
            elif isinstance(node, ast.Import):
                found += [f"{module} -> {a.name}" for a in node.names
                          if any(a.name == m or a.name.startswith(m + ".") for m in modules)]
    assert modules and not found, "\n".join(found)


def test_every_module_is_in_the_architecture_map():
    """docs/architecture.md's module map names every module (a package by its folder)."""
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    names = [f"`{p.relative_to(PACKAGE).parent.as_posix()}/`" if p.name == "__init__.py"
             else f"`{p.relative_to(PACKAGE).as_posix()}`" for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE
             or p.name != "__init__.py"]
    missing = sorted(name for name in names if name not in text)
    assert not missing, "not in docs/architecture.md's module map: " + ", ".join(missing)
