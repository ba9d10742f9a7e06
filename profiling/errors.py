"""One-line messages from exceptions (TF errors carry multi-line user-code stacks)."""

from __future__ import annotations


def one_line(e: BaseException, limit: int = 300) -> str:
    """'Type: last meaningful line' capped at `limit` characters."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    text = lines[-1] if lines else ""
    if text.startswith("File ") and len(lines) > 1:
        text = lines[0]
    return f"{type(e).__name__}: {text}"[:limit]
