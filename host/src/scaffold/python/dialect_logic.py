"""The protocol of {{name}}, in plain Python (no gateway needed): tested by test_logic.py."""

from typing import List, Tuple


def parse_punches(body: str) -> List[Tuple[str, int]]:
    """One punch per line, `<user id>,<unix seconds>`; blank lines are skipped. A bad line
    raises ValueError (the device gets HTTP 400 and sends the request again)."""
    punches = []
    for line in body.splitlines():
        if not line.strip():
            continue
        user, sep, seconds = line.partition(",")
        if not sep or not user.strip():
            raise ValueError(f"not `user,seconds`: {line!r}")
        try:
            punches.append((user.strip(), int(seconds.strip())))
        except ValueError:
            raise ValueError(f"bad time: {line!r}") from None
    return punches
