"""The LALR tables of the grammar, built once and kept in the user's cache folder.

Building the parser from grammars/spec.lark takes about as long as the rest of
`specc compile`; loading the built tables takes a tenth of that. The tables are stored
with `marshal` (plain data: dicts, lists, strings, numbers; loading them runs no code),
under a name that hashes everything they depend on: the grammar text, the parser
options and the lark and Python versions. A changed grammar or upgraded lark therefore
gets new tables, and a file that cannot be read (missing, partly written, corrupt)
is rebuilt. Where the folder cannot be written (a read-only home), specc builds the
parser in memory each time and says nothing: the cache only saves time.

The folder: $SPECC_CACHE_DIR if set (an empty value turns the cache off), else
$XDG_CACHE_HOME/specc, else ~/.cache/specc.
"""

from __future__ import annotations

import hashlib
import io
import marshal
import os
import pickle
import sys
from pathlib import Path

import lark

CACHE_ENV = "SPECC_CACHE_DIR"


def cache_dir() -> Path | None:
    """Where the tables are kept, or None when the cache is turned off."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return Path(configured).expanduser() if configured.strip() else None
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "specc"


def tables_key(grammar: str, options: dict) -> str:
    """A hash of everything the built tables depend on."""
    parts = [grammar, repr(sorted(options.items())), lark.__version__, sys.version]
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def tables_path(grammar: str, options: dict) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / f"parser-{tables_key(grammar, options)[:32]}.marshal"


def cached_lark(grammar: str, **options) -> lark.Lark:
    """`lark.Lark(grammar, **options)` for an LALR grammar, from the cache when it holds it."""
    path = tables_path(grammar, options)
    if path is not None:
        try:
            return lark.Lark.load(marshal.loads(path.read_bytes()))
        except Exception:  # noqa: BLE001 - a missing or damaged cache file is rebuilt, whatever the damage
            pass
    parser = lark.Lark(grammar, **options)
    if path is not None:
        _store(parser, path)
    return parser


def _store(parser: lark.Lark, path: Path) -> None:
    """Write the tables (atomically: a reader never sees half a file). A folder that cannot
    be written is not an error, nor are tables that are not plain data (lark before 1.3
    keeps names as its Token objects): those are simply not cached."""
    from .files import write_bytes_atomic

    buffer = io.BytesIO()
    parser.save(buffer)
    tables = pickle.loads(buffer.getvalue())  # lark's own bytes from the line above
    try:
        data = marshal.dumps(tables)
    except ValueError:
        return
    try:
        write_bytes_atomic(path, data)
    except OSError:
        pass
