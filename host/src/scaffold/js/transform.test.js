import { test } from 'node:test';
import assert from 'node:assert/strict';

import { setConfig, punch } from './host/testing.js';
import { transformer } from '../plugin.js';

test('punches get the configured prefix', () => {
  setConfig({ prefix: 'HR-' });
  const out = transformer.transform(punch('D1', '42'));
  assert.equal(out.length, 1);
  assert.equal(out[0].body.val.userId, 'HR-42');
});

test('a punch without a user id is rejected', () => {
  assert.throws(() => transformer.transform(punch('D1', '')), (e) => e.tag === 'reject');
});
