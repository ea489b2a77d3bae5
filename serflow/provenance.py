"""What produced an output: the serflow code a job runs (hashed), the serflow version, the git checkout, the CPU.

**Code identity.** A job's result depends on the code it runs, so the workflow makes that code part of each job's
identity: a rule's ``params`` carry :func:`code_hash` of its script and of every serflow module the script
imports, directly or through other modules (and a feature store's version carries the hash of its extractor's
code). Change a line in ``serflow/train/loop.py`` and ``snakemake -n`` lists the jobs that run it, and only those.

The imports are found by reading the source (``ast``), never by importing it, so this costs milliseconds when the
Snakefile is parsed. Three conventions keep the result precise:

* Imports anywhere in a file count (also inside functions, the lazy imports of torch-heavy modules), except
  those under ``if TYPE_CHECKING:``, which never run.
* Importing ``a.b.c`` runs the ``__init__`` of ``a`` and ``a.b`` too, so those count. Packages that re-export
  names lazily declare them in a module-level ``_LAZY`` dict literal (exported name -> submodule); the walker
  resolves ``from package import Name`` through it, as Python does at run time.
* Names a job loads by name at run time (an extractor, a model) are not visible as imports: the caller adds
  their modules as ``extra`` entries. *Catalogue* modules (:data:`CATALOGUES`: the model registry) hold data,
  not computations; they are left out, and the job hashes the catalogue entry it uses instead, so registering
  a new model does not rerun every other model.

Non-Python files a module reads (openSMILE's config) are declared in the module as ``CODE_RESOURCES``, a tuple of
paths relative to its folder, and hashed with it.

**Recorded provenance** (:func:`provenance`): the serflow version, the code hash, the list of files hashed, and
where there is a git checkout its commit and whether it had uncommitted changes; :func:`machine` describes the
CPU (model, the vector instruction sets that decide which kernels torch, oneDNN and CTranslate2 run), because
floating-point results can differ across CPUs (README, "Reproducibility and recovery").
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

PACKAGE = "serflow"
PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent
SCRIPTS_DIR = REPO_ROOT / "workflow_scripts"
CATALOGUES = frozenset({"serflow.models.registry", "serflow.models.catalog"})
# Environment variables with which the numeric libraries choose (or are told) which vector instructions to use.
ISA_ENV = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "MKL_ENABLE_INSTRUCTIONS",
    "MKL_CBWR",
    "CT2_FORCE_CPU_ISA",
    "OPENBLAS_CORETYPE",
    "NPY_DISABLE_CPU_FEATURES",
)
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile")


# --------------------------------------------------------------------------------- module graph


def module_file(module: str) -> Path | None:
    """The source file of a serflow module (``serflow.a.b`` -> ``serflow/a/b.py`` or ``.../b/__init__.py``)."""
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        return None
    base = REPO_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterable[ast.AST]:
    """Every node except the bodies of ``if TYPE_CHECKING:`` (their ``else`` branches run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


@functools.cache
def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_bytes(), filename=str(path))


@functools.cache
def _lazy_table(package: str) -> dict[str, str]:
    """``{exported name: absolute module}`` from a package's ``_LAZY`` dict literal (empty if none)."""
    path = module_file(package)
    if path is None or path.name != "__init__.py":
        return {}
    for node in _parsed(path).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(node, ast.AnnAssign):
            target = node.target
        if isinstance(target, ast.Name) and target.id == "_LAZY" and isinstance(node.value, ast.Dict):
            table = ast.literal_eval(node.value)
            prefix = f"{PACKAGE}."
            return {name: home if home.startswith(prefix) else f"{package}.{home}" for name, home in table.items()}
    return {}


def _resolve_from(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    keep = len(parts) - node.level + (1 if is_package else 0)
    base = ".".join(parts[:keep])
    return f"{base}.{node.module}" if node.module else base


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@functools.cache
def imports_of(module: str) -> tuple[str, ...]:
    """The serflow modules ``module`` imports when it runs (parents included; see the module docstring)."""
    path = module_file(module)
    if path is None:
        raise ValueError(f"no source file for module {module!r} under {REPO_ROOT}")
    return _imports_in(_parsed(path), module, path.name == "__init__.py")


def _imports_in(tree: ast.AST, module: str, is_package: bool) -> tuple[str, ...]:
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(module, node, is_package)
            names = [base]
            lazy = _lazy_table(base)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if module_file(sub) is not None:
                    names.append(sub)
                elif alias.name in lazy:
                    names.append(lazy[alias.name])
        else:
            continue
        for name in names:
            if module_file(name) is not None:
                found.update(m for m in _with_parents(name) if module_file(m) is not None)
    found.discard(module)
    return tuple(sorted(found))


def closure(entries: Iterable[str]) -> list[str]:
    """Every serflow module that runs when ``entries`` are imported, catalogues excluded, sorted."""
    seen: set[str] = set()
    stack = [m for entry in entries for m in _with_parents(entry) if module_file(m) is not None]
    while stack:
        module = stack.pop()
        if module in seen or module in CATALOGUES:
            continue
        seen.add(module)
        stack.extend(imports_of(module))
    return sorted(seen)


def script_imports(script: Path) -> tuple[str, ...]:
    """The serflow modules a workflow script (or any file outside the package) imports."""
    return _imports_in(_parsed(script.resolve()), "__script__", False)


def _resources(module: str) -> list[Path]:
    path = module_file(module)
    assert path is not None
    for node in _parsed(path).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "CODE_RESOURCES" for t in node.targets):
            return [path.parent / rel for rel in ast.literal_eval(node.value)]
    return []


# --------------------------------------------------------------------------------- hashes


@functools.cache
def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_files(entries: Iterable[str] = (), scripts: Iterable[str | Path] = ()) -> dict[str, str]:
    """``{repository-relative path: sha256}`` of every file a job with these entry modules and scripts runs."""
    script_paths = [Path(s) if Path(s).is_absolute() else SCRIPTS_DIR / s for s in scripts]
    modules = closure([*entries, *(m for s in script_paths for m in script_imports(s))])
    files = [module_file(m) for m in modules]
    files += [r for m in modules for r in _resources(m)]
    files += script_paths
    return {_relative(f): _file_sha256(f.resolve()) for f in sorted({f.resolve() for f in files if f is not None})}


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def hash_of_files(files: Mapping[str, str], extra: Any = None) -> str:
    """One sha256 over a ``source_files`` map (and optional JSON-able ``extra``, e.g. a catalogue entry)."""
    text = json.dumps({"files": dict(sorted(files.items())), "extra": extra}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@functools.cache
def _code_hash(entries: tuple[str, ...], scripts: tuple[str, ...], extra: str) -> str:
    return hash_of_files(source_files(entries, scripts), json.loads(extra))


def code_hash(entries: Iterable[str] = (), scripts: Iterable[str | Path] = (), extra: Any = None) -> str:
    """The code identity of a job: sha256 of its scripts and modules (see the module docstring), cached."""
    return _code_hash(tuple(sorted(entries)), tuple(sorted(map(str, scripts))), json.dumps(extra, sort_keys=True))


# --------------------------------------------------------------------------------- recorded provenance


@functools.cache
def git_state(root: Path = REPO_ROOT) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the checkout holding serflow, or None outside one (or without git)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def serflow_version() -> str:
    from serflow import __version__

    return __version__


def provenance(entries: Iterable[str] = (), scripts: Iterable[str | Path] = (), extra: Any = None) -> dict[str, Any]:
    """What a job records about the code that produced its output (a JSON-ready dict)."""
    files = source_files(entries, scripts)
    return {
        "serflow": serflow_version(),
        "code_hash": hash_of_files(files, extra),
        "files": files,
        "git": git_state(),
    }


def machine() -> dict[str, Any]:
    """The CPU a job ran on: model name, the vector extensions present, and what torch dispatches to."""
    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    info: dict[str, Any] = {
        "arch": platform.machine(),
        "cpu": model,
        "isa": [f for f in CPU_FLAGS if f in flags],
    }
    torch = sys.modules.get("torch")  # only where the job uses torch anyway (importing it costs seconds)
    if torch is not None:
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    pinned = {name: os.environ[name] for name in ISA_ENV if name in os.environ}
    if pinned:
        info["isa_pinned"] = pinned
    return info
