import { test } from 'node:test';
import assert from 'node:assert/strict';

import { dialectHandler } from '../plugin.js';

const request = (query, body) => ({
  method: 'POST',
  path: '/{{name}}',
  query,
  headers: [],
  body: new TextEncoder().encode(body),
});

test('each line is a punch and a bad line refuses the request', () => {
  assert.equal(dialectHandler.identifyHttp(request([['sn', 'SN1']], '')), 'SN1');
  const device = { deviceId: 'SN1', label: 'door', utcOffsetMinutes: 60 };
  const reply = dialectHandler.handleHttp(device, request([['sn', 'SN1']], '7,1750000000\n8,1750000060\n'));
  assert.equal(reply.status, 200);
  assert.equal(reply.events.length, 2);
  assert.equal(reply.events[1].val.userId, '8');
  assert.throws(() => dialectHandler.handleHttp(device, request([], '7;1750000000')), (e) => e.tag === 'bad-request');
});
