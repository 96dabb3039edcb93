"""{{name}}: a biogate transform plugin. It runs on every event of the routes that list
it (`transforms = ["{{name}}"]`), in order, before the route's sink.

This file is the component's face (the class the gateway calls); what it decides is in
logic.py, which `python3 -m unittest` tests without a gateway.
"""

from typing import List

import wit_world
from componentize_py_types import Err
from wit_world.exports.transformer import TransformError_Reject
from wit_world.imports import config
from wit_world.imports.types import Event, EventBody_Punch

import logic


class Transformer(wit_world.exports.Transformer):
    def transform(self, event: Event) -> List[Event]:
        """Return [event] (changed or not) to pass it on, [] to drop it, several events to
        split it; raise Err(TransformError_Reject(reason)) to dead-letter it, or
        Err(TransformError_Retry(reason)) to have the gateway try again later."""
        if isinstance(event.body, EventBody_Punch):
            punch = event.body.value
            if not punch.user_id:
                raise Err(TransformError_Reject("the punch has no user id"))
            punch.user_id = logic.with_prefix(punch.user_id, config.get("prefix") or "")
        return [event]
