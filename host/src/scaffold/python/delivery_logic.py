"""What {{name}} sends and how it reads the answer, in plain Python (no gateway needed):
tested by test_logic.py."""

from typing import List, Tuple


def body(event_ids: List[str]) -> bytes:
    """An example: the batch's event ids, one per line."""
    return "\n".join(event_ids).encode()


def verdict(status: int) -> Tuple[str, str]:
    """("ok", ""), ("reject", reason) for an answer the destination will never change its
    mind on, or ("retry", reason)."""
    if 200 <= status < 300:
        return "ok", ""
    reason = f"destination answered HTTP {status}"
    return ("reject" if status in (400, 422) else "retry"), reason
