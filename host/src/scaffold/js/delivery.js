// {{name}}: a biogate delivery plugin, a route's sink (`sink = { type = "plugin", plugin =
// "{{name}}" }`). It gets batches of one device's events, in order; the gateway retries a
// batch until it returns, so a destination should de-duplicate on the event `id`. It may
// call only the origins in its `allowed_hosts`.

import { get } from 'biogate:plugin/config@0.1.0';
import { send } from 'biogate:plugin/outbound-http@0.1.0';

export const deliverer = {
  deliver(batch) {
    // An example: POST the batch's event ids, one per line, to the configured `url`.
    const url = get('url');
    if (!url) throw { tag: 'retry', val: { reason: 'config key `url` is not set' } };
    const body = new TextEncoder().encode(batch.map((event) => event.id).join('\n'));
    let answer;
    try {
      answer = send({ method: 'POST', url, headers: [['content-type', 'text/plain']], body });
    } catch (failed) {
      const error = failed.payload ?? failed;
      throw { tag: 'retry', val: { reason: `outbound HTTP failed: ${error.tag ?? error}` } };
    }
    if (answer.status >= 200 && answer.status < 300) return;
    const reason = `destination answered HTTP ${answer.status}`;
    // 400 and 422: the destination will never take this batch; the rest: try again later.
    if (answer.status === 400 || answer.status === 422) throw { tag: 'reject', val: reason };
    throw { tag: 'retry', val: { reason } };
  },
};
