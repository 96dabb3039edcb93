// {{name}}: a biogate dialect plugin: it speaks a device protocol on the HTTP path it is
// mounted at (`http_mount = "/{{name}}"`). This example protocol: a device POSTs
// `?sn=<serial>` with one punch per line, `<user id>,<unix seconds>`, and gets `OK`.

const badRequest = (reason) => ({ tag: 'bad-request', val: reason });

/// One punch per line, `<user id>,<unix seconds>`; blank lines are skipped.
export function parsePunches(text) {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const comma = line.indexOf(',');
      const user = comma < 0 ? '' : line.slice(0, comma).trim();
      const seconds = comma < 0 ? NaN : Number(line.slice(comma + 1).trim());
      if (!user || !Number.isInteger(seconds)) throw badRequest(`not \`user,seconds\`: ${JSON.stringify(line)}`);
      return { user, seconds };
    });
}

export const dialectHandler = {
  /// Which device sent the request, from the request alone; the gateway then refuses
  /// unknown or disabled devices before handleHttp.
  identifyHttp(request) {
    const serial = request.query.find(([key]) => key === 'sn')?.[1];
    if (!serial) throw badRequest('missing ?sn=');
    return serial;
  },

  /// The reply and the events of one request; the gateway stores the events durably
  /// before it sends the reply.
  handleHttp(device, request) {
    const events = parsePunches(new TextDecoder().decode(request.body)).map(({ user, seconds }) => ({
      tag: 'punch',
      val: {
        userId: user,
        logTime: { unixSeconds: BigInt(seconds), utcOffsetMinutes: device.utcOffsetMinutes },
        punchType: 'check-in',
        inputType: 'unknown',
      },
    }));
    return { status: 200, headers: [], body: new TextEncoder().encode('OK'), events };
  },

  handleMqtt() {
    throw badRequest('this dialect speaks HTTP only');
  },

  encodeMqttCommand() {
    throw badRequest('this dialect speaks HTTP only');
  },
};
