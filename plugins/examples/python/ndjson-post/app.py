"""ndjson-post: a delivery plugin in Python.

POSTs each batch of punches to one URL as newline-delimited JSON, one object a line:

    {"id": "...", "device": "SN1", "sequence": 7, "user": "42",
     "time": "2026-06-21T19:30:00+05:30", "type": "check-in", "input": "fingerprint"}

Config (`[plugins.<name>.config]`):
- `url` (required): where to POST. Its origin must be in the plugin's `allowed_hosts`.
- `token` (optional): sent as `Authorization: Bearer <token>`.

Events other than punches are skipped (a batch of them alone sends nothing). The answer
decides the batch's fate: 2xx delivered; 400, 413 or 422 (the destination will never
take these lines) rejected, so the gateway dead-letters them with the reason; anything
else (401, 429, 5xx, no answer) retried, after `Retry-After` seconds when given.
"""

import json
from datetime import datetime, timedelta, timezone
from typing import List, Optional

import wit_world
from componentize_py_types import Err
from wit_world.exports.deliverer import DeliveryError_Reject, DeliveryError_Retry, RetryInfo
from wit_world.imports import config, outbound_http
from wit_world.imports.outbound_http import HttpError_InvalidRequest, Request
from wit_world.imports.types import DeviceTime, Event, EventBody_Punch

NEVER_ACCEPTED = {400, 413, 422}


def local_time(t: DeviceTime) -> str:
    """The device's wall time with its offset, in ISO 8601."""
    zone = timezone(timedelta(minutes=t.utc_offset_minutes))
    return datetime.fromtimestamp(t.unix_seconds, zone).isoformat()


def line(event: Event) -> Optional[str]:
    if not isinstance(event.body, EventBody_Punch):
        return None
    punch = event.body.value
    return json.dumps(
        {
            "id": event.id,
            "device": event.device_id,
            "sequence": event.sequence,
            "user": punch.user_id,
            "time": local_time(punch.log_time),
            "type": punch.punch_type.name.lower().replace("_", "-"),
            "input": punch.input_type.name.lower().replace("_", "-"),
        },
        separators=(",", ":"),
    )


def retry(reason: str, after_ms: Optional[int] = None) -> Err:
    return Err(DeliveryError_Retry(RetryInfo(reason, after_ms)))


class Deliverer(wit_world.exports.Deliverer):
    def deliver(self, batch: List[Event]) -> None:
        url = config.get("url")
        if not url:
            raise retry("config key `url` is not set")
        lines = [text for text in map(line, batch) if text is not None]
        if not lines:
            return
        headers = [("content-type", "application/x-ndjson")]
        token = config.get("token")
        if token:
            headers.append(("authorization", f"Bearer {token}"))
        body = ("\n".join(lines) + "\n").encode()
        try:
            answer = outbound_http.send(Request("POST", url, headers, body, None))
        except Err as failed:
            reason = f"outbound HTTP failed: {failed.value}"
            if isinstance(failed.value, HttpError_InvalidRequest):
                raise Err(DeliveryError_Reject(reason))
            raise retry(reason)
        if 200 <= answer.status < 300:
            return
        reason = f"destination answered HTTP {answer.status}"
        if answer.status in NEVER_ACCEPTED:
            raise Err(DeliveryError_Reject(reason))
        after = next((v for k, v in answer.headers if k.lower() == "retry-after"), "")
        raise retry(reason, int(after) * 1000 if after.strip().isdigit() else None)
