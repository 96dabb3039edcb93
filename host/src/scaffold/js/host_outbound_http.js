import { requests, state } from './testing.js';

export function send(request) {
  requests.push(request);
  return { status: state.status, headers: [], body: new Uint8Array() };
}
