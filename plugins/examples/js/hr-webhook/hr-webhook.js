// hr-webhook: a delivery plugin in JavaScript.
//
// POSTs each batch of punches as one JSON document to an HR system's webhook, with an
// API key header:
//
//   {"punches": [{"employee": "42", "at": "2026-06-21T19:30:00+05:30",
//                 "direction": "in", "kind": "check-in", "device": "SN1", "id": "..."}]}
//
// Config (`[plugins.<name>.config]`):
// - `url` (required): the webhook. Its origin must be in the plugin's `allowed_hosts`.
// - `api_key` (optional): sent as `X-Api-Key`.
//
// Events other than punches are skipped. 2xx: delivered. 400 or 422: the HR system will
// never take the batch, rejected (dead-lettered with the reason). Anything else: retried,
// after `Retry-After` seconds when given.

import { get } from 'biogate:plugin/config@0.1.0';
import { send } from 'biogate:plugin/outbound-http@0.1.0';

const DIRECTION = {
  'check-in': 'in', 'check-out': 'out', 'break-in': 'in', 'break-out': 'out',
  'over-time-in': 'in', 'over-time-out': 'out', 'meal-in': 'in', 'meal-out': 'out',
};

const pad = (n) => String(n).padStart(2, '0');

/// The device's wall time with its offset, in ISO 8601 ("2026-06-21T19:30:00+05:30").
export function localTime(logTime) {
  const offset = logTime.utcOffsetMinutes;
  const local = new Date((Number(logTime.unixSeconds) + offset * 60) * 1000);
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return `${local.toISOString().slice(0, 19)}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

function retry(reason, afterMs) {
  return { tag: 'retry', val: { reason, retryAfterMs: afterMs === undefined ? undefined : BigInt(afterMs) } };
}

export const deliverer = {
  deliver(batch) {
    const url = get('url');
    if (!url) throw retry('config key `url` is not set');
    const punches = batch
      .filter((event) => event.body.tag === 'punch')
      .map((event) => {
        const punch = event.body.val;
        return {
          employee: punch.userId,
          at: localTime(punch.logTime),
          direction: DIRECTION[punch.punchType],
          kind: punch.punchType,
          device: event.deviceId,
          id: event.id,
        };
      });
    if (punches.length === 0) return;
    const headers = [['content-type', 'application/json']];
    const key = get('api_key');
    if (key) headers.push(['x-api-key', key]);
    const body = new TextEncoder().encode(JSON.stringify({ punches }));
    let answer;
    try {
      answer = send({ method: 'POST', url, headers, body });
    } catch (failed) {
      const error = failed.payload ?? failed;
      const reason = `outbound HTTP failed: ${error.tag ?? ''} ${error.val ?? error}`;
      throw error.tag === 'invalid-request' ? { tag: 'reject', val: reason } : retry(reason);
    }
    if (answer.status >= 200 && answer.status < 300) return;
    const reason = `destination answered HTTP ${answer.status}`;
    if (answer.status === 400 || answer.status === 422) throw { tag: 'reject', val: reason };
    const after = answer.headers.find(([name]) => name.toLowerCase() === 'retry-after');
    const seconds = after ? Number(after[1].trim()) : NaN;
    throw retry(reason, Number.isInteger(seconds) && seconds >= 0 ? seconds * 1000 : undefined);
  },
};
