import { test } from 'node:test';
import assert from 'node:assert/strict';

import { setConfig, answerWith, requests, punch } from './host/testing.js';
import { deliverer } from '../plugin.js';

test('a batch is posted and a refusal is retried', () => {
  setConfig({ url: 'https://hr.example.com/punches' });
  const batch = [punch('D1', '7'), punch('D1', '8')];
  answerWith(200);
  deliverer.deliver(batch);
  assert.equal(requests.length, 1);
  assert.equal(requests[0].url, 'https://hr.example.com/punches');
  assert.equal(new TextDecoder().decode(requests[0].body), `${batch[0].id}\n${batch[1].id}`);

  answerWith(503);
  assert.throws(() => deliverer.deliver(batch), (e) => e.tag === 'retry');
});
