"""The Python half of authhost's bridge: imports a module and calls it the way dgp-oauth2 did,
minus its holes (an answer that is not a JSON mapping is refused, not sent).

Loaded once per interpreter by the Rust half (interpreter.rs), which passes `log(level, text)`.
"""

import collections.abc
import datetime
import importlib
import json
import logging
import sys
import traceback

_log = None
_modules = []


class AnswerError(TypeError):
    """An answer that cannot be sent: its message says why; no traceback (it is ours)."""


class _Lines:
    """sys.stdout / sys.stderr: each complete line goes to authhost's log."""

    def __init__(self, level):
        self.level = level
        self.pending = ""

    def write(self, text):
        self.pending += str(text)
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self):
        if self.pending:
            self._emit(self.pending)
            self.pending = ""

    def _emit(self, line):
        if line.strip():
            _log(self.level, "%s: %s" % (",".join(_modules) or "python", line))

    def isatty(self):
        return False


class _Handler(logging.Handler):
    """The root logger's handler: records go to authhost's log under their logger's name."""

    def emit(self, record):
        try:
            if record.levelno >= logging.ERROR:
                level = "error"
            elif record.levelno >= logging.WARNING:
                level = "warn"
            elif record.levelno >= logging.INFO:
                level = "info"
            else:
                level = "debug"
            _log(level, "%s: %s" % (record.name, self.format(record)))
        except Exception:
            self.handleError(record)


def install(log, path, site_packages):
    """Once per interpreter: output to authhost's log, then the configured folders first on
    sys.path (the venv's site-packages after them, before the interpreter's own)."""
    global _log
    _log = log
    sys.stdout = _Lines("info")
    sys.stderr = _Lines("warn")
    root = logging.getLogger()
    root.addHandler(_Handler())
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    for folder in reversed(list(path) + list(site_packages)):
        if folder not in sys.path:
            sys.path.insert(0, folder)


def load(name):
    module = importlib.import_module(name)
    if name not in _modules:
        _modules.append(name)
    return module


def search_path():
    return list(sys.path)


def as_dict(module, answer):
    """A get_permissions answer that is not a dict: a copy when it is another mapping, else an
    AnswerError naming its type (the Rust half turns the dict into JSON, refusing what
    json.dumps would)."""
    if not isinstance(answer, collections.abc.Mapping):
        raise AnswerError(
            "%s.get_permissions returned %s, not a mapping" % (module.__name__, _type_name(answer))
        )
    return dict(answer)


def hook(module, name, user_json):
    """Calls module.<name>(user_info); False when the module has no such function (skipped,
    as the original did)."""
    function = getattr(module, name, None)
    if function is None:
        return False
    user_info = json.loads(user_json)
    # The original's user_info always had these keys, None when unset.
    for key in ("username", "name", "email", "avatar_url"):
        user_info.setdefault(key, None)
    join_date = user_info.get("join_date")
    if isinstance(join_date, str):
        # The original handed hooks a datetime; code that formats it keeps working.
        user_info["join_date"] = datetime.datetime.fromisoformat(join_date.replace("Z", "+00:00"))
    function(user_info)
    return True


def format_error(error, tb):
    if isinstance(error, AnswerError):
        return str(error)
    return "".join(traceback.format_exception(type(error), error, tb)).rstrip()


def _type_name(value):
    kind = type(value)
    return "None" if value is None else "a %s.%s" % (kind.__module__, kind.__qualname__) \
        if kind.__module__ != "builtins" else "a %s" % kind.__qualname__
