// The gateway's side of the plugin's imports, for `npm test` under Node: test/register.js
// maps every `biogate:plugin/<interface>@...` import to test/host/<interface>.js, and
// this module sets what they answer.

export const state = { config: new Map(), status: 200 };
export const requests = [];

/// The plugin's config values (what `[plugins.<name>.config]` holds in the gateway).
export function setConfig(values) {
  state.config = new Map(Object.entries(values));
}

/// The status every outbound request gets from now on.
export function answerWith(status) {
  state.status = status;
}

let sequence = 0;

/// A punch event as the gateway hands it to a plugin.
export function punch(deviceId, userId, punchType = 'check-in') {
  sequence += 1;
  return {
    id: `evt-${deviceId}-${sequence}`,
    deviceId,
    sequence: BigInt(sequence),
    receivedAtMs: 1750000000000n,
    body: {
      tag: 'punch',
      val: {
        userId,
        logTime: { unixSeconds: 1750000000n, utcOffsetMinutes: 0 },
        punchType,
        inputType: 'fingerprint',
      },
    },
  };
}
