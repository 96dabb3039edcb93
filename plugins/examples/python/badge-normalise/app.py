"""badge-normalise: a transform plugin in Python.

Devices often know a person by a zero-padded badge number ("00042") where the HR system
knows "42", and test badges punch alongside real staff. This transform rewrites the user
id of every punch to the HR form and drops the punches of the users listed in config.

Config (`[plugins.<name>.config]`, every key optional):
- `strip_leading_zeros`: "true" (default) or "false".
- `prefix`: put in front of every user id after stripping ("EMP-" makes "00042" "EMP-42").
- `ignore_users`: comma-separated user ids, as the device sends them, whose punches are
  dropped (never delivered).

Events other than punches pass unchanged. A punch with an empty user id is rejected: it
is dead-lettered with the reason, since no HR system could book it.
"""

from typing import List

import wit_world
from componentize_py_types import Err
from wit_world.exports.transformer import TransformError_Reject
from wit_world.imports import config, log
from wit_world.imports.types import Event, EventBody_Punch


def _setting(key: str, default: str) -> str:
    value = config.get(key)
    return default if value is None else value.strip()


def normalise(user_id: str, strip_zeros: bool, prefix: str) -> str:
    """The HR form of a device's user id."""
    if strip_zeros:
        user_id = user_id.lstrip("0") or "0"
    return prefix + user_id


class Transformer(wit_world.exports.Transformer):
    def transform(self, event: Event) -> List[Event]:
        if not isinstance(event.body, EventBody_Punch):
            return [event]
        punch = event.body.value
        if not punch.user_id.strip():
            raise Err(TransformError_Reject("the punch has no user id"))
        ignored = {u.strip() for u in _setting("ignore_users", "").split(",") if u.strip()}
        if punch.user_id in ignored:
            log.write(log.Level.DEBUG, "dropped a punch of an ignored user", [("user", punch.user_id)])
            return []
        strip_zeros = _setting("strip_leading_zeros", "true").lower() != "false"
        punch.user_id = normalise(punch.user_id, strip_zeros, _setting("prefix", ""))
        return [event]
