"""{{name}}: a biogate dialect plugin: it speaks a device protocol on the HTTP path it is
mounted at (`http_mount = "/{{name}}"`). This example protocol: a device POSTs
`?sn=<serial>` with one punch per line, `<user id>,<unix seconds>`, and gets `OK`.

This file is the component's face (the class the gateway calls); the parsing is in
logic.py, which `python3 -m unittest` tests without a gateway.
"""

from typing import List

import wit_world
from componentize_py_types import Err
from wit_world.exports.dialect_handler import (
    DeviceContext,
    DialectError_BadRequest,
    DialectReply,
    HttpRequest,
    MqttMessage,
)
from wit_world.imports.types import Command, DeviceTime, EventBody, EventBody_Punch, InputType, Punch, PunchType

import logic


class DialectHandler(wit_world.exports.DialectHandler):
    def identify_http(self, request: HttpRequest) -> str:
        """Which device sent the request, from the request alone; the gateway then refuses
        unknown or disabled devices before handle_http."""
        serial = dict(request.query).get("sn", "")
        if not serial:
            raise Err(DialectError_BadRequest("missing ?sn="))
        return serial

    def handle_http(self, device: DeviceContext, request: HttpRequest) -> DialectReply:
        """The reply and the events of one request; the gateway stores the events durably
        before it sends the reply."""
        try:
            punches = logic.parse_punches(request.body.decode())
        except (UnicodeDecodeError, ValueError) as bad:
            raise Err(DialectError_BadRequest(str(bad)))
        events: List[EventBody] = [
            EventBody_Punch(
                Punch(
                    user_id=user,
                    log_time=DeviceTime(seconds, device.utc_offset_minutes),
                    punch_type=PunchType.CHECK_IN,
                    input_type=InputType.UNKNOWN,
                    temperature=None,
                    face_mask=None,
                    work_code=None,
                    photo=None,
                )
            )
            for user, seconds in punches
        ]
        return DialectReply(200, [], b"OK", events)

    def handle_mqtt(self, device: DeviceContext, topic: str, payload: bytes) -> List[EventBody]:
        raise Err(DialectError_BadRequest("this dialect speaks HTTP only"))

    def encode_mqtt_command(self, device: DeviceContext, command: Command) -> MqttMessage:
        raise Err(DialectError_BadRequest("this dialect speaks HTTP only"))
