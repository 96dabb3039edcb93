"""{{name}}: a biogate delivery plugin, a route's sink (`sink = { type = "plugin", plugin =
"{{name}}" }`). It gets batches of one device's events, in order; the gateway retries a
batch until it returns, so a destination should de-duplicate on the event `id`. It may
call only the origins in its `allowed_hosts`.

This file is the component's face (the class the gateway calls); what it sends and how it
reads the answer are in logic.py, which `python3 -m unittest` tests without a gateway.
"""

from typing import List

import wit_world
from componentize_py_types import Err
from wit_world.exports.deliverer import DeliveryError_Reject, DeliveryError_Retry, RetryInfo
from wit_world.imports import config, outbound_http
from wit_world.imports.outbound_http import Request
from wit_world.imports.types import Event

import logic


class Deliverer(wit_world.exports.Deliverer):
    def deliver(self, batch: List[Event]) -> None:
        url = config.get("url")
        if not url:
            raise Err(DeliveryError_Retry(RetryInfo("config key `url` is not set", None)))
        body = logic.body([event.id for event in batch])
        try:
            answer = outbound_http.send(Request("POST", url, [("content-type", "text/plain")], body, None))
        except Err as failed:
            raise Err(DeliveryError_Retry(RetryInfo(f"outbound HTTP failed: {failed.value}", None)))
        verdict, reason = logic.verdict(answer.status)
        if verdict == "reject":
            raise Err(DeliveryError_Reject(reason))
        if verdict == "retry":
            raise Err(DeliveryError_Retry(RetryInfo(reason, None)))
