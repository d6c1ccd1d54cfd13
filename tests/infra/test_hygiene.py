"""Code hygiene the linters do not enforce.

Hashes: every hashlib digest in the product and tool code is a checksum, a content id, a
deterministic name or a cache key, never a password, secret or signature. Each says so with
``usedforsecurity=False`` (which also keeps it working on FIPS-restricted builds of OpenSSL). A
hash that really is security-relevant carries ``# security hash: <reason>`` on its line instead.
"""

from __future__ import annotations

import ast
import hashlib
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = (
    "lambdas",
    "localworld",
    "scripts",
    "dashboard_app",
    "benchmarks",
    "constructs_lib",
    "stacks",
    ".github/scripts",
)
SOURCE_FILES = ("app.py",)

# md5, sha1, sha224..sha512, blake2b/s, sha3_*, shake_*, plus hashlib.new(name, ...).
HASH_CONSTRUCTORS = frozenset(hashlib.algorithms_guaranteed) | {"new"}
SECURITY_HASH_COMMENT = re.compile(r"#\s*security hash:\s*\S")


def python_files() -> list[Path]:
    files = [ROOT / name for name in SOURCE_FILES]
    for folder in SOURCE_DIRS:
        files += (ROOT / folder).rglob("*.py")
    return sorted(p for p in files if p.is_file() and "__pycache__" not in p.parts)


def _exempt_lines(source: str) -> set[int]:
    """Lines carrying a ``# security hash: <reason>`` comment."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {
        tok.start[0]
        for tok in tokens
        if tok.type == tokenize.COMMENT and SECURITY_HASH_COMMENT.match(tok.string)
    }


def _hashlib_names(tree: ast.AST) -> tuple[set[str], dict[str, str]]:
    """Names bound to the module (``import hashlib [as h]``) and to its constructors
    (``from hashlib import sha256 [as s]``: local name -> constructor)."""
    modules: set[str] = set()
    constructors: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name == "hashlib"}
        elif isinstance(node, ast.ImportFrom) and node.module == "hashlib" and node.level == 0:
            for alias in node.names:
                if alias.name in HASH_CONSTRUCTORS:
                    constructors[alias.asname or alias.name] = alias.name
    return modules, constructors


def _constructor(call: ast.Call, modules: set[str], constructors: dict[str, str]) -> str | None:
    func = call.func
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id in modules
        and func.attr in HASH_CONSTRUCTORS
    ):
        return func.attr
    if isinstance(func, ast.Name) and func.id in constructors:
        return constructors[func.id]
    return None


def _not_for_security(call: ast.Call) -> bool:
    return any(
        kw.arg == "usedforsecurity"
        and isinstance(kw.value, ast.Constant)
        and kw.value.value is False
        for kw in call.keywords
    )


def hash_violations(source: str, filename: str = "<string>") -> list[str]:
    """``file:line: hashlib.<name>(...)`` for each hashlib constructor call that neither passes
    ``usedforsecurity=False`` nor carries ``# security hash: <reason>`` on one of its lines."""
    tree = ast.parse(source, filename=filename)
    modules, constructors = _hashlib_names(tree)
    if not modules and not constructors:
        return []
    exempt = _exempt_lines(source)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _constructor(node, modules, constructors)
        if name is None or _not_for_security(node):
            continue
        lines = range(node.lineno, (node.end_lineno or node.lineno) + 1)
        if exempt.isdisjoint(lines):
            found.append((node.lineno, name))
    return [
        f"{filename}:{line}: hashlib.{name}(...) without usedforsecurity=False "
        "(or `# security hash: <reason>`)"
        for line, name in sorted(found)
    ]


# --- the tree ---------------------------------------------------------------------------------


def test_the_checked_tree_holds_the_code_that_hashes():
    files = {p.relative_to(ROOT).as_posix() for p in python_files()}
    assert {"app.py", "lambdas/shared/keys.py", "localworld/media.py", "constructs_lib/nag.py"} <= (
        files
    )
    assert len(files) > 50


def test_every_hash_in_the_code_says_it_is_not_for_security():
    violations = []
    for path in python_files():
        rel = path.relative_to(ROOT).as_posix()
        violations += hash_violations(path.read_text(encoding="utf-8"), rel)
    assert violations == [], "\n".join(violations)


# --- the checker ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import hashlib\nhashlib.sha256(b'x').hexdigest()\n", ["<string>:2: hashlib.sha256"]),
        ("import hashlib\nd = hashlib.sha1()\nd.update(b'x')\n", ["<string>:2: hashlib.sha1"]),
        ("import hashlib\nhashlib.new('md5', b'x')\n", ["<string>:2: hashlib.new"]),
        ("import hashlib as h\nh.blake2b(b'x')\n", ["<string>:2: hashlib.blake2b"]),
        ("from hashlib import sha256\nsha256(b'x')\n", ["<string>:2: hashlib.sha256"]),
        ("from hashlib import md5 as m\n\n\nm(b'x')\n", ["<string>:4: hashlib.md5"]),
        # only the literal False says so
        ("import hashlib\nhashlib.md5(b'x', usedforsecurity=True)\n", ["<string>:2: hashlib.md5"]),
        ("import hashlib\nhashlib.md5(b'x', usedforsecurity=f)\n", ["<string>:2: hashlib.md5"]),
        ("import hashlib\nhashlib.md5(b'x', **kw)\n", ["<string>:2: hashlib.md5"]),
        # a comment without a reason, or not the marker, does not exempt
        ("import hashlib\nhashlib.md5(b'x')  # security hash:\n", ["<string>:2: hashlib.md5"]),
        ("import hashlib\nhashlib.md5(b'x')  # noqa: S324\n", ["<string>:2: hashlib.md5"]),
        # nested: both calls are reported, each at its own line
        (
            "import hashlib\nx = [\n    hashlib.sha1(),\n    hashlib.sha512(),\n]\n",
            ["<string>:3: hashlib.sha1", "<string>:4: hashlib.sha512"],
        ),
    ],
)
def test_the_checker_reports_a_hash_without_usedforsecurity_false(source, expected):
    violations = hash_violations(source)
    assert [v.split("(")[0] for v in violations] == expected


@pytest.mark.parametrize(
    "source",
    [
        "import hashlib\nhashlib.sha256(b'x', usedforsecurity=False).hexdigest()\n",
        "import hashlib\nd = hashlib.sha1(usedforsecurity=False)\nd.update(b'x')\n",
        "import hashlib\nhashlib.new('md5', b'x', usedforsecurity=False)\n",
        "from hashlib import sha256 as s\ns(b'x', usedforsecurity=False)\n",
        "import hashlib\nhashlib.sha256(b'x')  # security hash: compares an access token's digest\n",
        "import hashlib\nhashlib.sha256(\n    b'x'\n)  # security hash: a reason on a later line\n",
        # a constructor passed along (e.g. to hmac) is not a call; other modules' sha256 are not
        "import hashlib, hmac\nhmac.new(b'k', b'm', hashlib.sha256)\n",
        "import mylib\nmylib.sha256(b'x')\nsha256(b'x')\n",
        "import hashlib\nhashlib.file_digest\n",
    ],
)
def test_the_checker_finds_nothing_in_clean_code(source):
    assert hash_violations(source) == []


def test_the_checker_names_the_file_and_line():
    source = "import hashlib\n\nhashlib.md5(b'x')\n"
    assert hash_violations(source, "lambdas/x.py") == [
        "lambdas/x.py:3: hashlib.md5(...) without usedforsecurity=False "
        "(or `# security hash: <reason>`)"
    ]


def test_the_cdk_app_imports_no_handler_module():
    # A handler module builds Powertools' logger and metrics when it is imported, from the
    # function's environment. Imported by the app during synthesis (in the local world, the same
    # process that later runs the handler), it would keep the app's environment instead: no
    # metrics namespace, so every flush fails. The app names handlers as strings only.
    import subprocess
    import sys

    script = (
        "import sys, app\n"
        "from constructs_lib.units import FunctionSpec\n"
        "import constructs_lib, pkgutil, importlib\n"
        "for m in pkgutil.iter_modules(constructs_lib.__path__):\n"
        "    importlib.import_module(f'constructs_lib.{m.name}')\n"
        "print('\\n'.join(m for m in sys.modules if m.startswith('lambdas.')))\n"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter and a fixed script
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    imported = set(done.stdout.split())
    handlers = {
        path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
        for path in (ROOT / "lambdas").rglob("*.py")
        if "tools = Powertools()" in path.read_text(encoding="utf-8")
    }
    assert handlers, "no handler module found: the check would pass vacuously"
    assert imported & handlers == set()
