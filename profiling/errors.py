"""One-line messages from exceptions (TF errors carry multi-line user-code stacks)."""

from __future__ import annotations

import re

# Lines TensorFlow adds around the message of a graph or tracing error: where the op was defined
# (its "File ..." lines and the source lines under them), the node, the function's prefix.
_NOISE = re.compile(
    r"^(Graph execution error:|in user code:|Detected at node\b|File \"|\[\[\{\{node\b)")
_FUNCTION_NODE = re.compile(r"^\{\{function_node [^}]*\}\}\s*")


def one_line(e: BaseException, limit: int = 300) -> str:
    """The exception as one line of at most `limit` characters, for a CLI, a log or a page.

    The message's lines are joined with spaces, without the stack TensorFlow embeds in graph
    errors; the type name goes first (`KeyError: 'x'`, `InvalidArgumentError: ...`) except for
    ValueError and TypeError, whose messages are written to be read on their own (SpecError,
    FileRefused, parameter checks); an empty message gives the type name alone.
    """
    lines, in_stack = [], False
    for raw in str(e).splitlines():
        line = raw.strip()
        if not line:
            in_stack = False
            continue
        if _NOISE.match(line):
            in_stack = line.startswith(("File ", "Detected at node"))
            continue
        if in_stack and raw[:1].isspace():  # the source line under a "File" line
            continue
        in_stack = False
        lines.append(_FUNCTION_NODE.sub("", line))
    text = " ".join(lines)
    if not text:
        text = type(e).__name__
    elif not isinstance(e, ValueError | TypeError):
        text = f"{type(e).__name__}: {text}"
    return text if len(text) <= limit else text[:limit - 1] + "…"


def timeout_text(where: str, what: str, seconds: float, setting: str) -> str:
    """The one line for a network wait that ran out, e.g. `PostgreSQL at db:5432 did not finish
    connecting within 10 s (limit: RELU_LAB_DB_CONNECT_TIMEOUT_S)`."""
    return f"{where} {what} within {seconds:g} s (limit: {setting})"
