import { state } from './testing.js';

export function takePending(deviceId, max) {
  return (state.commands ?? []).splice(0, max);
}
