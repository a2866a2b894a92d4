"""``chimevoice init --handler PATH``: write a working configuration for a Lambda handler.

PATH is a handler file or a repository directory. The handler is found without importing it
(``ast`` only): a SAM/serverless ``Handler: index.handler`` line wins, otherwise the files and
functions that look like a Chime SIP media application handler are ranked. The code it imports
from the same folder is scanned for the environment variables it reads, the S3 bucket names its
actions use and the WAV keys it plays; each variable is asked for (or defaulted with ``--yes``),
each bucket is mapped to ``var/buckets/<name>`` next to the configuration and the WAV files found
next to the handler are copied there. The file written is then checked exactly as
``chimevoice check-config`` checks it (the handler is loaded once in a worker).

A Node.js handler (``exports.handler``, ``export const handler``; TypeScript too) gets a ``type: nodejs``
application the same way: its files are scanned with regular expressions for ``process.env`` reads,
``BucketName`` values and WAV keys.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .config import _bucket_name_problem

# folders that never hold the function's own code
SKIP_DIRS = {".git", ".hg", ".svn", ".venv", "venv", "env", "node_modules", "__pycache__", ".aws-sam",
             "cdk.out", ".serverless", "build", "dist", ".tox", ".mypy_cache", ".pytest_cache",
             ".ruff_cache", "site-packages", "var"}
KNOWN_FILES = {"lambda_function": 50, "index": 50, "app": 40, "handler": 40, "main": 30}
HANDLER_NAMES = ("handler", "lambda_handler")
TEMPLATE_FILES = ("template.yaml", "template.yml", "serverless.yml", "serverless.yaml", "template.json")
NODE_SUFFIXES = (".js", ".mjs", ".cjs", ".ts")
# set by the Lambda runtime (chimevoice sets them too) or inherited from the daemon: never asked for
RUNTIME_VARS = {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
                "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
                "_HANDLER", "TZ", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_LAMBDA_LOG_LEVEL", "AWS_LAMBDA_LOG_FORMAT", "PATH", "HOME", "PYTHONPATH"}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_NODE_EXPORT = re.compile(r"(?:exports\.(\w+)\s*=|export\s+(?:const|let|var|async\s+function|function)\s+(\w+)"
                          r"|module\.exports\s*=\s*\{[^}]*?\b(handler)\b)")


class InitError(Exception):
    """A problem that ends ``init`` with a message; ``status`` is the exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- templates (SAM, serverless)

@dataclass
class TemplateHints:
    files: list[Path] = field(default_factory=list)
    handlers: list[str] = field(default_factory=list)          # "index.handler", "src/app.lambda_handler"
    runtimes: list[str] = field(default_factory=list)          # "python3.11", "nodejs18.x"
    environment: dict[str, str] = field(default_factory=dict)  # literal Environment.Variables values


def read_templates(folder: Path) -> TemplateHints:
    """``Handler:``, ``Runtime:`` and literal environment values of SAM/serverless files in *folder*
    and its parents up to the repository root (line-based: CloudFormation tags are not YAML)."""
    hints = TemplateHints()
    for directory in [folder, *folder.parents][:4]:
        for name in TEMPLATE_FILES:
            path = directory / name
            if path.is_file():
                hints.files.append(path)
                _read_template(path.read_text(errors="replace"), hints)
        if (directory / ".git").exists():
            break
    return hints


def _read_template(text: str, hints: TemplateHints) -> None:
    env_indent: int | None = None
    for raw in text.splitlines():
        line = raw.split(" #")[0].rstrip()
        stripped = line.strip().strip(",")
        indent = len(line) - len(line.lstrip())
        if env_indent is not None:
            if stripped and indent <= env_indent:
                env_indent = None
            else:
                m = re.fullmatch(r"[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?\s*:\s*(.*)", stripped)
                if m and m.group(2):
                    value = m.group(2).strip().strip("\"'")
                    if value and not value.startswith(("!", "{", "[", "$")) and "${" not in value:
                        hints.environment.setdefault(m.group(1), value)
                continue
        m = re.fullmatch(r"[\"']?[Hh]andler[\"']?\s*:\s*[\"']?([\w./-]+\.\w+)[\"']?", stripped)
        if m:
            hints.handlers.append(m.group(1))
            continue
        m = re.fullmatch(r"[\"']?[Rr]untime[\"']?\s*:\s*[\"']?([\w.]+)[\"']?", stripped)
        if m:
            hints.runtimes.append(m.group(1).lower())
            continue
        if re.fullmatch(r"[\"']?(Variables|environment)[\"']?\s*:\s*\{?", stripped):
            env_indent = indent


# --------------------------------------------------------------------------- finding the handler

@dataclass
class Candidate:
    file: Path
    function: str
    module: str           # import name: "index", "handlers.main"
    root: Path            # the folder the module is imported from (python_path)
    score: int
    why: str

    runtime: str = "python"     # or "nodejs": module is then the file without its suffix ("src/index")

    @property
    def target(self) -> str:
        if self.runtime == "nodejs":
            return f"{self.module}.{self.function}"       # Lambda's own spelling
        return f"{self.module}:{self.function}"


def _walk(folder: Path, suffixes: tuple[str, ...], limit: int = 2000) -> list[Path]:
    """Files ending with *suffixes* below *folder*, without tool folders and packages installed into it."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        vendored = _vendored(Path(dirpath)) if any(d.endswith(".dist-info") for d in dirnames) else set()
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")
                             and not d.endswith((".dist-info", ".egg-info")) and d not in vendored)
        filenames = [f for f in filenames if f.removesuffix(".py") not in vendored]
        found.extend(Path(dirpath) / f for f in sorted(filenames) if f.endswith(suffixes))
        if len(found) > limit:
            break
    return found


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(errors="replace"), str(path))
    except (SyntaxError, ValueError, OSError):
        return None


def _top_functions(tree: ast.Module) -> dict[str, int]:
    """Top-level functions (and names bound at top level) -> number of positional parameters (-1: not a def)."""
    out: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            out[node.name] = len(node.args.posonlyargs) + len(node.args.args) + (1 if node.args.vararg else 0)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out.setdefault(target.id, -1)
    return out


def _hint_parts(hint: str) -> tuple[str, str]:
    module, _, function = hint.rpartition(".")
    return module, function


def find_candidates(path: Path, hints: TemplateHints, function: str | None = None) -> list[Candidate]:
    """Python handler candidates for a file or a directory, most likely first."""
    base = path if path.is_dir() else path.parent
    files = _walk(path, (".py",)) if path.is_dir() else [path]
    wanted = [_hint_parts(h) for h in hints.handlers]
    out: list[Candidate] = []
    for file in files:
        tree = _parse(file)
        if tree is None:
            continue
        functions = _top_functions(tree)
        rel = file.relative_to(base).as_posix() if file.is_relative_to(base) else file.name
        stem = file.stem
        for name, nparams in functions.items():
            score, why = 0, ""
            module, root = stem, file.parent
            for hint_module, hint_function in wanted:
                suffix = hint_module.replace(".", "/") + ".py"
                if name == hint_function and (rel == suffix or rel.endswith("/" + suffix)):
                    score, why = 1000, f"Handler: {hint_module}.{hint_function} in {hints.files[0].name}"
                    if "." in hint_module and "/" not in hint_module:    # package spelling handlers.main
                        module, root = hint_module, file.parents[hint_module.count(".")]
            if function is not None:
                if name != function:
                    continue
                score, why = max(score, 500), why or "named on the command line"
            elif not score:
                if nparams == 2 and name in HANDLER_NAMES:
                    score, why = 100, f"def {name}(event, context)"
                elif nparams == 2 and name.endswith("handler") and stem in KNOWN_FILES:
                    score, why = 60, f"def {name}(event, context) in {file.name}"
                else:
                    continue
                score += KNOWN_FILES.get(stem, 0) - 5 * rel.count("/")
                if "test" in rel.lower():
                    score -= 200
            out.append(Candidate(file, name, module, root, score, why))
    out.sort(key=lambda c: (-c.score, str(c.file), c.function))
    return out


def node_handlers(path: Path, hints: TemplateHints) -> list[str]:
    """Node.js handlers (``index.js: exports.handler``) in a file or directory."""
    files = _walk(path, NODE_SUFFIXES, 500) if path.is_dir() else [path]
    out: list[str] = []
    for file in files:
        if file.name.endswith(".d.ts") or file.suffix not in NODE_SUFFIXES:
            continue
        try:
            text = file.read_text(errors="replace")
        except OSError:
            continue
        names = {g for m in _NODE_EXPORT.finditer(text) for g in m.groups() if g}
        names = {n for n in names if n.lower().endswith("handler")} or set()
        for hint in hints.handlers:
            module, function = _hint_parts(hint)
            if file.with_suffix("").as_posix().endswith(module) and function in names:
                names = {function}
        base = path if path.is_dir() else path.parent
        out.extend(f"{file.relative_to(base).as_posix()}: exports.{n}" for n in sorted(names))
    return out


def node_candidate(path: Path, found: list[str]) -> Candidate:
    """The first Node.js handler ``node_handlers`` found (``"src/index.js: exports.handler"``)."""
    base = path if path.is_dir() else path.parent
    file, _, export = found[0].partition(": ")
    stem = file.rsplit(".", 1)[0]
    return Candidate(base / file, export.removeprefix("exports."), stem, base, 1000, f"{export} in {file}",
                     runtime="nodejs")


_NODE_ENV = re.compile(r"process\.env\.([A-Za-z_]\w*)|process\.env\[\s*[\"']([^\"']+)[\"']\s*\]")
_NODE_ENV_DESTRUCTURE = re.compile(r"\{([^}]*)\}\s*=\s*process\.env\b")
_NODE_LOCAL = re.compile(r"(?:require\(\s*|from\s+|import\s+)[\"'](\.{1,2}/[^\"']+)[\"']")
_NODE_DEFAULT = re.compile(r"\s*(?:\|\||\?\?)\s*[\"']([^\"'\n]*)[\"']")
_NODE_ALIAS = re.compile(r"(?:const|let|var)\s+(\w+)\s*=\s*process\.env\.([A-Za-z_]\w*)")
_NODE_BUCKET = re.compile(r"BucketName\s*:\s*(?:process\.env\.([A-Za-z_]\w*)|[\"']([^\"']+)[\"']|(\w+))")
_NODE_WAV = re.compile(r"[\"'`]([^\"'`\s]+\.wav)[\"'`]", re.IGNORECASE)


def node_files(entry: list[Path]) -> list[Path]:
    """The handler files and the local modules they require/import (``./x``, ``../lib/y``)."""
    todo, seen = list(entry), list[Path]()
    while todo and len(seen) < 200:
        file = todo.pop(0).resolve()
        if file in seen or not file.is_file():
            continue
        seen.append(file)
        text = file.read_text(errors="replace")
        for m in _NODE_LOCAL.finditer(text):
            base = file.parent / m.group(1)
            for path in (base, *(base.with_name(base.name + s) for s in NODE_SUFFIXES),
                         *(base / f"index{s}" for s in NODE_SUFFIXES)):
                if path.is_file():
                    todo.append(path)
                    break
    return seen


def scan_node_handler(candidate: Candidate) -> Scan:
    """Scan a Node.js handler and the local modules it requires/imports (regular expressions, not a parser)."""
    scan = Scan()
    for file in node_files([candidate.file]):
        scan.files.append(file)
        text = file.read_text(errors="replace")
        hits = [(m.group(1) or m.group(2), m.end()) for m in _NODE_ENV.finditer(text)]
        for m in _NODE_ENV_DESTRUCTURE.finditer(text):
            for raw in m.group(1).split(","):
                name = re.split(r"\s*[:=]\s*", raw.strip())[0]
                if re.fullmatch(r"[A-Za-z_]\w*", name):
                    hits.append((name, m.start()))
        for name, end in sorted(hits, key=lambda h: h[1]):
            d = _NODE_DEFAULT.match(text, end)
            where = f"{file.name}:{text.count(chr(10), 0, end) + 1}"
            known = scan.env.get(name)
            if known is None:
                scan.env[name] = EnvRead(name, d.group(1) if d else None, False, False, where)
            elif known.default is None and d:
                known.default = d.group(1)
        aliases = {m.group(1): m.group(2) for m in _NODE_ALIAS.finditer(text)}
        for m in _NODE_BUCKET.finditer(text):
            if m.group(1) or (m.group(3) and m.group(3) in aliases):
                scan.bucket_vars.setdefault(m.group(1) or aliases[m.group(3)], "audio")
            elif m.group(2):
                scan.bucket_literals.setdefault(m.group(2), "audio")
        for m in _NODE_WAV.finditer(text):
            if m.group(1) not in scan.wav_keys:
                scan.wav_keys.append(m.group(1))
    for name in scan.env:
        if "BUCKET" in name.upper():
            scan.bucket_vars.setdefault(name, "")
    return scan


# --------------------------------------------------------------------------- static scan

@dataclass
class EnvRead:
    name: str
    default: str | None          # the code's default (None: none, or not a literal)
    required: bool               # os.environ["X"]: KeyError when missing
    at_import: bool              # read by module-level code
    where: str                   # file:line of the first read


@dataclass
class Scan:
    files: list[Path] = field(default_factory=list)
    env: dict[str, EnvRead] = field(default_factory=dict)
    bucket_literals: dict[str, str] = field(default_factory=dict)   # name -> "audio" | "recording" | ""
    bucket_vars: dict[str, str] = field(default_factory=dict)       # env var -> role
    wav_keys: list[str] = field(default_factory=list)
    wav_key_vars: set[str] = field(default_factory=set)             # env vars used as a Key


def _is_environ(node: ast.expr) -> bool:
    if isinstance(node, ast.Attribute) and node.attr == "environ":
        return isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "environ"


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str | int | float | bool):
        return str(node.value).lower() if isinstance(node.value, bool) else str(node.value)
    return None


def env_read(node: ast.AST) -> tuple[str, str | None, bool] | None:
    """``(name, default, required)`` when *node* reads an environment variable."""
    if isinstance(node, ast.Subscript) and _is_environ(node.value):
        name = _literal(node.slice)
        return (name, None, True) if name else None
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    getter = (isinstance(func, ast.Attribute) and func.attr in ("get", "setdefault") and _is_environ(func.value)) or (
        isinstance(func, ast.Attribute) and func.attr == "getenv" and isinstance(func.value, ast.Name)
        and func.value.id == "os") or (isinstance(func, ast.Name) and func.id == "getenv")
    if not getter:
        return None
    name = _literal(node.args[0])
    if not name:
        return None
    default_node = node.args[1] if len(node.args) > 1 else next(
        (k.value for k in node.keywords if k.arg in ("default", "value")), None)
    return name, _literal(default_node), False


class _Scanner(ast.NodeVisitor):
    def __init__(self, scan: Scan, file: Path, names: dict[str, tuple[str, str]]) -> None:
        self.scan, self.file, self.names, self.depth = scan, file, names, 0

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef     # noqa: N815

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    def _source(self, node: ast.expr | None) -> tuple[str, str] | None:
        """("literal", text) or ("env", NAME) for a bucket/key value expression."""
        if node is None:
            return None
        read = env_read(node)
        if read:
            return "env", read[0]
        text = _literal(node)
        if text is not None:
            return "literal", text
        if isinstance(node, ast.Name):
            return self.names.get(node.id)
        if isinstance(node, ast.JoinedStr) and node.values:      # f"{BUCKET}/recordings"
            first = node.values[0]
            if isinstance(first, ast.FormattedValue):
                return self._source(first.value)
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                return "literal", first.value
        return None

    def _bucket(self, node: ast.expr | None, role: str, location: bool = False) -> None:
        source = self._source(node)
        if source is None:
            return
        kind, value = source
        if kind == "env":
            self.scan.bucket_vars[value] = self.scan.bucket_vars.get(value) or role
        else:
            name = value.split("/")[0] if location else value
            if name and _bucket_name_problem(name) is None:
                self.scan.bucket_literals[name] = self.scan.bucket_literals.get(name) or role

    def visit_Dict(self, node: ast.Dict) -> None:
        keys = {_literal(k): v for k, v in zip(node.keys, node.values, strict=True) if k is not None}
        role = "audio" if "Key" in keys else "recording" if "Prefix" in keys else ""
        if "BucketName" in keys:
            self._bucket(keys["BucketName"], role)
        if "Location" in keys and _literal(keys.get("Type")) == "S3":
            self._bucket(keys["Location"], "recording", location=True)
        if "Key" in keys:
            source = self._source(keys["Key"])
            if source and source[0] == "env":
                self.scan.wav_key_vars.add(source[1])
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        for kw in node.keywords:
            if kw.arg in ("BucketName", "Bucket"):
                self._bucket(kw.value, "")
        self._env(node)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self._env(node)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and node.value.lower().endswith(".wav") and node.value not in self.scan.wav_keys:
            if "\n" not in node.value and " " not in node.value.strip():
                self.scan.wav_keys.append(node.value)

    def _env(self, node: ast.Call | ast.Subscript) -> None:
        read = env_read(node)
        if not read:
            return
        name, default, required = read
        where = f"{self.file.name}:{node.lineno}"
        known = self.scan.env.get(name)
        if known is None:
            self.scan.env[name] = EnvRead(name, default, required, self.depth == 0, where)
        else:
            known.required = known.required or required
            known.at_import = known.at_import or self.depth == 0
            if known.default is None:
                known.default = default


def _assigned_names(tree: ast.Module, names: dict[str, tuple[str, str]]) -> None:
    """``BUCKET = os.environ["X"]`` / ``KEY = "welcome.wav"`` anywhere in the file (scopes ignored)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            read = env_read(node.value)
            if read:
                names[node.targets[0].id] = ("env", read[0])
            elif (text := _literal(node.value)) is not None:
                names.setdefault(node.targets[0].id, ("literal", text))


def _vendored(root: Path) -> set[str]:
    """Top-level import names of packages installed into *root* (``pip install -t``)."""
    names: set[str] = set()
    for info in root.glob("*.dist-info"):
        record = info / "RECORD"
        try:
            for line in record.read_text(errors="replace").splitlines():
                first = line.split(",")[0].split("/")[0]
                names.add(first.removesuffix(".py"))
        except OSError:
            continue
    return names


def _local_imports(tree: ast.Module, file: Path, root: Path, skip: set[str]) -> Iterator[Path]:
    for node in ast.walk(tree):
        modules: list[tuple[str, int]] = []
        if isinstance(node, ast.Import):
            modules = [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            modules = [(base, node.level)] + [(f"{base}.{a.name}" if base else a.name, node.level) for a in node.names]
        for name, level in modules:
            if not name or (level == 0 and name.split(".")[0] in skip):
                continue
            if level > len(file.parents):
                continue
            start = root if level == 0 else file.parents[level - 1]
            rel = Path(*name.split("."))
            for path in (start / rel.with_suffix(".py"), start / rel / "__init__.py"):
                if path.is_file():
                    yield path


def scan_handler(candidate: Candidate) -> Scan:
    """Scan the handler module and the modules it imports from its own folder."""
    scan = Scan()
    skip = _vendored(candidate.root) | {"boto3", "botocore"}
    todo, seen = [candidate.file], set[Path]()
    names: dict[str, tuple[str, str]] = {}
    trees: list[tuple[Path, ast.Module]] = []
    while todo and len(seen) < 200:
        file = todo.pop(0).resolve()
        if file in seen:
            continue
        seen.add(file)
        tree = _parse(file)
        if tree is None:
            continue
        trees.append((file, tree))
        _assigned_names(tree, names)
        todo.extend(_local_imports(tree, file, candidate.root, skip))
    for file, tree in trees:
        scan.files.append(file)
        _Scanner(scan, file, names).visit(tree)
    for name in scan.env:
        if "BUCKET" in name.upper():
            scan.bucket_vars.setdefault(name, "")
    return scan


# --------------------------------------------------------------------------- questions

class Asker:
    """Questions on *out*, answers from *inp*; with ``yes`` every default is taken."""

    def __init__(self, yes: bool, inp: TextIO, out: TextIO) -> None:
        self.yes, self.inp, self.out = yes, inp, out

    def ask(self, question: str, default: str) -> str:
        if self.yes:
            return default
        self.out.write(f"{question} [{default}]: " if default else f"{question}: ")
        self.out.flush()
        line = self.inp.readline()
        if not line:                      # end of input: take the default
            self.out.write("\n")
            return default
        if not _isatty(self.inp):          # answers piped in: show them, one question a line
            self.out.write(line.strip() + "\n")
        return line.strip() or default


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def bucket_name_for(var: str) -> str:
    """A local bucket name for a variable without a value: WELCOME_BUCKET -> welcome-bucket."""
    name = re.sub(r"[^a-z0-9]+", "-", var.lower()).strip("-")
    return name if _bucket_name_problem(name) is None else f"{name}-bucket".strip("-")[:63]


# --------------------------------------------------------------------------- WAV files

def wav_roots(folders: Iterable[Path]) -> dict[Path, list[Path]]:
    """Folders holding WAV files -> the files, below the searched folders (deduplicated)."""
    found: dict[Path, list[Path]] = {}
    seen: set[Path] = set()
    for folder in folders:
        for file in _walk(folder, (".wav", ".WAV")):
            real = file.resolve()
            if real not in seen:
                seen.add(real)
                found.setdefault(file.parent, []).append(file)
    return found


def plan_copies(search: list[Path], keys: list[str]) -> list[tuple[Path, str]]:
    """(source file, object key) for every WAV found next to the handler.

    A file whose path ends with a key the code names keeps that key (``audio/menus/main.wav`` for
    ``menus/main.wav``); the others are keyed by their path below the top WAV folder they are in
    (``prompts/welcome.wav`` -> ``welcome.wav``), a WAV folder's contents becoming the bucket's.
    """
    plan: dict[str, Path] = {}
    for folder in search:
        for file in _walk(folder, (".wav", ".WAV")):
            rel = file.relative_to(folder).as_posix()
            key = next((k for k in sorted(keys, key=len, reverse=True)
                        if rel == k.lstrip("/") or rel.endswith("/" + k.lstrip("/"))), None)
            if key is None:
                parts = rel.split("/")
                key = "/".join(parts[1:]) if len(parts) > 1 else rel
            plan.setdefault(key.lstrip("/"), file)
    return sorted(((src, key) for key, src in plan.items()), key=lambda item: item[1])


# --------------------------------------------------------------------------- the configuration

def _q(value: str) -> str:
    return json.dumps(value)          # a JSON string is a YAML double-quoted scalar


def render_config(*, name: str, app_id: str, rule_id: str, number: str, port: int, target: str, why: str,
                  python_path: str, environment: dict[str, str], env_notes: dict[str, str],
                  buckets: dict[str, str], source: str, runtime: str = "python") -> str:
    lambda_spelling = target.replace(":", ".")
    if runtime == "nodejs":
        handler_lines = (f"type: nodejs                   # runs in Node.js workers, as on Lambda's nodejs20.x\n"
                         f"      target: {target}{' ' * max(1, 23 - len(target))}# Lambda's Handler (found: {why})\n"
                         f"      code_dir: {_q(python_path)}{' ' * max(1, 21 - len(_q(python_path)))}"
                         "# the folder Lambda would have at /var/task")
    else:
        handler_lines = (f"type: python\n"
                         f"      target: {target}{' ' * max(1, 23 - len(target))}# Lambda's \"{lambda_spelling}\", "
                         f"with a colon (found: {why})\n"
                         f"      python_path:                   # the folder Lambda would have at /var/task\n"
                         f"        - {_q(python_path)}")
    env_lines = "\n".join(f"        {k}: {_q(v)}" + (f"   # {env_notes[k]}" if env_notes.get(k) else "")
                          for k, v in environment.items()) or "        {}"
    env_block = "environment:\n" + env_lines if environment else "environment: {}"
    bucket_lines = "\n".join(f"  {k}: {_q(v)}" for k, v in buckets.items())
    bucket_block = "buckets: {}                          # no S3 bucket name in the code"
    if buckets:
        bucket_block = ("buckets:                             # S3 bucket name -> local directory (relative to "
                        "this file)\n" + bucket_lines)
    return f"""\
# chimevoice configuration written by `chimevoice init --handler {source}`.
# It runs one Lambda handler as a SIP media application answering one phone number.
# Check it with:  chimevoice check-config <this file>      Run it:  chimevoice run -c <this file>
# Every key is described in docs/configuration.md.

data_dir: var                        # CDRs (var/Amazon-Chime-SMADRs/), audio cache, recordings

logging:
  level: info                        # debug | info | warning | error
  format: console                    # console (readable) | json (one object per line, for log shippers)

sip:
  listeners:                         # where SIP phones and trunks send calls
    - transport: udp
      address: 127.0.0.1             # loopback only; 0.0.0.0 to take calls from other machines
      port: {port}
    # - transport: tcp
    #   address: 127.0.0.1
    #   port: {port}
  rtp:                               # media ports
    port_start: 20000
    port_count: 10000

voice_connectors:                    # a SIP trunk: who may call in, and which numbers it owns
  - id: vc-local
    name: local trunk
    host_name: vc-local.voiceconnector.chimevoice.local
    allow_list:                      # source addresses (CIDR) allowed to send calls
      - 127.0.0.1/32
    phone_numbers:
      - {_q(number)}

sip_media_applications:              # the Lambda: handler, environment
  - id: {app_id}
    name: {_q(name)}{' ' * max(1, 27 - len(_q(name)))}# AWS_LAMBDA_FUNCTION_NAME, function_name in logs
    aws_region: us-east-1            # AWS_REGION of the handler, AwsRegion in events
    handler:
      {handler_lines}
      {env_block}

sip_rules:                           # calls to the number go to the application
  - id: {rule_id}
    name: {_q(name + "-number")}
    trigger_type: ToPhoneNumber
    trigger_value: {_q(number)}
    target_applications:
      - sip_media_application_id: {app_id}
        priority: 1

{bucket_block}
"""


# --------------------------------------------------------------------------- the command

def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "init", help="write a configuration for a Lambda handler file or repository",
        description="Find the Lambda handler in PATH (a .py file, FILE.py:FUNCTION, or a repository folder; "
        "a SAM/serverless 'Handler: index.handler' is used when present), list the environment variables "
        "it reads and ask for them, map the S3 bucket names it uses to folders under var/buckets/ (copying "
        "the WAV files found next to it), write the configuration and check it as check-config does.")
    p.add_argument("--handler", required=True, metavar="PATH", help="handler file or repository folder")
    p.add_argument("-o", "--output", default="chimevoice.yaml", metavar="FILE",
                   help="configuration file to write (default chimevoice.yaml)")
    p.add_argument("--number", default="+15550100000", type=_number, help="phone number to answer (E.164)")
    p.add_argument("--port", default=5060, type=_port, help="UDP port of the SIP listener on 127.0.0.1")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", type=_env,
                   help="value of an environment variable (repeatable); not asked for")
    p.add_argument("-y", "--yes", action="store_true", help="ask nothing: take the defaults")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    return p


def _number(value: str) -> str:
    if not _E164.fullmatch(value):
        raise argparse.ArgumentTypeError(f"expected an E.164 number like +15550100000, got {value!r}")
    return value


def _port(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port 1-65535, got {value!r}")
    return int(value)


def _env(value: str) -> tuple[str, str]:
    name, eq, val = value.partition("=")
    if not eq or not _ENV_NAME.fullmatch(name):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {value!r}")
    return name, val


def _node_refusal(name: str) -> InitError:
    return InitError(f"chimevoice: no Node.js handler found in {name}: no exports.handler = ... or "
                     "export const handler (name it: chimevoice init --handler FILE.js:EXPORT)")


def choose_handler(path: Path, function: str | None, asker: Asker, out: TextIO) -> tuple[Candidate, TemplateHints]:
    hints = read_templates(path if path.is_dir() else path.parent)
    if path.suffix in NODE_SUFFIXES:
        found = node_handlers(path, hints)
        if function:                  # FILE.js:EXPORT names any export, not only a *handler one
            text = path.read_text(errors="replace")
            exported = {g for m in _NODE_EXPORT.finditer(text) for g in m.groups() if g}
            found = [f"{path.name}: exports.{function}"] if function in exported else []
        if not found:
            raise _node_refusal(path.name)
        return node_candidate(path, found), hints
    candidates = find_candidates(path, hints, function)
    hinted_node = [h for h in hints.handlers if any(r.startswith("nodejs") for r in hints.runtimes)]
    if not candidates or (hinted_node and candidates[0].score < 1000):
        node = node_handlers(path, hints)
        if node:
            return node_candidate(path, node), hints
        what = f"function {function!r}" if function else "handler(event, context) or lambda_handler(event, context)"
        raise InitError(f"chimevoice: no Python handler found in {path}: no top-level {what}"
                        + (f" (template Handler: {', '.join(hints.handlers)})" if hints.handlers else "")
                        + "\nName it explicitly: chimevoice init --handler FILE.py:FUNCTION")
    best = candidates[0]
    rest = candidates[1:]
    if rest and best.score < 1000 and (best.score - rest[0].score) < 100:
        out.write("Several functions look like a handler:\n")
        for i, c in enumerate(candidates[:20], 1):
            out.write(f"  {i}. {_show(c.file)}: {c.function}   ({c.why})\n")
        if asker.yes:
            out.write(f"--yes: taking the most likely one, 1. {_show(best.file)}: {best.function}\n")
        else:
            while True:
                answer = asker.ask("Which one?", "1")
                if answer.isdigit() and 1 <= int(answer) <= min(len(candidates), 20):
                    best = candidates[int(answer) - 1]
                    break
                out.write(f"  answer a number from 1 to {min(len(candidates), 20)}\n")
    return best, hints


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run(args: argparse.Namespace, inp: TextIO | None = None, out: TextIO | None = None) -> int:
    inp = inp or sys.stdin
    out = out or sys.stdout
    try:
        return _run(args, inp, out)
    except InitError as exc:
        print(exc, file=sys.stderr)
        return exc.status


def _run(args: argparse.Namespace, inp: TextIO, out: TextIO) -> int:
    asker = Asker(args.yes, inp, out)
    raw = args.handler
    function = None
    path = Path(raw).expanduser()
    if not path.exists() and ":" in raw:
        file_part, _, function = raw.rpartition(":")
        path = Path(file_part).expanduser()
    if not path.exists():
        raise InitError(f"chimevoice: {raw}: no such file or directory")
    path = path.resolve()
    output = Path(args.output).expanduser().absolute()
    if output.exists() and not args.force:
        raise InitError(f"chimevoice: {args.output} exists; use --force to overwrite it (or --output another file)")

    candidate, hints = choose_handler(path, function, asker, out)
    node = candidate.runtime == "nodejs"
    out.write(f"Handler: {_show(candidate.file)}, {'export' if node else 'function'} {candidate.function} "
              f"({candidate.why})\n")
    if node:
        out.write(f"  target:      {candidate.target}   (type: nodejs)\n")
        out.write(f"  code_dir:    {_show(candidate.root)}\n")
    else:
        out.write(f"  target:      {candidate.target}   (Lambda's {candidate.target.replace(':', '.')}, "
                  "written module:function)\n")
        out.write(f"  python_path: {_show(candidate.root)}\n")
    scan = scan_node_handler(candidate) if node else scan_handler(candidate)
    if len(scan.files) > 1:
        out.write(f"  scanned with the modules it imports: {', '.join(_show(f) for f in scan.files[1:])}\n")

    # ---- environment variables
    given = dict(args.env)
    environment: dict[str, str] = {}
    notes: dict[str, str] = {}
    runtime = sorted(n for n in scan.env if n in RUNTIME_VARS)
    reads = [r for r in scan.env.values() if r.name not in RUNTIME_VARS]
    warnings: list[str] = []
    if reads:
        out.write(f"Environment variables it reads ({len(reads)}):\n")
        for r in reads:
            kind = ('os.environ["%s"]' % r.name) if r.required else f"optional, default {r.default!r}" \
                if r.default is not None else "optional"
            out.write(f"  {r.name:<24} {r.where:<18} {kind}{', at import' if r.at_import else ''}\n")
    else:
        out.write("Environment variables it reads: none found\n")
    if runtime:
        out.write(f"  set by chimevoice as by Lambda, or inherited: {', '.join(runtime)}\n")
    for r in reads:
        if not _ENV_NAME.fullmatch(r.name):
            warnings.append(f"{r.name}: not a valid variable name for the configuration; skipped")
            continue
        is_bucket = r.name in scan.bucket_vars
        default = r.default if r.default is not None else hints.environment.get(r.name)
        if is_bucket and (default is None or _bucket_name_problem(default) is not None):
            default = hints.environment.get(r.name) or bucket_name_for(r.name)
            if _bucket_name_problem(default) is not None:
                default = bucket_name_for(r.name)
        source = "--env" if r.name in given else ""
        if r.name in given:
            value = given.pop(r.name)
        elif default is None:
            if args.yes:
                value = ""
                warnings.append(f"{r.name} has no default: set to \"\"; edit environment in {args.output} "
                                f"or rerun with --env {r.name}=VALUE")
            else:
                value = asker.ask(f"{r.name}" + (" (S3 bucket name)" if is_bucket else ""), "")
        else:
            label = f"{r.name} (S3 bucket name)" if is_bucket else r.name
            value = asker.ask(label, default)
            if r.default is not None and value == r.default:
                source = "the code's default"
            elif value == hints.environment.get(r.name):
                source = f"from {hints.files[0].name}" if hints.files else ""
        while is_bucket and value and _bucket_name_problem(value) is not None:
            problem = _bucket_name_problem(value)
            if args.yes or source == "--env":
                raise InitError(f"chimevoice: {r.name}={value!r} is not a valid S3 bucket name: {problem}", 2)
            out.write(f"  not a valid S3 bucket name: {problem}\n")
            value = asker.ask(f"{r.name} (S3 bucket name)", bucket_name_for(r.name))
        environment[r.name] = value
        notes[r.name] = "S3 bucket" + (f", {source}" if source else "") if is_bucket else source
    for name, value in given.items():           # --env for a variable the scan did not see
        environment[name] = value
        notes[name] = "--env"

    # ---- buckets and WAV files
    buckets: dict[str, str] = {}
    roles: dict[str, str] = {}
    for var, role in scan.bucket_vars.items():
        name = environment.get(var, "")
        if name and _bucket_name_problem(name) is None:
            buckets.setdefault(name, f"var/buckets/{name}")
            roles[name] = roles.get(name) or role
    for name, role in scan.bucket_literals.items():
        buckets.setdefault(name, f"var/buckets/{name}")
        roles[name] = roles.get(name) or role
    keys = list(scan.wav_keys)
    for var in scan.wav_key_vars | {n for n, v in environment.items() if v.lower().endswith(".wav")}:
        value = environment.get(var, "")
        if value.lower().endswith(".wav") and value not in keys:
            keys.append(value)
    search = [candidate.root] + ([path] if path.is_dir() and path != candidate.root else [])
    copies = plan_copies(search, keys)
    audio = [b for b in buckets if roles.get(b) == "audio"] or list(buckets)
    config_dir = output.parent
    copied: list[str] = []
    if buckets:
        out.write("S3 buckets it uses -> local folders:\n")
        for name, folder in buckets.items():
            role = {"audio": "audio it plays", "recording": "recordings"}.get(roles.get(name, ""), "")
            out.write(f"  {name:<24} -> {folder}{'   (' + role + ')' if role else ''}\n")
    else:
        out.write("S3 buckets it uses: none found\n")
    if copies and audio:
        for bucket in audio[:1] if len(audio) > 1 else audio:
            target_dir = config_dir / buckets[bucket]
            for src, key in copies:
                dest = target_dir / key
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)
                copied.append(f"{_show(src)} -> {buckets[bucket]}/{key}")
        if len(audio) > 1:
            warnings.append(f"WAV files copied into {audio[0]} only; copy them into {', '.join(audio[1:])} "
                            "too if it plays from there")
    elif copies:
        warnings.append(f"{len(copies)} WAV files found but no bucket name in the code to put them in")
    for name in buckets:
        (config_dir / buckets[name]).mkdir(parents=True, exist_ok=True)
    if copied:
        out.write(f"Copied {len(copied)} WAV file{'s' if len(copied) != 1 else ''}:\n")
        for line in copied:
            out.write(f"  {line}\n")
    have = {key for _, key in copies}
    missing = [k for k in keys if k.lstrip("/") not in have and "{" not in k]
    if missing and buckets:
        warnings.append(f"WAV keys the code names but no file was found for: {', '.join(missing)} "
                        f"(put them into {buckets[audio[0]] if audio else 'the bucket folder'})")

    # ---- write
    python_path = os.path.relpath(candidate.root, config_dir) if candidate.root.is_relative_to(config_dir) \
        else str(candidate.root)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", (path if path.is_dir() else candidate.root).name).strip("-") or "lambda"
    text = render_config(name=name, app_id=str(uuid.uuid4()), rule_id=str(uuid.uuid4()), number=args.number,
                         port=args.port, target=candidate.target, why=candidate.why, python_path=python_path,
                         environment=environment, env_notes=notes, buckets=buckets, source=raw,
                         runtime=candidate.runtime)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    out.write(f"Wrote {args.output}\n")
    for w in warnings:
        out.write(f"warning: {w}\n")

    # ---- check it as check-config does
    out.write(f"\n$ chimevoice check-config {args.output}\n")
    out.flush()
    from .config import ConfigError
    from .handler_check import load_checked_config, summary
    try:
        print(summary(load_checked_config(args.output), args.output))
        status = 0
    except ConfigError as exc:
        print(f"chimevoice: invalid configuration\n{exc}", file=sys.stderr)
        status = 2
    sys.stdout.flush()
    sys.stderr.flush()
    if status != 0:
        out.write(f"\nThe configuration was written but does not pass the check (above); fix it and run "
                  f"chimevoice check-config {args.output}\n")
        return status
    uri = f"sip:{args.number}@127.0.0.1:{args.port}"
    out.write("\nNext:\n")
    out.write(f"  chimevoice run -c {args.output}\n")
    out.write(f"  chimevoice call {uri}          # in another terminal\n")
    return 0


__all__ = ["add_parser", "find_candidates", "node_handlers", "read_templates", "run", "scan_handler"]
